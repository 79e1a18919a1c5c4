//! The tests that need no network namespaces, as one test binary made of
//! modules (see tests/netns/main.rs for why): check-config and the
//! configuration fuzzer, the shell completions, the manual pages, the
//! code's shape, and the PostgreSQL and TLS probes against real servers on
//! loopback. One file's cases: `cargo test --test host code_shape::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../pki/mod.rs"]
mod pki;

mod check_config;
mod code_shape;
mod completions;
mod config_fuzz;
mod manual;
mod postgres_probe;
mod tls_probe;
