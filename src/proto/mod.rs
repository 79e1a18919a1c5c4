//! Pure wire formats: bytes in, values out, no sockets.

pub mod arp;
pub mod heartbeat;
pub mod keyring;
pub mod ndp;
pub mod push;
