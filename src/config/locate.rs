//! Finds where a key sits in the configuration text, so that every problem
//! can be reported with its line.
//!
//! Serde tells us *what* is wrong with a value but not *where* it was
//! written; toml_edit keeps the byte span of every item, so we parse the
//! text a second time with it and walk the same path.

use std::ops::Range;

use toml_edit::{ArrayOfTables, ImDocument, Item, TableLike};

/// One step in a path from the document root to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A key inside a table (`cluster`, `vip`).
    Key(&'a str),
    /// An element of an array of tables (`[[node]]`), zero-based.
    Index(usize),
}

/// Maps key paths to line numbers in one configuration text.
pub struct Locator {
    text: String,
    doc: Option<ImDocument<String>>,
}

impl Locator {
    /// Parses `text`; a text that does not parse still gives a locator that
    /// simply knows no lines (serde reports the syntax error itself).
    pub fn new(text: &str) -> Self {
        Locator {
            text: text.to_owned(),
            doc: ImDocument::parse(text.to_owned()).ok(),
        }
    }

    /// The 1-based line of the value at `path`, or of its nearest existing
    /// parent when the key itself is missing (a missing `vip` is reported at
    /// the `[cluster]` header). `None` when not even the first key exists.
    pub fn line(&self, path: &[Seg]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut cursor = Cursor::Table(doc.as_table());
        let mut best: Option<Range<usize>> = None;
        for seg in path {
            let (span, next) = match (seg, cursor) {
                (Seg::Key(k), Cursor::Table(t)) => match t.get(k) {
                    Some(item) => (item.span(), Cursor::of(item)),
                    None => break,
                },
                (Seg::Index(i), Cursor::Array(a)) => match a.get(*i) {
                    Some(t) => (t.span(), Cursor::Table(t)),
                    None => break,
                },
                _ => break,
            };
            best = span.or(best);
            cursor = next;
        }
        best.map(|span| self.line_at(span.start))
    }

    /// The 1-based line that holds byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

/// Where a walk through the document stands.
#[derive(Clone, Copy)]
enum Cursor<'a> {
    Table(&'a dyn TableLike),
    Array(&'a ArrayOfTables),
    Leaf,
}

impl<'a> Cursor<'a> {
    fn of(item: &'a Item) -> Self {
        match item {
            Item::Table(t) => Cursor::Table(t),
            Item::ArrayOfTables(a) => Cursor::Array(a),
            Item::Value(v) => v
                .as_inline_table()
                .map_or(Cursor::Leaf, |t| Cursor::Table(t)),
            Item::None => Cursor::Leaf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[cluster]\nname = \"x\"\n\n[[node]]\nname = \"a\"\n\n[[node]]\nname = \"b\"\naddress = \"1\"\n";

    #[test]
    fn finds_values_and_falls_back_to_parents() {
        let loc = Locator::new(TEXT);
        assert_eq!(loc.line(&[Seg::Key("cluster"), Seg::Key("name")]), Some(2));
        assert_eq!(loc.line(&[Seg::Key("cluster"), Seg::Key("vip")]), Some(1));
        assert_eq!(
            loc.line(&[Seg::Key("node"), Seg::Index(1), Seg::Key("address")]),
            Some(9)
        );
        assert_eq!(
            loc.line(&[Seg::Key("node"), Seg::Index(0), Seg::Key("address")]),
            Some(4)
        );
        assert_eq!(loc.line(&[Seg::Key("monitor")]), None);
    }
}
