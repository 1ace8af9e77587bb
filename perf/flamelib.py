"""Stack folding from `perf script` output and a self-contained flame graph
page (inline CSS and JS, no network), for perf/flamegraph.

Folded format: one line per distinct stack, root first, frames joined by
';', then a space and the number of samples. Kernel frames end in "_[k]".
"""
import collections
import html
import json
import os
import re

_THREAD_DIGITS = re.compile(r"[-_]?\d+$")


def thread_group(comm):
    """"iou-wrk-12345" → "iou-wrk": one root per kind of thread, not per thread."""
    base = _THREAD_DIGITS.sub("", comm)
    return base or comm


def _frame_name(sym, dso):
    base = os.path.basename(dso.strip("[]")) if dso else "?"
    if not sym or sym == "[unknown]":
        name = f"[{base}]"
    else:
        name = sym
    if dso in ("[kernel.kallsyms]", "[kernel.vmlinux]") or dso.startswith("[kernel"):
        name += "_[k]"
    # ';' separates frames and a trailing number is the count: keep both out.
    return name.replace(";", ":").replace("\n", " ")


def fold(lines):
    """Folds `perf script -F comm,tid,ip,sym,dso` output.

    A sample is a header line (comm and tid) followed by indented frame lines
    "ADDRESS SYMBOL (DSO)", leaf first, and a blank line."""
    stacks = collections.Counter()
    comm = None
    frames = []

    def flush():
        if comm is not None:
            path = [thread_group(comm)] + frames[::-1]
            stacks[";".join(path)] += 1

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if not line[0].isspace():
            flush()
            frames = []
            head = line.strip()
            parts = head.rsplit(None, 1)
            comm = parts[0] if len(parts) == 2 and parts[1].split("/")[-1].isdigit() else head
            continue
        text = line.strip()
        addr, _, rest = text.partition(" ")
        dso = ""
        cut = rest.rfind(" (")
        if rest.endswith(")") and cut >= 0:
            dso = rest[cut + 2:-1]
            rest = rest[:cut]
        elif rest.startswith("(") and rest.endswith(")"):
            dso, rest = rest[1:-1], ""
        frames.append(_frame_name(rest.strip(), dso))
    flush()
    return stacks


def write_folded(stacks, path):
    with open(path, "w") as f:
        for stack, count in sorted(stacks.items()):
            f.write(f"{stack} {count}\n")


def read_folded(path):
    stacks = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack:
                stacks[stack] += int(count)
    return stacks


def build_tree(stacks):
    """Nested [name, total, children-dict] from folded stacks."""
    root = ["all", 0, {}]
    for stack, count in stacks.items():
        node = root
        node[1] += count
        for frame in stack.split(";"):
            child = node[2].get(frame)
            if child is None:
                child = node[2][frame] = [frame, 0, {}]
            child[1] += count
            node = child
    return root


