//! The real binary in network namespaces (needs root; see tests/common),
//! as one test binary made of modules, the way ripgrep builds its
//! integration tests: the crate is linked once instead of once per file,
//! and one topology lock (tests/common) keeps any two topologies from
//! running at once, as the cases measure timings. One file's cases:
//! `cargo test --test netns fencing::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../pki/mod.rs"]
mod pki;
#[path = "../witness/mod.rs"]
mod witness;

mod admin;
mod api;
mod claim;
mod cluster;
mod console;
mod fencing;
mod hardening;
mod ipv6;
mod mirror;
mod notify;
mod pair;
mod process;
mod readme;
mod reload;
mod replay;
mod restart;
mod sandbox;
mod secured_witness;
mod systemd;
mod takeover;
mod witness_policies;
