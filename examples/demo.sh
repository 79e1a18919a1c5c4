#!/usr/bin/env bash
# understudy demo: a primary/secondary pair in network namespaces, a fault
# on the primary, and a timeline of the takeover as the client saw it.
#
#   sudo examples/demo.sh            # the primary's application dies
#   sudo examples/demo.sh link       # the primary's link goes down
#   sudo examples/demo.sh dual       # either fault, with a dual-stack group:
#   sudo examples/demo.sh link dual  # 192.0.2.10/24 and 2001:db8::10/64
#
# It builds the release binary (or reuses it when it is up to date), creates
# four namespaces (a bridge, m1, m2, a client) on 192.0.2.0/24, runs
# understudy and a small web application on m1 and m2 with fast timings
# (probes and heartbeats every 100 ms, grace 1 s; the defaults are 10 s,
# 1 s and 3 minutes), injects the fault, prints the timeline in words and
# removes everything it made. Nothing outside those namespaces is touched.
# The addresses are those of config/pair.toml, which tests/netns/readme.rs runs
# as shipped in this topology.
set -euo pipefail

fault=app
dual=0
for arg in "$@"; do
    case $arg in
        app|link) fault=$arg ;;
        dual) dual=1 ;;
        *) echo "usage: $0 [app|link] [dual]" >&2; exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)

build() {
    echo "building the release binary (a few minutes the first time; then it is reused)"
    (cd "$root" && cargo build --release --locked --quiet)
}
if [[ $EUID -ne 0 ]]; then
    build
    exec sudo "$0" "$@"
fi
if command -v cargo >/dev/null; then
    build
fi
bin=$root/target/release/understudy
[[ -x $bin ]] || { echo "no $bin: run 'cargo build --release' first" >&2; exit 1; }
for tool in ip curl python3; do
    command -v $tool >/dev/null || { echo "demo needs $tool (apt-get install iproute2 curl python3)" >&2; exit 1; }
done

