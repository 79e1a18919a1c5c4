//! etcd's answers as types. The JSON gateway writes 64-bit numbers as
//! strings and bytes in base64, and, as proto3's JSON mapping does, leaves
//! out every field whose value is the default (`succeeded: false`, an
//! empty `kvs`, a lease's `TTL` of 0). So a field that may be left out
//! for that reason defaults here, and nowhere else: a field etcd always
//! writes (a header's revision, a key's create revision, a token) is
//! required, and an answer without it, or with a number that is not one,
//! is an error the witness reports, never a 0 or an empty name read as
//! "nobody holds the lease".

use base64::Engine as _;
use serde::{Deserialize, Deserializer};

/// A 64-bit number as the gateway writes it: a string of digits (a bare
/// JSON number is taken too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Int(pub u64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(u64),
        }
        match Written::deserialize(d)? {
            Written::Number(n) => Ok(Int(n)),
            Written::Text(text) => text
                .parse()
                .map(Int)
                .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a number"))),
        }
    }
}

/// Bytes as the gateway writes them (base64), holding UTF-8 text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&written)
            .map_err(|e| serde::de::Error::custom(format!("{written:?} is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Text)
            .map_err(|_| serde::de::Error::custom("not UTF-8 text"))
    }
}

#[derive(Debug, Deserialize)]
pub struct Header {
    pub revision: Int,
}

/// `auth/authenticate`.
#[derive(Debug, Deserialize)]
pub struct Token {
    pub token: String,
}

/// `lease/grant`.
#[derive(Debug, Deserialize)]
pub struct Grant {
    #[serde(rename = "ID")]
    pub id: Int,
}

/// `lease/keepalive` (a stream of one answer through the gateway).
#[derive(Debug, Deserialize)]
pub struct KeepAlive {
    pub result: KeepAliveResult,
}

#[derive(Debug, Deserialize)]
pub struct KeepAliveResult {
    /// 0 (left out) once the lease has run out.
    #[serde(rename = "TTL", default)]
    pub ttl: Int,
}

/// One key with its value.
#[derive(Debug, Deserialize)]
pub struct KeyValue {
    pub key: Text,
    pub create_revision: Int,
    pub mod_revision: Int,
    /// Left out when empty.
    #[serde(default)]
    pub value: Text,
    /// The etcd lease it is attached to; left out when none.
    #[serde(default)]
    pub lease: Int,
}

/// `kv/range`, and a transaction's range.
#[derive(Debug, Deserialize)]
pub struct Range {
    /// Left out when no key matched.
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

/// `kv/txn`.
#[derive(Debug, Deserialize)]
pub struct Txn {
    pub header: Header,
    /// Left out when the comparison failed.
    #[serde(default)]
    pub succeeded: bool,
    #[serde(default)]
    pub responses: Vec<TxnResponse>,
}

#[derive(Debug, Deserialize)]
pub struct TxnResponse {
    #[serde(default)]
    pub response_range: Option<Range>,
}

/// `kv/put` and other answers read only for success.
#[derive(Debug, Deserialize)]
pub struct Done {
    #[allow(dead_code)]
    pub header: Header,
}

/// A node's row, as this program writes it (JSON in the key's value).
#[derive(Debug, Deserialize)]
pub struct Row {
    pub state: String,
    pub term: u64,
    pub checksum: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_are_strings_and_bytes_base64() {
        let kv: KeyValue = read(
            r#"{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"1","value":"YmFy"}"#,
        )
        .unwrap();
        assert_eq!(kv.key.0, "foo");
        assert_eq!(kv.value.0, "bar");
        assert_eq!(
            (kv.create_revision.0, kv.mod_revision.0, kv.lease.0),
            (2, 3, 0)
        );
    }

    #[test]
    fn what_proto3_leaves_out_defaults_and_nothing_else() {
        let txn: Txn = read(r#"{"header":{"revision":"7"}}"#).unwrap();
        assert!(!txn.succeeded && txn.responses.is_empty());
        assert_eq!(txn.header.revision.0, 7);
        let range: Range = read(r#"{"header":{"revision":"7"}}"#).unwrap();
        assert!(range.kvs.is_empty());
        let alive: KeepAlive = read(r#"{"result":{"header":{"revision":"7"},"ID":"9"}}"#).unwrap();
        assert_eq!(alive.result.ttl.0, 0);
    }

    #[test]
    fn a_missing_or_malformed_field_is_an_error_never_a_zero() {
        let missing = read::<Txn>(r#"{"succeeded":true}"#).unwrap_err();
        assert!(missing.contains("header"), "{missing}");
        let no_revision = read::<KeyValue>(r#"{"key":"Zm9v","mod_revision":"3"}"#).unwrap_err();
        assert!(no_revision.contains("create_revision"), "{no_revision}");
        let word = read::<Grant>(r#"{"ID":"seven"}"#).unwrap_err();
        assert!(word.contains("\"seven\" is not a number"), "{word}");
        let not_b64 = read::<KeyValue>(r#"{"key":"%%%","create_revision":"2","mod_revision":"3"}"#)
            .unwrap_err();
        assert!(not_b64.contains("not base64"), "{not_b64}");
        assert!(read::<Token>("{}").is_err());
        assert!(read::<KeepAlive>(r#"{"error":{"grpc_code":5}}"#).is_err());
        assert!(read::<Row>(r#"{"state":"Active","checksum":"x"}"#).is_err());
    }
}
