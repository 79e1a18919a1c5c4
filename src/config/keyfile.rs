//! The heartbeat key file (`heartbeat.secret_file`): one key per line as
//! `ID HEX`, the key heartbeats are sent with marked `active`; `#` starts a
//! comment. A file of a single hex line (what `understudy keygen` wrote
//! before key rotation) is one key with id 1. `understudy keygen --add`
//! appends a key and `--activate ID` moves the mark; each rewrites the file
//! whole, atomically, mode 0600.

use std::path::Path;

use crate::proto::keyring::{Key, Keyring};

/// A key shorter than this could be guessed.
pub const MIN_KEY_BYTES: usize = 16;
/// What `keygen` writes.
pub const NEW_KEY_BYTES: usize = 32;

const HEADER: &str = "# understudy heartbeat keys: \"ID HEX\", the one heartbeats are sent with \
marked \"active\".\n# Every key listed is accepted. `understudy keygen --add` and `--activate ID` \
rotate them.\n";

/// Reads and checks a key file.
pub fn read_keys(path: &Path) -> Result<Keyring, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    parse(&text).map_err(|(line, why)| match line {
        Some(line) => format!("{}:{line}: {why}", path.display()),
        None => format!("{}: {why}", path.display()),
    })
}

/// The keys in `text`; an error names the line (1-based) when it has one.
pub fn parse(text: &str) -> Result<Keyring, (Option<usize>, String)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if let [(line, only)] = lines.as_slice() {
        if !only.contains(char::is_whitespace) {
            let secret = secret(only).map_err(|why| (Some(*line), why))?;
            return Ok(Keyring::single(secret));
        }
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    for (line, text) in lines {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (id, hex, marked) = match words.as_slice() {
            [id, hex] => (id, hex, false),
            [id, hex, "active"] => (id, hex, true),
            _ => {
                return Err((
                    Some(line),
                    "expected \"ID HEX\" or \"ID HEX active\"".into(),
                ))
            }
        };
        let id: u32 = id.parse().ok().filter(|&n| n > 0).ok_or((
            Some(line),
            format!("the key id {id:?} is not a positive number"),
        ))?;
        if keys.iter().any(|k| k.id == id) {
            return Err((Some(line), format!("key id {id} appears twice")));
        }
        if marked {
            active.push(keys.len());
        }
        let secret = secret(hex).map_err(|why| (Some(line), why))?;
        keys.push(Key { id, secret });
    }
    let sending = match (active.as_slice(), keys.len()) {
        (_, 0) => return Err((None, "no key; write one with `understudy keygen`".into())),
        ([one], _) => *one,
        ([], 1) => 0,
        ([], _) => return Err((None, "several keys and none marked \"active\"".into())),
        _ => return Err((None, "more than one key is marked \"active\"".into())),
    };
    Ok(Keyring::new(keys, sending).expect("sending indexes the keys"))
}

fn secret(hex_text: &str) -> Result<Vec<u8>, String> {
    let secret = hex::decode(hex_text)
        .map_err(|e| format!("the key is not hex ({e}); write one with `understudy keygen`"))?;
    if secret.len() < MIN_KEY_BYTES {
        return Err(format!(
            "the key holds {} bytes; at least {MIN_KEY_BYTES} are needed",
            secret.len()
        ));
    }
    Ok(secret)
}

/// The file's text for `ring` (the form `parse` reads back).
pub fn format(ring: &Keyring) -> String {
    let mut text = HEADER.to_owned();
    for key in ring.accepted() {
        let mark = if key.id == ring.sending().id {
            " active"
        } else {
            ""
        };
        text.push_str(&format!("{} {}{mark}\n", key.id, hex::encode(&key.secret)));
    }
    text
}

/// A new random key.
pub fn random_secret() -> Result<Vec<u8>, String> {
    let mut secret = vec![0u8; NEW_KEY_BYTES];
    getrandom::getrandom(&mut secret).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(secret)
}

/// `ring` with a new key appended (id one above the highest), accepted but
/// not sent with.
pub fn with_new_key(ring: &Keyring, secret: Vec<u8>) -> (Keyring, u32) {
    let id = ring.ids().into_iter().max().unwrap_or(0) + 1;
    let mut keys: Vec<Key> = ring.accepted().cloned().collect();
    let sending = keys.iter().position(|k| k.id == ring.sending().id);
    keys.push(Key { id, secret });
    let ring = Keyring::new(keys, sending.unwrap_or(0)).expect("the sending key is kept");
    (ring, id)
}

/// `ring` sending with key `id`.
pub fn activated(ring: &Keyring, id: u32) -> Result<Keyring, String> {
    let keys: Vec<Key> = ring.accepted().cloned().collect();
    let at = keys
        .iter()
        .position(|k| k.id == id)
        .ok_or_else(|| format!("no key with id {id} (ids: {:?})", ring.ids()))?;
    Ok(Keyring::new(keys, at).expect("the index was found"))
}

/// Writes `ring` to `path` whole (see [`crate::atomic_file`]), mode 0600.
pub fn write_atomically(path: &Path, ring: &Keyring) -> std::io::Result<()> {
    crate::atomic_file::replace(path, format(ring).as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_single_hex_line_is_key_one() {
        let ring = parse(&format!("{A}\n")).unwrap();
        assert_eq!(ring.ids(), vec![1]);
        assert_eq!(hex::encode(&ring.sending().secret), A);
    }

    #[test]
    fn the_active_key_sends_and_all_are_accepted() {
        let ring = parse(&format!("# keys\n1 {A}\n2 {B} active  # new\n")).unwrap();
        assert_eq!(ring.ids(), vec![1, 2]);
        assert_eq!(ring.sending().id, 2);
    }

    #[test]
    fn problems_name_their_line() {
        let cases = [
            (format!("1 {A}\n2 {B}\n"), None, "none marked"),
            (
                format!("1 {A} active\n2 {B} active\n"),
                None,
                "more than one",
            ),
            (format!("1 {A}\n1 {B} active\n"), Some(2), "appears twice"),
            (
                format!("1 {A} active\nx {B}\n"),
                Some(2),
                "not a positive number",
            ),
            (format!("1 {A} active\n2 abcd\n"), Some(2), "at least 16"),
            (
                format!("1 {A} active\n2 {B} sending\n"),
                Some(2),
                "expected",
            ),
            ("zz\n".to_owned(), Some(1), "not hex"),
            ("# nothing\n".to_owned(), None, "no key"),
        ];
        for (text, line, words) in cases {
            let (at, why) = parse(&text).expect_err(&text);
            assert_eq!(at, line, "{text}: {why}");
            assert!(why.contains(words), "{text}: {why}");
        }
    }

    #[test]
    fn adding_keeps_the_sender_and_activating_moves_it() {
        let ring = parse(&format!("{A}\n")).unwrap();
        let (added, id) = with_new_key(&ring, hex::decode(B).unwrap());
        assert_eq!((id, added.ids(), added.sending().id), (2, vec![1, 2], 1));
        let text = format(&added);
        assert_eq!(parse(&text).unwrap(), added, "{text}");
        let moved = activated(&added, 2).unwrap();
        assert_eq!(moved.sending().id, 2);
        assert!(activated(&added, 7)
            .unwrap_err()
            .contains("no key with id 7"));
    }
}