prefix=usdemo
work=$(mktemp -d /tmp/understudy-demo.XXXXXX)
daemons=()
cleanup() {
    for pid in "${daemons[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${daemons[@]}"; do wait "$pid" 2>/dev/null || true; done
    for node in m1 m2; do
        [[ -f $work/$node.pid ]] && kill "$(cat "$work/$node.pid")" 2>/dev/null || true
    done
    "$root/tests/support/topology.sh" down $prefix
    rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
say() { printf '\n== %s\n' "$*"; }
get_vip() { ip netns exec $prefix-cl curl -s --max-time 0.3 http://192.0.2.10/ || true; }
get_vip6() { ip netns exec $prefix-cl curl -6 -s --max-time 0.3 'http://[2001:db8::10]/' || true; }
if [[ $dual == 1 ]]; then
    vip_lines='vip = ["192.0.2.10/24", "2001:db8::10/64"]'
else
    vip_lines=$'vip = "192.0.2.10"\nnetmask = "255.255.255.0"'
fi
# Polls a condition every 50 ms, at most $1 times.
wait_until() {
    local tries=$1; shift
    for ((i = 0; i < tries; i++)); do "$@" && return 0; sleep 0.05; done
    echo "gave up waiting for: $*" >&2; return 1
}
answers() { [[ $(get_vip) == "$1" ]]; }

say "building the topology (namespaces $prefix-{sw,m1,m2,cl})"
"$root/tests/support/topology.sh" up $prefix
cat > "$work/pair.toml" <<TOML
[cluster]
name = "demo"
$vip_lines

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m2"
role = "secondary"
nic = "eth0"
address = "192.0.2.12"
url = "http://192.0.2.12/"

[monitor]
interval = "100ms"
timeout = "80ms"
grace = "1s"

[application]
start = "python3 $root/tests/support/nodeapp.py \$UNDERSTUDY_NODE 80 $work/\$UNDERSTUDY_NODE.pid >/dev/null 2>&1 &"
stop = "kill \$(cat $work/\$UNDERSTUDY_NODE.pid 2>/dev/null) 2>/dev/null || true"
timeout = "5s"
ready_timeout = "5s"

[announce]
count = 3
interval = "200ms"

[heartbeat]
interval = "100ms"
peer_timeout = "300ms"
secret_file = "$work/secret"
TOML
"$bin" keygen "$work/secret" >/dev/null
"$bin" check-config "$work/pair.toml"

say "timings: probes and heartbeats every 100 ms, peer timeout 300 ms, grace 1 s"
echo "(the defaults are probes every 10 s, heartbeats every 1 s, grace 3 minutes: as cautious"
echo " as the products understudy replaces; every one can be set down to a fraction of a second)"

say "starting understudy on m1 (primary), then on m2 (secondary)"
# Both daemons run on this one machine, so each gets its own control
# socket and state file.
run_node() {
    # Debug for the core: the timeline shows each step of a claim too.
    UNDERSTUDY_LOG=info,understudy::core=debug,netlink_packet_route=error ip netns exec $prefix-$1 "$bin" run --config "$work/pair.toml" \
        --socket "$work/$1.sock" --state-file "$work/$1.state" 2>"$work/$1.log" &
}
run_node m1
daemons+=($!)
wait_until 200 answers m1
run_node m2
daemons+=($!)
wait_until 200 grep -q "peer available" "$work/m2.log"
wait_until 200 grep -q "peer application healthy" "$work/m2.log"

say "steady state"
show_addresses() {
    local family=-4
    [[ $dual == 1 ]] && family=""
    for node in m1 m2; do
        printf '%s eth0: %s\n' $node "$(ip -n $prefix-$node -br $family addr show dev eth0 scope global | awk '{$1=$2=""; print}')"
    done
}
show_neighbours() {
    echo "client: $(ip -n $prefix-cl neigh show 192.0.2.10)"
    [[ $dual == 1 ]] && echo "client: $(ip -n $prefix-cl -6 neigh show 2001:db8::10)"
    return 0
}
show_addresses
echo "client: GET http://192.0.2.10/ -> $(get_vip)"
if [[ $dual == 1 ]]; then
    wait_until 200 eval '[[ $(get_vip6) == m1 ]]'
    echo "client: GET http://[2001:db8::10]/ -> $(get_vip6)"
fi
show_neighbours

fault_ms=$(now_ms)
if [[ $fault == app ]]; then
    say "fault: killing m1's application (its daemon stays up)"
    kill "$(cat "$work/m1.pid")"
else
    say "fault: m1's link goes down"
    ip -n $prefix-m1 link set eth0 down
fi

# The client asks every 50 ms (at most 100 times) and records each change,
# through both addresses in the dual-stack demo.
last=m1
last6=m1
[[ $dual == 1 ]] || last6=m2
: > "$work/client.events"
for ((i = 0; i < 100; i++)); do
    got=$(get_vip)
    [[ -n $got ]] || got="(no answer)"
    if [[ $got != "$last" ]]; then
        echo "$(now_ms) client: GET http://192.0.2.10/ -> $got" >> "$work/client.events"
        last=$got
    fi
    if [[ $dual == 1 && $last6 != m2 ]]; then
        got6=$(get_vip6)
        [[ -n $got6 ]] || got6="(no answer)"
        if [[ $got6 != "$last6" ]]; then
            echo "$(now_ms) client: GET http://[2001:db8::10]/ -> $got6" >> "$work/client.events"
            last6=$got6
        fi
    fi
    [[ $last == m2 && $last6 == m2 ]] && break
    sleep 0.05
done
sleep 0.3

say "timeline (ms after the fault)"
family=ipv4
[[ $dual == 1 ]] && family=dual
python3 "$root/examples/timeline.py" "$fault_ms" "$work" "$family"

say "after the takeover"
show_addresses
show_neighbours
echo "m2's MAC: $(ip -n $prefix-m2 -br link show dev eth0 | awk '{print $3}')"

say "understudy status (as m2 sees it)"
"$bin" status --socket "$work/m2.sock"
say "cleaning up"
