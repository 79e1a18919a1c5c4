//! understudy keeps one business application reachable at one common IP
//! (the VIP) when the machine serving it fails.
//!
//! # Layout
//!
//! - [`atomic_file`]: replacing a file whole (temporary file, sync, rename).
//! - [`clock`]: instants computed without panicking.
//! - [`config`]: the TOML file, raw → validated, with located problems.
//! - [`core`]: the sans-IO state machine that decides; time is passed in,
//!   effects come out as [`core::Action`]s. `Core` holds a few parts, each
//!   in its module: the machine (the state and its phase's data, which only
//!   the state machine moves), timers, actions, probes, peers, teller,
//!   admin, vip, lease and record. Types and the rules that use them live
//!   apart (`lease/` and `admin/` hold their types in `mod.rs` and their
//!   rules in `rules.rs`), so the core's files import each other without a
//!   circle.
//! - [`proto`]: pure wire formats (ARP frames).
//! - [`io`]: the effects: the claim seam ([`io::claim::Claim`], through
//!   which the common addresses are placed, announced, looked for and
//!   watched; the L2 claim over rtnetlink and AF_PACKET is its first
//!   kind), the node's NICs, probes, the application, the witness's lease
//!   (PostgreSQL, etcd), the watchdog device.
//! - [`runtime`]: the only place that owns tokio; feeds the core and runs
//!   its actions in order.
//! - [`notify`]: mail, webhook and hook commands, off the core's path.
//! - [`table`]: aligned plain-text tables for the CLI.
//! - [`terminal`]: text from outside made harmless for a terminal.
//! - [`words`]: every word the core's typed reasons become (logs, status,
//!   notifications), in one place.
//! - [`replay`]: the core's inputs, actions and status as lines of text,
//!   for the golden scenarios and for replaying a daemon's log.
//! - [`control`]: the admin requests, their JSON answers and the status
//!   report, over the Unix control socket (and the HTTP API).

pub mod atomic_file;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod io;
pub mod notify;
pub mod proto;
pub mod replay;
pub mod runtime;
pub mod table;
pub mod terminal;
pub mod words;
