//! The shape the core, the configuration, the runtime and the words keep,
//! so that a newcomer can change one decision without reading two thousand
//! lines: no function longer than 70 lines in the core or 90 in the
//! others, the core's state held in a few parts (per-phase data lives in
//! `core/mode.rs`, moved only by the state machine in `core/machine.rs`),
//! the core's files importing each other without a circle, and the runtime
//! claiming the common addresses only through the claim seam. Run with `-- --nocapture` to see the figures.

use std::path::{Path, PathBuf};

const LIMIT: usize = 90;
/// The core's functions are held shorter: each rule should read at once.
const CORE_LIMIT: usize = 70;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each `fn` item's name and length in lines, by brace counting (the
/// sources here have no braces in strings that would mislead it, and the
/// test says where when one does). Test modules are left out.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(super) fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
        ]
        .iter()
        .any(|p| line.starts_with(p));
        if !is_fn {
            i += 1;
            continue;
        }
        let name = line
            .split("fn ")
            .nth(1)
            .and_then(|r| r.split(['(', '<']).next())
            .unwrap_or("?")
            .to_owned();
        let (mut depth, mut opened, mut end) = (0i64, false, i);
        for (j, l) in lines.iter().enumerate().skip(i) {
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if (opened && depth == 0) || (!opened && l.trim_end().ends_with(';')) {
                end = j;
                break;
            }
        }
        found.push((name, i + 1, end - i + 1));
        i = end + 1;
    }
    found
}

#[test]
fn no_function_in_the_core_is_longer_than_70_lines_nor_in_config_runtime_or_words_than_90() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut longest = Vec::new();
    for part in ["core", "config", "runtime", "words"] {
        let mut files = Vec::new();
        rust_files(&root.join(part), &mut files);
        let mut all: Vec<(usize, String)> = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
            let text = std::fs::read_to_string(file).expect("a source file");
            for (name, line, len) in functions(&text) {
                let place = format!(
                    "{}:{line} {name}",
                    file.strip_prefix(&root).unwrap().display()
                );
                all.push((len, place));
            }
        }
        all.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        eprintln!(
            "src/{part}: longest function {} lines ({})",
            all[0].0, all[0].1
        );
        let limit = if part == "core" { CORE_LIMIT } else { LIMIT };
        longest.extend(all.into_iter().filter(|(len, _)| *len > limit));
    }
    assert!(
        longest.is_empty(),
        "longer than {CORE_LIMIT} lines in the core or {LIMIT} elsewhere: {longest:?}"
    );
}

#[test]
fn the_core_keeps_few_fields() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/mod.rs"))
            .expect("src/core/mod.rs");
    let body = text
        .split("pub struct Core {")
        .nth(1)
        .and_then(|r| r.split("\n}\n").next())
        .expect("the Core struct");
    let fields = body
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.starts_with("//") && l.ends_with(',') && l.contains(": ")
        })
        .count();
    eprintln!("Core: {fields} fields");
    assert!(
        fields <= 11,
        "Core has {fields} fields; data belongs in one of its parts (machine, probes, peers, teller, admin, vip, lease, record) or, per phase, in core/mode.rs"
    );
}

/// The claim seam: the runtime places, announces, looks for and watches
/// the common addresses only through `io::claim::Claim`, so that a new
/// kind of claim (a route, a cloud provider's API) touches the seam and
/// not the daemon. No runtime file names the L2 claim's parts.
#[test]
fn the_runtime_claims_only_through_the_seam() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/runtime"),
        &mut files,
    );
    let mut named = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for part in ["netlink", "Netlink", "neighbours", "Group", "io::claim::l2"] {
                if code.contains(part) {
                    named.push(format!("{}:{}: {part}", file.display(), n + 1));
                }
            }
        }
    }
    eprintln!("runtime files checked: {}", files.len());
    assert!(files.len() > 10, "the runtime's files were not found");
    assert!(
        named.is_empty(),
        "the runtime names the L2 claim's parts instead of io::claim::Claim:\n{}",
        named.join("\n")
    );
}

/// The core's files import each other without a circle: plain types sit
/// in files of their own (or a part's `mod.rs`), and the rules that use
/// them (`impl Core`) in files that nothing imports. `core/mod.rs` only
/// declares the parts and holds `Core`, so it is left out; a name imported
/// through its re-exports counts as imported from the file that defines it.
#[test]
fn the_core_files_import_each_other_without_a_circle() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    let node_of = |path: &Path| -> String {
        let rel = path.strip_prefix(&core).expect("under src/core");
        let name = rel.with_extension("").to_string_lossy().into_owned();
        name.strip_suffix("/mod").unwrap_or(&name).to_owned()
    };
    let nodes: Vec<String> = files.iter().map(|f| node_of(f)).collect();
    let code_of = |path: &Path| -> String {
        let text = std::fs::read_to_string(path).expect("a core file");
        // An inline test module ends the code that counts.
        let text = text.split("mod tests {").next().unwrap_or("").to_owned();
        text.lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Which core file each name re-exported by core/mod.rs comes from.
    let mut reexported = std::collections::HashMap::new();
    for statement in code_of(&core.join("mod.rs")).split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("use "))
        else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        if !nodes.iter().any(|n| n == module) {
            continue;
        }
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            reexported.insert(name.trim().to_owned(), module.to_owned());
        }
    }
    let mut edges: Vec<(String, String)> = Vec::new();
    for (file, from) in files.iter().zip(&nodes) {
        if from == "mod" {
            continue;
        }
        let code = code_of(file);
        let mut targets = Vec::new();
        for (i, _) in code.match_indices("super::") {
            let before = &code[..i];
            if before.ends_with("super::") {
                continue; // the inner `super::` of `super::super::`
            }
            // Each `super::` goes one module up from this file's own.
            let mut rest = &code[i..];
            let mut base = from.clone();
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
                base = base.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
            }
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let first: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let module = if base.is_empty() {
                    first.clone()
                } else {
                    format!("{base}/{first}")
                };
                if nodes.contains(&module) {
                    targets.push(module);
                } else if base.is_empty() {
                    if let Some(module) = reexported.get(&first) {
                        targets.push(module.clone());
                    }
                } else {
                    // An item of the part's own `mod.rs`.
                    targets.push(base.clone());
                }
            }
        }
        for to in targets {
            if &to != from && to != "mod" && !edges.contains(&(from.clone(), to.clone())) {
                edges.push((from.clone(), to));
            }
        }
    }
    eprintln!("core import edges: {}", edges.len());
    assert!(edges.len() > 20, "the core's imports were not found");
    // A circle exists when some file reaches itself.
    for start in &nodes {
        let mut seen = vec![start.clone()];
        let mut todo = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = todo.pop() {
            for (_, to) in edges.iter().filter(|(f, _)| *f == at) {
                assert!(
                    to != start,
                    "an import circle among the core's files: {} -> {to}",
                    path.join(" -> ")
                );
                if !seen.contains(to) {
                    seen.push(to.clone());
                    let mut next = path.clone();
                    next.push(to.clone());
                    todo.push((to.clone(), next));
                }
            }
        }
    }
}
