//! The shape the core, the configuration, the runtime and the words keep,
//! so that a newcomer can change one decision without reading two thousand
//! lines: no function longer than 70 lines in the core or 90 in the
//! others, the core's state held in a few parts (per-phase data lives in
//! `core/mode.rs`), and the runtime claiming the common addresses only
//! through the claim seam. Run with `-- --nocapture` to see the figures.

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
        fields <= 12,
        "Core has {fields} fields; data belongs in one of its parts (probes, peers, teller, admin, vip, lease, record) or, per phase, in core/mode.rs"
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
