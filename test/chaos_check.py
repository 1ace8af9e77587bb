#!/usr/bin/env python3
"""Properties that must hold however the ring misbehaves (scripts/test chaos).

Starts a chaos build of sluice (its faults come from the SLUICE_CHAOS_*
environment, inherited), drives it with many clients at once — small and
256 KiB files, ranges, 404s, HEAD, pipelining, clients that vanish mid-body
(FIN or RST), slow readers that run into the send timeout, curl — and checks:

  - every body is byte-exact or visibly cut short: a prefix of what the file
    (or range) holds, never a byte of another file, never bytes past its end;
  - every status is one the request allows (an injected EIO may give 500);
  - at idle, /metrics shows every receive buffer back in the ring, no pipe
    lent, the in-flight gauges back where they were at start, one connection
    (the scrape's own);
  - the descriptor count (/proc/PID/fd) returns to its baseline (plus two
    per idle pooled pipe);
  - SIGTERM ends it with status 0, and its log has no sanitizer report,
    broken invariant or error line.

Usage: chaos_check.py BINARY [--seconds N] [--clients N]
Prints the failed property and exits 1, or prints a summary and exits 0.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import sluice_harness as h  # noqa: E402

# A 408 needs a deadline pass between two pieces of one request head. The
# clients send each batch of requests in one write, which loopback delivers
# whole, so the server sees a head in pieces only when a RECV was cut short
# (`short`) or a second buffer's completion was held back (`delay`), and a
# 2 s header deadline passes that soon only when run early (`timer`).
_FAULTS = set(os.environ.get("SLUICE_CHAOS_FAULTS", "all").split(","))
TIMER_FAULTS = bool(_FAULTS & {"all", "timer"}) and bool(_FAULTS & {"all", "short", "delay"})

SMALL = ["s%02d.txt" % i for i in range(24)]
LARGE = ["l%d.bin" % i for i in range(6)]
LARGE_BYTES = 256 * 1024


def content(name, size):
    """Bytes that name their file and offset, so a stray byte is traceable."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(("%s:%d" % (name, block)).encode()).digest()
        block += 1
    return bytes(out[:size])


class Failure(Exception):
    pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []

    def add(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def fail(self, msg):
        with self.lock:
            self.failures.append(msg)


def parse_head(buf):
    end = buf.index(b"\r\n\r\n") + 4
    lines = buf[:end - 4].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0] + " ")
    if not m:
        raise Failure("bad status line %r" % lines[0][:80])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, end


