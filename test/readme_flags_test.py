#!/usr/bin/env python3
"""Keeps README.md's flag table and the binary's --help in step.

Usage: readme_flags_test.py SLUICE_BINARY README.md
Every flag --help lists must have a row in README's table, and every row
must name a real flag; defaults shown in both must agree.
"""
import re
import subprocess
import sys


def main() -> int:
    binary, readme = sys.argv[1], sys.argv[2]
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    # "--name (description); default: VALUE;" possibly wrapped over lines.
    flat = " ".join(help_text.split())
    help_flags = {}
    for m in re.finditer(r"--([a-z_]+) \(.*?\); default: (.*?);", flat):
        help_flags[m.group(1)] = m.group(2).strip('"')
    rows = {}
    with open(readme, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\| `--([a-z_]+)` \| ([^|]*) \|", line)
            if m:
                rows[m.group(1)] = m.group(2).strip()
    failures = []
    for name, default in sorted(help_flags.items()):
        if name not in rows:
            failures.append(f"--{name} is in --help but not in README's flag table")
            continue
        shown = rows[name].strip("`")
        if shown.startswith("(") or shown.startswith("CPUs"):
            continue  # "(none)" or a computed default.
        if shown != default:
            failures.append(f"--{name}: README says {shown!r}, --help says {default!r}")
    for name in sorted(rows):
        if name not in help_flags and name not in ("version", "flagfile"):
            failures.append(f"README documents --{name}, which --help does not list")
    for f in failures:
        print("FAIL:", f)
    checked = len(help_flags) + len(rows)
    print(f"{checked - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
