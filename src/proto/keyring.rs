//! The heartbeat keys a node holds: several may be accepted at once, one of
//! them is used for sending. This is what lets a pair change its key without
//! a failover: both nodes first learn the new key (accepted, not yet sent
//! with), then one by one send with it, then drop the old one. The key id
//! stays in the file; a heartbeat carries no id (the wire format is the
//! same as with one key), so the receiver tries each key in turn.

/// One key and the id it has in the key file.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: u32,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    // Never print a secret, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// Every accepted key, and which one sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
    sending: usize,
}

impl Keyring {
    /// `keys` must not be empty and `sending` must index it.
    pub fn new(keys: Vec<Key>, sending: usize) -> Option<Keyring> {
        (sending < keys.len()).then_some(Keyring { keys, sending })
    }

    /// A ring of one key (id 1), as a one-key file gives.
    pub fn single(secret: Vec<u8>) -> Keyring {
        Keyring {
            keys: vec![Key { id: 1, secret }],
            sending: 0,
        }
    }

    /// The key heartbeats are sent with.
    pub fn sending(&self) -> &Key {
        &self.keys[self.sending]
    }

    /// Every key a heartbeat may be signed with.
    pub fn accepted(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// The ids, in file order, for logs.
    pub fn ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }
}
