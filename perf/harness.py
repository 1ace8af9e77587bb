"""Shared pieces of perf/compare and perf/flamegraph: the build, the corpus,
starting and stopping sluice and the anchors (nginx, lighttpd, h2o), checking
them with curl, wrk runs, /proc readings and the CPU cap.

Standard library only. Every process started here is remembered by PID and
stopped by that PID; all traffic goes to 127.0.0.0/8; every wait is bounded.
"""
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PERF = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PERF)
OUT = os.path.join(PERF, "out")
CORPUS = os.path.join(OUT, "corpus")
LOGS = os.path.join(OUT, "logs")
RUN = os.path.join(OUT, "run")
SLUICE = os.path.join(REPO, "build", "release", "sluice")
NGINX = "/usr/sbin/nginx"
NGINX_TEMPLATE = os.path.join(PERF, "nginx.conf.in")

# The servers sluice is measured against ("anchors"), in report order: the
# binary, the Debian package that has it, the configuration template
# (perf/NAME.conf.in), how many processes it runs (nginx: a master that stays
# root and one worker that serves; the others: one process), and the flag
# that prints its version.
ANCHORS = {
    "nginx": dict(binary=NGINX, package="nginx-light", template=NGINX_TEMPLATE,
                  processes=2, version_flag="-v"),
    "lighttpd": dict(binary="/usr/sbin/lighttpd", package="lighttpd",
                     template=os.path.join(PERF, "lighttpd.conf.in"), processes=1,
                     version_flag="-v"),
    "h2o": dict(binary="/usr/bin/h2o", package="h2o",
                template=os.path.join(PERF, "h2o.conf.in"), processes=1, version_flag="-v"),
}
KINDS = ["sluice"] + list(ANCHORS)
# The unprivileged user every server serves as (sluice's default as root;
# nginx's, lighttpd's and h2o's workers are told so by their configuration).
SERVE_USER = ("nobody", "nogroup")
WRK_DIR = os.path.join(PERF, "wrk")
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVER_CPU = 0  # taskset CPU of the server under test
CLIENT_CPU = 1  # taskset CPU of wrk and the idle client

# The corpus. Bump CORPUS_VERSION whenever the layout or content changes.
CORPUS_VERSION = 1
MANY_FILES = 10000
MANY_PER_DIR = 100
FILES = {  # URL path → size in bytes
    "/1k.html": 1024,
    "/64k.jpg": 64 * 1024,
    "/16m.bin": 16 * 1024 * 1024,
}
MISSING = "/no/such/file.html"
# The `rules` scenario's site (perf/sluice.rules.toml.in) and its 404 page,
# written beside the corpus on every run (not in the manifest).
RULES_HOST = "www.example.test"
ERROR_PAGE = "/404.html"
ERROR_PAGE_BODY = b"<!doctype html><title>Not found</title><h1>Not found</h1>\n"


def many_path(i):
    """Same naming as perf/wrk/many.lua."""
    return f"/many/d{i // MANY_PER_DIR:02d}/f{i:05d}.html"


class Failure(Exception):
    """A server or tool misbehaved: the run that saw it yields no number."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- tools --

REQUIRED_TOOLS = {  # program → Debian package
    "wrk": "wrk",
    "curl": "curl",
    "taskset": "util-linux",
    "cmake": "cmake",
}


def check_tools(extra=None):
    """Exits with the apt-get command when something is missing; installs nothing."""
    tools = dict(REQUIRED_TOOLS)
    tools.update(extra or {})
    missing = sorted({pkg for prog, pkg in tools.items()
                      if (shutil.which(prog) if "/" not in prog else
                          (prog if os.access(prog, os.X_OK) else None)) is None})
    if missing:
        log("perf: missing tools. Install them with:\n"
            f"  apt-get update && apt-get install -y {' '.join(missing)}")
        services = [p for p in missing if p in ("lighttpd", "h2o")]
        if services:
            log("then stop their own services (perf/compare starts its own servers):\n"
                f"  systemctl disable --now {' '.join(services)}\n"
                f"(or: SLUICE_EXTRA_PACKAGES=\"{' '.join(missing)}\" scripts/deps, which does both)")
        sys.exit(2)
    if (os.cpu_count() or 1) < 2:
        log("perf: needs two CPUs (server on CPU 0, client on CPU 1)")
        sys.exit(2)


def build_release(skip=False):
    if skip and os.access(SLUICE, os.X_OK):
        return
    for cmd in (["cmake", "--preset", "release"], ["cmake", "--build", "--preset", "release"]):
        log("perf: " + " ".join(cmd))
        r = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=1800)
        if r.returncode != 0:
            log(r.stdout[-4000:])
            sys.exit(f"perf: {' '.join(cmd)} failed")


def nofile_limit():
    """The RLIMIT_NOFILE hard limit: the most descriptors a server can get."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


