#!/usr/bin/env bash
# Builds or removes the test topology: five network namespaces, PREFIX-sw
# holding a bridge, and PREFIX-m1, PREFIX-m2, PREFIX-cl, PREFIX-w (where the
# witness tests run their database) each joined to it by
# a veth pair whose inner end is eth0. Only documentation addresses
# (192.0.2.0/24 and 2001:db8::/64) are used, and nothing outside these
# namespaces is touched.
#
#   topology.sh up PREFIX      m1 192.0.2.11 2001:db8::11, m2 192.0.2.12
#                              2001:db8::12, client 192.0.2.100 2001:db8::100,
#                              witness 192.0.2.30 2001:db8::30
#   topology.sh up PREFIX cluster   the same and m3 to m5 (192.0.2.13 to
#                              .15) and three etcd hosts e1 to e3 (192.0.2.31
#                              to .33) for the clusters of more than two nodes
#   topology.sh down PREFIX    ends the processes left in them, deletes them
set -euo pipefail

cmd=${1:?usage: topology.sh up|down PREFIX [cluster]}
prefix=${2:?usage: topology.sh up|down PREFIX [cluster]}
hosts=(m1 m2 cl w)
cluster=(m3 m4 m5 e1 e2 e3)
if [[ ${3:-} == cluster ]]; then hosts+=("${cluster[@]}"); fi
declare -A addr=([m1]=192.0.2.11 [m2]=192.0.2.12 [cl]=192.0.2.100 [w]=192.0.2.30
    [m3]=192.0.2.13 [m4]=192.0.2.14 [m5]=192.0.2.15 [e1]=192.0.2.31 [e2]=192.0.2.32 [e3]=192.0.2.33)
declare -A addr6=([m1]=2001:db8::11 [m2]=2001:db8::12 [cl]=2001:db8::100 [w]=2001:db8::30
    [m3]=2001:db8::13 [m4]=2001:db8::14 [m5]=2001:db8::15 [e1]=2001:db8::31 [e2]=2001:db8::32 [e3]=2001:db8::33)

down() {
    # Every host either form may have made, then the switch.
    for ns in m1 m2 cl w "${cluster[@]}" sw; do
        ns="$prefix-$ns"
        if ip netns list | grep -qw -- "$ns"; then
            # End what is still running inside, each by its own PID.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

up() {
    down
    ip netns add "$prefix-sw"
    ip -n "$prefix-sw" link add br0 type bridge
    ip -n "$prefix-sw" link set br0 up
    ip -n "$prefix-sw" link set lo up
    for h in "${hosts[@]}"; do
        ns="$prefix-$h"
        ip netns add "$ns"
        ip -n "$prefix-sw" link add "p-$h" type veth peer name eth0 netns "$ns"
        ip -n "$prefix-sw" link set "p-$h" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "${addr[$h]}/24" dev eth0
        # No duplicate address detection: the hosts' own addresses are
        # usable at once (the tests wait for nothing tentative).
        ip -n "$ns" addr add "${addr6[$h]}/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
    done
}

case $cmd in
    up) up ;;
    down) down ;;
    *) echo "usage: topology.sh up|down PREFIX" >&2; exit 2 ;;
esac
