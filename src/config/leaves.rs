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
        let alone = build(&path, value.clone());
        if let Err(e) = T::deserialize(Value::Table(alone)) {
            let (message, section) = explained(e.message().trim(), &path, &value);
            let mut segs: Vec<Seg> = path
                .iter()
                .map(|p| match p {
                    Part::Key(k) => Seg::Key(k),
                    Part::Index(i) => Seg::Index(*i),
                })
                .collect();
            if section {
                // Said once, at the section, for all of its keys.
                segs.truncate(1);
                let key = key_name(&segs);
                if problems.iter().any(|p: &Problem| p.key == key) {
                    remove(&mut pruned, &path);
                    continue;
                }
            }
            problems.push(Problem::new(locator.line(&segs), key_name(&segs), message));
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

/// Removes the leaf at `path` from `table`, and the tables it leaves
/// empty (an unknown section goes whole, so that the rest still reads).
fn remove(table: &mut Table, path: &[Part]) {
    match path {
        [Part::Key(k)] => {
            table.remove(k);
        }
        [Part::Key(k), Part::Index(n), rest @ ..] => {
            let element = table
                .get_mut(k)
                .and_then(Value::as_array_mut)
                .and_then(|a| a.get_mut(*n))
                .and_then(Value::as_table_mut);
            if let Some(element) = element {
                remove(element, rest);
            }
        }
        [Part::Key(k), rest @ ..] => {
            let emptied = table
                .get_mut(k)
                .and_then(Value::as_table_mut)
                .is_some_and(|inner| {
                    remove(inner, rest);
                    inner.is_empty()
                });
            if emptied {
                table.remove(k);
            }
        }
        _ => {}
    }
}

/// serde's message, with what a person needs to fix it: an unknown
/// section or key named as such with the nearest known one, and an
/// integer where a duration goes written the way it must be; and whether
/// the problem is a whole unknown section (said once for all its keys).
fn explained(message: &str, path: &[Part], value: &Value) -> (String, bool) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, known) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = known.split('`').skip(1).step_by(2).collect();
        // A table at the top whose name is unknown: a section ([x], [[x]]).
        let top = path.len() > 1 && matches!(path.first(), Some(Part::Key(k)) if k == name);
        let hint = nearest(name, &known)
            .map(|n| {
                if top {
                    format!("; did you mean [{n}]?")
                } else {
                    format!("; did you mean `{n}`?")
                }
            })
            .unwrap_or_default();
        let words = match top {
            true => format!("unknown section [{name}]{hint}"),
            false => format!("unknown key `{name}`{hint}"),
        };
        return (words, top);
    }
    let last = path.iter().rev().find_map(|p| match p {
        Part::Key(k) => Some(k.as_str()),
        Part::Index(_) => None,
    });
    let words = match (value, last) {
        (Value::Integer(n), Some(key)) if DURATION_KEYS.contains(&key) => {
            format!("{message}: a duration is written in quotes with its unit, as {key} = \"{n}s\"")
        }
        _ => message.to_owned(),
    };
    (words, false)
}

/// The keys that take a duration (`"10s"`, `"3m"`), in any section.
const DURATION_KEYS: [&str; 23] = [
    "interval",
    "timeout",
    "grace",
    "data_interval",
    "data_timeout",
    "dwell",
    "flap_window",
    "peer_timeout",
    "startup",
    "restart_allowance",
    "hold",
    "drain_timeout",
    "probe",
    "refresh",
    "ready_timeout",
    "restart_backoff",
    "every",
    "final_timeout",
    "alert_after",
    "dedup_window",
    "lease",
    "fence_timeout",
    "watchdog_timeout",
];

/// The known name closest to a misspelt `name` (at most a third of its
/// letters off), if any.
fn nearest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = name.chars().count().div_ceil(3);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
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

    /// Every key the README's key table gives a duration default (`1s`,
    /// `3m`) is one the hint knows: the list cannot fall behind the keys.
    #[test]
    fn every_duration_key_of_the_readme_gets_the_hint() {
        let readme = include_str!("../../README.md");
        let mut checked = 0;
        for row in readme.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let (Some(key), Some(default)) = (cells.first(), cells.get(1)) else {
                continue;
            };
            let default = default.split('`').nth(1).unwrap_or("");
            let is_duration = default.ends_with(['s', 'm', 'h', 'd'])
                && default.starts_with(|c: char| c.is_ascii_digit())
                && humantime::parse_duration(default).is_ok();
            if !is_duration {
                continue;
            }
            let last = key
                .trim_matches(['|', ' ', '`'])
                .rsplit('.')
                .next()
                .unwrap_or("");
            assert!(
                DURATION_KEYS.contains(&last),
                "{key} is a duration but not in DURATION_KEYS"
            );
            checked += 1;
        }
        assert!(
            checked >= 15,
            "only {checked} duration keys found in the README"
        );
    }

    #[test]
    fn a_good_file_has_no_problems() {
        let (_, problems) = check("[cluster]\nname = \"x\"\n").unwrap();
        assert!(problems.is_empty());
    }
}
