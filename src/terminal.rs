//! Text from outside made harmless before it reaches a terminal: a node
//! row written into the witness, an error a server sent, a peer's answer
//! may carry escape sequences that set the window title, clear the
//! screen or draw a fake status. Control characters (C0 but newline and
//! tab, DEL, and C1) are written as visible escapes (`\x1b`, `\u{9b}`).
//! The JSON output needs none of this (JSON escapes them), and the logs
//! are escaped by tracing-subscriber's formatter (since 0.3.20).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character but `\n` and `\t` escaped.
pub fn harmless(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// One line: as [`harmless`], and a newline or tab escaped too (a cell
/// of a table, a name).
pub fn harmless_line(text: &str) -> Cow<'_, str> {
    match harmless(text) {
        Cow::Borrowed(t) if !t.contains(['\n', '\t']) => Cow::Borrowed(t),
        t => Cow::Owned(t.replace('\n', "\\n").replace('\t', "\\t")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_title_clear_and_colour_sequences_and_keeps_the_rest() {
        let hostile = "m3\x1b]0;owned\x07\x1b[2J\x1b[32mActive (all fine)\u{9b}31m";
        let shown = harmless(hostile);
        assert_eq!(
            shown,
            "m3\\x1b]0;owned\\x07\\x1b[2J\\x1b[32mActive (all fine)\\u{9b}31m"
        );
        assert!(!shown.chars().any(|c| c.is_control()));
        assert!(matches!(
            harmless("plain text\nnext\tline é"),
            Cow::Borrowed(_)
        ));
        assert_eq!(harmless_line("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(harmless("\x7f"), "\\x7f");
    }
}
