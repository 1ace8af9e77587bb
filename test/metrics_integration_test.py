#!/usr/bin/env python3
"""/metrics and the access log, against the real binary on 127.0.0.1.

Usage: metrics_integration_test.py PATH/TO/sluice

Checks: the JSON validates against test/metrics_schema.json; request, byte,
latency and connection counters rise by exactly what this test sent; gauges
return to their idle values when load stops; --metrics_allow,
--metrics_listen and --metrics_path; Prometheus text by query and by Accept,
accepted by `promtool check metrics` and scraped by a real Prometheus server;
the access log's combined format field by field, its reopen on SIGUSR1, and a
start-up failure for an unwritable log path.

Needs promtool and prometheus (Debian package `prometheus`): without them the
checks that use them FAIL. The last line is 'N passed, M failed'.
"""

import calendar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, os.path.join(HERE, "support"))

from sluice_harness import (Conn, Runner, Server, Skip, fetch, free_port, log,  # noqa: E402
                            make_root, wait_until)

BINARY = None
TMP = None
SCHEMA_PATH = os.path.join(HERE, "metrics_schema.json")
with open(SCHEMA_PATH) as _f:
    SCHEMA = json.load(_f)

INDEX = b"<!doctype html><title>t</title><p>metrics integration test</p>\n"
SMALL = b"small file for conditional requests\n"
BIG = bytes(range(256)) * 4096  # 1 MiB: sent with splice
# Operations no connection owns: always zero when nothing is being served.
# The rest (accept, read of the wake eventfd, the tick timeout, and whatever
# else a worker keeps armed) must come back to what they were before load.
DATA_PATH = ("recv", "send", "splice", "openat", "statx", "write", "shutdown", "close", "cancel")
OP_KINDS = ("accept", "recv", "send", "splice", "openat", "statx", "read", "write", "poll",
            "shutdown", "close", "cancel", "timeout")


def root_with(extra=None):
    files = {"index.html": INDEX, "small.txt": SMALL, "big.bin": BIG,
             "sub/index.html": b"sub\n"}
    files.update(extra or {})
    return make_root(files)


def server(root, args=(), threads=2):
    return Server(BINARY, root, args, threads=threads, workdir=tempfile.mkdtemp(dir=TMP))


# ------------------------------------------------------------ JSON Schema --
# A small validator for the keywords test/metrics_schema.json uses, so the
# test needs nothing beyond the standard library. When the `jsonschema`
# module is importable it validates too, and both must agree.

