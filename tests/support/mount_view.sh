#!/bin/sh
# Runs a command in a private mount namespace where VIEW is bind-mounted
# over MOUNTPOINT: two "hosts" of one test machine (network namespaces
# share the file system) each get their own copy of the application's
# files at the same path, as two real machines would. The command keeps
# this process's PID (unshare without --fork, then exec), so that the test
# can end it by its own PID.
#   mount_view.sh VIEW MOUNTPOINT COMMAND [ARG...]
set -eu
view=$1 mountpoint=$2
shift 2
exec unshare --mount --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' mount_view "$view" "$mountpoint" "$@"
