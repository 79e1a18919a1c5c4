#!/usr/bin/env bash
# The test command of the README: installs what the tests need on a fresh
# Debian machine (as root, with apt-get, cargo install and pip), then runs
# every test binary, even after one fails (--no-fail-fast), so that one
# failure never hides another. Arguments go to `cargo test` (a filter, or
# `--test NAME`). UNDERSTUDY_TEST_NO_INSTALL=1 skips the install step on a
# machine that has it all already.
set -euo pipefail
cd "$(dirname "$0")/.."

# The namespace tests need root and must run, never skip.
[[ $EUID -eq 0 ]] || { echo "the tests need root (network namespaces): sudo $0" >&2; exit 1; }

if [[ "${UNDERSTUDY_TEST_NO_INSTALL:-}" != 1 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # iproute2: ip netns/link/addr for the namespace topology; curl: the
    # client's GET through the VIP and the API calls; python3: the test
    # application, the API flood client and the log-to-scenario converter;
    # openssl: a certificate for the TLS API test; postgresql: the server the
    # PostgreSQL probe test starts on loopback; util-linux: prlimit, which runs
    # the flood test's daemons under a 1,024 open-file limit, and setpriv, which
    # runs a daemon without CAP_SYS_NICE ([process] test), and unshare and
    # setsid for the README test's hosts; procps: kill. The README test runs
    # the README's deploy commands: nftables (its firewall rules, against a
    # drop policy), iputils-arping (its L2 check), systemd (systemd-analyze
    # verify on the installed unit; systemd is not PID 1 here). The package
    # test installs the .deb and asks man-db where its pages are. The console
    # test drives headless chromium through chromedriver. The witness tests
    # start PostgreSQL (above) and etcd (etcd-server) as the lease authority;
    # the cluster tests start three etcd members of their own. stress-ng:
    # the restart test loads the CPUs while the daemon re-executes. The
    # mirror tests start an OpenSSH server in each node's namespace
    # (openssh-server) and copy with rsync over ssh (openssh-client).
    # mandoc: the manual test lints the generated pages (mandoc -Tlint); the
    # README test's API block makes its token with openssl rand.
    apt-get install -y -qq --no-install-recommends iproute2 curl python3 python3-pip procps util-linux openssl postgresql nftables iputils-arping systemd man-db chromium chromium-driver etcd-server stress-ng rsync openssh-client openssh-server mandoc >/dev/null

    # cargo-deb builds the Debian package (tests/deb.rs, packaging/build-deb.sh).
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    command -v cargo-deb >/dev/null || cargo install --quiet --locked cargo-deb --version 3.8.0

    # aiosmtpd: the real SMTP server the notification tests send mail to.
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd

fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

exec cargo test --locked --no-fail-fast "$@"
