#!/bin/bash
# Container health check for sluice: GET a path over HTTP/1.1 and succeed on a
# 2xx or 3xx status. Pure bash (/dev/tcp and builtins), so the runtime image
# needs no curl or wget and their libraries.
# Usage: sluice-healthcheck [HOST:PORT] [PATH]   (default 127.0.0.1:8080 /healthz)
set -u
addr=${1:-127.0.0.1:8080}
path=${2:-/healthz}
host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}

exec 3<>"/dev/tcp/${host}/${port}" || exit 1
printf 'HEAD %s HTTP/1.1\r\nHost: healthcheck\r\nConnection: close\r\n\r\n' "$path" >&3
IFS=' ' read -r -t 3 version status _ <&3 || exit 1
exec 3<&-
[[ $version == HTTP/1.* && $status == [23][0-9][0-9] ]]
