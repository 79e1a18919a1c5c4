#!/usr/bin/env bash
# Mirror benchmark: `[[mirror]]` (rsync over SSH) against plain rsync with
# the same options on 10,000 files (1 GiB), and what a demote's mirror
# passes add to its outage (see bench/mirror.py; about 5 minutes). Writes
# bench/mirror-results.json. Needs root; installs rsync and OpenSSH from
# Debian if they are missing.
#
#   sudo bench/mirror.sh            MIRROR_REPS=N for more repetitions (default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $EUID -ne 0 ]]; then
    (cd "$root" && cargo build --release --quiet)
    exec sudo "$0" "$@"
fi
missing=()
for tool in rsync ssh /usr/sbin/sshd curl ip python3; do command -v $tool >/dev/null || missing+=($tool); done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends rsync openssh-client openssh-server curl iproute2 python3 >/dev/null
fi
if command -v cargo >/dev/null; then (cd "$root" && cargo build --release --quiet); fi
exec python3 "$root/bench/mirror.py" "$@"
