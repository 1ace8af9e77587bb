#!/usr/bin/env python3
"""perf/compare's report and the anchors' configurations, without a load.

- The summary, the text table and the Markdown show sluice against every
  anchor measured (nginx, lighttpd, h2o): one sluice/anchor ratio per anchor,
  from the medians; a failed run is "no number" (listed, shown as "-"),
  never a figure.
- JSON written before the anchors (sluice and nginx only, no "anchors" in
  its meta) still gives its table, with the nginx ratio alone.
- Every template (perf/NAME.conf.in) is filled in with no placeholder left,
  names the unprivileged user, or root with --privileged; where the anchor
  is installed, the anchor itself accepts the file (nginx -t, lighttpd -tt,
  h2o -t). So does every scenario configuration (perf/KIND.rules.*.in), and
  sluice's, where build/release/sluice exists, passes --check-config.
- The `rules` scenario's cost line: CPU per request over `rules-base`, and
  a server without a rules template is said to have served it plainly.

Usage: perf_report_test.py REPO_ROOT. Standard library only; starts no
server, sends no traffic, writes only under a temporary directory.
"""
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL: {what}", flush=True)


def load_compare(root):
    sys.path.insert(0, os.path.join(root, "perf"))
    path = os.path.join(root, "perf", "compare")
    loader = importlib.machinery.SourceFileLoader("perf_compare", path)
    spec = importlib.util.spec_from_loader("perf_compare", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_record(server, rnd, rps, cpu_us, ok=True):
    rec = dict(server=server, scenario="small", mode="open", round=rnd, ok=ok)
    if not ok:
        rec["error"] = f"{server} GET /1k.html: body differs from the file"
        return rec
    rec.update(rps=rps, mbps=rps / 1000, p50_ms=1.0, p99_ms=2.0, cpu_us=cpu_us, hwm_mib=10.0,
               server_cpu_pct=50, cpu0_busy_pct=60, cpu1_busy_pct=70)
    return rec


def idle_record(server, rnd, per_conn):
    return dict(server=server, scenario="idle", mode="open", round=rnd, ok=True, held=5000,
                rss_before_mib=8.0, rss_after_mib=8.0 + per_conn * 5000 / 1024,
                per_conn_kib=per_conn, hwm_mib=12.0)


META = dict(date="2026-12-05 00:00:00 UTC", kernel="6", nproc=2, cpu_model="cpu",
            loadavg_at_start="0 0 0", sluice="sluice 0.1.0", nginx="nginx version: nginx/1.22.1",
            wrk="wrk 4.1.0", git="abc", rounds=2, duration=3, warmup=1)


def test_every_anchor(compare):
    records = []
    for rnd in (1, 2):
        records += [load_record("sluice", rnd, 30000 + rnd * 2000, 6.0 + rnd),
                    load_record("nginx", rnd, 20000 + rnd * 2000, 10.0 + rnd),
                    load_record("lighttpd", rnd, 0, 0, ok=False),
                    load_record("h2o", rnd, 15000 + rnd * 1000, 12.0 + rnd),
                    idle_record("sluice", rnd, 0.4), idle_record("nginx", rnd, 0.5),
                    idle_record("lighttpd", rnd, 4.0), idle_record("h2o", rnd, 1.0)]
    meta = dict(META, lighttpd="lighttpd/1.4.69 (ssl) - a light and fast webserver",
                h2o="h2o version 2.2.5", anchors=["nginx", "lighttpd", "h2o"],
                privileged=False, idle_connections=5000, idle_wave=200)
    summary = compare.summarize(records)
    small = next(r for r in summary if r["scenario"] == "small")
    idle = next(r for r in summary if r["scenario"] == "idle")
    check(set(small["ratio"]) == {"nginx", "lighttpd", "h2o"},
          f"one ratio per anchor, got {sorted(small['ratio'])}")
    # Medians: sluice rps 33000, nginx 23000, h2o 16500; CPU 7.5, 11.5, 13.5.
    check(abs(small["ratio"]["nginx"]["rps"] - 33000 / 23000) < 1e-9, "÷nginx req/s")
    check(abs(small["ratio"]["h2o"]["cpu_us"] - 7.5 / 13.5) < 1e-9, "÷h2o CPU/request")
    check(small["ratio"]["lighttpd"]["rps"] is None, "a failed anchor gives no ratio")
    check(small["servers"]["lighttpd"]["runs_ok"] == 0 and
          len(small["servers"]["lighttpd"]["failures"]) == 2, "lighttpd's failures recorded")
    check(abs(idle["ratio"]["lighttpd"]["per_conn_kib"] - 0.1) < 1e-9, "idle ÷lighttpd")

    text = compare.table(summary, meta, "")
    for label in ("÷nginx", "÷lighttpd", "÷h2o"):
        check(text.count(label) == 2, f"text table: {label} once per scenario")
    check("Runs that yielded no number:" in text and
          "small (open) lighttpd: lighttpd GET /1k.html: body differs" in text,
          "text table lists the failed runs")
    light_row = next(line for line in text.splitlines() if " lighttpd " in line
                     and line.lstrip().startswith("lighttpd"))
    check(light_row.split()[1] == "-", f"a failed run shows '-', got {light_row!r}")
    check("arriving 200 at a time" in text and "ran as nobody" in text, "idle heading, users")
    md = compare.markdown(summary, meta)
    for label in ("**÷nginx**", "**÷lighttpd**", "**÷h2o**"):
        check(md.count(label) == 2, f"Markdown: {label} once per scenario")
    check("h2o/2.2.5" in md and "lighttpd/1.4.69" in md, "Markdown names the anchors' versions")


def test_old_json(compare):
    """Records and meta as perf/compare wrote them before the anchors."""
    records = [load_record("sluice", 1, 30000, 6.0), load_record("nginx", 1, 20000, 10.0),
               idle_record("sluice", 1, 0.3), idle_record("nginx", 1, 0.5)]
    meta = dict(META, rounds=1, idle_connections=10000)
    summary = compare.summarize(records)
    text = compare.table(summary, meta, "")
    check("÷nginx" in text and "÷lighttpd" not in text and "÷h2o" not in text,
          "old JSON: the nginx ratio alone")
    check("ran as" not in text, "old JSON: no claim about users")
    check("10,000 idle keep-alive connections" in text, "old JSON: the old idle heading")
    md = compare.markdown(summary, meta)
    check("**÷nginx**" in md and "lighttpd" not in md, "old JSON: Markdown, nginx only")


def test_templates(compare):
    H = compare.H
    with tempfile.TemporaryDirectory() as tmp:
        H.RUN = tmp
        for kind, privileged, config in [(k, p, c) for k in H.ANCHORS for p in (False, True)
                                         for c in (None, "rules")]:
            server = H.Server(kind, root=tmp, privileged=privileged, config=config)
            if config and not server.has_config():
                continue
            server.port = 18080
            conf_path = server._write_config()
            with open(conf_path) as f:
                conf = f.read()
            where = f"{kind}{' --privileged' if privileged else ''}{' ' + config if config else ''}"
            user = "root" if privileged else H.SERVE_USER[0]
            check("@" not in "".join(line.split("#")[0] for line in conf.splitlines()),
                  f"{where}: a placeholder left")
            if kind == "lighttpd" and privileged:
                check("server.username" not in conf, f"{where}: no server.username")
            else:
                check(user in conf, f"{where}: serves as {user}")
            validate(kind, where, conf_path, server.tmp)


def test_sluice_rules_config(compare):
    H = compare.H
    with tempfile.TemporaryDirectory() as tmp:
        H.RUN = tmp
        for sub in ("many/d00", "many/d01"):
            os.makedirs(os.path.join(tmp, sub))
        server = H.Server("sluice", root=tmp, config="rules")
        check(server.has_config(), "sluice has a rules configuration")
        server.port = 18080
        conf_path = server._write_config()
        with open(conf_path) as f:
            conf = f.read()
        check("@" not in "".join(line.split("#")[0] for line in conf.splitlines()),
              "sluice rules: a placeholder left")
        check(conf.count("[[site.rule]]") == 10 + 2 + 1, "sluice rules: 10 rules + 3 elsewhere")
        if not os.access(H.SLUICE, os.X_OK):
            print(f"skip: {H.SLUICE} not built", flush=True)
            return
        r = subprocess.run([H.SLUICE, "--check-config", f"--config={conf_path}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        check(r.returncode == 0, f"sluice --check-config rejects the rules file:\n{r.stdout}")


def test_rules_cost(compare):
    def row(scenario, cpu):
        return dict(mode="open", scenario=scenario, ratio={},
                    servers={k: dict(cpu_us=v) for k, v in cpu.items()})
    summary = [row("rules-base", {"sluice": 8.0, "nginx": 10.0, "h2o": 12.0}),
               row("rules", {"sluice": 8.4, "nginx": 11.0, "h2o": 12.0})]
    lines = compare.rules_cost(summary, {"rules": ["sluice", "nginx"]})
    text = "\n".join(lines)
    check("sluice 1.050" in text and "nginx 1.100" in text, f"rules cost ratios: {text}")
    check("h2o 1.000 (no rules template" in text, f"rules cost, unconfigured: {text}")
    check(compare.rules_cost(summary[:1], {}) == [], "no cost line without both rows")


ANCHOR_CHECK = {  # how each anchor checks a configuration file
    "nginx": lambda b, conf, tmp: [b, "-t", "-p", tmp, "-e", os.path.join(tmp, "error.log"),
                                   "-c", conf],
    "lighttpd": lambda b, conf, tmp: [b, "-tt", "-f", conf],
    "h2o": lambda b, conf, tmp: [b, "-t", "-c", conf],
}


def validate(kind, where, conf_path, tmp):
    from harness import ANCHORS  # noqa: E402 (perf/ is on sys.path)
    binary = ANCHORS[kind]["binary"]
    if not os.access(binary, os.X_OK) or os.geteuid() != 0:
        print(f"skip: {where}: {binary} not installed (or not root)", flush=True)
        return
    cmd = ANCHOR_CHECK[kind](binary, conf_path, tmp)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=30)
    check(r.returncode == 0, f"{where}: {' '.join(cmd[:2])} rejects the file:\n{r.stdout}")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    compare = load_compare(os.path.abspath(root))
    passed = failed = 0
    for test in (test_every_anchor, test_old_json, test_templates, test_sluice_rules_config,
                 test_rules_cost):
        before = len(FAILURES)
        try:
            test(compare)
        except Exception as e:  # A crash is a failure of that test.
            check(False, f"{test.__name__}: {type(e).__name__}: {e}")
        ok = len(FAILURES) == before
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'ok' if ok else 'FAILED'}: {test.__name__}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
