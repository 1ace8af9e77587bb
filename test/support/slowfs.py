#!/usr/bin/python3
"""A read-only FUSE passthrough whose open, getattr, read and readdir can be slow or fail.

Usage: slowfs.py BACKING_DIR MOUNTPOINT CONTROL_DIR

Mirrors BACKING_DIR at MOUNTPOINT (in the foreground, multi-threaded, so one
stalled operation does not hold up the others). Faults come from
CONTROL_DIR/rules.json, re-read whenever its mtime, size or inode changes, so
a test can change them while mounted (write a temporary file, then rename it
over rules.json). The rules name files by their path below the mount, without
the leading slash:

  {"slow.bin": {"read": {"delay": 4, "times": 1}},
   "bad.bin":  {"read": {"error": "EIO", "min_offset": 65536}},
   "gone.bin": {"getattr": {"error": "EIO", "skip": 1}}}

Each operation ("open", "getattr", "read", "readdir") may carry:
  delay       seconds to sleep before doing (or failing) the operation
  error       an errno name ("EIO"); the operation fails with it
  skip        let this many matching calls through untouched first
  times       apply to this many matching calls after the skipped ones, then
              stop (absent: every call)
  min_offset  (read) only reads starting at or after this offset match
Counters restart when the rules change.

Every call a rule applies to is appended to
CONTROL_DIR/log as one line, "<op> <path> <begin|end> <fault>", so a test can
wait until a stall has started or is over. Kernel caching is off for data
(direct_io) and attributes/entries expire at once, so every read and every
stat reaches this process.
"""

import errno
import json
import os
import sys
import threading
import time

import fusepy


class Rules:
    """The current fault rules and their per-operation counters."""

    def __init__(self, control_dir):
        self._path = os.path.join(control_dir, "rules.json")
        self._log_path = os.path.join(control_dir, "log")
        self._lock = threading.Lock()
        self._key = None
        self._rules = {}
        self._counts = {}

    def _reload_locked(self):
        try:
            st = os.stat(self._path)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            key = None
        if key == self._key:
            return
        self._key = key
        self._counts = {}
        self._rules = {}
        if key is None:
            return
        try:
            with open(self._path, encoding="utf-8") as f:
                loaded = json.load(f)
            if isinstance(loaded, dict):
                self._rules = loaded
        except (OSError, ValueError) as e:
            print(f"slowfs: ignoring unreadable rules: {e}", file=sys.stderr, flush=True)

    def named(self, path):
        """True if `path` (relative, no leading slash) appears in the rules."""
        with self._lock:
            self._reload_locked()
            return path in self._rules

    def fault(self, op, path, offset=0, size=0):
        """Returns (delay_seconds, errno_or_0) for this call, counting it."""
        with self._lock:
            self._reload_locked()
            rule = self._rules.get(path, {}).get(op)
            if not rule:
                return 0.0, 0
            if op == "read" and offset < int(rule.get("min_offset", 0)):
                return 0.0, 0
            n = self._counts.get((path, op), 0)
            self._counts[(path, op)] = n + 1
            skip = int(rule.get("skip", 0))
            if n < skip:
                return 0.0, 0
            times = rule.get("times")
            if times is not None and n >= skip + int(times):
                return 0.0, 0
            err = rule.get("error")
            code = getattr(errno, err, errno.EIO) if err else 0
            return float(rule.get("delay", 0)), code

    def log(self, line):
        with self._lock:
            with open(self._log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


class SlowFs(fusepy.Operations):
    """Read-only passthrough with injected delays and errors."""

    def __init__(self, backing, rules):
        self._backing = os.path.realpath(backing)
        self._rules = rules

    def _real(self, path):
        return self._backing + path

    def _faulted(self, op, path, offset=0, size=0):
        """Applies the rule for this call; raises FuseOSError for an error."""
        name = path.lstrip("/")
        if not self._rules.named(name):
            return None
        delay, code = self._rules.fault(op, name, offset, size)
        if delay <= 0 and not code:
            return None
        fault = f"delay={delay:g}" + (f",{errno.errorcode[code]}" if code else "")
        self._rules.log(f"{op} {name} begin {fault} offset={offset}")
        if delay > 0:
            time.sleep(delay)
        if code:
            self._rules.log(f"{op} {name} end {fault}")
            raise fusepy.FuseOSError(code)
        return lambda: self._rules.log(f"{op} {name} end {fault}")

    def getattr(self, path, fh=None):
        done = self._faulted("getattr", path)
        st = os.lstat(self._real(path))
        if done:
            done()
        keys = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime",
                "st_mtime", "st_ctime")
        attrs = {k: getattr(st, k) for k in keys}
        for k in ("st_atime", "st_mtime", "st_ctime"):
            attrs[k] = getattr(st, k + "_ns") / 1e9
        return attrs

    def readdir(self, path, fh):
        done = self._faulted("readdir", path)
        names = [".", ".."] + os.listdir(self._real(path))
        if done:
            done()
        return names

    def readlink(self, path):
        return os.readlink(self._real(path))

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise fusepy.FuseOSError(errno.EROFS)
        done = self._faulted("open", path)
        fd = os.open(self._real(path), os.O_RDONLY)
        if done:
            done()
        return fd

    def read(self, path, size, offset, fh):
        done = self._faulted("read", path, offset, size)
        data = os.pread(fh, size, offset)
        if done:
            done()
        return data

    def release(self, path, fh):
        os.close(fh)
        return 0

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    backing, mountpoint, control = sys.argv[1:]
    fusepy.FUSE(SlowFs(backing, Rules(control)), mountpoint, foreground=True, nothreads=False,
                ro=True, direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0,
                fsname="slowfs", subtype="slowfs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
