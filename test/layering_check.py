#!/usr/bin/env python3
"""The layers of src/ and include/sluice/ only look down.

base (checks, logging, clock, descriptors) < io (the ring, operations,
buffers, pipes, timers) < http (pure HTTP rules) < serve (connections, file
cache, document root, metrics, access log) < server (worker, start-up, main).
io and http are independent of each other. Fails, naming the file and the
include, when a file includes a header of a layer above its own or beside it.
"""
import pathlib
import re
import sys

ALLOWED = {
    "base": {"base"},
    "io": {"base", "io"},
    "http": {"base", "http"},
    "serve": {"base", "io", "http", "serve"},
    "server": {"base", "io", "http", "serve", "server"},
}
INCLUDE = re.compile(r'^#include "sluice/([a-z_]+)/[a-z_0-9]+\.h"', re.M)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    files = list((root / "src").rglob("*.cc")) + list((root / "include/sluice").rglob("*.h"))
    bad = []
    checked = 0
    for f in files:
        rel = f.relative_to(root)
        layer = rel.parts[2] if rel.parts[0] == "include" else rel.parts[1]
        if layer not in ALLOWED:
            bad.append(f"{rel}: not in a layer folder ({', '.join(ALLOWED)})")
            continue
        for m in INCLUDE.finditer(f.read_text()):
            checked += 1
            if m.group(1) not in ALLOWED[layer]:
                bad.append(f"{rel}: {layer} includes sluice/{m.group(1)}/ ({m.group(0)[9:]})")
    for b in bad:
        print(b)
    print(f"{len(files)} files, {checked} includes checked, {len(bad)} violations")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
