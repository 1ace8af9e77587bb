// sluice status page: polls the metrics endpoint once a second and draws the
// last five minutes as SVG. Plain JavaScript, no libraries, nothing but the
// page's own origin. Every point drawn comes from a real response.
//
// For tests: after each successful poll, <body data-samples> holds the number
// of samples kept, and each chart <svg data-points> the number of points it
// drew from them.
'use strict';

(() => {
  const WINDOW_MS = 5 * 60 * 1000; // What the charts show once the tab has been open that long.
  const MIN_SPAN_MS = 60 * 1000; // Until then the time axis grows from one minute.
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;
  const GAP_MS = 3500; // Samples further apart than this are not joined by a line.
  const LAT_WINDOW_MS = 5000; // Latency quantiles over the last five seconds of requests.
  const PALETTE = 8;
  const OPS = ['accept', 'recv', 'send', 'splice', 'openat', 'statx', 'read', 'write', 'poll',
    'shutdown', 'close', 'cancel', 'timeout'];

  // The endpoint: /metrics, or ?metrics=/other/path for --metrics_path.
  const PATH = (() => {
    const p = new URLSearchParams(location.search).get('metrics');
    return p && /^\/(?!\/)[\x21-\x7e]*$/.test(p) ? p : '/metrics';
  })();
  const JSON_URL = PATH + (PATH.includes('?') ? '&' : '?') + 'format=json';

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------ helpers --

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setText(id, text) {
    const e = $(id);
    if (e && e.textContent !== text) e.textContent = text;
  }

  // A value with a smaller unit after it: "12.3" + " ms".
  function setValue(id, value, unit) {
    const e = $(id);
    if (!e) return;
    e.replaceChildren(value, ...(unit ? [el('small', null, unit)] : []));
  }

  const intFmt = new Intl.NumberFormat('en-US');
  function fmtInt(n) {
    return intFmt.format(Math.round(n));
  }

  function fmtCompact(n) {
    const a = Math.abs(n);
    if (a < 1000) return Number.isInteger(n) ? String(n) : n.toFixed(a < 10 ? 1 : 0);
    for (const [d, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
      if (a >= d) return (n / d).toFixed(a / d < 10 ? 1 : 0) + s;
    }
    return String(n);
  }

  function fmtRate(n) {
    if (n === null || !Number.isFinite(n)) return '—';
    if (n < 10) return n.toFixed(1);
    return fmtCompact(Math.round(n));
  }

  // Seconds → [number text, unit].
  function splitSeconds(s) {
    if (s === null || !Number.isFinite(s)) return ['—', ''];
    if (s <= 0) return ['0', 'ms'];
    if (s < 1e-3) {
      const us = s * 1e6;
      return [us < 10 ? us.toFixed(1) : us.toFixed(0), 'µs'];
    }
    if (s < 1) {
      const ms = s * 1e3;
      return [ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0), 'ms'];
    }
    return [s.toFixed(s < 10 ? 2 : 1), 's'];
  }

  // Axis ticks: no trailing zeros ("2 ms", not "2.00 ms").
  function fmtSecondsTick(s) {
    const [v, u] = splitSeconds(s);
    return u ? String(parseFloat(v)) + ' ' + u : v;
  }

  function fmtSeconds(s) {
    const [v, u] = splitSeconds(s);
    return u ? v + ' ' + u : v;
  }

  function splitBytes(n) {
    if (n === null || !Number.isFinite(n)) return ['—', ''];
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return [i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0), units[i]];
  }

  function fmtBytes(n) {
    const [v, u] = splitBytes(n);
    return v + ' ' + u;
  }

  function fmtDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    const d = Math.floor(sec / 86400);
    const h = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const s = sec % 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function fmtAgo(ms) {
    const s = Math.round(ms / 1000);
    if (s <= 0) return 'now';
    if (s < 60) return `${s} s ago`;
    return `${Math.floor(s / 60)} min ${s % 60} s ago`;
  }

  // The server's estimate (HistogramSnapshot::Quantile), on bucket deltas:
  // linear inside the bucket; the +Inf bucket answers the last finite bound.
  function quantile(counts, bounds, q) {
    let total = 0;
    for (const c of counts) total += c;
    if (total <= 0) return null;
    const rank = q * total;
    let seen = 0;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i];
      if (c > 0 && seen + c >= rank) {
        if (i >= bounds.length) return bounds[bounds.length - 1];
        const lower = i === 0 ? 0 : bounds[i - 1];
        const f = Math.min(1, Math.max(0, (rank - seen) / c));
        return lower + (bounds[i] - lower) * f;
      }
      seen += c;
    }
    return bounds[bounds.length - 1];
  }

  // ------------------------------------------------------------ samples --

  const samples = []; // Oldest first; see extract().
  let bounds = []; // Latency bucket upper bounds, seconds.
  let lastOkAt = 0;
  let restarted = false;

  function extract(doc, t) {
    const T = doc.totals;
    return {
      t,
      up: doc.server.uptime_seconds,
      start: doc.server.start_time_unix_seconds,
      requests: T.requests.total,
      bytes: T.bytes_sent_total,
      lat: T.latency.buckets.map((b) => b.count),
      p50: T.latency.p50_seconds,
      p99: T.latency.p99_seconds,
      workers: doc.workers.map((w) => ({
        q: w.ring.sq_ready + w.ring.cq_ready,
        inflight: w.ring.in_flight.total,
      })),
    };
  }

  // Rates between two consecutive samples.
  function derive(a, b) {
    const dt = b.up - a.up;
    if (!(dt > 0) || b.requests < a.requests || b.bytes < a.bytes) return null;
    return {rps: (b.requests - a.requests) / dt, bps: (b.bytes - a.bytes) / dt};
  }

  // p50 and p99 of the requests answered in the ~5 s up to samples[i], from
  // the difference of the histograms (a second alone holds too few requests
  // for a steady p99 on a quiet server).
  function recentLatency(i) {
    const b = samples[i];
    let j = i;
    while (j > 0 && b.t - samples[j - 1].t <= LAT_WINDOW_MS + 500 &&
           samples[j].t - samples[j - 1].t <= GAP_MS) {
      j--;
    }
    if (j === i) return null;
    const delta = b.lat.map((c, k) => c - (samples[j].lat[k] || 0));
    return {p50: quantile(delta, bounds, 0.5), p99: quantile(delta, bounds, 0.99)};
  }

  function addSample(doc, now) {
    const s = extract(doc, now);
    const prev = samples[samples.length - 1];
    if (prev && (s.start !== prev.start || s.up < prev.up || s.requests < prev.requests)) {
      samples.length = 0; // A restart: counters began again.
      restarted = true;
    }
    bounds = doc.totals.latency.buckets
        .map((b) => b.le_seconds)
        .filter((v) => typeof v === 'number');
    samples.push(s);
    // Keep one sample older than the window: the first rate needs it.
    while (samples.length > 2 && samples[1].t < now - WINDOW_MS) samples.shift();
  }

  // ------------------------------------------------------------- charts --

  function niceScale(max, integer, emptyMax) {
    if (!(max > 0)) max = emptyMax;
    let step = max / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(step)));
    const n = step / mag;
    step = (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
    if (integer) step = Math.max(1, Math.ceil(step));
    let top = Math.ceil(max / step - 1e-9) * step;
    if (top <= 0) top = step;
    return {top, step};
  }

  class Chart {
    // opts: fmt (value → text), tick (axis value → text), integer, emptyMax.
    constructor(id, legendId, opts) {
      this.svg = $(id);
      this.legend = $(legendId);
      this.opts = opts;
      this.box = this.svg.parentElement;
      this.tip = el('div', {class: 'tip', hidden: ''});
      this.box.append(this.tip);
      this.series = [];
      this.now = Date.now();
      this.hoverX = null;
      this.svg.addEventListener('pointermove', (e) => {
        const r = this.svg.getBoundingClientRect();
        this.hoverX = e.clientX - r.left;
        this.drawHover();
      });
      this.svg.addEventListener('pointerleave', () => {
        this.hoverX = null;
        this.drawHover();
      });
    }

    // series: [{label, color (1..8), dashed, area, points: [{t, v}]}]; all
    // series share the times of the first one.
    render(series, now, span) {
      this.series = series;
      this.now = now;
      this.span = span;
      const w = Math.max(200, this.svg.clientWidth || this.box.clientWidth || 400);
      const h = Math.max(120, this.svg.clientHeight || this.box.clientHeight || 200);
      const m = {l: 50, r: 10, t: 8, b: 22};
      this.geom = {w, h, m, pw: w - m.l - m.r, ph: h - m.t - m.b};
      const {pw, ph} = this.geom;
      const from = now - span;
      const visible = (p) => p && p.v !== null && Number.isFinite(p.v) && p.t >= from;
      let max = 0;
      let drawn = 0;
      for (const s of series) {
        let n = 0;
        for (const p of s.points) {
          if (!visible(p)) continue;
          n++;
          if (p.v > max) max = p.v;
        }
        drawn = Math.max(drawn, n);
      }
      const scale = niceScale(max, this.opts.integer, this.opts.emptyMax);
      this.scale = scale;
      const x = (t) => m.l + ((t - from) / span) * pw;
      const y = (v) => m.t + ph - (v / scale.top) * ph;
      this.x = x;

      const root = svg('g');
      // Grid and axes.
      for (let v = 0; v <= scale.top + scale.step / 2; v += scale.step) {
        const yy = Math.round(y(v)) + 0.5;
        root.append(svg('line', {class: 'grid', x1: m.l, x2: w - m.r, y1: yy, y2: yy}));
        root.append(svg('text', {class: 'axis-label y', x: m.l - 7, y: yy},
            (this.opts.tick || this.opts.fmt)(v)));
      }
      // Time ticks at least ~52 px apart, on round numbers of seconds.
      const step = [10, 15, 20, 30, 60, 120, 300].map((v) => v * 1000)
          .find((v) => (v / span) * pw >= 52) || span;
      for (let ago = 0; ago <= span + 1; ago += step) {
        const xx = Math.round(x(now - ago)) + 0.5;
        const edge = ago + step > span + 1;
        if (ago > 0 && !(edge && ago >= span - 1)) {
          root.append(svg('line', {class: 'grid', x1: xx, x2: xx, y1: m.t, y2: m.t + ph,
            'stroke-dasharray': '2 4'}));
        }
        // Keep the leftmost label inside the plot when it sits on the edge.
        const anchor = ago === 0 ? 'end' : xx - m.l < 24 ? 'start' : 'middle';
        const sec = ago / 1000;
        const text = ago === 0 ? 'now' : sec % 60 === 0 ? `−${sec / 60} min` : `−${sec} s`;
        root.append(svg('text', {class: 'axis-label x', x: xx, y: h - 5, 'text-anchor': anchor},
            text));
      }

      // Series, back to front.
      for (let i = series.length - 1; i >= 0; i--) {
        const s = series[i];
        const g = svg('g', {class: 'c' + s.color});
        let line = '';
        let area = '';
        let seg = [];
        const flush = () => {
          if (!seg.length) return;
          line += seg.map(([px, py], j) => (j ? 'L' : 'M') + px.toFixed(1) + ' ' + py.toFixed(1))
              .join('');
          if (s.area && seg.length > 1) {
            const base = (m.t + ph).toFixed(1);
            area += `M${seg[0][0].toFixed(1)} ${base}` +
                seg.map(([px, py]) => `L${px.toFixed(1)} ${py.toFixed(1)}`).join('') +
                `L${seg[seg.length - 1][0].toFixed(1)} ${base}Z`;
          }
          seg = [];
        };
        let prevT = null;
        let last = null;
        for (const p of s.points) {
          if (!visible(p)) {
            flush();
            prevT = null;
            continue;
          }
          if (prevT !== null && p.t - prevT > GAP_MS) flush();
          seg.push([x(p.t), y(p.v)]);
          prevT = p.t;
          last = p;
        }
        flush();
        if (area) g.append(svg('path', {class: 'area', d: area}));
        if (line) g.append(svg('path', {class: 'line' + (s.dashed ? ' dashed' : ''), d: line}));
        if (last && !s.dashed) g.append(svg('circle', {class: 'last', cx: x(last.t), cy: y(last.v), r: 3.5}));
        root.append(g);
      }
      if (!drawn) {
        root.append(svg('text', {class: 'empty', x: m.l + pw / 2, y: m.t + ph / 2},
            lastOkAt ? 'Collecting samples…' : 'Waiting for data…'));
      }
      this.cursor = svg('line', {class: 'cursor', y1: m.t, y2: m.t + ph, visibility: 'hidden'});
      root.append(this.cursor);

      this.svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
      this.svg.replaceChildren(root);
      this.svg.dataset.points = String(drawn);
      this.renderLegend();
      this.drawHover();
    }

    renderLegend() {
      const items = [];
      const shown = this.series;
      const limit = 8;
      for (const s of shown.slice(0, limit)) {
        const lastPoint = [...s.points].reverse().find((p) => p && p.v !== null);
        items.push(el('li', {class: 'c' + s.color},
            el('span', {class: 'swatch' + (s.dashed ? ' dashed' : '')}),
            el('span', null, s.label),
            el('b', null, lastPoint ? this.opts.fmt(lastPoint.v) : '—')));
      }
      if (shown.length > limit) items.push(el('li', null, `+${shown.length - limit} more`));
      this.legend.replaceChildren(...items);
    }

    drawHover() {
      const first = this.series[0];
      if (this.hoverX === null || !first || !this.geom) {
        this.tip.hidden = true;
        if (this.cursor) this.cursor.setAttribute('visibility', 'hidden');
        return;
      }
      const from = this.now - this.span;
      const {m, pw, w} = this.geom;
      const t = from + ((this.hoverX - m.l) / pw) * this.span;
      let best = -1;
      let bestD = Infinity;
      first.points.forEach((p, i) => {
        if (!p || p.t < from) return;
        const d = Math.abs(p.t - t);
        if (d < bestD) {
          bestD = d;
          best = i;
        }
      });
      if (best < 0 || bestD > 5000) {
        this.tip.hidden = true;
        this.cursor.setAttribute('visibility', 'hidden');
        return;
      }
      const at = first.points[best].t;
      const cx = this.x(at);
      this.cursor.setAttribute('x1', cx);
      this.cursor.setAttribute('x2', cx);
      this.cursor.setAttribute('visibility', 'visible');
      const rows = [el('div', {class: 'tip-time'}, fmtAgo(this.now - at))];
      for (const s of this.series) {
        const p = s.points.find((q) => q && q.t === at);
        rows.push(el('div', null, el('span', {class: 'c' + s.color}, s.label + ' '),
            el('b', null, p && p.v !== null ? this.opts.fmt(p.v) : '—')));
      }
      this.tip.replaceChildren(...rows);
      this.tip.hidden = false;
      const boxW = this.box.clientWidth;
      const scale = boxW / w;
      const tipW = this.tip.offsetWidth;
      let left = cx * scale + 12;
      if (left + tipW > boxW) left = cx * scale - tipW - 12;
      this.tip.style.left = Math.max(0, left) + 'px';
    }
  }

  const fmtCount = (v) => fmtCompact(v);
  const charts = {
    rps: new Chart('chart-rps', 'legend-rps', {fmt: (v) => fmtCompact(v), emptyMax: 10}),
    latency: new Chart('chart-latency', 'legend-latency', {fmt: fmtSeconds, tick: fmtSecondsTick, emptyMax: 1e-3}),
    queue: new Chart('chart-queue', 'legend-queue', {fmt: fmtCount, integer: true, emptyMax: 4}),
    inflight: new Chart('chart-inflight', 'legend-inflight',
        {fmt: fmtCount, integer: true, emptyMax: 4}),
  };

  function renderCharts() {
    const now = Date.now();
    // The oldest sample inside the window sets how much time the axis shows.
    const first = samples.find((p) => p.t >= now - WINDOW_MS);
    const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, first ? now - first.t + 2000 : 0));
    const rates = [];
    const lat50 = [];
    const lat99 = [];
    const cum50 = [];
    const cum99 = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1];
      const b = samples[i];
      const d = b.t - a.t <= GAP_MS ? derive(a, b) : null;
      if (!d) continue;
      const l = recentLatency(i);
      rates.push({t: b.t, v: d.rps});
      lat50.push({t: b.t, v: l ? l.p50 : null});
      lat99.push({t: b.t, v: l ? l.p99 : null});
      cum50.push({t: b.t, v: b.p50});
      cum99.push({t: b.t, v: b.p99});
    }
    charts.rps.render([{label: 'requests/s', color: 1, area: true, points: rates}], now, span);
    charts.latency.render([
      {label: 'p50', color: 1, points: lat50},
      {label: 'p99', color: 2, points: lat99},
      {label: 'p50 since start', color: 1, dashed: true, points: cum50},
      {label: 'p99 since start', color: 2, dashed: true, points: cum99},
    ], now, span);
    const nWorkers = samples.length ? samples[samples.length - 1].workers.length : 0;
    const perWorker = (key) => {
      const out = [];
      for (let w = 0; w < nWorkers; w++) {
        out.push({
          label: 'worker ' + w,
          color: (w % PALETTE) + 1,
          points: samples.map((s) => (s.workers[w] ? {t: s.t, v: s.workers[w][key]} : null)),
        });
      }
      return out;
    };
    charts.queue.render(perWorker('q'), now, span);
    charts.inflight.render(perWorker('inflight'), now, span);
  }

  // ------------------------------------------------------------- tables --

  function statusClass(code) {
    return 'k' + String(code)[0];
  }

  const STATUS_TEXT = {
    200: 'OK', 204: 'No Content', 206: 'Partial Content', 301: 'Moved Permanently',
    304: 'Not Modified', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
    405: 'Method Not Allowed', 408: 'Request Timeout', 412: 'Precondition Failed',
    413: 'Content Too Large', 414: 'URI Too Long', 416: 'Range Not Satisfiable',
    417: 'Expectation Failed', 431: 'Request Header Fields Too Large',
    500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
    505: 'HTTP Version Not Supported',
  };

  function shareCell(n, total) {
    const pct = total ? (100 * n) / total : 0;
    const bar = el('span', {class: 'bar'}, el('i', {style: `width:${pct.toFixed(1)}%`}));
    return el('td', {class: 'num'}, el('span', {class: 'share'}, bar,
        el('span', null, (pct < 10 && pct > 0 ? pct.toFixed(1) : pct.toFixed(0)) + '%')));
  }

  function emptyRow(cols, text) {
    return el('tr', {class: 'empty-row'}, el('td', {colspan: cols}, text));
  }

  function kvRows(pairs) {
    return pairs.map(([k, v, title]) =>
      el('tr', title ? {title} : null, el('th', {scope: 'row'}, k), el('td', {class: 'num'}, v)));
  }

  function renderTables(doc) {
    const T = doc.totals;
    const total = T.requests.total;

    const byStatus = Object.entries(T.requests.by_status)
        .map(([k, v]) => [Number(k), v])
        .sort((a, b) => a[0] - b[0]);
    $('tb-status').replaceChildren(...(byStatus.length ? byStatus.map(([code, n]) =>
      el('tr', null,
          el('td', null, el('span', {class: 'badge ' + statusClass(code)}, String(code)), ' ',
              el('span', {class: 'muted'}, STATUS_TEXT[code] || '')),
          el('td', {class: 'num'}, fmtInt(n)), shareCell(n, total))) :
      [emptyRow(3, 'No requests yet')]));

    const methods = ['GET', 'HEAD', 'OPTIONS', 'OTHER'];
    const byMethod = methods.filter((m) => T.requests.by_method[m])
        .map((m) => [m, T.requests.by_method[m]]);
    $('tb-method').replaceChildren(...(byMethod.length ? byMethod.map(([m, n]) =>
      el('tr', null, el('td', null, el('code', null, m)), el('td', {class: 'num'}, fmtInt(n)),
          shareCell(n, total))) : [emptyRow(3, 'No requests yet')]));

    const c = T.connections;
    $('tb-conn').replaceChildren(...kvRows([
      ['Open now', fmtInt(c.active)],
      ['Idle keep-alive', fmtInt(c.idle_keepalive)],
      ['Accepted', fmtInt(c.accepted_total)],
      ['Closed', fmtInt(c.closed_total)],
      ['Refused at the limit', fmtInt(c.rejected_total), '--max_connections reached'],
      ['Timed out', fmtInt(c.timeouts_total), 'header, keep-alive or send timeout'],
    ]));

    const log = T.access_log;
    const fc = T.file_cache;
    const batch = T.ring.batch_size;
    $('tb-traffic').replaceChildren(...kvRows([
      ['Requests', fmtInt(total)],
      ['Bytes sent', fmtBytes(T.bytes_sent_total), fmtInt(T.bytes_sent_total) + ' bytes'],
      ['Mean latency', T.latency.count ? fmtSeconds(T.latency.sum_seconds / T.latency.count) : '—'],
      ['p90 / p99.9 since start', fmtSeconds(T.latency.p90_seconds) + ' / ' +
        fmtSeconds(T.latency.p999_seconds)],
      ['CQEs per wake (mean)', batch.count ? (batch.sum / batch.count).toFixed(2) : '—'],
      ['Access log lines', fmtInt(log.lines_total)],
      ['Log write errors', fmtInt(log.write_errors_total)],
      ['Log lines dropped', fmtInt(log.dropped_lines_total)],
      ['File cache hit rate', fc.hits_total + fc.misses_total ?
        (100 * fc.hits_total / (fc.hits_total + fc.misses_total)).toFixed(1) + ' %' : '—',
        fmtInt(fc.hits_total) + ' hits, ' + fmtInt(fc.misses_total) + ' misses'],
      ['File cache entries', fmtInt(fc.entries), fmtBytes(fc.content_bytes) + ' of small files; ' +
        fmtInt(fc.evictions_total) + ' evicted'],
    ]));

    $('tb-workers').replaceChildren(...doc.workers.map((w, i) => {
      const r = w.ring;
      const b = r.batch_size;
      return el('tr', null,
          el('td', null, el('span', {class: 'c' + ((i % PALETTE) + 1)}, '● '), String(w.worker)),
          el('td', {class: 'num'}, w.cpu < 0 ? '—' : String(w.cpu)),
          el('td', {class: 'num'}, fmtInt(r.sq_ready)),
          el('td', {class: 'num'}, fmtInt(r.cq_ready)),
          el('td', {class: 'num'}, fmtInt(r.in_flight.total)),
          el('td', {class: 'num'}, fmtCompact(r.submit_calls_total)),
          el('td', {class: 'num'}, fmtCompact(r.cqes_total)),
          el('td', {class: 'num'}, b.count ? (b.sum / b.count).toFixed(2) : '—'),
          el('td', {class: 'num'}, fmtInt(r.cq_overflow_total)),
          el('td', {class: 'num'}, fmtInt(w.connections.active)),
          el('td', {class: 'num'}, fmtInt(w.requests.total)),
          el('td', {class: 'num'}, fmtSeconds(w.latency.p99_seconds)));
    }));

    const sizes = new Set(doc.workers.map((w) => `${w.ring.sq_entries}/${w.ring.cq_entries}`));
    const w0 = doc.workers[0];
    setText('ring-sizes', sizes.size === 1 && w0 ?
      `${fmtInt(w0.ring.sq_entries)} SQ and ${fmtInt(w0.ring.cq_entries)} CQ entries each` :
      doc.workers.map((w) => `${w.worker}: ${w.ring.sq_entries}/${w.ring.cq_entries}`).join(', '));

    const opRow = (label, fl, cls) => el('tr', cls ? {class: cls} : null,
        el('td', null, label),
        ...OPS.map((op) => el('td', {class: 'num' + (fl[op] ? '' : ' muted')}, fmtInt(fl[op]))),
        el('td', {class: 'num'}, el('b', null, fmtInt(fl.total))));
    $('tb-ops').replaceChildren(
        ...doc.workers.map((w, i) => opRow(
            el('span', null, el('span', {class: 'c' + ((i % PALETTE) + 1)}, '● '),
                String(w.worker)), w.ring.in_flight)),
        opRow('all', T.ring.in_flight, 'total-row'));
  }

  function renderNow(doc) {
    const s = doc.server;
    setText('f-version', s.version);
    setText('f-uptime', fmtDuration(s.uptime_seconds));
    setText('f-threads', String(s.threads));
    setText('f-ring', s.io_uring_setup_flags);
    setText('f-kernel', s.kernel_release);
    const started = new Date(s.start_time_unix_seconds * 1000);
    setText('f-start', started.toLocaleString(undefined,
        {dateStyle: 'medium', timeStyle: 'short'}));
    $('f-start').title = s.start_time;

    const T = doc.totals;
    let d = null;
    if (samples.length >= 2) d = derive(samples[samples.length - 2], samples[samples.length - 1]);
    const recent = samples.length >= 2 ? recentLatency(samples.length - 1) : null;
    setValue('t-rps', d ? fmtRate(d.rps) : '—', d ? '/s' : '');
    setText('t-rps-sub', fmtInt(T.requests.total) + ' in all');
    for (const [q, key] of [['p50', 'p50_seconds'], ['p99', 'p99_seconds']]) {
      const [v, u] = splitSeconds(recent ? recent[q] : null);
      setValue('t-' + q, v, u);
      setText(`t-${q}-sub`, 'overall ' + fmtSeconds(T.latency[key]));
    }
    setValue('t-conn', fmtInt(T.connections.active), '');
    setText('t-conn-sub', fmtInt(T.connections.idle_keepalive) + ' idle');
    const [bv, bu] = splitBytes(d ? d.bps : null);
    setValue('t-bytes', bv, d ? bu + '/s' : '');
    setText('t-bytes-sub', fmtBytes(T.bytes_sent_total) + ' in all');
    setValue('t-inflight', fmtInt(T.ring.in_flight.total), '');
    setText('t-inflight-sub', fmtInt(T.ring.sq_ready + T.ring.cq_ready) + ' queued');
  }

  // --------------------------------------------------------------- poll --

  function setLive(state, text) {
    const live = $('live');
    live.classList.toggle('is-live', state === 'live');
    live.classList.toggle('is-stale', state === 'stale');
    live.classList.toggle('is-down', state === 'down');
    setText('live-text', text);
  }

  function showHint(...parts) {
    const hint = $('hint');
    hint.hidden = !parts.length;
    hint.replaceChildren(...parts);
  }

  // Enough of the document's shape for this page; anything else is an error.
  function checkShape(doc) {
    const ok = doc && doc.server && Array.isArray(doc.workers) && doc.totals &&
      doc.totals.requests && doc.totals.latency && Array.isArray(doc.totals.latency.buckets) &&
      doc.totals.ring && doc.totals.connections &&
      doc.workers.every((w) => w.ring && w.ring.in_flight && w.connections && w.requests);
    if (!ok) throw new Error('unexpected JSON from ' + PATH);
  }

  class HttpError extends Error {
    constructor(status) {
      super('HTTP ' + status);
      this.status = status;
    }
  }

  async function poll() {
    const began = performance.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(JSON_URL, {
        cache: 'no-store',
        headers: {Accept: 'application/json'},
        signal: ctl.signal,
      });
      if (!res.ok) throw new HttpError(res.status);
      const doc = await res.json();
      checkShape(doc);
      const now = Date.now();
      addSample(doc, now);
      lastOkAt = now;
      document.body.dataset.samples = String(samples.length);
      setLive('live', (restarted ? 'Live (server restarted) · ' : 'Live · ') +
          new Date(now).toLocaleTimeString(undefined, {hour12: false}));
      showHint();
      renderNow(doc);
      renderTables(doc);
      renderCharts();
    } catch (e) {
      const why = e.name === 'AbortError' ? 'no answer in ' + TIMEOUT_MS / 1000 + ' s' : e.message;
      const fresh = lastOkAt && Date.now() - lastOkAt < 5000;
      setLive(fresh ? 'stale' : 'down', `Cannot read ${PATH} (${why}) — retrying`);
      if (e instanceof HttpError && (e.status === 404 || e.status === 403)) {
        const code = (t) => el('code', null, t);
        showHint(`The server answered ${e.status} for ${PATH}. sluice serves metrics only to ` +
          'clients in ', code('--metrics_allow'), ' (loopback by default), at ',
        code('--metrics_path'), ', and not on the main listener when ', code('--metrics_listen'),
        ' is set. For another path, open this page as ', code('status.html?metrics=/your/path'),
        '.');
      }
      renderCharts(); // The window keeps moving; gaps stay gaps.
    } finally {
      clearTimeout(timer);
      setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - began)));
    }
  }

  for (const id of ['raw-json', 'foot-json']) $(id).href = PATH;
  for (const id of ['raw-prom', 'foot-prom']) {
    $(id).href = PATH + (PATH.includes('?') ? '&' : '?') + 'format=prometheus';
  }
  setText('foot-path', PATH);

  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderCharts();
    });
  }).observe($('charts'));

  renderCharts();
  poll();
})();