def raise_nofile(need=200000):
    """Raises this process's RLIMIT_NOFILE (children inherit it): to need, or
    to the hard limit where that is lower and cannot be raised (a container
    without CAP_SYS_RESOURCE)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            need = hard
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


# --------------------------------------------------------------- corpus --

def _content(name, size):
    # SHAKE-256 of a fixed seed and the file's name: the same bytes on every
    # machine and Python version, different bytes in every file.
    return hashlib.shake_256(f"sluice-perf-corpus-v{CORPUS_VERSION}:{name}".encode()).digest(size)


def corpus_spec():
    spec = dict(FILES)
    for i in range(MANY_FILES):
        spec[many_path(i)] = 4096
    return spec


def _write_error_page():
    """The `rules` site's 404 page (its error_pages names it)."""
    path = os.path.join(CORPUS, ERROR_PAGE.lstrip("/"))
    try:
        with open(path, "rb") as f:
            if f.read() == ERROR_PAGE_BODY:
                return
    except OSError:
        pass
    with open(path, "wb") as f:
        f.write(ERROR_PAGE_BODY)


def make_corpus():
    """Writes perf/out/corpus once; returns the manifest {path: [size, sha256]}."""
    files = _make_corpus_files()
    _write_error_page()
    return files


def _make_corpus_files():
    manifest_path = os.path.join(OUT, "corpus.json")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("version") == CORPUS_VERSION and all(
                os.path.getsize(os.path.join(CORPUS, p.lstrip("/"))) == size
                for p, (size, _) in manifest["files"].items()):
            return manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log(f"perf: writing the corpus to {CORPUS}")
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    files = {}
    for path, size in corpus_spec().items():
        data = _content(path, size)
        full = os.path.join(CORPUS, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        files[path] = [size, hashlib.sha256(data).hexdigest()]
    with open(os.path.join(CORPUS, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>sluice perf corpus</title>\n")
    with open(manifest_path, "w") as f:
        json.dump({"version": CORPUS_VERSION, "files": files}, f)
    return files


# ---------------------------------------------------------------- /proc --

def proc_cpu_ticks(pid):
    """utime + stime of the whole process (every thread, live or exited), in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def cpu_times():
    """{cpu index: (busy, total)} in ticks from /proc/stat; busy leaves out
    idle and iowait (io_uring waits may show as iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals]
                total = sum(vals[:8])  # guest time is already in user
                out[int(name[3:])] = (total - vals[3] - vals[4], total)
    return out


def busy_pct(before, after, cpu):
    (b0, t0), (b1, t1) = before[cpu], after[cpu]
    return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else None


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise Failure(f"no {key} in /proc/{pid}/status")


def proc_fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_tree(pid):
    """pid and every process descended from it (nginx: master and worker)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # Gone meanwhile.
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])

    def version(cmd):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=10)
            return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": os.uname().release,
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": load,
        "sluice": version([SLUICE, "--version"]),
        **{name: version([a["binary"], a["version_flag"]]) for name, a in ANCHORS.items()},
        "wrk": version(["wrk", "-v"]).split(" Copyright")[0],
        "git": version(["git", "-C", REPO, "describe", "--always", "--dirty"]),
    }


# -------------------------------------------------------------- servers --

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """sluice or an anchor (its processes: nginx has two), pinned to
    SERVER_CPU, on 127.0.0.1:port. Serves as SERVE_USER unless privileged."""

    def __init__(self, kind, root=CORPUS, tag="run", extra_args=(), privileged=False,
                 config=None):
        assert kind in KINDS
        self.kind = kind
        # A named configuration (the `rules` scenario): sluice gets
        # --config=perf/sluice.CONFIG.toml.in filled in, an anchor
        # perf/KIND.CONFIG.conf.in instead of its plain template when there
        # is one (has_config() says whether it had one).
        self.config = config
        self.root = root
        self.tag = tag
        self.extra_args = list(extra_args)
        self.privileged = privileged
        self.proc = None
        self.port = None
        self.tmp = None
        self.log_path = None
        self.log_file = None

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def has_config(self):
        """True if the named configuration applies to this server."""
        return self.config is not None and os.path.exists(config_template(self.kind, self.config))

    def _command(self):
        pin = ["taskset", "-c", str(SERVER_CPU)]
        if self.kind == "sluice":
            # As root sluice drops to nobody after binding; --user=root keeps root.
            return pin + [SLUICE, "--threads=1", f"--root={self.root}",
                          f"--listen=127.0.0.1:{self.port}"] + \
                (["--user=root"] if self.privileged else []) + \
                ([f"--config={self._write_config()}"] if self.config else []) + self.extra_args
        conf = self._write_config()
        binary = ANCHORS[self.kind]["binary"]
        if self.kind == "nginx":
            return pin + [binary, "-p", self.tmp, "-e", os.path.join(self.tmp, "error.log"),
                          "-c", conf]
        if self.kind == "lighttpd":
            return pin + [binary, "-D", "-f", conf]
        return pin + [binary, "-m", "worker", "-c", conf]

    def _write_config(self):
        """Fills in perf/KIND.conf.in into a fresh directory; returns its path."""
        os.makedirs(RUN, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f"{self.kind}-{self.port}-", dir=RUN)
        user, group = ("root", "root") if self.privileged else SERVE_USER
        if os.geteuid() == 0:
            # lighttpd and h2o write their error log and pid file after the switch.
            os.chmod(self.tmp, 0o755)
            os.chown(self.tmp, pwd.getpwnam(user).pw_uid, -1)
        template = config_template(self.kind, self.config) if self.has_config() else \
            ANCHORS[self.kind]["template"]
        with open(template) as f:
            conf = f.read()
        if self.privileged:  # lighttpd refuses server.username = "root".
            conf = re.sub(r"(?ms)^#@UNPRIVILEGED$.*?^#@END$", "", conf)
        values = {
            "ROOT": self.root,
            "PORT": str(self.port),
            "TMP": self.tmp,
            "USER": user,
            "GROUP": group,
            "MIME_TYPES": "/etc/nginx/mime.types",
            "MAX_FDS": str(nofile_limit()),
            "MAX_CONNS": str(min(65535, nofile_limit() // 2)),
        }
        for key, value in values.items():
            conf = conf.replace(f"@{key}@", value)
        if "@" in re.sub(r"#.*", "", conf):
            raise Failure(f"{self.kind}.conf.in has a placeholder left")
        path = os.path.join(self.tmp, f"{self.kind}.{'toml' if self.kind == 'sluice' else 'conf'}")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def pids(self):
        """The server's processes: the one started and those of its
        descendants that run the same program (nginx's worker; not h2o's
        crash handler, a perl process that only waits for a backtrace)."""
        binary = os.path.realpath(SLUICE if self.kind == "sluice" else ANCHORS[self.kind]["binary"])
        pids = []
        for p in process_tree(self.proc.pid):
            try:
                if os.readlink(f"/proc/{p}/exe") == binary:
                    pids.append(p)
            except OSError:
                pass  # Gone, or a zombie.
        return pids

    def cpu_ticks(self):
        """utime + stime of all the server's processes (see proc_cpu_ticks)."""
        return sum(proc_cpu_ticks(p) for p in self.pids())

    def status_kib(self, key):
        """A /proc/PID/status figure (VmRSS, VmHWM) summed over the processes."""
        return sum(proc_status_kib(p, key) for p in self.pids())

    def fd_count(self):
        return sum(proc_fd_count(p) for p in self.pids())

    def _wait_processes(self, timeout=5.0):
        """nginx's master forks its worker after it listens: wait for it."""
        want = ANCHORS.get(self.kind, {}).get("processes", 1)
        deadline = time.monotonic() + timeout
        while len(self.pids()) < want:
            if time.monotonic() > deadline or not self.alive():
                raise Failure(f"{self.kind}: {len(self.pids())} of {want} processes")
            time.sleep(0.05)

    def start(self):
        os.makedirs(LOGS, exist_ok=True)
        for attempt in range(5):  # Another program may take the port meanwhile.
            self.port = free_port()
            self.log_path = os.path.join(LOGS, f"{self.kind}-{self.tag}.log")
            self.log_file = open(self.log_path, "w")
            # taskset execs the server: this PID is the server's.
            self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                         stdout=self.log_file, stderr=subprocess.STDOUT,
                                         cwd=REPO)
            if _wait_listening(self.port, self.proc):
                self._wait_processes()
                return self
            self.stop()
            with open(self.log_path) as f:
                text = f.read()
            if "in use" not in text:
                raise Failure(f"{self.kind} did not start:\n{text[-2000:]}")
        raise Failure(f"{self.kind}: no free port after 5 tries")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log_file:
            self.log_file.close()
            self.log_file = None
        if self.tmp and os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def config_template(kind, config):
    """perf/sluice.CONFIG.toml.in, perf/ANCHOR.CONFIG.conf.in."""
    ext = "toml" if kind == "sluice" else "conf"
    return os.path.join(PERF, f"{kind}.{config}.{ext}.in")


# ------------------------------------------------------------ curl check --

def curl_check(server, path, manifest, status=200, headers=(), want_header=None):
    """Fetches path with curl and checks status, Content-Length and the body's
    sha256 against the manifest (or, for an error, that a body of the stated
    length came). Raises Failure with what was wrong."""
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        body_path = os.path.join(tmp, "body")
        head_path = os.path.join(tmp, "head")
        cmd = ["curl", "-sS", "--http1.1", "--max-time", "30", "-o", body_path,
               "-D", head_path, "-w", "%{http_code}"]
        for h in headers:
            cmd += ["-H", h]
        cmd.append(server.url(path))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        where = f"{server.kind} GET {path}"
        if r.returncode != 0:
            raise Failure(f"{where}: curl exit {r.returncode}: {r.stderr.strip()}")
        if r.stdout.strip() != str(status):
            raise Failure(f"{where}: status {r.stdout.strip()}, expected {status}")
        with open(head_path, "rb") as f:
            head = f.read().decode("latin-1")
        fields = {}
        for line in head.split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                fields.setdefault(name.strip().lower(), []).append(value.strip())
        lengths = fields.get("content-length", [])
        if len(lengths) != 1:
            raise Failure(f"{where}: Content-Length fields {lengths}")
        with open(body_path, "rb") as f:
            body = f.read()
        if int(lengths[0]) != len(body):
            raise Failure(f"{where}: Content-Length {lengths[0]} but {len(body)} body bytes")
        if status == 200:
            size, digest = manifest[path]
            if len(body) != size or hashlib.sha256(body).hexdigest() != digest:
                raise Failure(f"{where}: body differs from the file ({len(body)} of {size} bytes)")
        if want_header:
            name, value = want_header
            if not any(v.lower() == value.lower() for v in fields.get(name.lower(), [])):
                raise Failure(f"{where}: no '{name}: {value}' in the response")


# ------------------------------------------------------------ scenarios --

# name → what it asks for: the URL path wrk loads (many.lua picks its own
# paths), connections, extra request headers, the wrk script, the status
# every response must have, and "checks": the paths curl checks before
# (and after) every measured run, when not just "path".
SCENARIOS = {
    "small": dict(path="/1k.html", conns=100, what="1 KiB file, keep-alive"),
    "medium": dict(path="/64k.jpg", conns=50, what="64 KiB file, keep-alive"),
    "large": dict(path="/16m.bin", conns=8, what="16 MiB file, keep-alive"),
    "close": dict(path="/1k.html", conns=50, headers=["Connection: close"],
                  what="1 KiB file, Connection: close on every request"),
    "many": dict(path="/", conns=100, script="many.lua",
                 script_args=[str(MANY_FILES), "1"],
                 checks=[many_path(i) for i in (0, 1, 4242, 7777, MANY_FILES - 1)],
                 what="random 4 KiB file among 10,000 (seeded), keep-alive"),
    "notfound": dict(path=MISSING, conns=100, status=404, what="404 for a missing file"),
    # The same request twice: with no configuration file (every server as in
    # `small`), then with the realistic one of three sites and ten rules
    # (perf/sluice.rules.toml.in; nginx: nginx.rules.conf.in; lighttpd and
    # h2o have no rules template and serve it plainly). `rules` brings
    # `rules-base` along, so the cost of the rules is read in one run.
    "rules-base": dict(path="/1k.html", conns=100, headers=[f"Host: {RULES_HOST}"],
                       what=f"1 KiB file, keep-alive, Host: {RULES_HOST}, no configuration file"),
    "rules": dict(path="/1k.html", conns=100, headers=[f"Host: {RULES_HOST}"], config="rules",
                  want_header=("Content-Security-Policy", "default-src 'self'"),
                  what=f"as rules-base, with 3 sites and 10 rules (5 match the request)"),
    "idle": dict(path="/1k.html", conns=5000,
                 what="5,000 keep-alive connections arriving 200 at a time, one request "
                      "each, then idle: RSS per connection"),
}


def checks_for(name, manifest, server):
    s = SCENARIOS[name]
    status = s.get("status", 200)
    headers = s.get("headers", [])
    want = ("Connection", "close") if name == "close" else None
    if server.has_config():
        want = s.get("want_header")  # The rules did apply.
    for path in s.get("checks", [s["path"]]):
        curl_check(server, path, manifest, status=status, headers=headers, want_header=want)


def wrk_options(name):
    """run_wrk keyword arguments of a load scenario (besides url, conns, duration)."""
    s = SCENARIOS[name]
    return dict(script=s.get("script", "report.lua"), script_args=s.get("script_args", ()),
                headers=s.get("headers", ()))


# ------------------------------------------------------------------ wrk --

def run_wrk(url, connections, duration, script="report.lua", script_args=(), headers=(),
            log_path=None, timeout_s=10):
    cmd = ["taskset", "-c", str(CLIENT_CPU), "wrk", "-t1", f"-c{connections}",
           f"-d{duration}s", "--latency", f"--timeout={timeout_s}s",
           "-s", os.path.join(WRK_DIR, script)]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + list(script_args)
    env = dict(os.environ, LUA_PATH=os.path.join(WRK_DIR, "?.lua") + ";;")
    t0 = os.times()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env, timeout=duration + 60)
    t1 = os.times()
    if log_path:
        with open(log_path, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + r.stdout + "\n")
    m = re.search(r"^SLUICE_PERF_JSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise Failure(f"wrk failed (exit {r.returncode}):\n{r.stdout[-2000:]}")
    result = json.loads(m.group(1))
    # wrk's own CPU seconds (user + system): the child reaped in between.
    result["client_cpu_s"] = (t1.children_user + t1.children_system -
                       t0.children_user - t0.children_system)
    return result


# -------------------------------------------------------------- CPU cap --

class CpuCap:
    """A CPU bandwidth cap (CFS quota) for one process and all its threads.

    cgroup v2 with the cpu controller (cpu.max) when the machine has it;
    else the cgroup v1 cpu controller (cpu.cfs_quota_us), which is the same
    kernel mechanism; else unavailable (self.reason says why). The cgroup is
    created per process and removed afterwards."""

    def __init__(self, quota_us=50000, period_us=100000):
        self.quota_us = quota_us
        self.period_us = period_us
        self.kind = None
        self.base = None
        self.reason = ""
        self.dirs = []
        self._detect()

    @staticmethod
    def _mounts():
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fstype, _source, options = (right.split() + ["", "", ""])[:3]
                yield left.split()[4], fstype, options

    def _detect(self):
        v2_notes = []
        for mount, fstype, _ in self._mounts():
            if fstype != "cgroup2":
                continue
            try:
                with open(os.path.join(mount, "cgroup.controllers")) as f:
                    controllers = f.read().split()
            except OSError:
                continue
            if "cpu" in controllers:
                self.kind, self.base = "cgroup v2 cpu.max", mount
                return
            v2_notes.append(f"{mount} has controllers [{' '.join(controllers)}]")
        v2_note = ("cgroup v2 has no cpu controller here (" + "; ".join(v2_notes) + ")"
                   if v2_notes else "no cgroup v2 mount")
        for mount, fstype, options in self._mounts():
            if fstype == "cgroup" and "cpu" in options.split(",") and \
                    os.path.exists(os.path.join(mount, "cpu.cfs_quota_us")):
                self.kind, self.base = "cgroup v1 cpu.cfs_quota_us", mount
                self.reason = v2_note + f"; using the v1 cpu controller at {mount}"
                return
        self.reason = v2_note + "; no cgroup v1 cpu controller either"

    @property
    def available(self):
        return self.kind is not None

    def describe(self):
        share = self.quota_us / self.period_us
        if not self.available:
            return "unavailable: " + self.reason
        text = f"{share:.2f} CPU via {self.kind} (quota {self.quota_us} µs per {self.period_us} µs)"
        return text + (f" [{self.reason}]" if self.reason else "")

    def attach(self, pids):
        """Creates a cgroup, caps it and moves the processes (every thread)
        into it; pids is one PID or a list (nginx: master and worker)."""
        pids = [pids] if isinstance(pids, int) else list(pids)
        pid = pids[0]
        if not self.available:
            raise Failure("CPU cap unavailable: " + self.reason)
        path = os.path.join(self.base, f"sluice-perf-{os.getpid()}-{pid}")
        os.mkdir(path)
        self.dirs.append(path)
        if self.kind.startswith("cgroup v2"):
            with open(os.path.join(self.base, "cgroup.subtree_control")) as f:
                enabled = f.read().split()
            if "cpu" not in enabled:
                with open(os.path.join(self.base, "cgroup.subtree_control"), "w") as f:
                    f.write("+cpu")
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write(f"{self.quota_us} {self.period_us}")
        else:
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write(str(self.period_us))
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(self.quota_us))
        for p in pids:  # One PID per write.
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(p))
        return path

    def throttled(self, path):
        """(periods, throttled periods) from the cgroup's cpu.stat."""
        stats = {}
        try:
            with open(os.path.join(path, "cpu.stat")) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    stats[k] = int(v)
        except (OSError, ValueError):
            pass
        return stats.get("nr_periods", 0), stats.get("nr_throttled", 0)

    def release(self):
        """Moves any process left back to the root and removes the cgroups."""
        for path in self.dirs:
            for _ in range(50):
                try:
                    with open(os.path.join(path, "cgroup.procs")) as f:
                        pids = [p for p in f.read().split() if p]
                    for p in pids:
                        with open(os.path.join(self.base, "cgroup.procs"), "w") as f:
                            f.write(p)
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log(f"perf: could not remove {path}")
        self.dirs = []


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