def _is_type(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise ValueError("unknown type " + t)


def _resolve(root, ref):
    assert ref.startswith("#/"), ref
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def schema_errors(value, schema, root=None, path="$"):
    root = root if root is not None else schema
    errs = []
    if "$ref" in schema:
        errs += schema_errors(value, _resolve(root, schema["$ref"]), root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return errs + ["%s: %r is not of type %s" % (path, value, schema["type"])]
    if "const" in schema and value != schema["const"]:
        errs.append("%s: %r != const %r" % (path, value, schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in %r" % (path, value, schema["enum"]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %r < minimum %r" % (path, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %r > maximum %r" % (path, value, schema["maximum"]))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errs.append("%s: %r <= exclusiveMinimum" % (path, value))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append("%s: shorter than %d" % (path, schema["minLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errs.append("%s: missing required %r" % (path, key))
        props = schema.get("properties", {})
        for key, sub in value.items():
            if "propertyNames" in schema:
                errs += schema_errors(key, schema["propertyNames"], root, path + "{name}")
            if key in props:
                errs += schema_errors(sub, props[key], root, "%s.%s" % (path, key))
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    errs.append("%s: unexpected property %r" % (path, key))
                elif isinstance(extra, dict):
                    errs += schema_errors(sub, extra, root, "%s.%s" % (path, key))
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if "items" in schema:
            for i, item in enumerate(value):
                errs += schema_errors(item, schema["items"], root, "%s[%d]" % (path, i))
        if "contains" in schema:
            n = sum(1 for item in value if not schema_errors(item, schema["contains"], root))
            if n < schema.get("minContains", 1):
                errs.append("%s: contains matched %d < minContains" % (path, n))
            if "maxContains" in schema and n > schema["maxContains"]:
                errs.append("%s: contains matched %d > maxContains" % (path, n))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = sum(1 for sub in schema[key] if not schema_errors(value, sub, root, path))
            if ok == 0 or (key == "oneOf" and ok != 1):
                errs.append("%s: %r matches %d of %s" % (path, value, ok, key))
    for sub in schema.get("allOf", []):
        errs += schema_errors(value, sub, root, path)
    return errs


def validate(doc):
    """All schema errors of doc (own validator, and jsonschema's if present)."""
    errs = schema_errors(doc, SCHEMA)
    try:
        import jsonschema  # Debian: python3-jsonschema (optional)
    except ImportError:
        return errs
    v = jsonschema.Draft202012Validator(SCHEMA)
    theirs = sorted(e.message for e in v.iter_errors(doc))
    if bool(theirs) != bool(errs):
        errs.append("validators disagree: ours %r, jsonschema %r" % (errs[:3], theirs[:3]))
    return errs + theirs


def scrape(port, path="/metrics", headers=None):
    r = fetch(port, "GET", path, headers)
    assert r.status == 200, "scrape of %s: %r %r" % (path, r, r.body[:200])
    return r


def scrape_json(port, path="/metrics"):
    r = scrape(port, path)
    return r.json(), r


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def sum_workers(doc, *keys):
    total = 0
    for w in doc["workers"]:
        node = w
        for k in keys:
            node = node.get(k, 0) if isinstance(node, dict) else 0
        total += node
    return total


# ------------------------------------------------------------------ checks --

def check_schema():
    try:
        import jsonschema
        jsonschema.Draft202012Validator.check_schema(SCHEMA)
    except ImportError:
        log("jsonschema module not importable: using the built-in validator only")
    root = root_with()
    with server(root) as s:
        # Some traffic first, so by_status/by_method and histograms have entries.
        with Conn(s.port) as c:
            for target in ("/", "/missing", "/big.bin"):
                c.request("GET", target)
            c.request("HEAD", "/")
            c.request("DELETE", "/")
        doc, r = scrape_json(s.port)
        expect(r.header("content-type") == "application/json", r.headers)
        expect(r.header("cache-control") == "no-store", r.headers)
        errs = validate(doc)
        expect(not errs, "schema errors:\n  " + "\n  ".join(errs[:20]))
        expect(len(doc["workers"]) == 2, "threads=2 but %d workers" % len(doc["workers"]))
        expect(doc["server"]["threads"] == 2, doc["server"])
        expect([w["worker"] for w in doc["workers"]] == [0, 1], "worker indices")
        # Totals are sums over workers, field by field.
        for keys in (("ring", "sq_ready"), ("ring", "cq_ready"), ("ring", "cqes_total"),
                     ("ring", "submit_calls_total"), ("ring", "cq_overflow_total"),
                     ("connections", "accepted_total"), ("connections", "closed_total"),
                     ("requests", "total"), ("bytes_sent_total",), ("latency", "count"),
                     ("access_log", "lines_total")):
            node = doc["totals"]
            for k in keys:
                node = node[k]
            expect(node == sum_workers(doc, *keys), "totals.%s != sum" % ".".join(keys))
        for kind in OP_KINDS + ("total",):
            expect(doc["totals"]["ring"]["in_flight"][kind] ==
                   sum(w["ring"]["in_flight"][kind] for w in doc["workers"]), kind)
        for w in doc["workers"] + [doc["totals"]]:
            fl = w["ring"]["in_flight"]
            expect(fl["total"] == sum(fl[k] for k in OP_KINDS), "in_flight.total != sum")
            req = w["requests"]
            expect(sum(req["by_status"].values()) == req["total"], "by_status sum")
            expect(sum(req["by_method"].values()) == req["total"], "by_method sum")
            lat = w["latency"]
            expect(sum(b["count"] for b in lat["buckets"]) == lat["count"], "latency buckets")
            expect(lat["p50_seconds"] <= lat["p90_seconds"] <= lat["p99_seconds"] <=
                   lat["p999_seconds"], "quantiles not ordered: %r" % lat)
            bs = w["ring"]["batch_size"]
            expect(sum(b["count"] for b in bs["buckets"]) == bs["count"], "batch buckets")
        # The validator is not vacuous: broken documents are refused.
        for mutate in (lambda d: d["totals"].pop("requests"),
                       lambda d: d["workers"][0]["ring"].__setitem__("sq_ready", "1"),
                       lambda d: d["server"].__setitem__("surprise", 1),
                       lambda d: d["totals"]["requests"]["by_status"].__setitem__("2xx", 1),
                       lambda d: d["totals"]["latency"]["buckets"].pop()):
            bad = json.loads(json.dumps(doc))
            mutate(bad)
            expect(validate(bad), "a broken document validated")


def check_exact_counts():
    root = root_with()
    with server(root) as s:
        sent = []  # (method class, status, wire bytes)
        conns = 0

        def note(method_class, want, r):
            expect(r.status == want, "%s: wanted %d, got %r" % (method_class, want, r))
            sent.append((method_class, r.status, r.wire_bytes))

        before, ra = scrape_json(s.port)
        # Keep-alive: many requests on one connection.
        with Conn(s.port) as c:
            conns += 1
            r = c.request("GET", "/small.txt")
            note("GET", 200, r)
            etag = r.header("etag")
            expect(etag, "no ETag on /small.txt")
            for _ in range(3):
                note("GET", 200, c.request("GET", "/"))
            for _ in range(2):
                note("GET", 404, c.request("GET", "/missing"))
            for _ in range(2):
                note("GET", 304, c.request("GET", "/small.txt", {"If-None-Match": etag}))
            for _ in range(2):
                note("GET", 206, c.request("GET", "/big.bin", {"Range": "bytes=0-99"}))
            note("GET", 206, c.request("GET", "/big.bin", {"Range": "bytes=1000-300000"}))
            for _ in range(2):
                note("HEAD", 200, c.request("HEAD", "/"))
            note("HEAD", 404, c.request("HEAD", "/missing"))
            note("OTHER", 405, c.request("DELETE", "/"))
            note("OTHER", 405, c.request("POST", "/"))
            note("OPTIONS", 204, c.request("OPTIONS", "/"))
            note("GET", 200, c.request("GET", "/big.bin"))
            note("GET", 301, c.request("GET", "/sub"))
            note("GET", 200, c.request("GET", "/sub/"))
        # New connections.
        for _ in range(3):
            conns += 1
            note("GET", 200, fetch(s.port, "GET", "/"))
        conns += 1
        note("GET", 404, fetch(s.port, "GET", "/nope"))
        conns += 1
        with Conn(s.port) as c:
            note("GET", 200, c.request("GET", "/", http10=True))
        conns += 1
        with Conn(s.port) as c:  # Malformed: answered 400, counted as OTHER.
            c.send_raw(b"BAD LINE\r\n\r\n")
            note("OTHER", 400, c.read_response())
        conns += 1
        with Conn(s.port) as c:  # An unknown method token.
            c.send_raw(b"BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            note("OTHER", 501, c.read_response())

        after, rb = scrape_json(s.port)

        n = len(sent) + 1  # The first scrape is counted in the second.
        want_status, want_method = {"200": 1}, {"GET": 1}
        for method, status, _ in sent:
            want_status[str(status)] = want_status.get(str(status), 0) + 1
            want_method[method] = want_method.get(method, 0) + 1
        t0, t1 = before["totals"], after["totals"]

        def delta(section, key):
            return t1[section][key] - t0[section].get(key, 0)

        got_status = {k: t1["requests"]["by_status"][k] - t0["requests"]["by_status"].get(k, 0)
                      for k in t1["requests"]["by_status"]}
        got_status = {k: v for k, v in got_status.items() if v}
        got_method = {k: t1["requests"]["by_method"][k] - t0["requests"]["by_method"].get(k, 0)
                      for k in t1["requests"]["by_method"]}
        got_method = {k: v for k, v in got_method.items() if v}
        expect(delta("requests", "total") == n,
               "requests.total rose by %d, sent %d" % (delta("requests", "total"), n))
        expect(got_status == want_status, "by_status rose by %r, want %r" % (got_status,
                                                                            want_status))
        expect(got_method == want_method, "by_method rose by %r, want %r" % (got_method,
                                                                            want_method))
        # Requests are counted when their response starts; bytes and latency
        # when the kernel has taken the last byte, which the worker may learn
        # a moment after the client saw it. So those two may lag, never lead:
        # scrape again until they match (each scrape counted by the next).
        wire = sum(b for _, _, b in sent) + ra.wire_bytes
        scrapes = [rb]
        cur = after
        deadline = time.monotonic() + 5
        while True:
            got_bytes = cur["totals"]["bytes_sent_total"] - t0["bytes_sent_total"]
            want_bytes = wire + sum(r.wire_bytes for r in scrapes[:-1])
            got_lat = cur["totals"]["latency"]["count"] - t0["latency"]["count"]
            want_lat = n + len(scrapes) - 1
            buckets = sum(b["count"] for b in cur["totals"]["latency"]["buckets"]) - sum(
                b["count"] for b in t0["latency"]["buckets"])
            expect(got_bytes <= want_bytes, "bytes_sent_total rose by %d, only %d received" %
                   (got_bytes, want_bytes))
            expect(got_lat <= want_lat, "latency.count rose by %d for %d responses" %
                   (got_lat, want_lat))
            expect(buckets == got_lat, "latency buckets rose by %d, count by %d" % (buckets,
                                                                                    got_lat))
            if got_bytes == want_bytes and got_lat == want_lat:
                break
            expect(time.monotonic() < deadline,
                   "after 5 s: bytes_sent_total rose by %d, received %d; latency.count rose by "
                   "%d for %d responses" % (got_bytes, want_bytes, got_lat, want_lat))
            time.sleep(0.1)
            cur, r = scrape_json(s.port)
            scrapes.append(r)
        # The second scrape's own connection was accepted before it rendered.
        expect(delta("connections", "accepted_total") == conns + 1,
               "accepted_total rose by %d, opened %d" % (delta("connections", "accepted_total"),
                                                        conns + 1))
        expect(delta("connections", "rejected_total") == 0, "rejected")
        expect(delta("connections", "timeouts_total") == 0, "timeouts")
        lat = t1["latency"]
        expect(0 < lat["p50_seconds"] <= lat["p99_seconds"] < 10, "latency quantiles %r" % lat)
        log("%d requests, %d bytes, %d connections: exact" % (n, wire, conns + 1))


def check_gauges_return_to_idle():
    root = root_with()
    with server(root) as s:
        baseline = []
        for _ in range(6):
            doc, _ = scrape_json(s.port)
            # The scrape's own connection keeps its multishot RECV armed while
            # it is answered: exactly one RECV in flight over all workers.
            own = sum(w["ring"]["in_flight"]["recv"] for w in doc["workers"])
            expect(own == 1, "idle: %d RECVs in flight, want the scrape's own 1" % own)
            baseline.append(doc)
            time.sleep(0.25)
        armed = [{k: 0 if k == "recv" else min(d["workers"][i]["ring"]["in_flight"][k]
                                               for d in baseline)
                  for k in OP_KINDS} for i in range(2)]
        for i in range(2):
            busy = {k: armed[i][k] for k in DATA_PATH if armed[i][k]}
            expect(not busy, "worker %d not idle before load: %r" % (i, busy))
            expect(armed[i]["accept"] >= 1 and armed[i]["timeout"] >= 1 and armed[i]["read"] >= 1,
                   "worker %d: accept, wake read and tick not armed: %r" % (i, armed[i]))
        idle_sq = [max(d["workers"][i]["ring"]["sq_ready"] for d in baseline) for i in range(2)]

        stop = threading.Event()
        errors = []
        peak = {"active": 0, "in_flight": 0}

        def load(k):
            try:
                while not stop.is_set():
                    with Conn(s.port) as c:
                        for _ in range(20):
                            c.request("GET", "/big.bin" if k % 2 else "/")
                            c.request("HEAD", "/small.txt")
                    fetch(s.port, "GET", "/missing")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            doc, _ = scrape_json(s.port)
            peak["active"] = max(peak["active"], doc["totals"]["connections"]["active"])
            peak["in_flight"] = max(peak["in_flight"], doc["totals"]["ring"]["in_flight"]["total"])
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(10)
        expect(not errors, "load errors: %r" % errors[:3])
        expect(peak["active"] > 1, "load never showed more than one connection: %r" % peak)
        log("under load: peak %r" % peak)

        last = {}

        def idle():
            doc, _ = scrape_json(s.port)
            problems = []
            t = doc["totals"]
            # The scrape's own connection is the only one open.
            if t["connections"]["active"] != 1:
                problems.append("active=%d" % t["connections"]["active"])
            if t["connections"]["idle_keepalive"] != 0:
                problems.append("idle_keepalive=%d" % t["connections"]["idle_keepalive"])
            acc, clo = t["connections"]["accepted_total"], t["connections"]["closed_total"]
            if acc - clo != 1:
                problems.append("accepted-closed=%d" % (acc - clo))
            own = sum(w["ring"]["in_flight"]["recv"] for w in doc["workers"])
            if own != 1:
                problems.append("%d RECVs in flight (idle: the scrape's own 1)" % own)
            for i, w in enumerate(doc["workers"]):
                fl = w["ring"]["in_flight"]
                for k in OP_KINDS:
                    want = armed[i][k]
                    if fl[k] != want and k != "recv":
                        problems.append("worker %d in_flight.%s=%d (idle %d)" % (i, k, fl[k],
                                                                                 want))
                if fl["total"] - fl["recv"] != sum(armed[i].values()):
                    problems.append("worker %d in_flight.total=%d" % (i, fl["total"]))
                if w["ring"]["sq_ready"] > max(idle_sq[i], 1):
                    problems.append("worker %d sq_ready=%d (idle %d)" % (i, w["ring"]["sq_ready"],
                                                                        idle_sq[i]))
            last["problems"] = problems
            return not problems

        try:
            wait_until(idle, 10, 0.2, "idle gauges")
        except AssertionError:
            raise AssertionError("gauges did not return to idle: %s" % last.get("problems"))


def check_access_control():
    # 1. Not allowed, no file of that name: 404, whatever the format or method.
    with server(root_with(), ["--metrics_allow=10.0.0.0/8"]) as s:
        for method, target, hdrs in (("GET", "/metrics", {}),
                                     ("GET", "/metrics?format=prometheus", {}),
                                     ("GET", "/metrics", {"Accept": "text/plain"}),
                                     ("HEAD", "/metrics", {}), ("POST", "/metrics", {})):
            r = fetch(s.port, method, target, hdrs)
            expect(r.status == 404, "%s %s from 127.0.0.1 outside the allow list: %r" %
                   (method, target, r))
            expect(b"sluice_" not in r.body and b"totals" not in r.body, "metrics leaked")
    # 2. Not allowed, and a file named `metrics` exists: the file is served.
    body = b"just a file called metrics\n"
    with server(root_with({"metrics": body}), ["--metrics_allow=10.0.0.0/8"]) as s:
        r = fetch(s.port, "GET", "/metrics")
        expect(r.status == 200 and r.body == body, "file not served: %r %r" % (r, r.body[:80]))
    # 3. Allowed by an explicit list that names loopback.
    with server(root_with(), ["--metrics_allow=10.0.0.0/8,127.0.0.1/32"]) as s:
        expect(scrape(s.port).status == 200, "127.0.0.1/32 in the list")


def check_metrics_listen():
    body = b"the file named metrics\n"
    mport = free_port()
    with server(root_with({"metrics": body}), ["--metrics_listen=127.0.0.1:%d" % mport]) as s:
        expect(mport != s.port, "same port")
        doc, r = scrape_json(mport)
        expect(not validate(doc), "schema errors on the metrics listener")
        r = scrape(mport, "/metrics?format=prometheus")
        expect(r.body.startswith(b"# HELP "), "prometheus on the metrics listener")
        # Only the metrics path exists there.
        for target in ("/", "/index.html", "/metrics/x", "/metricsx"):
            r = fetch(mport, "GET", target)
            expect(r.status == 404, "%s on the metrics listener: %r" % (target, r))
        r = fetch(mport, "POST", "/metrics")
        expect(r.status == 405, "POST on the metrics listener: %r" % r)
        # The main listener serves files only: here the file named metrics.
        r = fetch(s.port, "GET", "/metrics")
        expect(r.status == 200 and r.body == body, "main port /metrics: %r %r" % (r, r.body[:80]))
        r = fetch(s.port, "GET", "/metrics?format=prometheus")
        expect(r.status == 200 and r.body == body, "main port /metrics?...: %r" % r)
        r = fetch(s.port, "GET", "/")
        expect(r.status == 200 and r.body == INDEX, "main port /")
        # Requests on both listeners are counted alike.
        doc, _ = scrape_json(mport)
        expect(doc["totals"]["requests"]["by_status"].get("200", 0) >= 5, "counts")
    mport = free_port()
    with server(root_with(), ["--metrics_listen=127.0.0.1:%d" % mport]) as s:
        r = fetch(s.port, "GET", "/metrics")
        expect(r.status == 404, "main port /metrics without a file: %r" % r)
        expect(scrape(mport).status == 200, "metrics port")


def check_metrics_path():
    with server(root_with(), ["--metrics_path=/stats"]) as s:
        doc, r = scrape_json(s.port, "/stats")
        expect(not validate(doc), "schema errors at /stats")
        expect(scrape(s.port, "/stats?format=prometheus").body.startswith(b"# HELP "), "prom")
        for target in ("/metrics", "/statsx", "/stats/"):
            r = fetch(s.port, "GET", target)
            expect(r.status == 404, "%s with --metrics_path=/stats: %r" % (target, r))


def check_file_cache():
    # Two entries, one worker: a fixed sequence of lookups gives exact hit,
    # miss and eviction counts, and shows the entry a client just used
    # surviving when a new one needs its room (second-chance eviction).
    files = {"a.txt": b"a" * 100, "b.txt": b"b" * 200, "c.txt": b"c" * 300}
    with server(root_with(files), ["--file_cache_entries=2"], threads=1) as s:
        t0 = scrape_json(s.port)[0]["totals"]["file_cache"]
        for name in ("a", "b", "a", "c", "a", "b", "c"):
            r = fetch(s.port, "GET", "/%s.txt" % name)
            expect(r.status == 200 and r.body == files[name + ".txt"], "/%s.txt: %r" % (name, r))
        t1 = scrape_json(s.port)[0]["totals"]["file_cache"]
        delta = {k: t1[k] - t0[k] for k in ("hits_total", "misses_total", "evictions_total")}
        # a b: misses; a: hit; c: miss, evicts b (a was used since it came
        # in); a: hit; b: miss, evicts c (unused since it came in); c: miss,
        # evicts b, as a's use spares it once more (CLOCK, not strict LRU).
        want = {"hits_total": 2, "misses_total": 5, "evictions_total": 3}
        expect(delta == want, "file cache counters rose by %r, want %r" % (delta, want))
        expect(t1["entries"] == 2, "entries %r, bound 2" % t1["entries"])
        expect(t1["content_bytes"] == 100 + 300, "content_bytes %r (a and c held)" %
               t1["content_bytes"])
        # The survivors answer without a miss.
        for name in ("a", "c"):
            expect(fetch(s.port, "GET", "/%s.txt" % name).status == 200, name)
        t2 = scrape_json(s.port)[0]["totals"]["file_cache"]
        expect(t2["hits_total"] - t1["hits_total"] == 2 and
               t2["misses_total"] == t1["misses_total"], "a and c were not both cached: %r" % t2)
        log("hits, misses, evictions and the two-entry bound exact")


PROM_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? '
    r'([-+]?[0-9.]+([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$')


def prom_samples(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        out[name_labels] = float(value)
    return out


def need(binary):
    path = shutil.which(binary)
    expect(path, "%s not found: install the Debian package `prometheus`" % binary)
    return path


def check_prometheus_format():
    with server(root_with()) as s:
        fetch(s.port, "GET", "/")
        fetch(s.port, "GET", "/missing")
        doc, _ = scrape_json(s.port)
        by_query = scrape(s.port, "/metrics?format=prometheus")
        by_accept = scrape(s.port, "/metrics", {"Accept": "text/plain"})
        prom_accept = scrape(s.port, "/metrics", {
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
        for r in (by_query, by_accept, prom_accept):
            ctype = r.header("content-type", "")
            expect(ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype)
        back_to_json = scrape(s.port, "/metrics?format=json", {"Accept": "text/plain"})
        expect(back_to_json.header("content-type") == "application/json", "format=json wins")
        json_accept = scrape(s.port, "/metrics", {"Accept": "application/json"})
        expect(json_accept.header("content-type") == "application/json", "Accept json")
        head = fetch(s.port, "HEAD", "/metrics?format=prometheus")
        expect(head.status == 200 and int(head.header("content-length")) > 0 and not head.body,
               "HEAD: %r" % head)

        text = by_query.body.decode("utf-8")
        expect(text.endswith("\n"), "no final newline")
        bad = [line for line in text.splitlines()
               if not line.startswith("#") and not PROM_LINE.match(line)]
        expect(not bad, "malformed lines: %r" % bad[:5])
        helps = re.findall(r"^# HELP (\S+)", text, re.M)
        types = re.findall(r"^# TYPE (\S+)", text, re.M)
        expect(len(helps) == len(set(helps)) and sorted(helps) == sorted(types),
               "HELP/TYPE not once per family")
        # The same numbers as the JSON: the JSON scrape itself is one more 200.
        samples = prom_samples(text)
        total = sum(v for k, v in samples.items() if k.startswith("sluice_http_requests_total{"))
        expect(total == doc["totals"]["requests"]["total"] + 1,
               "prometheus total %r vs json %r + 1" % (total, doc["totals"]["requests"]["total"]))
        expect(samples.get('sluice_http_requests_total{code="404",method="GET"}') == 1, "404")
        expect(samples.get('sluice_http_request_duration_seconds_bucket{le="+Inf"}') ==
               samples.get("sluice_http_request_duration_seconds_count"), "+Inf != _count")
        expect(samples.get("sluice_threads") == 2, "sluice_threads")
        for w in (0, 1):
            expect('sluice_connections_active{worker="%d"}' % w in samples, "worker %d" % w)
            expect('sluice_ring_in_flight{worker="%d",op="accept"}' % w in samples, "in_flight")

        promtool = need("promtool")
        for r in (by_query, by_accept):
            p = subprocess.run([promtool, "check", "metrics"], input=r.body,
                               capture_output=True, timeout=30)
            expect(p.returncode == 0, "promtool check metrics: %s%s" % (
                p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))


def check_prometheus_scrapes():
    prometheus = need("prometheus")
    with server(root_with()) as s:
        for _ in range(5):
            fetch(s.port, "GET", "/")
        work = tempfile.mkdtemp(dir=TMP)
        web = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: sluice\n    metrics_path: /metrics\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % s.port)
        out = open(os.path.join(work, "prometheus.log"), "wb")
        proc = subprocess.Popen(
            [prometheus, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % web, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=work)
        out.close()

        def stop_prometheus():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        runner.cleanups.append(stop_prometheus)

        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (web, urllib.parse.urlencode({"query": q}))
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    data = json.loads(resp.read())
            except OSError:
                if proc.poll() is not None:
                    with open(os.path.join(work, "prometheus.log"), errors="replace") as f:
                        raise AssertionError("prometheus exited %d: %s" % (proc.returncode,
                                                                          f.read()[-2000:]))
                return None
            return data["data"]["result"] if data.get("status") == "success" else None

        result = wait_until(lambda: query('sluice_http_requests_total{code="200",method="GET"}'),
                            25, 0.5, "sluice_http_requests_total in Prometheus")
        value = float(result[0]["value"][1])
        expect(result[0]["metric"].get("job") == "sluice", result)
        expect(value >= 5, "Prometheus read %r 200s, at least 5 were sent" % value)
        up = wait_until(lambda: query('up{job="sluice"}'), 10, 0.5, "up")
        expect(up[0]["value"][1] == "1", "up=%r" % up)
        hist = wait_until(lambda: query("sluice_http_request_duration_seconds_count"), 10, 0.5,
                          "the latency histogram")
        expect(float(hist[0]["value"][1]) >= 5, hist)
        log("Prometheus read sluice_http_requests_total{code=200,method=GET} = %g" % value)


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
COMBINED = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<day>\d{2})/(?P<mon>[A-Z][a-z]{2})/(?P<year>\d{4}):'
    r'(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) \+0000\] '
    r'"(?P<request>(?:[^"\\\x00-\x1f\x7f-\xff]|\\x[0-9A-F]{2})*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "(?P<referer>(?:[^"\\\x00-\x1f\x7f-\xff]|\\x[0-9A-F]{2})*)" '
    r'"(?P<ua>(?:[^"\\\x00-\x1f\x7f-\xff]|\\x[0-9A-F]{2})*)"$')


def nginx_escape(raw):
    """What the combined format shows for a field's raw bytes."""
    if not raw:
        return "-"
    out = []
    for b in raw:
        if b < 0x20 or b >= 0x7F or b in (0x22, 0x5C):
            out.append("\\x%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    expect(not data or data.endswith(b"\n"), "log does not end in a newline: %r" % data[-80:])
    return data.decode("ascii").splitlines()  # Escaped: pure ASCII or it fails here.


def check_access_log():
    work = tempfile.mkdtemp(dir=TMP)
    path = os.path.join(work, "access.log")
    with server(root_with(), ["--access_log=" + path]) as s:
        ua = b'agent "quoted" back\\slash\ttab caf\xc3\xa9'
        referer = b'http://example.test/?q="x"'
        cases = []  # (raw request line, headers, method, status, response)
        with Conn(s.port) as c:
            r0 = c.request("GET", "/small.txt?id=0")
            etag = r0.header("etag")
            cases.append(("GET /small.txt?id=0 HTTP/1.1", {}, r0, 200))
            plan = [
                ("GET", "/?id=1", {"User-Agent": ua, "Referer": referer}, 200),
                ("HEAD", "/?id=2", {"User-Agent": b"curl/8.0"}, 200),
                ("GET", "/missing?id=3", {}, 404),
                ("GET", "/big.bin?id=4", {"Range": b"bytes=10-109"}, 206),
                ("GET", "/small.txt?id=5", {"If-None-Match": etag.encode()}, 304),
                ("GET", "/big.bin?id=6", {}, 200),
                ("DELETE", "/?id=7", {}, 405),
                ("GET", "/metrics?id=8", {}, 200),
                ("GET", "/%22quote%22?id=9", {}, 404),
            ]
            for method, target, hdrs, status in plan:
                req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, target)).encode()
                for k, v in hdrs.items():
                    req += k.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) + \
                        b"\r\n"
                c.send_raw(req + b"\r\n")
                r = c.read_response(head_only=(method == "HEAD"))
                expect(r.status == status, "%s %s: %r" % (method, target, r))
                cases.append(("%s %s HTTP/1.1" % (method, target), hdrs, r, status))
        # HTTP/1.0 on its own connection.
        with Conn(s.port) as c:
            r = c.request("GET", "/?id=10", {"User-Agent": "old"}, http10=True)
            cases.append(("GET /?id=10 HTTP/1.0", {"User-Agent": b"old"}, r, 200))
        want = len(cases)
        lines = wait_until(lambda: (lambda ls: ls if len(ls) >= want else None)(read_lines(path)),
                           5, 0.05, "%d access log lines" % want)
        expect(len(lines) == want, "%d lines for %d requests:\n%s" % (len(lines), want,
                                                                     "\n".join(lines)))
        by_id = {}
        now = time.time()
        for line in lines:
            m = COMBINED.match(line)
            expect(m, "not combined format: %r" % line)
            expect(m["addr"] == "127.0.0.1", line)
            stamp = calendar.timegm((int(m["year"]), MONTHS.index(m["mon"]) + 1, int(m["day"]),
                                     int(m["h"]), int(m["m"]), int(m["s"])))
            expect(abs(stamp - now) < 30, "time %s is not now (UTC): %r" % (stamp, line))
            ident = re.search(r"id=(\d+)", m["request"])
            expect(ident, line)
            by_id[int(ident.group(1))] = m
        expect(sorted(by_id) == list(range(want)), "ids %r" % sorted(by_id))
        for i, (request, hdrs, r, status) in enumerate(cases):
            m = by_id[i]
            expect(m["request"] == nginx_escape(request.encode()), "request %r vs %r" %
                   (m["request"], request))
            expect(int(m["status"]) == status, "status in %r" % m.string)
            body = 0 if request.startswith("HEAD") else len(r.body)
            expect(int(m["bytes"]) == body,
                   "bytes %s, but the body was %d: %r" % (m["bytes"], body, m.string))
            if not request.startswith(("HEAD", "GET /small.txt?id=5")):
                expect(int(m["bytes"]) == int(r.header("content-length")), "Content-Length")
            expect(m["referer"] == nginx_escape(hdrs.get("Referer", b"")), "referer %r" %
                   m["referer"])
            expect(m["ua"] == nginx_escape(hdrs.get("User-Agent", b"")), "ua %r" % m["ua"])
        # Spot-check the escaping literally, not only through nginx_escape().
        expect(by_id[1]["ua"] == r"agent \x22quoted\x22 back\x5Cslash\x09tab caf\xC3\xA9",
               by_id[1]["ua"])
        expect(by_id[1]["referer"] == r"http://example.test/?q=\x22x\x22", by_id[1]["referer"])
        expect(by_id[2]["bytes"] == "0" and by_id[5]["bytes"] == "0", "HEAD/304 bytes")
        expect(by_id[4]["bytes"] == "100", "206 bytes")
        expect(by_id[6]["bytes"] == str(len(BIG)), "big body bytes")
        doc, _ = scrape_json(s.port)
        expect(doc["totals"]["access_log"]["lines_total"] == want,
               "lines_total=%d" % doc["totals"]["access_log"]["lines_total"])
        expect(doc["totals"]["access_log"]["write_errors_total"] == 0, "write errors")
        expect(doc["totals"]["access_log"]["dropped_lines_total"] == 0, "dropped")
        code = s.stop()
        expect(code == 0, "exit %r" % code)
        # The scrape above is logged at shutdown at the latest.
        expect(len(read_lines(path)) == want + 1, "line of the last scrape not flushed at exit")


def check_access_log_reopen():
    work = tempfile.mkdtemp(dir=TMP)
    path = os.path.join(work, "access.log")
    rotated = path + ".1"
    with server(root_with(), ["--access_log=" + path]) as s:
        def send(prefix, n):
            for i in range(n):
                r = fetch(s.port, "GET", "/?%s=%d" % (prefix, i))
                expect(r.status == 200, r)

        def ids(lines):
            return sorted(re.search(r"\?(\w+=\d+)", ln).group(1) for ln in lines)

        def count(p, n):
            return lambda: len(read_lines(p)) >= n

        send("r", 5)
        wait_until(count(path, 5), 5, 0.05, "5 lines before rotation")
        os.rename(path, rotated)
        send("m", 3)  # Still the old descriptor: these go to the renamed file.
        wait_until(count(rotated, 8), 5, 0.05, "lines after rename, before SIGUSR1")
        s.signal(signal.SIGUSR1)
        wait_until(lambda: os.path.exists(path), 5, 0.02, "the log reopened at its path")
        time.sleep(0.6)  # Workers switch descriptors at their next tick (250 ms).
        send("n", 6)
        wait_until(count(path, 6), 5, 0.05, "lines in the new file")
        time.sleep(0.3)
        old, new = read_lines(rotated), read_lines(path)
        expect(ids(old) == sorted(["r=%d" % i for i in range(5)] + ["m=%d" % i for i in range(3)]),
               "rotated file: %r" % ids(old))
        expect(ids(new) == sorted("n=%d" % i for i in range(6)), "new file: %r" % ids(new))
        expect("access log reopened" in s.stderr(), "no reopen message: %s" % s.stderr()[-500:])
        code = s.stop()
        expect(code == 0, "exit %r" % code)
        expect(len(read_lines(path)) == 6 and len(read_lines(rotated)) == 8, "lines after exit")


def check_unwritable_log_fails_at_start():
    work = tempfile.mkdtemp(dir=TMP)
    for bad in (os.path.join(work, "no", "such", "dir", "access.log"), work):
        argv = [BINARY, "--root=" + root_with(), "--listen=127.0.0.1:0", "--threads=1",
                "--access_log=" + bad]
        t0 = time.monotonic()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        err = p.stderr.decode(errors="replace")
        lines = err.strip().splitlines()
        expect(p.returncode != 0, "exit 0 with --access_log=%s" % bad)
        expect(time.monotonic() - t0 < 5, "slow failure")
        expect("listening on" not in err + p.stdout.decode(errors="replace"), "it listened")
        errors = [ln for ln in lines if " ERROR " in ln]
        expect(len(errors) == 1 and bad in errors[0], "one error naming the path: %r" % lines)
        # The project's rule for start-up failures: one error line (an INFO
        # about the descriptor limit may precede it).
        expect(len(lines) <= 2, "more than a one-line error: %r" % lines)


def read_proc_number(path):
    with open(path) as f:
        return int(f.read().split()[0])


def check_pipe_sizing():
    """Run as root, the server drops to nobody (the default), whose pipes
    share fs.pipe-user-pages-soft: the decision fits it and /metrics says so."""
    if os.geteuid() != 0:
        raise Skip("needs root, so that the server drops to nobody")
    soft = read_proc_number("/proc/sys/fs/pipe-user-pages-soft")
    hard = read_proc_number("/proc/sys/fs/pipe-user-pages-hard")
    max_size = read_proc_number("/proc/sys/fs/pipe-max-size")
    limit = min(x for x in (soft, hard) if x > 0) if (soft or hard) else 0
    page = os.sysconf("SC_PAGESIZE")
    for threads in (2, 4):
        with server(root_with(), threads=threads) as s:
            with Conn(s.port) as c:
                expect(c.request("GET", "/big.bin").status == 200, "big.bin")
            doc, _ = scrape_json(s.port)
            expect(not validate(doc), "schema errors: %r" % validate(doc)[:5])
            pipes = doc["server"]["pipes"]
            err = s.stderr()
            expect("running as user nobody" in err, "did not drop to nobody: %s" % err)
            line = [l for l in err.splitlines() if "pipes: " in l]
            expect(len(line) == 1, "one start-up line about pipes: %r" % line)
            expect(pipes["user_limit_pages"] == limit, "limit %r, not %d" % (pipes, limit))
            expect(pipes["bytes"] <= max_size, "above pipe-max-size: %r" % pipes)
            if limit:
                expect(pipes["budget_bytes"] == limit // threads * page, "budget: %r" % pipes)
                # Every worker's idle pipes and as many lent fit its share.
                expect(2 * pipes["idle_max"] * pipes["bytes"] <= pipes["budget_bytes"]
                       or pipes["bytes"] <= 16 * page, "does not fit: %r" % pipes)
                for w in doc["workers"]:
                    held = w["buffers"]["pipes_held_bytes"]
                    expect(held <= pipes["budget_bytes"], "worker holds %d > budget" % held)
            if (soft, hard, max_size, page) == (16384, 0, 1 << 20, 4096):
                # Debian's defaults: 64 pipes of 1 MiB shared by the workers
                # (the tiny preset asks for one idle pipe of 4 KiB: it fits).
                want = {2: (1 << 20, 16), 4: (1 << 20, 8)}[threads]
                if "%stiny%s" % (os.sep, os.sep) in BINARY:
                    want = (4096, 1)
                expect((pipes["bytes"], pipes["idle_max"]) == want,
                       "%d workers: %r, wanted %r" % (threads, pipes, want))
            prom = scrape(s.port, headers={"Accept": "text/plain"}).body.decode()
            for name in ("sluice_pipe_size_bytes", "sluice_pipe_budget_bytes",
                         "sluice_pipes_resize_failed_total"):
                expect(re.search(r"^%s(\{[^}]*\})? \d+$" % name, prom, re.M),
                       "%s missing from the Prometheus text" % name)
            want_budget = "sluice_pipe_budget_bytes %d" % pipes["budget_bytes"]
            expect(want_budget in prom, want_budget)


SPARE_REQUEST_STATES = 16  # Worker::kSpareRequestStates


def check_request_states_given_back():
    """A burst of connections, each with a request in progress at once,
    then all idle: the worker keeps at most its bound of spare request
    states and frees the rest."""
    burst = 300
    with server(root_with(), threads=1) as s:
        socks = []
        try:
            for _ in range(burst):
                c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                c.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n")  # Head not ended.
                socks.append(c)
            deadline = time.monotonic() + 10
            peak = 0
            while time.monotonic() < deadline:
                doc, _ = scrape_json(s.port)
                peak = doc["totals"]["buffers"]["request_states"]
                if peak >= burst:
                    break
                time.sleep(0.05)
            expect(peak >= burst, "the burst never held %d request states (%d)" % (burst, peak))
            for c in socks:
                c.sendall(b"\r\n")
            for c in socks:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = c.recv(4096)
                    expect(chunk, "connection closed before the response")
                    head += chunk
                expect(head.startswith(b"HTTP/1.1 200"), head[:40])
            # Every connection is idle now (keep-alive, still open).
            deadline = time.monotonic() + 5
            while True:
                doc, _ = scrape_json(s.port)
                b = doc["totals"]["buffers"]
                idle = doc["totals"]["connections"]["idle_keepalive"]
                if idle >= burst or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            expect(idle >= burst, "connections not idle: %d" % idle)
            # Spares follow the last tick's peak: the burst's go within two
            # ticks (250 ms each) of the load falling.
            deadline = time.monotonic() + 5
            while (doc["totals"]["buffers"]["request_states"] > SPARE_REQUEST_STATES + 1
                   and time.monotonic() < deadline):
                time.sleep(0.1)
                doc, _ = scrape_json(s.port)
            b = doc["totals"]["buffers"]
            # The scrape's own connection holds one while it is answered.
            expect(b["request_states_spare"] <= SPARE_REQUEST_STATES, b)
            expect(b["request_states"] <= SPARE_REQUEST_STATES + 1, b)
            log("peak %d request states, %d after the burst (%d spare)" %
                (peak, b["request_states"], b["request_states_spare"]))
        finally:
            for c in socks:
                c.close()


runner = Runner()


def main():
    global BINARY, TMP
    if len(sys.argv) != 2:
        print("usage: %s PATH/TO/sluice" % sys.argv[0], file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    TMP = tempfile.mkdtemp(prefix="sluice-metrics-it-")
    try:
        # Probe once: without io_uring every check would be skipped.
        try:
            with server(root_with(), threads=1):
                pass
        except Skip as e:
            print("SKIP all: %s" % e)
            print("0 passed, 0 failed, 1 skipped")
            return 0
        runner.run("schema", check_schema, 30)
        runner.run("exact_counts", check_exact_counts, 30)
        runner.run("gauges_return_to_idle", check_gauges_return_to_idle, 40)
        runner.run("access_control", check_access_control, 30)
        runner.run("metrics_listen", check_metrics_listen, 30)
        runner.run("metrics_path", check_metrics_path, 30)
        runner.run("file_cache", check_file_cache, 30)
        runner.run("pipe_sizing", check_pipe_sizing, 30)
        runner.run("request_states_given_back", check_request_states_given_back, 40)
        runner.run("prometheus_format", check_prometheus_format, 40)
        runner.run("prometheus_scrapes", check_prometheus_scrapes, 60)
        runner.run("access_log", check_access_log, 30)
        runner.run("access_log_reopen", check_access_log_reopen, 30)
        runner.run("unwritable_log_fails_at_start", check_unwritable_log_fails_at_start, 30)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
