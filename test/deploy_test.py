#!/usr/bin/env python3
"""Checks the deployment files in docker/ and deploy/ without a container engine.

Usage: test/deploy_test.py PATH/TO/sluice

What needs no Docker, Kubernetes or running systemd is checked for real: the
seccomp profiles parse, allow io_uring, and (loaded with libseccomp) let the
binary start, serve and drain; the YAML files parse and agree with each other
and with the flags; every flag they name exists; the Dockerfile copies only
what exists and builds with scripts/setup; `systemd-analyze verify` accepts the
unit; the example flagfiles start the real binary, which serves / and exits 0
on SIGTERM; the image's health check script tells a live server from a dead one.

Needs Debian's python3-yaml, python3-seccomp and systemd (systemd-analyze). A
missing one is a failure that names the package, never a skip. Those modules
live in /usr/bin/python3's dist-packages; another python3 first on PATH (pyenv,
a venv) re-executes this script with /usr/bin/python3.
"""
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent


def _maybe_reexec():
    try:
        import yaml  # noqa: F401
        import seccomp  # noqa: F401
        return
    except ImportError:
        pass
    system = "/usr/bin/python3"
    if (os.environ.get("SLUICE_DEPLOY_TEST_REEXEC") or not os.path.exists(system)
            or os.path.realpath(sys.executable) == os.path.realpath(system)):
        return
    os.environ["SLUICE_DEPLOY_TEST_REEXEC"] = "1"
    os.execv(system, [system, __file__] + sys.argv[1:])


_maybe_reexec()

try:
    import yaml
except ImportError:
    yaml = None
try:
    import seccomp
except ImportError:
    seccomp = None


class Failure(Exception):
    pass


def require(cond, message):
    if not cond:
        raise Failure(message)


def need_yaml():
    require(yaml is not None, "PyYAML is missing: install the Debian package python3-yaml")