class Client:
    def __init__(self, port, files, stats, rng):
        self.port = port
        self.files = files
        self.stats = stats
        self.rng = rng

    def request(self):
        """One request as (bytes, expected body or None for a 404, head_only, range)."""
        r = self.rng.random()
        if r < 0.15:
            path = "/missing-%d.txt" % self.rng.randrange(1000)
            return ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode(), (path, None, False, None)
        name = self.rng.choice(SMALL if self.rng.random() < 0.5 else LARGE)
        data = self.files[name]
        path = "/" + name
        if r < 0.3:
            a = self.rng.randrange(len(data))
            b = min(len(data) - 1, a + self.rng.randrange(70000))
            req = "GET %s HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-%d\r\n\r\n" % (path, a, b)
            return req.encode(), (path, data, False, (a, b))
        if r < 0.37:
            return ("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode(), (path, data, True, None)
        return ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode(), (path, data, False, None)

    def check(self, what, status, headers, body, complete):
        path, data, head_only, rng = what
        if status in (500, 503):
            self.stats.add("status_%d" % status)  # Injected EIO/EMFILE.
            return
        if data is None:
            if status != 404:
                raise Failure("%s: status %d, want 404" % (path, status))
            return
        if rng is not None and status == 206:
            want = data[rng[0]:rng[1] + 1]
            if headers.get("content-range") != "bytes %d-%d/%d" % (rng[0], rng[1], len(data)):
                raise Failure("%s: Content-Range %r for %r" % (path, headers.get("content-range"), rng))
        elif status == 200:
            want = data
        else:
            raise Failure("%s: status %d" % (path, status))
        if int(headers.get("content-length", -1)) != len(want):
            raise Failure("%s: Content-Length %s, want %d" % (path, headers.get("content-length"), len(want)))
        if head_only:
            return
        if len(body) > len(want):
            raise Failure("%s: %d body bytes past the end" % (path, len(body) - len(want)))
        if body != want[:len(body)]:
            i = next(i for i in range(len(body)) if body[i] != want[i])
            raise Failure("%s: body differs at byte %d of %d" % (path, i, len(want)))
        self.stats.add("complete" if complete and len(body) == len(want) else "cut_short")

    def exchange(self, pipeline_depth, abandon_after=None, rst=False):
        """Sends requests (pipelined), reads and checks the responses in order."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            reqs = [self.request() for _ in range(pipeline_depth)]
            sock.sendall(b"".join(r for r, _ in reqs))
            buf = b""
            eof = False
            for _, what in reqs:
                while b"\r\n\r\n" not in buf and not eof:
                    chunk = sock.recv(65536)
                    eof = not chunk
                    buf += chunk
                if b"\r\n\r\n" not in buf:
                    if buf and not b"HTTP/1.1 ".startswith(buf[:9]):
                        raise Failure("garbage instead of a response: %r" % buf[:40])
                    self.stats.add("no_response")
                    return
                status, headers, end = parse_head(buf)
                if status == 408:
                    self.refused(what, headers, buf[end:], sock)
                    return
                length = 0 if what[2] or status in (204, 304) else int(headers.get("content-length", 0))
                while len(buf) - end < length and not eof:
                    if abandon_after is not None and len(buf) - end >= abandon_after:
                        if rst:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                        self.stats.add("abandoned")
                        return
                    chunk = sock.recv(65536)
                    eof = not chunk
                    buf += chunk
                body = buf[end:end + length]
                buf = buf[end + length:]
                self.check(what, status, headers, body, len(body) == length)
                if len(body) < length:
                    return  # Cut short: the connection is over.
            # Nothing may follow the last response.
            sock.settimeout(0.2)
            try:
                extra = sock.recv(65536)
            except (socket.timeout, ConnectionError):
                extra = b""
            if buf or extra:
                if (buf + extra)[:9] != b"HTTP/1.1 ":
                    raise Failure("%d stray bytes after the responses" % len(buf + extra))
        except (ConnectionError, socket.timeout) as e:
            self.stats.add("conn_" + type(e).__name__)
        finally:
            sock.close()

    def refused(self, what, headers, rest, sock):
        """A 408: the header deadline passed before the server had this request's head.

        Legitimate only under injected timer faults, which run deadlines up to
        SKEW seconds early (so a 2 s header timeout can fire between two
        pieces of a head cut by a short RECV), and only in the form the server
        gives it when the head really had not arrived in full: the server
        answers a head that is complete (however late its last bytes came),
        so a 408 is never the answer to a request it has, never follows a
        cut-short response, and ends the connection. Hence: it answers the
        oldest unanswered request (this one), says Connection: close, and
        nothing follows it but its own page (absent when the server saw
        "HEAD ", possibly present when a short RECV cut the method itself)
        and the end of the connection: no response to a later request.
        """
        path = what[0]
        if not TIMER_FAULTS:
            raise Failure("%s: 408, but no fault on can split a head and pass its deadline" % path)
        if headers.get("connection", "").lower() != "close":
            raise Failure("%s: 408 that keeps the connection open" % path)
        page = int(headers.get("content-length", -1))
        sock.settimeout(5)  # The server sends its FIN with the page.
        try:
            while len(rest) <= page:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except socket.timeout:
            raise Failure("%s: the connection stays open after a 408" % path)
        except ConnectionError:
            pass  # An injected send error cut the page short: a reset, not more bytes.
        # Its page (or a cut-short prefix of it), and nothing of another response.
        doctype = b"<!DOCTYPE html>"
        if len(rest) > page or rest[:len(doctype)] != doctype[:len(rest)]:
            raise Failure("%s: %d bytes after a 408 that are not its page: %r" % (path, len(rest), rest[:40]))
        self.stats.add("refused_408")

    def slow_reader(self):
        """Asks for a large file and reads nothing for a while: send timeout."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % self.rng.choice(LARGE)).encode())
            time.sleep(self.rng.uniform(0.5, 3.5))
            while sock.recv(65536):
                pass
            self.stats.add("slow_reader")
        except (ConnectionError, socket.timeout):
            self.stats.add("slow_reader_reset")
        finally:
            sock.close()

    def run(self, until):
        while time.monotonic() < until:
            r = self.rng.random()
            try:
                if r < 0.5:
                    self.exchange(self.rng.randint(1, 3))
                elif r < 0.75:
                    self.exchange(self.rng.randint(2, 6))
                elif r < 0.93:
                    self.exchange(1, abandon_after=self.rng.randrange(1, 40000),
                                  rst=self.rng.random() < 0.5)
                else:
                    self.slow_reader()
            except Failure as e:
                self.stats.fail(str(e))
            except ConnectionRefusedError:
                self.stats.fail("connection refused: the server is gone")
                return
            except Exception as e:  # A bug in this script is a failure too.
                self.stats.fail("client: %r" % e)


def scrape(port):
    """/metrics as JSON; the scrape meets the faults too, so it is retried."""
    last = None
    for _ in range(50):
        try:
            with h.Conn(port, timeout=5) as c:
                c.send_raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                r = c.read_response()
                if r.status == 200:
                    return r.json()
                last = "status %d" % r.status
        except (AssertionError, OSError, ValueError) as e:
            last = repr(e)
        time.sleep(0.05)
    raise AssertionError("no /metrics answer in 50 tries: %s" % last)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def idle_state(m):
    """What must return to its start-up value at idle."""
    t = m["totals"]
    in_flight = dict(t["ring"]["in_flight"])
    # A worker is either accepting or, after an (injected) accept error,
    # waiting on its back-off timeout to accept again: at idle either is
    # right, so the two are compared together.
    in_flight["accept_or_retry"] = in_flight.pop("accept") + in_flight.pop("timeout")
    return {"in_flight": in_flight, "active": t["connections"]["active"],
            "pipes_lent": t["buffers"]["pipes_lent"],
            "recv_buffers_missing": t["buffers"]["recv_buffers"] - t["buffers"]["recv_buffers_free"]}


def curl_checks(port, files, stats, rng, count):
    for _ in range(count):
        name = rng.choice(LARGE + SMALL)
        args = ["curl", "-s", "-o", "-", "--max-time", "10", "http://127.0.0.1:%d/%s" % (port, name)]
        rng_hdr = None
        if rng.random() < 0.5:
            a = rng.randrange(len(files[name]))
            rng_hdr = (a, min(len(files[name]) - 1, a + rng.randrange(100000)))
            args[1:1] = ["-r", "%d-%d" % rng_hdr]
        p = subprocess.run(args, capture_output=True, timeout=20)
        want = files[name] if rng_hdr is None else files[name][rng_hdr[0]:rng_hdr[1] + 1]
        body = p.stdout
        if body[:1] == b"<":  # An error page (injected EIO): not a body.
            stats.add("curl_error_page")
            continue
        if len(body) > len(want) or body != want[:len(body)]:
            stats.fail("curl %s: body is not a prefix of the file (%d bytes)" % (name, len(body)))
        stats.add("curl_complete" if body == want else "curl_cut_short")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--file_cache", action="store_true",
                    help="keep the open-file cache on (the descriptor check is then a bound)")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    seed = os.environ.get("SLUICE_CHAOS_SEED", "")
    # Deadlines up to 4 s early with 1-2 s timeouts: they fire while
    # operations are in flight, which is the race worth testing.
    os.environ.setdefault("SLUICE_CHAOS_SKEW", "4")
    os.environ.setdefault("SLUICE_CHAOS_RATE", "0.1")
    rng = random.Random(seed)

    root = tempfile.mkdtemp(prefix="sluice-chaos-")
    os.chmod(root, 0o755)  # A server started as root serves as nobody.
    files = {}
    for i, name in enumerate(SMALL):
        files[name] = content(name, 1 + (i * 977) % 16000)
    for name in LARGE:
        files[name] = content(name, LARGE_BYTES)
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)

    flags = ["--header_timeout=2s", "--keepalive_timeout=1s", "--send_timeout=2s",
             "--drain_timeout=5s"]
    if not args.file_cache:
        flags.append("--file_cache_entries=0")
    server = h.Server(args.binary, root, flags, threads=2)
    problems = []
    try:
        try:
            server.start(timeout=30)
        except h.Skip as e:
            print("SKIP: %s" % e)
            return 0
        pid = server.proc.pid
        # Start-up state: taken at idle, before any client.
        base = h.wait_until(lambda: (lambda m: m if idle_state(m)["active"] == 1 else None)(scrape(server.port)),
                            10, what="an idle first scrape")
        base_idle = idle_state(base)
        base_pipes = base["totals"]["buffers"]["pipes_idle"]
        time.sleep(0.3)
        base_fds = fd_count(pid)

        stats = Stats()
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=Client(server.port, files, stats,
                                                  random.Random("%s-%d" % (seed, i))).run,
                                    args=(until,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        curl_checks(server.port, files, stats, rng, 20)
        for t in threads:
            t.join(args.seconds + 60)
        problems += stats.failures[:10]
        if len(stats.failures) > 10:
            problems.append("... %d failures in all" % len(stats.failures))

        if server.proc.poll() is not None:
            problems.append("server died during the traffic (status %d)" % server.proc.returncode)
        else:
            last = {}

            def idle():
                m = scrape(server.port)
                last["m"] = m
                return idle_state(m) == base_idle
            try:
                h.wait_until(idle, 20, interval=0.2, what="idle metrics")
            except AssertionError:
                problems.append("not idle 20 s after the traffic: %s, at start %s" %
                                (json.dumps(idle_state(last["m"])), json.dumps(base_idle)))
            pipes = last["m"]["totals"]["buffers"]["pipes_idle"] if "m" in last else base_pipes
            want_fds = base_fds + 2 * (pipes - base_pipes)
            try:
                if args.file_cache:
                    # Cached large files keep a descriptor each, per worker.
                    h.wait_until(lambda: fd_count(pid) <= want_fds + 2 * len(LARGE), 10,
                                 what="descriptors back to the baseline")
                else:
                    h.wait_until(lambda: fd_count(pid) == want_fds, 10,
                                 what="descriptors back to the baseline")
            except AssertionError:
                problems.append("descriptors: %d open, baseline %d + %d idle pipes" %
                                (fd_count(pid), base_fds, pipes - base_pipes))
        code = server.stop(timeout=30)
        log = server.stderr()
        if code != 0:
            problems.append("exit status %s after SIGTERM" % code)
        for pattern in ("AddressSanitizer", "LeakSanitizer", "runtime error", "invariant broken",
                        " ERROR "):
            for line in log.splitlines():
                if pattern in line:
                    problems.append("log: " + line[:300])
                    break
        print("chaos_check seed=%s: %s" % (seed, json.dumps(dict(sorted(stats.counts.items())))))
        for line in log.splitlines():
            if "chaos" in line:
                print("  " + line)
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)
    if problems:
        print("FAILED chaos_check seed=%s:" % seed)
        for p in problems:
            print("  - " + p)
        if server.proc is not None:
            tail = server.stderr().splitlines()[-30:]
            print("  server log (tail):\n    " + "\n    ".join(tail))
        return 1
    print("chaos_check seed=%s: passed" % seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
