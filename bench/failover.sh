#!/usr/bin/env bash
# Failover benchmark: understudy against keepalived on the same namespace
# topology and faults, at 1 s, 100 ms and 20 ms intervals with every other
# key at its default, then a 10-minute soak of both at 20 ms with every core
# busy (see bench/run.py; about 45 minutes). Writes bench/results.md and
# bench/results.json. Needs root; installs keepalived, tcpdump, stress-ng,
# curl and iproute2 from Debian if they are missing.
#
#   sudo bench/failover.sh [--reps N] [--footprint-seconds S] [--soak-seconds S] [--only failover|soak]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $EUID -ne 0 ]]; then
    (cd "$root" && cargo build --release --quiet)
    exec sudo "$0" "$@"
fi
missing=()
for tool in keepalived tcpdump stress-ng curl ip python3; do command -v $tool >/dev/null || missing+=($tool); done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends keepalived tcpdump stress-ng curl iproute2 python3 >/dev/null
fi
if command -v cargo >/dev/null; then (cd "$root" && cargo build --release --quiet); fi
exec python3 "$root/bench/run.py" "$@"
