//! Pure wire formats: bytes in, values out, no sockets.

pub mod arp;
pub mod heartbeat;
