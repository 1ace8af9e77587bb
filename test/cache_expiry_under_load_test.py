#!/usr/bin/env python3
"""Open-file cache entries expire and are cached again under load.

sluice runs with --file_cache_valid=1s and one worker while wrk (100
keep-alive connections) requests one file, then one missing path, for 4 s
each: about four expiries of the only entry in the cache. After each expiry
the entry must be loaded afresh and cached again at once. /metrics' miss
count must stay a small fraction of the requests (one miss per expiry, and a
few more for loads that ran while the expiry's own watch removal was being
read).

The defect this guards: the expired entry was the last to hold the
document root's inotify watch, so its removal removed the watch; the
watch's IN_IGNORED reached the worker while the next load ran and voided
it, whose end removed the watch again, and so on: tens of thousands of
misses per expiry (every 404 a fresh OPENAT2 and inotify_add_watch).

Usage: cache_expiry_under_load_test.py SLUICE_BINARY
"""

import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
from sluice_harness import Server, Skip, fetch, log, main_one_check, make_root  # noqa: E402

SECONDS = 4
CONNECTIONS = 100


def misses(port):
    r = fetch(port, "GET", "/metrics?format=json")
    if r.status != 200:
        raise AssertionError("/metrics: %r" % r)
    return r.json()["totals"]["file_cache"]["misses_total"]


def check(binary, runner):
    wrk = shutil.which("wrk")
    if wrk is None:
        raise Skip("wrk is not installed (apt-get install wrk)")
    root = make_root({"a.txt": b"a\n"})
    runner.cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    problems = []
    for target, status in (("/no/such/file.html", 404), ("/a.txt", 200)):
        # A server each: the entry must be the only one, holding the only
        # hold on the root's watch.
        server = Server(binary, root, ["--file_cache_valid=1s"], threads=1)
        server.start()
        runner.cleanups.append(server.kill)
        # The server on one CPU and wrk on another, when there are two: the
        # defect showed with each side on its own CPU.
        cpus = sorted(os.sched_getaffinity(0))
        pin = []
        if len(cpus) >= 2:
            for tid in os.listdir("/proc/%d/task" % server.proc.pid):
                os.sched_setaffinity(int(tid), {cpus[0]})
            pin = ["taskset", "-c", str(cpus[1])]
        if fetch(server.port, "GET", target).status != status:
            raise AssertionError("GET %s is not %d" % (target, status))
        before = misses(server.port)
        out = subprocess.run(
            pin + [wrk, "-t1", "-c%d" % CONNECTIONS, "-d%ds" % SECONDS, "--timeout", "5s",
             "http://127.0.0.1:%d%s" % (server.port, target)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=SECONDS + 30).stdout
        m = re.search(r"(\d+) requests in", out)
        if not m:
            raise AssertionError("no request count from wrk:\n" + out)
        requests = int(m.group(1))
        missed = misses(server.port) - before
        log("%s: %d misses in %d requests" % (target, missed, requests))
        if requests < 1000:
            raise AssertionError("%s: only %d requests in %d s:\n%s" %
                                 (target, requests, SECONDS, out))
        # About 4 expiries; each costs one miss and perhaps a few dozen
        # more while 100 connections race the watch's removal.
        if missed > max(400, requests // 500):
            problems.append("%s: %d misses in %d requests" % (target, missed, requests))
        if "Non-2xx" in out and status == 200:
            problems.append("%s: non-2xx responses:\n%s" % (target, out))
        server.stop()
    if problems:
        raise AssertionError("; ".join(problems))


if __name__ == "__main__":
    sys.exit(main_one_check(__doc__, "cache_expiry_under_load", check))
