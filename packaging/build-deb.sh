#!/bin/sh
# Builds the Debian package, target/debian/understudy_VERSION-1_ARCH.deb
# (needs cargo-deb: `cargo install cargo-deb`). The manual pages and the
# completions come from the binary itself (`understudy manual`: the clap
# definitions and README's key table); the packaged unit is
# deploy/understudy.service with the binary in /usr/sbin, and
# understudy-strict.service is the same unit with deploy/understudy-strict.conf
# added. The package starts nothing and creates no key.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --locked
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets"
target/release/understudy manual "$assets"
gzip -9n "$assets/understudy.8" "$assets/understudy.toml.5"
sed 's#/usr/local/bin/understudy#/usr/sbin/understudy#g' deploy/understudy.service >"$assets/understudy.service"
{
    cat "$assets/understudy.service"
    printf '\n[Unit]\nConflicts=understudy.service\n\n'
    cat deploy/understudy-strict.conf
} >"$assets/understudy-strict.service"
cargo deb --no-build --locked "$@"
