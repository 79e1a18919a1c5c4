//! `understudy config push`: one node's configuration file to its peer over
//! TCP (the heartbeat port), authenticated with the heartbeat key and
//! replay-proof. The exchange, one connection per push:
//!
//! ```text
//! peer → sender   UNDERSTUDY-PUSH 1 <nonce: 32 random bytes, hex>\n
//! sender → peer   PUSH <sender's node name> <length> <tag, hex>\n<length bytes of the file>
//! peer → sender   one JSON line: the reload's answer (applied, or refused and why)
//! ```
//!
//! The tag is HMAC-SHA256 over a label, the cluster id, the nonce, the
//! sender's name and the file, with the key the sender sends heartbeats
//! with; the peer accepts any key of its ring. A recorded push is useless:
//! the next connection gets a fresh nonce.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The peer's first line starts with this.
pub const GREETING: &str = "UNDERSTUDY-PUSH 1";
/// The largest file accepted.
pub const MAX_FILE: usize = 1 << 20;
/// The longest first line of a request.
pub const MAX_LINE: usize = 512;

pub type Nonce = [u8; 32];
pub type Tag = [u8; 32];

const LABEL: &[u8] = b"understudy config push\0";

/// The peer's challenge line.
pub fn challenge(nonce: &Nonce) -> String {
    format!("{GREETING} {}\n", hex::encode(nonce))
}

/// The nonce in a challenge line.
pub fn parse_challenge(line: &str) -> Result<Nonce, String> {
    let nonce = line
        .trim_end()
        .strip_prefix(GREETING)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| {
            format!(
                "the peer did not greet as understudy does: {:?}",
                line.trim_end()
            )
        })?;
    let bytes = hex::decode(nonce).map_err(|e| format!("the peer's nonce is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "the peer's nonce is not 32 bytes".to_owned())
}

fn mac(key: &[u8], cluster_id: u64, nonce: &Nonce, from: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(LABEL);
    m.update(&cluster_id.to_be_bytes());
    m.update(nonce);
    m.update(&(from.len() as u64).to_be_bytes());
    m.update(from.as_bytes());
    m.update(body);
    m
}

/// The sender's tag for `body`.
pub fn tag(key: &[u8], cluster_id: u64, nonce: &Nonce, from: &str, body: &[u8]) -> Tag {
    mac(key, cluster_id, nonce, from, body)
        .finalize()
        .into_bytes()
        .into()
}

/// Is `tag` made with one of `keys` (compared in constant time)?
pub fn verify<'k>(
    keys: impl IntoIterator<Item = &'k [u8]>,
    cluster_id: u64,
    nonce: &Nonce,
    from: &str,
    body: &[u8],
    tag: &Tag,
) -> bool {
    keys.into_iter().any(|key| {
        mac(key, cluster_id, nonce, from, body)
            .verify_slice(tag)
            .is_ok()
    })
}

/// The sender's first line.
pub fn request(from: &str, len: usize, tag: &Tag) -> String {
    format!("PUSH {from} {len} {}\n", hex::encode(tag))
}

/// What a request line says: the sender, the file's length, the tag.
pub fn parse_request(line: &str) -> Result<(String, usize, Tag), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["PUSH", from, len, tag] = words.as_slice() else {
        return Err("expected \"PUSH NODE LENGTH TAG\"".into());
    };
    let len: usize = len
        .parse()
        .map_err(|_| format!("the length {len:?} is not a number"))?;
    if len > MAX_FILE {
        return Err(format!(
            "the file is {len} bytes; at most {MAX_FILE} are accepted"
        ));
    }
    let tag: Tag = hex::decode(tag)
        .ok()
        .and_then(|t| t.try_into().ok())
        .ok_or("the tag is not 32 bytes of hex")?;
    Ok(((*from).to_owned(), len, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_push_verifies_once_and_only_for_its_nonce() {
        let (nonce, other) = ([1u8; 32], [2u8; 32]);
        let body = b"[cluster]\nname = \"x\"\n";
        let t = tag(KEY, 7, &nonce, "m1", body);
        let keys = || std::iter::once(KEY);
        assert!(verify(keys(), 7, &nonce, "m1", body, &t));
        // A recorded push replayed on a new connection (a new nonce) fails.
        assert!(!verify(keys(), 7, &other, "m1", body, &t));
        assert!(
            !verify(keys(), 8, &nonce, "m1", body, &t),
            "another cluster"
        );
        assert!(!verify(keys(), 7, &nonce, "m2", body, &t), "another sender");
        assert!(
            !verify(keys(), 7, &nonce, "m1", b"[cluster]\n", &t),
            "another file"
        );
        let wrong: [&[u8]; 1] = [b"another key, just as long as it"];
        assert!(!verify(wrong, 7, &nonce, "m1", body, &t));
    }

    #[test]
    fn lines_round_trip_and_bad_ones_are_named() {
        let nonce = [9u8; 32];
        assert_eq!(parse_challenge(&challenge(&nonce)), Ok(nonce));
        assert!(parse_challenge("SSH-2.0-OpenSSH\n")
            .unwrap_err()
            .contains("did not greet"));
        let t = [3u8; 32];
        assert_eq!(
            parse_request(&request("m1", 12, &t)),
            Ok(("m1".into(), 12, t))
        );
        assert!(parse_request("PUSH m1 99999999 00")
            .unwrap_err()
            .contains("at most"));
        assert!(parse_request("GET / HTTP/1.1")
            .unwrap_err()
            .contains("expected"));
        assert!(parse_request("PUSH m1 12 abcd")
            .unwrap_err()
            .contains("32 bytes"));
    }
}
