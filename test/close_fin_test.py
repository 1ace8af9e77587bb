#!/usr/bin/env python3
"""The FIN of a closing response leaves in the segment that carries the
response's last bytes, as nginx's does ([FP.]), not a round trip later.

Usage: test/close_fin_test.py PATH/TO/sluice

Watches the loopback interface with a packet socket (AF_PACKET needs root:
skipped otherwise) while a client asks for a small file with
`Connection: close`, then with more bytes pipelined behind that request (the
server then lingers after its FIN, reading them off), then with a request the
server refuses and closes on (400). For each: the body arrives whole, the
server's last segment with data has FIN set, and no FIN-only segment follows.
A body spliced from the file must arrive whole with the FIN after it (TCP may
push a long body's tail before the FIN).
"""
import os
import shutil
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # No __pycache__ in the source tree.
sys.path.insert(0, os.path.join(HERE, "support"))

from sluice_harness import Runner, Server, Skip, log, make_root  # noqa: E402

BINARY = None
TMP = None
BODY = bytes((i * 7) & 0xFF for i in range(1024))  # 1 KiB: sent from memory, one SEND.
BIG = bytes((i * 13) & 0xFF for i in range(200 * 1024))  # Spliced: file → pipe → socket.
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TCP_FIN = 0x01
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; Python names it not.


class Capture:
    """TCP segments on lo from `port` (the server's side), in order."""

    def __init__(self, port):
        self.port = port
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise Skip("a packet socket needs root (CAP_NET_RAW)")
        # Room for every frame of a response until they are read (root may
        # go past rmem_max).
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)

    def segments(self, quiet_s=0.3, limit_s=5.0):
        """(flags, payload length) of each segment the server sent, until
        nothing has arrived for quiet_s."""
        out = []
        deadline = time.monotonic() + limit_s
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet_s:
            try:
                frame, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue  # Each loopback packet is seen going out and coming in.
            seg = self.parse(frame)
            if seg is not None:
                out.append(seg)
                last = time.monotonic()
        return out

    def parse(self, frame):
        ip = frame[14:]  # lo carries a zeroed Ethernet header.
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
            return None
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport = struct.unpack("!H", tcp[0:2])[0]
        if sport != self.port:
            return None
        doff = (tcp[12] >> 4) * 4
        return tcp[13], total - ihl - doff

    def close(self):
        self.sock.close()


def exchange(port, request):
    """Sends `request`, reads to EOF; returns the bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(request)
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return data
            data += chunk


def check_fin_rides_with_the_response(request, status, body=None, same_segment=True):
    root = make_root({"1k.html": BODY, "big.bin": BIG})
    with Server(BINARY, root, threads=1, workdir=tempfile.mkdtemp(dir=TMP)) as s:
        cap = Capture(s.port)
        try:
            reply = exchange(s.port, request)
            segs = cap.segments()
        finally:
            cap.close()
    assert reply.startswith(b"HTTP/1.1 %d" % status), reply[:60]
    if body is not None:
        assert reply.endswith(b"\r\n\r\n" + body), "body not whole: %r" % reply[-40:]
    with_data = [i for i, (_, n) in enumerate(segs) if n > 0]
    fins = [i for i, (f, _) in enumerate(segs) if f & TCP_FIN]
    shown = " ".join("%s%d" % ("F" if f & TCP_FIN else "", n) for f, n in segs)
    log("server segments (F: FIN, then payload bytes): " + shown)
    assert with_data, "no data seen from the server"
    assert fins, "no FIN seen from the server"
    if same_segment:
        assert fins[0] == with_data[-1], \
            "the FIN did not ride with the last data segment: " + shown
    else:
        assert fins[0] >= with_data[-1], "a FIN before the last data: " + shown


def main():
    global BINARY, TMP
    if len(sys.argv) != 2:
        print("usage: %s PATH/TO/sluice" % sys.argv[0], file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    TMP = tempfile.mkdtemp(prefix="sluice-fin-")
    runner = Runner()
    try:
        get = b"GET /1k.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        runner.run("connection_close",
                   lambda: check_fin_rides_with_the_response(get, 200, BODY), 20)
        # Bytes behind the request: the server lingers (reads them off)
        # after its FIN, so that they cannot turn the close into a reset.
        runner.run("connection_close_then_linger",
                   lambda: check_fin_rides_with_the_response(get + b"GET / HTTP/1.1\r\n", 200,
                                                             BODY), 20)
        # A long body's tail may leave before the FIN all the same: TCP
        # pushes once half a window went out unpushed, MSG_MORE or not. The
        # body must be whole and the FIN after it.
        runner.run("spliced_body",
                   lambda: check_fin_rides_with_the_response(
                       b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 200,
                       BIG, same_segment=False), 20)
        runner.run("refused_request",
                   lambda: check_fin_rides_with_the_response(b"BAD\x01 / HTTP/1.1\r\n\r\n", 400),
                   20)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
