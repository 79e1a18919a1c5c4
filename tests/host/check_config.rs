//! `understudy check-config` on good and bad files: every problem with its
//! file, line and key, a non-zero exit, and never a panic.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_understudy")
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_example_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml");
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
}

#[test]
fn every_problem_is_reported_with_line_and_key() {
    let path = write(
        "bad.toml",
        r#"[cluster]
name = "helpdesk"
vip = "192.0.2.10"
netmask = "255.0.255.0"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m1"
role = "master"
nic = "eth0"
address = "198.51.100.12"
url = "not a url"

[monitor]
interval = "1s"
timeout = "1s"
grace = "500ms"
data = "mysql://db"
"#,
    );
    let (code, _, stderr) = check(&path);
    assert_ne!(code, 0);
    let file = path.display().to_string();
    for expected in [
        format!("{file}:4: cluster.netmask: 255.0.255.0 is not a contiguous netmask"),
        format!("{file}:14: node #2.name: \"m1\" is used by another node"),
        format!("{file}:15: node #2.role: \"master\" is not a role"),
        format!(
            "{file}:17: node #2.address: the common IP 192.0.2.10/24 is not in this node's subnet"
        ),
        format!("{file}:18: node #2.url: \"not a url\" is not a URL"),
        format!("{file}:22: monitor.timeout: must be shorter than the interval"),
        format!("{file}:23: monitor.grace: must be at least the interval"),
        format!("{file}:24: monitor.data: \"mysql://db\": the data service must be"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("{file}: heartbeat.secret_file: is required")),
        "{stderr}"
    );
    assert!(stderr.contains("9 problem(s) found"), "{stderr}");
}

#[test]
fn unknown_keys_and_wrong_types_are_located() {
    let path = write(
        "typo.toml",
        "[cluster]\nname = \"x\"\nvipp = \"192.0.2.10\"\n",
    );
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(":3: cluster.vipp: unknown key `vipp`; did you mean `vip`?"),
        "{stderr}"
    );

    let path = write("type.toml", "[cluster]\nname = 5\n");
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(":2:") && stderr.contains("invalid type"),
        "{stderr}"
    );
}

/// A misspelt section hides nothing: it is named at its header with the
/// section meant, every other problem is still found, all in line order,
/// and a number where a duration goes says how to write it.
#[test]
fn a_misspelt_section_and_two_typos_are_all_reported_in_line_order() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/pair.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("grace = "))
        .collect::<Vec<_>>()
        .join("\n")
        .replacen("[heartbeat]", "[heartbeet]", 1)
        .replacen("[monitor]", "[monitor]\ngrace = 180\ndwel = \"1s\"", 1);
    let path = write("three.toml", &text);
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1, "{stderr}");
    let line_of = |needle: &str| {
        1 + text
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the file"))
    };
    let file = path.display();
    let expected = [
        format!("{file}:{}: monitor.grace: invalid type: integer `180`, expected a string: a duration is written in quotes with its unit, as grace = \"180s\"", line_of("grace = 180")),
        format!("{file}:{}: monitor.dwel: unknown key `dwel`; did you mean `dwell`?", line_of("dwel =")),
        format!("{file}:{}: heartbeet: unknown section [heartbeet]; did you mean [heartbeat]?", line_of("[heartbeet]")),
    ];
    let mut at = 0;
    for line in &expected {
        let found = stderr[at..]
            .find(line.as_str())
            .unwrap_or_else(|| panic!("missing, or out of line order: {line:?} in:\n{stderr}"));
        at += found + line.len();
    }
    // The section it hides is missing, and said so (the file has no line
    // for it, so last).
    assert!(
        stderr.contains(&format!("{file}: heartbeat.secret_file: is required")),
        "{stderr}"
    );
}

#[test]
fn garbage_and_missing_files_get_messages_not_panics() {
    for (name, text) in [
        ("empty.toml", ""),
        ("binary.toml", "\u{0}\u{1}\u{2}"),
        ("half.toml", "[cluster\nname="),
        ("array.toml", "cluster = [1, 2]"),
    ] {
        let (code, _, stderr) = check(&write(name, text));
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: the message names the file: {stderr}"
        );
    }
    let (code, _, stderr) = check(&PathBuf::from("/nonexistent/understudy.toml"));
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read the file"), "{stderr}");
}

#[test]
fn an_overflowing_duration_is_a_located_problem_not_a_panic() {
    let good =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml"))
            .unwrap();
    let text = good.replacen(
        "interval = \"1s\"                          # heartbeat period",
        "interval = \"7000000000000000000s\"        # heartbeat period",
        1,
    );
    assert_ne!(text, good, "the example sets heartbeat.interval");
    let path = write("overflow.toml", &text);
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("heartbeat.interval"), "{stderr}");
    assert!(stderr.contains("too long"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `understudy status | head -2`: the reader goes away before the CLI
/// writes. The CLI must end quietly (killed by SIGPIPE, as `cat` is), not
/// panic with a message on stderr.
#[test]
fn a_closed_output_pipe_ends_the_cli_quietly() {
    use std::os::fd::FromRawFd;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml");
    for args in [
        vec!["iflist"],
        vec!["check-config", example.to_str().unwrap()],
    ] {
        // A pipe whose reader is gone before the CLI starts: its first
        // write meets EPIPE, whatever the timing.
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fds[0] is ours and closed once; fds[1] is owned by the File.
        let writer = unsafe {
            libc::close(fds[0]);
            std::fs::File::from_raw_fd(fds[1])
        };
        let out = Command::new(bin())
            .args(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn problems_on_this_node_are_listed_together_with_the_footer() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml");
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replacen("nic = \"eth0\"", "nic = \"nosuchnic0\"", 1)
        .replace("/etc/understudy/secret", "/nonexistent/understudy-secret");
    let path = write("local.toml", &text);
    let out = Command::new(bin())
        .args(["check-config", "--node", "m1"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = path.display().to_string();
    let nic_line = 1 + text
        .lines()
        .position(|l| l.starts_with("nic = \"nosuchnic0\""))
        .expect("the edited nic line");
    assert!(
        stderr.contains(&format!(
            "{file}:{nic_line}: node #1.nic: no interface named \"nosuchnic0\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:")) && stderr.contains(": heartbeat.secret_file: "),
        "{stderr}"
    );
    assert!(stderr.contains("2 problem(s) found"), "{stderr}");
}

#[test]
fn a_good_file_says_what_was_not_checked() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml");
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("not checked"), "{stdout}");
    assert!(
        stdout.contains("application.start/stop: not run here"),
        "{stdout}"
    );
}

#[test]
fn type_errors_name_their_key_and_do_not_hide_the_rest() {
    let path = write(
        "types.toml",
        "[cluster]\nname = \"x\"\nvip = \"192.0.2.10\"\n\n[monitor]\ninterval = 10\ngrace = true\n\n[heartbeat]\nport = \"seven\"\n",
    );
    let (code, _, stderr) = check(&path);
    assert_eq!(code, 1, "{stderr}");
    let file = path.display().to_string();
    for expected in [
        format!("{file}:6: monitor.interval: invalid type: integer `10`, expected a string"),
        format!("{file}:7: monitor.grace: invalid type: boolean `true`, expected a string"),
        format!("{file}:10: heartbeat.port: invalid type: string \"seven\""),
        // The sections' own checks still ran: no node is configured.
        "node".to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("problem(s) found"), "{stderr}");
}
