//! The manual pages `understudy manual DIR` writes (the package installs
//! them): understudy(8) carries the sections a daemon's page has, and
//! mandoc's linter finds nothing to warn about in either page.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{bin, run_ok};

/// Writes the pages into a folder of this test's own (`name`).
fn write_pages(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manual-{name}-{}", std::process::id()));
    run_ok(Command::new(bin()).arg("manual").arg(&dir));
    dir
}

#[test]
fn the_daemons_page_has_the_sections_a_daemons_page_carries() {
    let dir = write_pages("sections");
    let page = std::fs::read_to_string(dir.join("understudy.8")).unwrap();
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "FILES",
        "SIGNALS",
        "\"EXIT STATUS\"",
        "ENVIRONMENT",
        "EXAMPLES",
        "\"SEE ALSO\"",
    ] {
        let heading = format!(".SH {section}\n");
        assert!(page.contains(&heading), "no {heading:?} in understudy.8");
    }
    // The description is more than the name line said again.
    let description = page.split(".SH DESCRIPTION\n").nth(1).unwrap();
    let description = description.split(".SH ").next().unwrap();
    assert!(description.contains("grace period"), "{description}");
    for variable in [
        "UNDERSTUDY_LOG",
        "UNDERSTUDY_TERM",
        "UNDERSTUDY_PEER_ADDRESS",
    ] {
        assert!(page.contains(variable), "ENVIRONMENT lacks {variable}");
    }
}

#[test]
fn mandoc_finds_nothing_to_warn_about() {
    let dir = write_pages("lint");
    for page in ["understudy.8", "understudy.toml.5"] {
        let out = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(dir.join(page))
            .output()
            .expect("mandoc is installed by scripts/test.sh");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{page}:\n{said}"
        );
    }
}
