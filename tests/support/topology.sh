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
#   topology.sh down PREFIX    ends the processes left in them, deletes them
set -euo pipefail

cmd=${1:?usage: topology.sh up|down PREFIX}
prefix=${2:?usage: topology.sh up|down PREFIX}
hosts=(m1 m2 cl w)
declare -A addr=([m1]=192.0.2.11 [m2]=192.0.2.12 [cl]=192.0.2.100 [w]=192.0.2.30)
declare -A addr6=([m1]=2001:db8::11 [m2]=2001:db8::12 [cl]=2001:db8::100 [w]=2001:db8::30)

down() {
    for ns in "${hosts[@]/#/$prefix-}" "$prefix-sw"; do
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
