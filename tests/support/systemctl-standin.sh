#!/bin/sh
# A stand-in for systemctl, for tests/netns/readme.rs only: the test machines are
# network namespaces without systemd as PID 1, so the README's systemctl
# lines run through this. It does what systemd would do with the installed
# unit file, and nothing else: it reads ExecStartPre/ExecStart/ExecReload,
# RuntimeDirectory and StateDirectory from /etc/systemd/system/UNIT.service
# (or, for a unit a package installed, /lib/systemd/system: the OpenSSH
# server of the mirroring section) and runs those very commands. The
# application's own unit ("helpdesk" in config/pair.toml) is the test
# application on port 8080.
#
#   systemctl daemon-reload | enable [--now] U | disable [--now] U
#   systemctl start U | stop U | reload U | is-active U
#
# Its state lives in /run/standin (a tmpfs of the node's mount namespace).
set -eu

state=/run/standin
mkdir -p "$state"
verb=${1:?usage: systemctl VERB [--now] UNIT}
shift
now=0
if [ "${1:-}" = "--now" ]; then now=1; shift; fi
unit=${1:-}
unit=${unit%.service}
file=/etc/systemd/system/$unit.service
[ -f "$file" ] || [ ! -f "/lib/systemd/system/$unit.service" ] || file=/lib/systemd/system/$unit.service

# The value(s) of KEY= in the unit file, one per line.
field() { sed -n "s/^$1=//p" "$file"; }

running() { [ -f "$state/$unit.pid" ] && kill -0 "$(cat "$state/$unit.pid")" 2>/dev/null; }

start() {
    running && return 0
    if [ "$unit" != understudy ] && [ "$unit" != ssh ]; then
        # The application: started by understudy's own start command.
        python3 "$STANDIN_APP" "${UNDERSTUDY_NODE:-$STANDIN_NODE}" 8080 "$state/$unit.pid" >/dev/null 2>&1 &
        return 0
    fi
    [ -f "$file" ] || { echo "Unit $unit.service not found." >&2; return 5; }
    for dir in $(field RuntimeDirectory); do mkdir -p -m 0700 "/run/$dir"; done
    for dir in $(field StateDirectory); do mkdir -p -m 0700 "/var/lib/$dir"; done
    field ExecStartPre | while IFS= read -r cmd; do
        sh -c "$cmd" || { echo "ExecStartPre failed: $cmd" >&2; exit 1; }
    done
    cmd=$(field ExecStart)
    setsid sh -c "exec $cmd" >>"$state/$unit.log" 2>&1 </dev/null &
    echo $! >"$state/$unit.pid"
    # ssh.service is Type=notify: systemd returns once sshd listens.
    if [ "$unit" = ssh ]; then
        for _ in $(seq 50); do
            ss -Htln 'sport = :22' | grep -q . && break
            sleep 0.1
        done
    fi
}

stop() {
    running || return 0
    pid=$(cat "$state/$unit.pid")
    kill -TERM "$pid"
    # At most 30 s, as a bounded TimeoutStopSec.
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$state/$unit.pid"
}

case $verb in
    daemon-reload) ;;
    enable) if [ $now = 1 ]; then start; fi ;;
    disable) if [ $now = 1 ]; then stop; fi ;;
    start) start ;;
    stop) stop ;;
    reload) sh -c "$(field ExecReload)" ;;
    is-active) if running; then echo active; else echo inactive; exit 3; fi ;;
    *) echo "systemctl stand-in: $verb is not supported" >&2; exit 1 ;;
esac
