"""Shared pieces of the Python integration tests (standard library only).

Server runs the real binary on 127.0.0.1 with its stderr in a file, waits for
the "listening on" line, and stops it with SIGTERM (SIGKILL only as a last
resort). Only the processes these helpers started are ever signalled.

Conn is a raw HTTP/1.1 client over one socket that knows exactly how many
bytes each response took on the wire, so byte counters can be checked
exactly. Runner runs named checks, each under a time limit, and prints the
closing 'N passed, M failed' line.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

IO_URING_UNAVAILABLE = 3  # sluice's exit code when io_uring cannot be used.


class Skip(Exception):
    """The check cannot run here (io_uring unavailable); not a failure."""


class CheckTimeout(Exception):
    pass


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Server:
    """One sluice process on 127.0.0.1:<ephemeral port>."""

    def __init__(self, binary, root, args=(), threads=2, workdir=None):
        self.binary = binary
        self.root = root
        self.args = list(args)
        self.threads = threads
        self.workdir = workdir or tempfile.mkdtemp(prefix="sluice-srv-")
        self.proc = None
        self.port = None
        self.err_path = os.path.join(self.workdir, "stderr-%d.txt" % id(self))
        self.out_path = os.path.join(self.workdir, "stdout-%d.txt" % id(self))

    def argv(self):
        # Tests stop servers with SIGTERM and expect them gone promptly: no
        # Kubernetes drain delay unless a test asks for one.
        delay = [] if any(a.startswith("--drain_delay") for a in self.args) else ["--drain_delay=0"]
        return [self.binary, "--root=" + self.root, "--listen=127.0.0.1:0",
                "--threads=%d" % self.threads] + delay + self.args

    def stderr(self):
        try:
            with open(self.err_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=10):
        err = open(self.err_path, "wb")
        out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, cwd=self.workdir)
        err.close()
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                return self
            code = self.proc.poll()
            if code is not None:
                text = self.stderr().strip()
                if code == IO_URING_UNAVAILABLE and "io_uring" in text:
                    raise Skip("io_uring unavailable: " + text.splitlines()[-1])
                raise AssertionError("sluice exited %d at start: %s" % (code, text))
            time.sleep(0.02)
        self.kill()
        raise AssertionError("no 'listening on' line within %d s: %s" % (timeout, self.stderr()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code (SIGKILL only if it hangs)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("sluice did not stop within %d s of SIGTERM" % timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.kill()


class Response:
    def __init__(self, status, reason, headers, body, wire_bytes, head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name → value (last one wins)
        self.body = body
        self.wire_bytes = wire_bytes  # head + body as received
        self.head = head

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        import json
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %s, %d body bytes>" % (self.status, self.reason, len(self.body))


class Conn:
    """A raw HTTP/1.1 connection to 127.0.0.1:port; one request at a time."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.closed_by_peer = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed_by_peer = True
            return False
        self.buf += chunk
        return True

    def read_response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("connection closed before a response head (%r)" % self.buf)
        end = self.buf.index(b"\r\n\r\n") + 4
        head = self.buf[:end]
        self.buf = self.buf[end:]
        lines = head[:-4].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        status = int(m.group(1))
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_only or status in (204, 304) or 100 <= status < 200:
            length = 0
        elif "content-length" in headers:
            length = int(headers["content-length"])
        else:
            while self._fill():
                pass
            length = len(self.buf)
        while len(self.buf) < length:
            if not self._fill():
                raise AssertionError("short body: %d of %d" % (len(self.buf), length))
        body = self.buf[:length]
        self.buf = self.buf[length:]
        return Response(status, m.group(2), headers, body, len(head) + length, head)

    def request(self, method, target, headers=None, http10=False):
        hdrs = {"Host": "127.0.0.1"}
        hdrs.update(headers or {})
        lines = ["%s %s HTTP/1.%d" % (method, target, 0 if http10 else 1)]
        lines += ["%s: %s" % (k, v) for k, v in hdrs.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(data)
        return self.read_response(head_only=(method == "HEAD"))


def fetch(port, method, target, headers=None, timeout=5.0):
    """One request on a fresh connection, closed afterwards."""
    h = {"Connection": "close"}
    h.update(headers or {})
    with Conn(port, timeout) as c:
        return c.request(method, target, h)


class Runner:
    """Runs checks in order; each bounded by SIGALRM. Prints the summary."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.cleanups = []

    def _alarm(self, signum, frame):
        raise CheckTimeout("check exceeded its time limit")

    def run(self, name, fn, limit=60):
        start = time.monotonic()
        old = signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(limit)
        try:
            fn()
        except Skip as e:
            self.skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
        except BaseException as e:  # noqa: B902 - a check may fail any way it likes
            if isinstance(e, KeyboardInterrupt):
                raise
            self.failed += 1
            print("FAIL %s (%.1f s): %s" % (name, time.monotonic() - start,
                                           str(e) or type(e).__name__), flush=True)
            tb = traceback.format_exc().rstrip().splitlines()
            for line in tb[-12:]:
                print("     " + line, flush=True)
        else:
            self.passed += 1
            print("ok   %s (%.1f s)" % (name, time.monotonic() - start), flush=True)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            while self.cleanups:
                try:
                    self.cleanups.pop()()
                except Exception as e:  # noqa: BLE001
                    print("     cleanup: %s" % e, flush=True)

    def finish(self):
        line = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            line += ", %d skipped" % self.skipped
        print(line, flush=True)
        return 1 if self.failed else 0


def make_root(files):
    """A temporary document root with {relative path: bytes}."""
    root = tempfile.mkdtemp(prefix="sluice-root-")
    # mkdtemp makes it 0700; a server started as root serves as nobody.
    os.chmod(root, 0o755)
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def log(msg):
    print("     " + msg, file=sys.stdout, flush=True)


def main_one_check(doc, name, check, limit=60):
    """The main() of a script that runs one check against the sluice binary
    named by its only argument: check(binary, runner). Returns the exit code."""
    if len(sys.argv) != 2:
        print(doc)
        return 2
    binary = os.path.abspath(sys.argv[1])
    runner = Runner()
    runner.run(name, lambda: check(binary, runner), limit=limit)
    return runner.finish()
