//! Effects at the edge: each module turns one kind of action into calls on
//! the real machine and reports back. Effects are idempotent and return
//! errors as values; none of them panics the loop.

pub mod app;
pub mod bounded;
pub mod claim;
pub mod fence;
pub mod iflist;
pub mod mirror;
pub mod netlink;
pub mod nic;
pub mod probe;
pub mod shell;
pub mod watchdog;
pub mod witness;
