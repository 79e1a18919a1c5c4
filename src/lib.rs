//! understudy keeps one business application reachable at one common IP
//! (the VIP) when the machine serving it fails.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, raw → validated, with located problems.
//! - [`core`]: the sans-IO state machine that decides; time is passed in,
//!   effects come out as [`core::Action`]s.
//! - [`proto`]: pure wire formats (ARP frames).
//! - [`io`]: the effects: rtnetlink, AF_PACKET, probes, the application.
//! - [`runtime`]: the only place that owns tokio; feeds the core and runs
//!   its actions in order.

pub mod config;
pub mod core;
pub mod io;
pub mod proto;
pub mod runtime;
