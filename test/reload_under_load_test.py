#!/usr/bin/env python3
"""Configuration reloads under load (issue 12).

sluice runs with --threads=2 and a configuration file A while wrk drives it at
full speed over keep-alive connections; every 100 ms for 10 s the file is
replaced (atomically, by rename) with B, then A again, ..., and the server is
sent SIGHUP. Once, mid-way, the file is broken instead: the generation must
stay and the error counter must rise.

A and B differ in every part a reload touches: the rules' fields (X-Config,
Cache-Control, a field on *.js in A and one on *.txt in B), the sites (B has
two) and the document root (every file's body starts with its root's letter).
wrk's Lua script checks every response: status 200, and wholly A or wholly B,
never a mix. Afterwards: no socket error (connect, read, write, timeout: a
reset connection is a read error), no non-2xx, A and B both seen many times,
and /metrics counts exactly the reloads done, plus the one refused.

Usage: reload_under_load_test.py SLUICE_BINARY
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "support"))
from sluice_harness import Server, Skip, fetch, log, main_one_check, make_root  # noqa: E402

SWAP_SECONDS = 10.0
SWAP_INTERVAL = 0.1
WARM_UP = 0.5
WRK_SECONDS = int(WARM_UP + SWAP_SECONDS + 2)
MIN_SEEN = 200  # Responses of each configuration, at the least.

FILES = ["index.html", "app.js", "page.txt", "big.txt"]

CONFIG_A = """
[[site]]
root = "{root_a}"
[[site.rule]]
match = "/**"
headers.set = {{ "X-Config" = "A", "Cache-Control" = "a" }}
[[site.rule]]
match = "*.js"
headers.set = {{ "X-A-Js" = "1" }}
"""

CONFIG_B = """
[[site]]
hosts = ["other.test"]
root = "{root_a}"
[[site]]
default = true
root = "{root_b}"
[[site.rule]]
match = "/**"
headers.set = {{ "X-Config" = "B", "Cache-Control" = "b" }}
[[site.rule]]
match = "*.txt"
headers.append = {{ "X-B-Txt" = "1" }}
"""

BROKEN = """
[[site]]
root = "{root_b}"
[[site.rule]]
match = "/**"
headers.set = {{ "X-Config" = "B"
"""

# Runs in each wrk thread. Every response is classified by its body's first
# bytes ("A:app.js\n": root A, file app.js) and must carry exactly the
# fields of that root's configuration.
LUA = r"""
local paths = {"/index.html", "/app.js", "/page.txt", "/big.txt"}
local reqs = {}
local next_req = 0
a_seen = 0
b_seen = 0
bad = 0
first_bad = ""

function init(args)
  for i, p in ipairs(paths) do reqs[i] = wrk.format("GET", p) end
end

function request()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end

local function wholly(letter, name, h)
  if letter == "A" then
    return h["Cache-Control"] == "a" and h["X-B-Txt"] == nil
       and ((name == "app.js") == (h["X-A-Js"] == "1"))
  elseif letter == "B" then
    return h["Cache-Control"] == "b" and h["X-A-Js"] == nil
       and ((name == "page.txt" or name == "big.txt") == (h["X-B-Txt"] == "1"))
  end
  return false
end

function response(status, headers, body)
  local letter, name = string.match(body, "^(%u):([%w%.]+)\n")
  local ok = status == 200 and letter ~= nil and headers["X-Config"] == letter
             and wholly(letter, name, headers)
  if ok and letter == "A" then
    a_seen = a_seen + 1
  elseif ok then
    b_seen = b_seen + 1
  else
    bad = bad + 1
    if first_bad == "" then
      local fields = {}
      for k, v in pairs(headers) do fields[#fields + 1] = k .. "=" .. v end
      first_bad = "status " .. status .. " body " .. string.format("%q", string.sub(body, 1, 40))
                  .. " fields " .. table.concat(fields, "; ")
    end
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local a, b, n_bad, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    a = a + t:get("a_seen")
    b = b + t:get("b_seen")
    n_bad = n_bad + t:get("bad")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
      "RESULT requests=%d a=%d b=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, a, b, n_bad, e.connect, e.read, e.write, e.status, e.timeout))
  io.write("FIRST_BAD " .. first .. "\n")
end
"""


def make_roots():
    roots = {}
    for letter in "AB":
        files = {}
        for name in FILES:
            body = ("%s:%s\n" % (letter, name)).encode()
            if name == "big.txt":  # Above --small_file_bytes: sent from the file.
                body += (letter.lower() * 99 + "\n").encode() * 400
            files[name] = body
        roots[letter] = make_root(files)
    return roots


def write_atomically(path, text):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # A server started as root reads it again as nobody.
    os.rename(tmp, path)


def config_metrics(port):
    r = fetch(port, "GET", "/metrics?format=json")
    if r.status != 200:
        raise AssertionError("/metrics: %r" % r)
    return r.json()["server"]["config"]


class Swapper:
    """Swaps A and B by SIGHUP, waiting for each reload's log line."""

    def __init__(self, server, config_path, texts):
        self.server = server
        self.path = config_path
        self.texts = texts
        self.current = "A"
        self.ok = 0
        self.refused = 0
        self.reload_ms = []

    def _wait_log(self, needle, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.stderr().count(needle) >= count:
                return
            time.sleep(0.002)
        raise AssertionError("no %d× '%s' in the log within %.0f s:\n%s"
                             % (count, needle, timeout, self.server.stderr()[-3000:]))

    def swap(self):
        nxt = "B" if self.current == "A" else "A"
        write_atomically(self.path, self.texts[nxt])
        start = time.monotonic()
        self.server.signal(signal.SIGHUP)
        self._wait_log("SIGHUP: configuration generation %d loaded" % (self.ok + 2), 1)
        self.reload_ms.append((time.monotonic() - start) * 1000)
        self.ok += 1
        self.current = nxt

    def broken(self):
        write_atomically(self.path, self.texts["broken"])
        self.server.signal(signal.SIGHUP)
        self.refused += 1
        self._wait_log("SIGHUP: configuration not reloaded, generation %d stays" % (self.ok + 1),
                       self.refused)
        c = config_metrics(self.server.port)
        if c["generation"] != self.ok + 1 or c["reloads_total"]["error"] != self.refused:
            raise AssertionError("after the broken file: %s (expected generation %d, %d error)"
                                 % (c, self.ok + 1, self.refused))
        # The running configuration stays; put a good file back in place.
        write_atomically(self.path, self.texts[self.current])

    def run(self, seconds):
        start = time.monotonic()
        broke = False
        while time.monotonic() - start < seconds:
            t0 = time.monotonic()
            if not broke and t0 - start >= seconds / 2:
                self.broken()
                broke = True
            else:
                self.swap()
            time.sleep(max(0.0, SWAP_INTERVAL - (time.monotonic() - t0)))
        if not broke:
            raise AssertionError("the broken file was never tried")


def parse_wrk(out):
    m = re.search(r"RESULT requests=(\d+) a=(\d+) b=(\d+) bad=(\d+) connect=(\d+) read=(\d+) "
                  r"write=(\d+) status=(\d+) timeout=(\d+)", out)
    if not m:
        raise AssertionError("no RESULT line from wrk:\n" + out)
    keys = ["requests", "a", "b", "bad", "connect", "read", "write", "status", "timeout"]
    result = dict(zip(keys, map(int, m.groups())))
    first = re.search(r"^FIRST_BAD (.*)$", out, re.M)
    result["first_bad"] = first.group(1) if first else ""
    return result


def check_reload_under_load(binary, runner):
    wrk = shutil.which("wrk")
    if wrk is None:
        raise Skip("wrk is not installed (apt-get install wrk)")
    roots = make_roots()
    conf_dir = make_root({})
    runner.cleanups.append(lambda: [shutil.rmtree(d, ignore_errors=True)
                                    for d in list(roots.values()) + [conf_dir]])
    names = {"root_a": roots["A"], "root_b": roots["B"]}
    texts = {"A": CONFIG_A.format(**names), "B": CONFIG_B.format(**names),
             "broken": BROKEN.format(**names)}
    config_path = os.path.join(conf_dir, "sluice.toml")
    write_atomically(config_path, texts["A"])
    lua_path = os.path.join(conf_dir, "check.lua")
    with open(lua_path, "w") as f:
        f.write(LUA)

    server = Server(binary, roots["A"], ["--config=" + config_path], threads=2)
    server.start()
    runner.cleanups.append(server.kill)
    first = fetch(server.port, "GET", "/app.js")
    if first.header("x-config") != "A" or first.header("x-a-js") != "1":
        raise AssertionError("configuration A is not in force: %r %s" % (first, first.headers))

    cmd = [wrk, "-t2", "-c16", "-d%ds" % WRK_SECONDS, "--timeout", "5s", "-s", lua_path,
           "http://127.0.0.1:%d/" % server.port]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runner.cleanups.append(lambda: load.poll() is None and (load.kill(), load.wait(5)))
    time.sleep(WARM_UP)
    swapper = Swapper(server, config_path, texts)
    swapper.run(SWAP_SECONDS)
    out, _ = load.communicate(timeout=WRK_SECONDS + 20)
    if load.returncode != 0:
        raise AssertionError("wrk exited %d:\n%s" % (load.returncode, out))
    w = parse_wrk(out)

    c = config_metrics(server.port)
    code = server.stop()
    reload_ms = sorted(swapper.reload_ms)
    log("%d requests in %d s under %d reloads (%d of them A, %d B) and 1 refused; "
        "SIGHUP to log line: median %.1f ms, max %.1f ms"
        % (w["requests"], WRK_SECONDS, swapper.ok, w["a"], w["b"],
           reload_ms[len(reload_ms) // 2], reload_ms[-1]))
    problems = []
    if w["bad"]:
        problems.append("%d responses were not wholly A or wholly B; first: %s"
                        % (w["bad"], w["first_bad"]))
    for kind in ("connect", "read", "write", "timeout", "status"):
        if w[kind]:
            problems.append("wrk counted %d %s errors" % (w[kind], kind))
    if w["a"] + w["b"] + w["bad"] != w["requests"]:
        problems.append("%d requests but %d responses checked"
                        % (w["requests"], w["a"] + w["b"] + w["bad"]))
    if min(w["a"], w["b"]) < MIN_SEEN:
        problems.append("A seen %d times, B %d: fewer than %d" % (w["a"], w["b"], MIN_SEEN))
    if swapper.ok < SWAP_SECONDS / SWAP_INTERVAL / 4:
        problems.append("only %d reloads in %.0f s" % (swapper.ok, SWAP_SECONDS))
    expected = {"generation": swapper.ok + 1, "ok": swapper.ok, "error": 1}
    got = {"generation": c["generation"], "ok": c["reloads_total"]["ok"],
           "error": c["reloads_total"]["error"]}
    if got != expected:
        problems.append("/metrics says %s, expected %s" % (got, expected))
    if code != 0:
        problems.append("sluice exited %s" % code)
    if problems:
        raise AssertionError("; ".join(problems) + "\nwrk output:\n" + out)


if __name__ == "__main__":
    sys.exit(main_one_check(__doc__, "reload_under_load", check_reload_under_load))
