#!/usr/bin/env python3
"""Holds many idle keep-alive connections open to one server (perf/compare's
`idle` scenario).

Each connection makes one GET, reads the whole response (Content-Length
framed) and then stays open without sending anything; only connections whose
answer was 200 are held (and so counted). With --wave N (perf/compare: 200)
the connections arrive N at a time: a wave is opened, makes its requests and
reads its answers before the next one starts. With --wave 0 up to --parallel
are in flight at any moment. Connections are spread over several loopback
source addresses (127.0.0.2, 127.0.0.3, ...) so the ephemeral ports of one
address never run short.

Protocol with the parent, one line each on stdout:
  READY <open> <failed> <seconds>   every connection has been tried; <open>
                                    got a 200 and are held
then the client waits for a line on stdin (or EOF, or --hold seconds) and
closes everything, printing `CLOSED <open>` before it exits.

Standard library only. Talks to 127.0.0.0/8 only.
"""
import argparse
import asyncio
import ipaddress
import resource
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        try:  # Root may raise the hard limit too.
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return need
        except (ValueError, OSError):
            pass
    new_soft = hard if hard == resource.RLIM_INFINITY or hard < need else need
    resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def loopback_only(host):
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"idle_client: {host} is not a loopback address")


async def one_request(reader, writer, request):
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status_line


async def open_one(i, args, sources, request, held, sem, failures):
    src = sources[i % len(sources)]
    async with sem:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((src, 0))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (args.host, args.port)), args.timeout)
            reader, writer = await asyncio.open_connection(sock=sock)
            status = await asyncio.wait_for(one_request(reader, writer, request), args.timeout)
            if b" 200 " not in status + b" ":
                raise RuntimeError(status.decode(errors="replace"))
            held.append(writer)
        except Exception as e:  # Counted and reported; the run goes on.
            sock.close()
            failures.append(f"{type(e).__name__}: {e}")


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/1k.html")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=4,
                    help="source addresses 127.0.0.2 .. 127.0.0.(1+N)")
    ap.add_argument("--parallel", type=int, default=256,
                    help="with --wave 0: connects in flight at once")
    ap.add_argument("--wave", type=int, default=0,
                    help="connections opened together, each wave finished before the next "
                         "(0: no waves, --parallel in flight)")
    ap.add_argument("--timeout", type=float, default=10.0, help="per connect and per request")
    ap.add_argument("--hold", type=float, default=120.0, help="longest hold before closing")
    args = ap.parse_args()
    loopback_only(args.host)
    sources = [f"127.0.0.{2 + k}" for k in range(max(1, min(args.sources, 200)))]
    limit = raise_nofile(args.count + 256)
    if limit < args.count + 64:
        print(f"idle_client: RLIMIT_NOFILE is {limit}, below {args.count} connections",
              file=sys.stderr)

    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: sluice-perf-idle\r\n\r\n").encode()
    held, failures = [], []
    wave = args.wave if args.wave > 0 else args.count
    sem = asyncio.Semaphore(args.parallel if args.wave <= 0 else wave)
    started = time.monotonic()
    for first in range(0, args.count, wave):
        await asyncio.gather(*(open_one(i, args, sources, request, held, sem, failures)
                               for i in range(first, min(first + wave, args.count))))
    elapsed = time.monotonic() - started
    if failures:
        print(f"idle_client: {len(failures)} failed, first: {failures[0]}", file=sys.stderr)
    print(f"READY {len(held)} {len(failures)} {elapsed:.2f}", flush=True)

    # Hold until the parent writes a line or closes stdin, at most --hold s.
    loop = asyncio.get_running_loop()
    release = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: release.done() or release.set_result(None))
    try:
        await asyncio.wait_for(release, args.hold)
    except asyncio.TimeoutError:
        pass
    loop.remove_reader(sys.stdin.fileno())
    for w in held:
        w.close()
    print(f"CLOSED {len(held)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
