#!/usr/bin/env python3
"""www/status.html in real headless Chromium, against a running sluice.

Usage: status_page_test.py PATH/TO/sluice ARTIFACT_DIR

Starts sluice on 127.0.0.1 serving the repository's www/, puts light load on
it (a thread making about 50 requests a second), opens status.html in
headless Chromium (Debian package `chromium`) and drives it through the
DevTools protocol over a small WebSocket client written here. Real time, not
virtual time: the page's one-second polls are real requests. Checks that
<body data-samples> reaches 3 and every chart's data-points too, that the
page threw no error and fetched nothing from another origin, then saves
full-page screenshots (light, dark, narrow) as ARTIFACT_DIR/status*.png.
The last line is 'N passed, M failed'.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, os.path.join(HERE, "support"))

from sluice_harness import Conn, Runner, Server, fetch, log, wait_until  # noqa: E402

WWW = os.path.join(os.path.dirname(HERE), "www")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-default-browser-check",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio",
                  "--hide-scrollbars", "--password-store=basic", "--use-mock-keychain",
                  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                  "--window-size=1280,1000"]


class WebSocket:
    """Just enough RFC 6455 for the DevTools protocol: text frames, masked
    from the client, fragments, ping/pong and close."""

    def __init__(self, url, timeout=10):
        assert url.startswith("ws://"), url
        hostport, _, path = url[len("ws://"):].partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        self.buf = bytearray()
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("DevTools closed the WebSocket handshake")
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end]
        if not head.startswith("HTTP/1.1 101"):
            raise AssertionError("WebSocket handshake refused: " + head.splitlines()[0])
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if ("sec-websocket-accept: " + want.lower()) not in head.lower():
            raise AssertionError("bad Sec-WebSocket-Accept")

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise AssertionError("DevTools closed the WebSocket")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _send_frame(self, opcode, payload):
        n = len(payload)
        head = bytearray([0x80 | opcode])
        if n < 126:
            head.append(0x80 | n)
        elif n < 65536:
            head.append(0x80 | 126)
            head += struct.pack(">H", n)
        else:
            head.append(0x80 | 127)
            head += struct.pack(">Q", n)
        mask = os.urandom(4)
        head += mask
        # XOR with the mask, a word at a time.
        pad = (-n) % 4
        words = int.from_bytes(payload + b"\0" * pad, "little")
        m = int.from_bytes(mask * ((n + pad) // 4), "little") if n else 0
        masked = (words ^ m).to_bytes(n + pad, "little")[:n] if n else b""
        self.sock.sendall(bytes(head) + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode("utf-8"))

    def recv(self):
        parts = []
        while True:
            b0, b1 = self._exact(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            payload = self._exact(n)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise AssertionError("DevTools closed the WebSocket")
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class DevTools:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    def call(self, method, params=None):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise AssertionError("evaluate %r: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")


def start_chromium(tmp):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise AssertionError("chromium not found: install the Debian package `chromium`")
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    out = open(os.path.join(tmp, "chromium.log"), "wb")
    proc = subprocess.Popen([binary] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile,
                                                         "about:blank"],
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    port_file = os.path.join(profile, "DevToolsActivePort")

    def port():
        if proc.poll() is not None:
            with open(os.path.join(tmp, "chromium.log"), errors="replace") as f:
                raise AssertionError("chromium exited %d: %s" % (proc.returncode,
                                                                 f.read()[-1500:]))
        try:
            with open(port_file) as f:
                text = f.read().split()
            return int(text[0]) if text else None
        except (FileNotFoundError, ValueError):
            return None
    devtools_port = wait_until(port, 20, 0.1, "Chromium's DevToolsActivePort")

    def page_target():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % devtools_port,
                                        timeout=2) as r:
                targets = json.loads(r.read())
        except OSError:
            return None
        pages = [t for t in targets if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if pages else None
    return proc, wait_until(page_target, 10, 0.1, "a page target")


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def screenshot(dt, path):
    metrics = dt.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = dt.call("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    data = base64.b64decode(shot["data"])
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AssertionError("screenshot is not a PNG")
    with open(path, "wb") as f:
        f.write(data)
    log("saved %s (%dx%d)" % (path, size["width"], size["height"]))


STATE_JS = """!document.getElementById("t-rps") ? "{}" : JSON.stringify({
  samples: Number(document.body.dataset.samples || 0),
  charts: [...document.querySelectorAll('svg.chart')].map(
      (e) => [e.id, Number(e.getAttribute('data-points'))]),
  live: document.getElementById('live-text').textContent,
  rps: document.getElementById('t-rps').textContent,
  statusRows: document.querySelectorAll('#tb-status tr:not(.empty-row)').length,
  workerRows: document.querySelectorAll('#tb-workers tr:not(.empty-row)').length,
  overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
})"""


def check_status_page():
    with Server(BINARY, WWW, threads=2, workdir=tempfile.mkdtemp(dir=TMP)) as s:
        index = fetch(s.port, "GET", "/")
        if b'href="/status.html"' not in index.body:
            raise AssertionError("www/index.html does not link to /status.html")
        for asset in ("/status.html", "/status.js", "/status.css"):
            r = fetch(s.port, "GET", asset)
            if r.status != 200:
                raise AssertionError("%s: %r" % (asset, r))

        stop = threading.Event()
        load_errors = []

        def load():
            try:
                while not stop.is_set():
                    with Conn(s.port) as c:
                        for i in range(100):
                            if stop.is_set():
                                break
                            c.request("GET", "/" if i % 10 else "/missing")
                            time.sleep(0.02)
            except Exception as e:  # noqa: BLE001
                load_errors.append(e)
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        runner.cleanups.append(lambda: (stop.set(), loader.join(5)))

        proc, ws_url = start_chromium(TMP)
        runner.cleanups.append(lambda: stop_process(proc))
        ws = WebSocket(ws_url)
        runner.cleanups.append(ws.close)
        dt = DevTools(ws)
        for domain in ("Page", "Runtime", "Network", "Log"):
            dt.call(domain + ".enable")
        dt.call("Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        dt.call("Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        url = "http://127.0.0.1:%d/status.html" % s.port
        nav = dt.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise AssertionError("navigate: " + nav["errorText"])

        state = {}

        def ready(min_samples):
            state.update(json.loads(dt.evaluate(STATE_JS)))
            return state and (state["samples"] >= min_samples and len(state["charts"]) >= 4 and
                    all(n >= 3 for _, n in state["charts"]))
        try:
            wait_until(lambda: ready(3), 25, 0.25, "3 samples in every chart")
        except AssertionError:
            raise AssertionError("page never had 3 samples in every chart: %r" % state)
        log("ready: %r" % state)
        # A few more seconds of data make a more telling screenshot.
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and not ready(12):
            time.sleep(0.25)

        charts = dict(state["charts"])
        expected = {"chart-rps", "chart-latency", "chart-queue", "chart-inflight"}
        if set(charts) != expected:
            raise AssertionError("charts %r, want %r" % (sorted(charts), sorted(expected)))
        for name, n in charts.items():
            # Points come from samples: never more points than samples held.
            if n > state["samples"]:
                raise AssertionError("%s drew %d points from %d samples" % (name, n,
                                                                            state["samples"]))
        if not state["live"].startswith("Live"):
            raise AssertionError("status pill says %r" % state["live"])
        if state["statusRows"] < 2 or state["workerRows"] != 2:
            raise AssertionError("tables not filled: %r" % state)
        rps = float(state["rps"].replace("/s", "").replace(",", "") or 0)
        if rps < 5:
            raise AssertionError("the page shows %r requests/s under ~50/s of load" % state["rps"])
        if state["overflowX"]:
            raise AssertionError("the page scrolls sideways at 1280 px")

        os.makedirs(ARTIFACTS, exist_ok=True)
        screenshot(dt, os.path.join(ARTIFACTS, "status.png"))
        dt.call("Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        time.sleep(0.3)
        screenshot(dt, os.path.join(ARTIFACTS, "status-dark.png"))
        dt.call("Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        dt.call("Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        time.sleep(1.5)  # Charts redraw for the new width at the next poll at the latest.
        narrow = json.loads(dt.evaluate(STATE_JS))
        screenshot(dt, os.path.join(ARTIFACTS, "status-narrow.png"))
        if narrow["overflowX"]:
            raise AssertionError("the page scrolls sideways at 390 px")

        # Nothing went wrong inside the page, and nothing left this origin.
        problems = []
        origin = "http://127.0.0.1:%d/" % s.port
        for ev in dt.events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                problems.append("exception: %s" % p["exceptionDetails"].get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append("console.%s: %r" % (p["type"], [a.get("value") for a in
                                                                p.get("args", [])]))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                problems.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url")))
            elif m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                if not (u.startswith(origin) or u.startswith("data:")):
                    problems.append("request outside the origin: " + u)
        if problems:
            raise AssertionError("; ".join(problems[:5]))
        polls = [ev for ev in dt.events if ev["method"] == "Network.requestWillBeSent" and
                 "/metrics" in ev["params"]["request"]["url"]]
        if len(polls) < state["samples"]:
            raise AssertionError("%d polls for %d samples" % (len(polls), state["samples"]))
        if load_errors:
            raise AssertionError("load thread: %r" % load_errors[0])
        # Browser and load go before the server does.
        ws.close()
        stop_process(proc)
        stop.set()
        loader.join(5)


runner = Runner()
BINARY = TMP = ARTIFACTS = None


def main():
    global BINARY, TMP, ARTIFACTS
    if len(sys.argv) != 3:
        print("usage: %s PATH/TO/sluice ARTIFACT_DIR" % sys.argv[0], file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    ARTIFACTS = os.path.abspath(sys.argv[2])
    TMP = tempfile.mkdtemp(prefix="sluice-status-")
    try:
        runner.run("status_page", check_status_page, 60)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