def load_yaml(rel):
    need_yaml()
    path = REPO / rel
    require(path.exists(), f"{rel} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise Failure(f"{rel} does not parse: {e}")


def load_yaml_docs(rel):
    need_yaml()
    try:
        return [d for d in yaml.safe_load_all((REPO / rel).read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise Failure(f"{rel} does not parse: {e}")


# ---------------------------------------------------------------- flags ----

def flag_lines(text):
    """The active --flag=value lines of an abseil flagfile."""
    return [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]


def flag_value(lines, name, default=None):
    value = default
    for line in lines:
        if line.startswith(f"--{name}="):
            value = line.split("=", 1)[1]
    return value


def mentioned_flags(text):
    """Every flag set on a line of its own, commented out ("# --threads=4") or not."""
    return set(re.findall(r"^\s*(?:#\s*)?--([a-z][a-z0-9_]*)", text, re.M))


def duration_seconds(text):
    """An abseil duration such as 10s, 1m30s, 500ms, or a systemd time span."""
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|ms|us|ns|m|s)", text.replace(" ", ""))
    require(parts and "".join(n + u for n, u in parts) == text.replace(" ", ""),
            f"cannot parse duration {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


DEFAULT_DRAIN = "10s"
DEFAULT_DRAIN_DELAY = "5s"
_known_flags = None


def known_flags(binary):
    global _known_flags
    if _known_flags is None:
        out = subprocess.run([binary, "--helpfull"], capture_output=True, text=True, timeout=30)
        _known_flags = set(re.findall(r"^\s+--([a-z][a-z0-9_]*)", out.stdout + out.stderr, re.M))
        _known_flags |= {"flagfile", "helpfull", "help", "version"}
        require("root" in _known_flags and "listen" in _known_flags,
                "could not read the flag list from `sluice --helpfull`")
    return _known_flags


def configmap_flags_text():
    docs = load_yaml_docs("deploy/kubernetes/configmap.yaml")
    cms = [d for d in docs if d.get("kind") == "ConfigMap"]
    require(len(cms) == 1, "configmap.yaml should hold one ConfigMap")
    data = cms[0].get("data") or {}
    require("sluice.flags" in data, "the ConfigMap has no sluice.flags key")
    return cms[0]["metadata"]["name"], data["sluice.flags"]


# -------------------------------------------------------------- running ----

class Server:
    """The real binary, started with the given flags; stderr collected."""

    def __init__(self, binary, args, preexec_fn=None):
        self.proc = subprocess.Popen([binary] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=preexec_fn)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def log(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_listening(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            if exited:
                self.reader.join(5)
            m = re.search(r"listening on (\S+) ", self.log())
            if m:
                host, port = m.group(1).rsplit(":", 1)
                return host, int(port)
            if exited:
                raise Failure(f"sluice exited with {self.proc.returncode} before listening:\n"
                              + self.log())
            if time.monotonic() > deadline:
                raise Failure(f"no 'listening on' line within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"sluice did not exit within {timeout}s of SIGTERM:\n{self.log()}")
        self.reader.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def http_get(host, port, path, headers=None):
    host = host.strip("[]")
    url_host = f"[{host}]" if ":" in host else host
    req = urllib.request.Request(f"http://{url_host}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def run_serving(binary, args, during=None, preexec_fn=None, after_term=None):
    """Starts sluice, checks that GET / returns www/index.html, runs `during`,
    then expects SIGTERM to drain and exit 0; `after_term` runs right after
    the SIGTERM. Without a flagfile, no drain delay (--drain_delay=0s)."""
    if not any(a.startswith(("--flagfile", "--drain_delay")) for a in args):
        args = args + ["--drain_delay=0s"]
    server = Server(binary, args, preexec_fn)
    try:
        host, port = server.wait_listening()
        status, _, body = http_get(host, port, "/")
        require(status == 200, f"GET / answered {status}")
        require(body == (REPO / "www" / "index.html").read_bytes(),
                "GET / did not return www/index.html")
        if during:
            during(host, port)
        if after_term:
            server.proc.send_signal(signal.SIGTERM)
            after_term(host, port)
        rc = server.stop()
        require(rc == 0, f"exit status {rc} after SIGTERM, expected 0:\n{server.log()}")
    finally:
        server.kill()


# ---------------------------------------------------------------- checks ----

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


IO_URING = {"io_uring_setup", "io_uring_enter", "io_uring_register"}


@check
def docker_seccomp_profile(binary):
    """docker/seccomp.json: Docker's format, deny by default, io_uring allowed."""
    path = REPO / "docker" / "seccomp.json"
    try:
        prof = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Failure(f"docker/seccomp.json does not parse: {e}")
    require(prof.get("defaultAction") == "SCMP_ACT_ERRNO",
            f"defaultAction is {prof.get('defaultAction')!r}, expected SCMP_ACT_ERRNO")
    arches = {a["architecture"] for a in prof.get("archMap", [])}
    require({"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"} <= arches,
            "archMap lacks x86_64 or aarch64")
    allowed = set()
    for rule in prof["syscalls"]:
        if (rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args")
                and not rule.get("includes") and not rule.get("excludes")):
            allowed.update(rule["names"])
    require(IO_URING <= allowed, f"not allowed unconditionally: {sorted(IO_URING - allowed)}")
    require(len(allowed) > 300, f"only {len(allowed)} syscalls allowed: not Docker's default list")
    require((REPO / "docker" / "seccomp.md").exists(),
            "docker/seccomp.md (where the list came from) is missing")


@check
def kubernetes_seccomp_profile(binary):
    """deploy/kubernetes/seccomp/sluice.json: OCI format, generated from docker/seccomp.json."""
    gen = REPO / "deploy" / "kubernetes" / "seccomp" / "generate.py"
    out = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True)
    require(out.returncode == 0, (out.stdout + out.stderr).strip() or "generate.py --check failed")
    prof = json.loads((gen.parent / "sluice.json").read_text())
    require(prof.get("defaultAction") == "SCMP_ACT_ERRNO", "defaultAction is not SCMP_ACT_ERRNO")
    require({"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"} <= set(prof.get("architectures", [])),
            "architectures lack x86_64 or aarch64")
    for rule in prof["syscalls"]:
        require(not {"includes", "excludes"} & rule.keys(),
                "conditional rules left in an OCI profile: runtimes would ignore the conditions")
    allowed = {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
               for n in r["names"]}
    require(IO_URING <= allowed, f"not allowed: {sorted(IO_URING - allowed)}")
    for name in ("mount", "unshare", "setns", "bpf", "kexec_load", "init_module"):
        require(name not in allowed, f"{name} is allowed, but the pod has no capabilities")


def seccomp_preexec(profile, drop=()):
    """A preexec_fn that loads an OCI seccomp profile as runc would, then execs."""
    ops = {"SCMP_CMP_EQ": "EQ", "SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE",
           "SCMP_CMP_GT": "GT", "SCMP_CMP_GE": "GE", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}
    arch_names = {"SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X32": "X32",
                  "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_ARM": "ARM"}
    default_errno = profile.get("defaultErrnoRet", 1)
    require(profile["defaultAction"] == "SCMP_ACT_ERRNO", "unexpected defaultAction")
    f = seccomp.SyscallFilter(seccomp.ERRNO(default_errno))
    native = seccomp.system_arch()
    for a in profile["architectures"]:
        arch = getattr(seccomp.Arch, arch_names[a])
        if arch & 0xFFFFFFFF != native & 0xFFFFFFFF:  # the filter has the native one already
            f.add_arch(arch)
    for rule in profile["syscalls"]:
        if rule["action"] == "SCMP_ACT_ALLOW":
            action = seccomp.ALLOW
        elif rule["action"] == "SCMP_ACT_ERRNO":
            action = seccomp.ERRNO(rule.get("errnoRet", default_errno))
        else:
            raise Failure(f"unexpected action {rule['action']}")
        args = [seccomp.Arg(a["index"], getattr(seccomp, ops[a["op"]]), a["value"],
                            a.get("valueTwo", 0)) for a in rule.get("args") or []]
        for name in rule["names"]:
            if name in drop:
                continue
            try:
                seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            except (ValueError, RuntimeError):
                continue  # unknown on this architecture: runc skips it too
            f.add_rule(action, name, *args)
    return f.load


@check
def seccomp_profile_runs_sluice(binary):
    """Under the generated profile sluice serves and drains; without io_uring it exits 3."""
    require(seccomp is not None,
            "python3-seccomp is missing: install the Debian package python3-seccomp")
    prof = json.loads((REPO / "deploy/kubernetes/seccomp/sluice.json").read_text())
    args = ["--listen=127.0.0.1:0", f"--root={REPO / 'www'}", "--threads=2"]
    run_serving(binary, args, preexec_fn=seccomp_preexec(prof))
    blocked = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30,
                             preexec_fn=seccomp_preexec(prof, drop=IO_URING))
    require(blocked.returncode == 3,
            f"with io_uring blocked: exit {blocked.returncode}, expected 3:\n{blocked.stderr}")
    lines = [l for l in blocked.stderr.splitlines() if "ERROR" in l]
    require(len(lines) == 1 and "seccomp" in lines[0],
            f"expected one ERROR line naming seccomp, got:\n{blocked.stderr}")


@check
def dockerfile(binary):
    """Build stage runs scripts/setup; COPY sources exist; runtime is slim, non-root."""
    text = (REPO / "docker" / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    lines = [l.strip() for l in logical.splitlines() if l.strip() and not l.strip().startswith("#")]
    stages, current = [], None
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            current = {"from": rest.split()[0], "lines": []}
            stages.append(current)
        elif current is not None:
            current["lines"].append((word, rest.strip()))
    require(len(stages) >= 2, "expected a multi-stage build")
    build, runtime = stages[0], stages[-1]
    require(build["from"] == "debian:12", f"build stage is FROM {build['from']}, not debian:12")
    require(any(w == "RUN" and re.search(r"(^|[\s;&/])scripts/setup\b", r)
                for w, r in build["lines"]), "the build stage does not run scripts/setup")
    require(runtime["from"] == "debian:12-slim", f"runtime is FROM {runtime['from']}")
    for stage in stages:
        for word, rest in stage["lines"]:
            if word not in ("COPY", "ADD"):
                continue
            parts = shlex.split(rest)
            if any(p.startswith("--from") for p in parts):
                continue
            parts = [p for p in parts if not p.startswith("--")]
            for src in parts[:-1]:
                require((REPO / src).exists(), f"COPY source {src} does not exist in the repo")
    rt = dict()
    for word, rest in runtime["lines"]:
        rt.setdefault(word, []).append(rest)
    user = rt.get("USER", ["root"])[-1].split(":")[0]
    require(user.isdigit() and int(user) != 0, f"runtime USER {user!r} is not a numeric non-root id")
    require("8080" in " ".join(rt.get("EXPOSE", [])), "EXPOSE 8080 missing")
    require("HEALTHCHECK" in rt, "no HEALTHCHECK")
    entry = json.loads(rt.get("ENTRYPOINT", ["[]"])[-1])
    require("--root=/srv/www" in entry and "--listen=0.0.0.0:8080" in entry,
            f"ENTRYPOINT {entry} does not serve /srv/www on 0.0.0.0:8080")
    unknown = {a[2:].split("=")[0] for a in entry if a.startswith("--")} - known_flags(binary)
    require(not unknown, f"ENTRYPOINT uses unknown flags {sorted(unknown)}")
    require(any(re.search(r"\bwww/?\s+/srv/www", r) for r in rt.get("COPY", [])),
            "www/ is not copied to /srv/www")
    ignore = (REPO / ".dockerignore").read_text().split()
    require(any(p.strip("/") == "build" for p in ignore), ".dockerignore does not exclude build/")
    # The runtime stage must install the package of every library the binary links.
    installs = " ".join(r for r in rt.get("RUN", []) if "apt-get install" in r)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = re.findall(r"=> (/\S+)", ldd)
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    for lib, pkg in debian_packages_of(libs).items():
        if pkg in base or re.match(r"lib(asan|ubsan|tsan|lsan)\d*$", pkg):
            continue  # in debian:12-slim already, or a sanitizer build's runtime
        require(re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", installs),
                f"{lib} comes from {pkg}, which the runtime stage does not install")


def debian_packages_of(libs):
    """{lib: package shipping it}, allowing for /lib vs /usr/lib (merged /usr). One dpkg -S."""
    candidates = set()
    for lib in libs:  # dpkg knows each file under one spelling: try both
        for path in (lib, os.path.realpath(lib)):
            candidates.add(path)
            candidates.add(path[4:] if path.startswith("/usr/") else "/usr" + path)
    # Exact paths: fast. Missing ones only cost a line on stderr.
    out = subprocess.run(["dpkg", "-S"] + sorted(candidates), capture_output=True, text=True)
    owner = {}
    for line in out.stdout.splitlines():
        pkgs, _, paths = line.partition(": ")
        for path in paths.split(", "):
            if os.path.exists(path):
                owner.setdefault(os.path.realpath(path), pkgs.split(",")[0].split(":")[0].strip())
    result = {}
    for lib in libs:
        pkg = owner.get(os.path.realpath(lib))
        require(pkg, f"no Debian package owns {lib} (dpkg -S)")
        result[lib] = pkg
    return result


@check
def healthcheck_script(binary):
    """docker/healthcheck.sh passes against a live server, fails on 404 and when down."""
    script = REPO / "docker" / "healthcheck.sh"
    require(os.access(script, os.X_OK), "docker/healthcheck.sh is not executable")

    def during(host, port):
        ok = subprocess.run([str(script), f"{host}:{port}", "/"], capture_output=True, timeout=15)
        require(ok.returncode == 0, f"health check failed against a live server: {ok.stderr!r}")
        # The image's HEALTHCHECK: the default path, sluice's liveness probe.
        probe = subprocess.run([str(script), f"{host}:{port}"], capture_output=True, timeout=15)
        require(probe.returncode == 0, f"health check of /healthz failed: {probe.stderr!r}")
        rt = (REPO / "docker/Dockerfile").read_text()
        require('"/healthz"]' in rt, "the Dockerfile's HEALTHCHECK does not probe /healthz")
        missing = subprocess.run([str(script), f"{host}:{port}", "/no-such-file"],
                                 capture_output=True, timeout=15)
        require(missing.returncode != 0, "health check passed on a 404")

    run_serving(binary, ["--listen=127.0.0.1:0", f"--root={REPO / 'www'}", "--threads=1"], during)
    with socket_closed_port() as port:
        down = subprocess.run([str(script), f"127.0.0.1:{port}"], capture_output=True, timeout=15)
        require(down.returncode != 0, "health check passed with nothing listening")


class socket_closed_port:
    def __enter__(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def __exit__(self, *exc):
        return False


@check
def compose_file(binary):
    """docker/compose.yaml: build, seccomp path, grace period, Prometheus beside it."""
    compose = load_yaml("docker/compose.yaml")
    base = REPO / "docker"  # Compose resolves paths against the file's directory
    services = compose.get("services") or {}
    require({"sluice", "prometheus"} <= services.keys(), "services sluice and prometheus expected")
    s = services["sluice"]
    build = s.get("build") or {}
    ctx = (base / build.get("context", ".")).resolve()
    require(ctx == REPO, f"build context {ctx} is not the repository root")
    require((ctx / build.get("dockerfile", "Dockerfile")).resolve() == REPO / "docker/Dockerfile",
            "build.dockerfile is not docker/Dockerfile")
    sec = [o for o in s.get("security_opt", []) if re.match(r"seccomp[=:]", o)]
    require(len(sec) == 1, "security_opt needs exactly one seccomp=PATH")
    require((base / sec[0][8:]).resolve() == REPO / "docker/seccomp.json",
            f"{sec[0]} does not resolve to docker/seccomp.json from docker/")
    cmd = s.get("command") or []
    require(isinstance(cmd, list), "command should be a list of flags")
    unknown = {c[2:].split("=")[0] for c in cmd if c.startswith("--")} - known_flags(binary)
    require(not unknown, f"compose command uses unknown flags {sorted(unknown)}")
    drain = duration_seconds(flag_value(cmd, "drain_timeout", DEFAULT_DRAIN))
    drain += duration_seconds(flag_value(cmd, "drain_delay", DEFAULT_DRAIN_DELAY))
    grace = duration_seconds(str(s.get("stop_grace_period", "10s")))
    require(grace > drain,
            f"stop_grace_period {grace}s is not above --drain_delay + --drain_timeout ({drain}s)")
    vols = services["prometheus"].get("volumes") or []
    cfg = [v for v in vols if v.split(":")[1:2] == ["/etc/prometheus/prometheus.yml"]]
    require(cfg and (base / cfg[0].split(":")[0]).resolve() == REPO / "docker/prometheus.yml",
            "prometheus does not mount docker/prometheus.yml")


@check
def prometheus_config(binary):
    """docker/prometheus.yml scrapes sluice's metrics listener at its metrics path."""
    prom = load_yaml("docker/prometheus.yml")
    cmd = load_yaml("docker/compose.yaml")["services"]["sluice"].get("command") or []
    listen = flag_value(cmd, "metrics_listen") or flag_value(cmd, "listen", "0.0.0.0:8080")
    path = flag_value(cmd, "metrics_path", "/metrics")
    jobs = [j for j in prom.get("scrape_configs") or [] if j.get("job_name") == "sluice"]
    require(len(jobs) == 1, "no scrape job named sluice")
    job = jobs[0]
    require(job.get("metrics_path", "/metrics") == path, f"metrics_path is not {path}")
    targets = [t for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
    require(f"sluice:{port_of(listen)}" in targets, f"targets {targets} miss sluice:{port_of(listen)}")


@check
def kubernetes_manifests(binary):
    """deploy/kubernetes/: kustomization, seccomp Localhost, probes, grace, annotations."""
    kust = load_yaml("deploy/kubernetes/kustomization.yaml")
    for res in kust.get("resources") or []:
        require((REPO / "deploy/kubernetes" / res).exists(), f"kustomization resource {res} missing")
    docs = []
    for res in kust["resources"]:
        docs += load_yaml_docs(f"deploy/kubernetes/{res}")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    require({"Deployment", "Service", "ConfigMap"} <= by_kind.keys(),
            "Deployment, Service and ConfigMap expected among the resources")
    cm_name, flags_text = configmap_flags_text()
    flags = flag_lines(flags_text)
    unknown = mentioned_flags(flags_text) - known_flags(binary)
    require(not unknown, f"the ConfigMap names unknown flags {sorted(unknown)}")
    drain = duration_seconds(flag_value(flags, "drain_timeout", DEFAULT_DRAIN))
    delay = duration_seconds(flag_value(flags, "drain_delay", DEFAULT_DRAIN_DELAY))
    require(delay > 0, "the ConfigMap sets no --drain_delay: endpoints would still route to a "
                       "pod whose listeners closed")
    health_path = flag_value(flags, "health_path", "/healthz")
    ready_path = flag_value(flags, "ready_path", "/readyz")
    http_port = port_of(flag_value(flags, "listen", "127.0.0.1:8080"))
    metrics_port = port_of(flag_value(flags, "metrics_listen") or flag_value(flags, "listen"))
    metrics_path = flag_value(flags, "metrics_path", "/metrics")

    dep = by_kind["Deployment"][0]
    tpl = dep["spec"]["template"]
    pod = tpl["spec"]
    ann = tpl["metadata"].get("annotations") or {}
    require(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape is not \"true\"")
    require(ann.get("prometheus.io/port") == str(metrics_port),
            f"prometheus.io/port is {ann.get('prometheus.io/port')!r}, metrics are on {metrics_port}")
    require(ann.get("prometheus.io/path") == metrics_path, f"prometheus.io/path is not {metrics_path}")
    psc = pod.get("securityContext") or {}
    require(psc.get("runAsNonRoot") is True, "runAsNonRoot is not true")
    uid = re.search(r"^USER\s+(\d+)", (REPO / "docker/Dockerfile").read_text(), re.M)
    require(uid and psc.get("runAsUser") == int(uid.group(1)),
            "runAsUser does not match the Dockerfile's USER")
    require(len(pod["containers"]) == 1, "one container expected")
    c = pod["containers"][0]
    sp = (c.get("securityContext") or {}).get("seccompProfile") or psc.get("seccompProfile") or {}
    require(sp.get("type") == "Localhost" and sp.get("localhostProfile"),
            "seccompProfile is not type Localhost with a localhostProfile")
    require(pathlib.PurePosixPath(sp["localhostProfile"]).name == "sluice.json",
            "localhostProfile should name sluice.json (deploy/kubernetes/seccomp/sluice.json)")
    csc = c.get("securityContext") or {}
    require(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    require(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    require((csc.get("capabilities") or {}).get("drop") == ["ALL"], "capabilities do not drop ALL")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        require({"cpu", "memory"} <= (res.get(kind) or {}).keys(), f"resources.{kind} incomplete")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    require(http_port in ports.values() and metrics_port in ports.values(),
            f"containerPorts {ports} miss {http_port} or {metrics_port}")
    for probe, path in (("readinessProbe", ready_path), ("livenessProbe", health_path)):
        get = (c.get(probe) or {}).get("httpGet") or {}
        require(path and get.get("path") == path, f"{probe} is not an HTTP GET of {path!r}")
        port = ports.get(get.get("port"), get.get("port"))
        require(port == http_port, f"{probe} probes port {get.get('port')}, sluice is on {http_port}")
    ready = c.get("readinessProbe") or {}
    # The endpoint must leave the Service within the delay: one failed probe
    # (period x failureThreshold) must fit in it.
    noticed = ready.get("periodSeconds", 10) * ready.get("failureThreshold", 3)
    require(noticed < delay,
            f"readiness needs {noticed}s to notice a drain, --drain_delay is {delay}s")
    pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    require(grace > pause + delay + drain,
            f"terminationGracePeriodSeconds {grace} <= preStop {pause}s + --drain_delay {delay}s + "
            f"--drain_timeout {drain}s")
    # Flags come from the ConfigMap through a volume.
    argv = (c.get("command") or []) + (c.get("args") or [])
    ff = [a.split("=", 1)[1] for a in argv if a.startswith("--flagfile=")]
    require(ff, "no --flagfile= argument")
    ff = pathlib.PurePosixPath(ff[0])
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == str(ff.parent)]
    require(mounts, f"nothing is mounted at {ff.parent}")
    vol = vols.get(mounts[0]["name"]) or {}
    require((vol.get("configMap") or {}).get("name") == cm_name,
            f"the volume at {ff.parent} is not ConfigMap {cm_name}")
    require(ff.name == "sluice.flags", "--flagfile does not name the ConfigMap's sluice.flags key")
    svc = by_kind["Service"][0]
    labels = tpl["metadata"].get("labels") or {}
    require(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
            "the Service selector does not match the pod labels")
    for p in svc["spec"]["ports"]:
        require(ports.get(p["targetPort"], p["targetPort"]) == http_port,
                "the Service does not target the HTTP port")


@check
def systemd_unit(binary):
    """systemd-analyze verify accepts the unit (ExecStart rewritten to the built binary)."""
    unit = (REPO / "deploy/systemd/sluice.service").read_text()
    analyze = shutil.which("systemd-analyze")
    require(analyze, "systemd-analyze is missing: install the Debian package systemd")
    exec_start = re.search(r"^ExecStart=(\S+)(.*)$", unit, re.M)
    require(exec_start and exec_start.group(1) == "/usr/local/bin/sluice",
            "ExecStart should run /usr/local/bin/sluice")
    require("--flagfile=/etc/sluice/sluice.flags" in exec_start.group(2),
            "ExecStart does not read /etc/sluice/sluice.flags")
    filters = " ".join(re.findall(r"^SystemCallFilter=([^~].*)$", unit, re.M)).split()
    require("@system-service" in filters and IO_URING <= set(filters),
            "SystemCallFilter lacks @system-service or an io_uring syscall")
    caps = re.findall(r"^CapabilityBoundingSet=(.*)$", unit, re.M)
    require(caps == ["CAP_NET_BIND_SERVICE"], f"CapabilityBoundingSet is {caps}")
    unit_flags = flag_lines((REPO / "deploy/sluice.flags").read_text())
    drain = duration_seconds(flag_value(unit_flags, "drain_timeout", DEFAULT_DRAIN))
    drain += duration_seconds(flag_value(unit_flags, "drain_delay", DEFAULT_DRAIN_DELAY))
    stop = re.search(r"^TimeoutStopSec=(.*)$", unit, re.M)
    require(stop and duration_seconds(stop.group(1).strip()) > drain,
            f"TimeoutStopSec is not above --drain_delay + --drain_timeout ({drain}s)")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "sluice.service"
        path.write_text(unit.replace("ExecStart=/usr/local/bin/sluice",
                                     f"ExecStart={os.path.abspath(binary)}", 1))
        out = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                             timeout=60)
        text = (out.stdout + out.stderr).strip()
        about_unit = [l for l in text.splitlines() if "sluice" in l]
        require(out.returncode == 0 and not about_unit,
                f"systemd-analyze verify (exit {out.returncode}):\n{text}")


@check
def example_flagfile(binary):
    """deploy/sluice.flags starts the binary (listen/root overridden), serves /, exits 0."""
    text = (REPO / "deploy/sluice.flags").read_text()
    unknown = mentioned_flags(text) - known_flags(binary)
    require(not unknown, f"deploy/sluice.flags names unknown flags {sorted(unknown)}")
    run_serving(binary, [f"--flagfile={REPO / 'deploy/sluice.flags'}", "--listen=127.0.0.1:0",
                         f"--root={REPO / 'www'}"])


@check
def configmap_flagfile(binary):
    """The ConfigMap's flagfile starts the binary; /metrics answers in Prometheus text."""
    _, text = configmap_flags_text()
    with tempfile.TemporaryDirectory() as tmp:
        ff = pathlib.Path(tmp) / "sluice.flags"
        ff.write_text(text)

        def during(host, port):
            status, headers, body = http_get(host, port, "/metrics", {
                "Accept": "application/openmetrics-text;version=1.0.0,"
                          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
            require(status == 200 and headers.get("Content-Type", "").startswith("text/plain"),
                    f"/metrics answered {status} {headers.get('Content-Type')}")
            require(b"# TYPE " in body, "/metrics is not in Prometheus text format")
            for path in ("/healthz", "/readyz"):
                status, headers, _ = http_get(host, port, path)
                require(status == 200 and headers.get("Cache-Control") == "no-store",
                        f"{path} answered {status} before SIGTERM")

        def after_term(host, port):
            # The probes the Deployment uses: not ready at once, still live,
            # files still served until the drain delay ends.
            time.sleep(0.3)
            status, _, _ = http_get(host, port, "/readyz")
            require(status == 503, f"/readyz answered {status} after SIGTERM, expected 503")
            status, _, _ = http_get(host, port, "/healthz")
            require(status == 200, f"/healthz answered {status} after SIGTERM, expected 200")
            status, _, _ = http_get(host, port, "/")
            require(status == 200, f"GET / answered {status} during the drain delay")

        # Metrics back on the main listener (loopback is allowed) to fetch them.
        run_serving(binary, [f"--flagfile={ff}", "--listen=127.0.0.1:0", f"--root={REPO / 'www'}",
                             "--metrics_listen="], during, after_term=after_term)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    binary = sys.argv[1]
    if not os.access(binary, os.X_OK):
        print(f"FAIL setup: {binary} is not an executable")
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn(binary)
        except Failure as e:
            failed += 1
            print(f"FAIL {fn.__name__}: {e}")
        except Exception as e:  # a bug or an environment problem: still a failure
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
        else:
            passed += 1
            print(f"PASS {fn.__name__}: {fn.__doc__.strip()}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
