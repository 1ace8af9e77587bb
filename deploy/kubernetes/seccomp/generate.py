#!/usr/bin/env python3
"""Writes sluice.json, the Kubernetes (OCI runtime-spec) form of docker/seccomp.json.

Why a second file: Docker reads its own profile format, in which rules carry
conditions ("includes"/"excludes" on capabilities, architectures and kernel
versions) and architectures come as an "archMap". containerd's CRI plugin loads
a Localhost profile straight into the OCI runtime-spec structure, which has no
such conditions: it would silently drop them and apply every conditional rule
(for instance the CAP_SYS_ADMIN-only mount, unshare and setns) unconditionally.
So this script resolves the conditions for the pod in deploy/kubernetes/: no
capabilities at all (capabilities.drop: [ALL]), x86_64 or aarch64 nodes, a
kernel new enough for sluice (5.19). The result is valid for CRI-O as well.

Usage:
  deploy/kubernetes/seccomp/generate.py           # rewrite sluice.json
  deploy/kubernetes/seccomp/generate.py --check   # exit 1 if sluice.json is stale
"""
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent.parent.parent / "docker" / "seccomp.json"
TARGET = HERE / "sluice.json"

CAPS = set()  # the container drops ALL capabilities
GO_ARCHES = {"amd64", "x86", "x32", "arm64", "arm"}  # x86_64 and aarch64 nodes, with compat modes
SECCOMP_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                  "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
KERNEL = (5, 19)  # sluice's minimum (multishot accept)


def kernel_tuple(text):
    return tuple(int(p) for p in text.split(".")[:2])


def applies(rule):
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= CAPS:
        return False
    if inc.get("arches") and not set(inc["arches"]) & GO_ARCHES:
        return False
    if inc.get("minKernel") and kernel_tuple(inc["minKernel"]) > KERNEL:
        return False
    if exc.get("caps") and set(exc["caps"]) & CAPS:
        return False
    if exc.get("arches") and GO_ARCHES <= set(exc["arches"]):
        return False
    return True


def convert(docker_profile):
    plain = set()  # unconditional ALLOW without argument filters: merged into one list
    rules = []
    for rule in docker_profile["syscalls"]:
        if not applies(rule):
            continue
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args"):
            plain.update(rule["names"])
            continue
        out = {"names": sorted(rule["names"]), "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                           for a in rule["args"]]
        rules.append(out)
    profile = {
        "defaultAction": docker_profile["defaultAction"],
        "defaultErrnoRet": docker_profile.get("defaultErrnoRet", 1),
        "architectures": SECCOMP_ARCHES,
        "syscalls": [{"names": sorted(plain), "action": "SCMP_ACT_ALLOW"}] + rules,
    }
    return json.dumps(profile, indent=2) + "\n"


def main():
    text = convert(json.loads(SOURCE.read_text()))
    if sys.argv[1:] == ["--check"]:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run {pathlib.Path(__file__).name} to regenerate it")
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