def top_costs(stacks, n=15, skip_roots=True):
    """(self, inclusive): lists of (frame, samples), largest first. A frame
    counts once per sample for inclusive even when it recurses."""
    self_cost = collections.Counter()
    incl = collections.Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        if skip_roots:
            frames = frames[1:] or frames
        self_cost[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
    return self_cost.most_common(n), incl.most_common(n)


def _compact(node, names, index):
    name, total, children = node
    if name not in index:
        index[name] = len(names)
        names.append(name)
    kids = sorted(children.values(), key=lambda c: c[0])
    return [index[name], total] + ([[_compact(k, names, index) for k in kids]] if kids else [])


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>__TITLE__</title>
<style>
 body { margin: 0; font: 13px/1.35 system-ui, sans-serif; color: #222; background: #fafafa; }
 header { padding: 10px 14px 6px; }
 h1 { font-size: 17px; margin: 0 0 2px; }
 .sub { color: #555; }
 .bar { display: flex; gap: 8px; align-items: center; padding: 4px 14px 8px; flex-wrap: wrap; }
 .bar input { font: inherit; padding: 3px 6px; width: 22em; }
 .bar button { font: inherit; padding: 3px 10px; }
 #status { color: #444; }
 #graph { position: relative; margin: 0 14px; border: 1px solid #ddd; background: #fff; overflow: hidden; }
 .f { position: absolute; height: 17px; box-sizing: border-box; border: 1px solid #fff;
      border-width: 0 1px 1px 0; overflow: hidden; white-space: nowrap; text-overflow: ellipsis;
      font: 11px/16px ui-monospace, Menlo, Consolas, monospace; padding-left: 3px; cursor: pointer; }
 .f:hover { filter: brightness(0.88); }
 .f.dim { opacity: 0.45; }
 .f.hit { background: #e040d0 !important; color: #fff; }
 #tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 5px 8px;
        border-radius: 4px; font: 12px/1.4 ui-monospace, monospace; max-width: 70em; display: none;
        z-index: 10; word-break: break-all; }
 table { border-collapse: collapse; margin: 6px 0 16px; }
 td, th { padding: 2px 10px 2px 0; text-align: left; font: 12px ui-monospace, monospace; }
 td.n { text-align: right; }
 section { padding: 8px 14px; display: flex; gap: 40px; flex-wrap: wrap; }
 h2 { font-size: 14px; margin: 8px 0 2px; }
 .legend span { display: inline-block; padding: 0 6px; margin-right: 6px; border-radius: 2px; }
</style></head>
<body>
<header><h1>__TITLE__</h1><div class="sub">__SUBTITLE__</div></header>
<div class="bar">
 <input id="q" placeholder="search: regular expression, Enter" title="Highlights matching frames">
 <button id="reset">Reset zoom</button>
 <span id="status"></span>
 <span class="legend"><span style="background:#f2a65a">kernel</span><span style="background:#7cc47f">sluice</span><span style="background:#e8d05a">C/C++ libraries</span><span style="background:#e58a7a">other</span></span>
</div>
<div id="graph"></div>
<div id="tip"></div>
<section>
 <div><h2>Top self time</h2>__SELF__</div>
 <div><h2>Top inclusive time</h2>__INCL__</div>
</section>
<script>
"use strict";
const NAMES = __NAMES__;
const TREE = __TREE__;
const ROW = 17, MINPX = 0.6;
const graph = document.getElementById("graph"), tip = document.getElementById("tip");
const statusEl = document.getElementById("status"), q = document.getElementById("q");
let zoom = TREE, query = null;

function link(node, parent, depth) {
  node.parent = parent; node.depth = depth; node.name = NAMES[node[0]]; node.total = node[1];
  node.kids = node[2] || [];
  let maxd = depth;
  for (const k of node.kids) maxd = Math.max(maxd, link(k, node, depth + 1));
  node.self = node.total - node.kids.reduce((s, k) => s + k[1], 0);
  return maxd;
}
const DEPTH = link(TREE, null, 0) + 1;

function hash(s) { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0) / 4294967296; }
function color(name) {
  const v = hash(name);
  if (name.endsWith("_[k]")) return `hsl(${25 + 12 * v},85%,${62 + 10 * v}%)`;
  if (name.includes("sluice::") || name.startsWith("sluice")) return `hsl(${105 + 25 * v},45%,${58 + 12 * v}%)`;
  if (/^(std::|__|operator|mem|str|\[lib|_int_|malloc|free)/.test(name) || name.includes("@")) return `hsl(${48 + 8 * v},75%,${58 + 10 * v}%)`;
  return `hsl(${5 + 15 * v},70%,${64 + 10 * v}%)`;
}
function pct(n, d) { return d ? (100 * n / d).toFixed(2) + "%" : "-"; }

function matches(node) { return query !== null && query.test(node.name); }

function render() {
  const width = graph.clientWidth;
  graph.style.height = (DEPTH * ROW + 2) + "px";
  const frag = document.createDocumentFragment();
  const scale = width / zoom.total;
  // Ancestors of the zoomed frame span the whole width, dimmed.
  let a = zoom.parent;
  while (a) { frag.appendChild(box(a, 0, width, true)); a = a.parent; }
  (function draw(node, x) {
    const w = node.total * scale;
    if (w < MINPX) return;
    frag.appendChild(box(node, x, w, false));
    let cx = x;
    for (const k of node.kids) { draw(k, cx); cx += k.total * scale; }
  })(zoom, 0);
  graph.replaceChildren(frag);
  updateStatus();
}

function box(node, x, w, dim) {
  const d = document.createElement("div");
  d.className = "f" + (dim ? " dim" : "") + (matches(node) ? " hit" : "");
  d.style.left = x + "px"; d.style.width = Math.max(w, 1) + "px";
  d.style.bottom = (node.depth * ROW) + "px";
  d.style.background = color(node.name);
  if (w > 28) d.textContent = node.name;
  d.node = node;
  return d;
}

function updateStatus() {
  let text = zoom === TREE ? `${TREE.total} samples` : `zoomed: ${zoom.name} (${pct(zoom.total, TREE.total)} of all)`;
  if (query !== null) {
    let hit = 0;
    (function walk(n) { if (matches(n)) { hit += n.total; return; } for (const k of n.kids) walk(k); })(TREE);
    text += ` · search /${query.source}/ matches ${pct(hit, TREE.total)} of samples`;
  }
  statusEl.textContent = text;
}

graph.addEventListener("click", e => { const n = e.target.node; if (n) { zoom = n; render(); } });
graph.addEventListener("mousemove", e => {
  const n = e.target.node;
  if (!n) { tip.style.display = "none"; return; }
  tip.textContent = `${n.name}\n${n.total} samples, ${pct(n.total, TREE.total)} of all, ` +
    `${pct(n.total, zoom.total)} of view; self ${n.self} (${pct(n.self, TREE.total)})`;
  tip.style.whiteSpace = "pre-wrap";
  tip.style.display = "block";
  const x = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = x + "px"; tip.style.top = (e.clientY + 14) + "px";
});
graph.addEventListener("mouseleave", () => { tip.style.display = "none"; });
document.getElementById("reset").onclick = () => { zoom = TREE; render(); };
q.addEventListener("keydown", e => {
  if (e.key === "Enter") {
    try { query = q.value ? new RegExp(q.value) : null; q.style.background = ""; }
    catch (err) { q.style.background = "#fdd"; return; }
    render();
  }
  if (e.key === "Escape") { q.value = ""; query = null; render(); }
});
document.addEventListener("keydown", e => { if (e.key === "Escape" && e.target !== q) { zoom = TREE; render(); } });
window.addEventListener("resize", render);
render();
</script>
</body></html>
"""


def _cost_table(rows, total):
    out = ["<table><tr><th>samples</th><th>%</th><th>frame</th></tr>"]
    for name, count in rows:
        out.append(f"<tr><td class=n>{count}</td><td class=n>{100 * count / max(total, 1):.1f}</td>"
                   f"<td>{html.escape(name)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def render_html(stacks, title, subtitle):
    tree = build_tree(stacks)
    names, index = [], {}
    compact = _compact(tree, names, index)
    total = tree[1]
    self_rows, incl_rows = top_costs(stacks, 20)
    # JSON in a <script>: "</" must not close the element.
    def js(value):
        return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
    values = {"NAMES": js(names), "TREE": js(compact),
              "SELF": _cost_table(self_rows, total), "INCL": _cost_table(incl_rows, total),
              "TITLE": html.escape(title), "SUBTITLE": html.escape(subtitle)}
    # One pass, so that no inserted text is taken for a placeholder.
    return re.sub(r"__(NAMES|TREE|SELF|INCL|TITLE|SUBTITLE)__", lambda m: values[m.group(1)], PAGE)
