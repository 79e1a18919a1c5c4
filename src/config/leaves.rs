//! Type errors, every one with its key: serde stops at the first value of
//! the wrong type and names no key ("invalid type: integer `10`, expected
//! a string"). When the whole file does not deserialize, each value (leaf)
//! is tried alone in an otherwise empty file; every leaf that fails alone
//! is reported with its key and line, and the file is read again without
//! them, so that the other sections are still checked.

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::check::key_name;
use super::locate::{Locator, Seg};
use super::Problem;

/// A leaf's path as owned parts: a key, or an element of an array of
/// tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Key(String),
    Index(usize),
}

/// `table` read as `T`; when that fails, every leaf that fails alone is a
/// problem (with its key and line), and `T` is read from what is left.
pub fn deserialize<T: DeserializeOwned>(
    table: Table,
    locator: &Locator,
) -> Result<(T, Vec<Problem>), Problem> {
    let whole = match T::deserialize(Value::Table(table.clone())) {
        Ok(t) => return Ok((t, Vec::new())),
        Err(e) => e,
    };
    let mut pruned = table.clone();
    let mut problems = Vec::new();
    let mut leaves = Vec::new();
    collect(&Value::Table(table), &mut Vec::new(), &mut leaves);
    for (path, value) in leaves {
        let alone = build(&path, value);
        if let Err(e) = T::deserialize(Value::Table(alone)) {
            let segs: Vec<Seg> = path
                .iter()
                .map(|p| match p {
                    Part::Key(k) => Seg::Key(k),
                    Part::Index(i) => Seg::Index(*i),
                })
                .collect();
            problems.push(Problem::new(
                locator.line(&segs),
                key_name(&segs),
                e.message().trim().to_owned(),
            ));
            remove(&mut pruned, &path);
        }
    }
    problems.sort_by_key(|p| p.line);
    match T::deserialize(Value::Table(pruned)) {
        Ok(t) if !problems.is_empty() => Ok((t, problems)),
        // No single leaf explains it: report serde's own message.
        _ => Err(Problem::new(None, "", whole.message().trim().to_owned())),
    }
}

/// Every leaf under `value` (a non-table value, or an empty table), with
/// its path; arrays of tables are walked element by element.
fn collect(value: &Value, path: &mut Vec<Part>, out: &mut Vec<(Vec<Part>, Value)>) {
    match value {
        Value::Table(t) if !t.is_empty() => {
            for (k, v) in t {
                path.push(Part::Key(k.clone()));
                collect(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Part::Index(i));
                collect(item, path, out);
                path.pop();
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

/// A table holding only `value` at `path` (an array of tables becomes a
/// one-element array).
fn build(path: &[Part], value: Value) -> Table {
    let mut inner = value;
    for part in path.iter().rev() {
        inner = match part {
            Part::Key(k) => {
                let mut t = Table::new();
                t.insert(k.clone(), inner);
                Value::Table(t)
            }
            Part::Index(_) => Value::Array(vec![inner]),
        };
    }
    match inner {
        Value::Table(t) => t,
        _ => Table::new(),
    }
}

/// Removes the leaf at `path` from `table`.
fn remove(root: &mut Table, path: &[Part]) {
    let Some((Part::Key(last), parents)) = path.split_last() else {
        return;
    };
    let mut cursor: &mut Table = root;
    let mut i = 0;
    while i < parents.len() {
        let (next, step) = match (&parents[i], parents.get(i + 1)) {
            // An array of tables: its key, then the element's index.
            (Part::Key(k), Some(Part::Index(n))) => (
                cursor
                    .get_mut(k)
                    .and_then(Value::as_array_mut)
                    .and_then(|a| a.get_mut(*n))
                    .and_then(Value::as_table_mut),
                2,
            ),
            (Part::Key(k), _) => (cursor.get_mut(k).and_then(Value::as_table_mut), 1),
            (Part::Index(_), _) => (None, 1),
        };
        let Some(next) = next else {
            return;
        };
        cursor = next;
        i += step;
    }
    cursor.remove(last);
}

#[cfg(test)]
mod tests {
    use super::super::raw::RawConfig;
    use super::*;

    fn check(text: &str) -> Result<(RawConfig, Vec<Problem>), Problem> {
        deserialize::<RawConfig>(text.parse().unwrap(), &Locator::new(text))
    }

    #[test]
    fn every_type_error_is_named_and_the_rest_still_read() {
        let text = "[cluster]\nname = 5\nvip = \"192.0.2.10\"\n\n[[node]]\nname = \"m1\"\n\n[[node]]\nname = \"m2\"\nrole = true\n\n[monitor]\ninterval = 10\ngrace = \"3m\"\n";
        let (raw, problems) = check(text).unwrap();
        let shown: Vec<String> = problems
            .iter()
            .map(|p| format!("{:?} {}", p.line, p.key))
            .collect();
        assert_eq!(
            shown,
            [
                "Some(2) cluster.name",
                "Some(10) node #2.role",
                "Some(13) monitor.interval"
            ],
            "{problems:?}"
        );
        assert!(problems[0].message.contains("invalid type"), "{problems:?}");
        // What was right is still there, for the sections' own checks.
        assert!(
            matches!(raw.cluster.unwrap().vip, Some(super::super::raw::RawVip::One(v)) if v == "192.0.2.10")
        );
        assert_eq!(raw.node.unwrap()[1].name.as_deref(), Some("m2"));
        assert_eq!(raw.monitor.unwrap().grace.as_deref(), Some("3m"));
    }

    #[test]
    fn a_good_file_has_no_problems() {
        let (_, problems) = check("[cluster]\nname = \"x\"\n").unwrap();
        assert!(problems.is_empty());
    }
}
