//! The Debian package, built and installed as an administrator would
//! (needs root and cargo-deb, which `.ci/run` installs): packaging/
//! build-deb.sh builds it, then `dpkg -i` installs it on this machine in a
//! private mount namespace whose /usr, /etc and /var are overlays (so the
//! machine's own package database and files are untouched) and whose /run
//! is empty. It must put the binary, both units, the configuration as a
//! conffile, the manual pages and the completions in place, create no key,
//! enable and start nothing, pass `systemd-analyze verify`, keep the units'
//! `systemd-analyze security` exposure under the bounds the README states,
//! and remove and purge cleanly.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The checks, run as root inside the namespace; `set -e` stops at the
/// first that fails, `-x` shows which.
const CHECKS: &str = r#"
deb=$(ls target/debian/understudy_*.deb | tail -n 1)
dpkg -i "$deb"
test -x /usr/sbin/understudy
/usr/sbin/understudy --version | grep -q "^understudy "
grep -qx /etc/understudy/understudy.toml /var/lib/dpkg/info/understudy.conffiles
test "$(stat -c %a /etc/understudy/understudy.toml)" = 640
man -w understudy | grep -q man8/understudy.8
man -w 5 understudy.toml | grep -q man5/understudy.toml.5
man understudy.toml 2>/dev/null | grep -q "heartbeat.secret_file"
test -s /usr/share/bash-completion/completions/understudy
test -s /usr/share/zsh/vendor-completions/_understudy
test -s /usr/share/fish/vendor_completions.d/understudy.fish
grep -q "ExecStart=/usr/sbin/understudy run" /lib/systemd/system/understudy.service
systemd-analyze verify /lib/systemd/system/understudy.service /lib/systemd/system/understudy-strict.service
echo "SCORE default: $(systemd-analyze security --offline=true /lib/systemd/system/understudy.service 2>&1 | tail -n 1)"
echo "SCORE strict: $(systemd-analyze security --offline=true /lib/systemd/system/understudy-strict.service 2>&1 | tail -n 1)"
systemd-analyze security --offline=true --threshold=75 /lib/systemd/system/understudy.service >/dev/null
systemd-analyze security --offline=true --threshold=30 /lib/systemd/system/understudy-strict.service >/dev/null
# Nothing secret, nothing enabled, nothing started.
test ! -e /etc/understudy/secret
test -z "$(find /etc/systemd -name 'understudy*' 2>/dev/null)"
! pgrep -x understudy
/usr/sbin/understudy check-config /etc/understudy/understudy.toml
dpkg -r understudy
test ! -e /usr/sbin/understudy
test -e /etc/understudy/understudy.toml
dpkg -P understudy
test ! -e /etc/understudy/understudy.toml
echo CHECKS PASSED
"#;

#[test]
fn the_package_installs_what_it_should_and_starts_nothing() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (CI runs as root)"
    );
    let built = Command::new(repo().join("packaging/build-deb.sh"))
        .current_dir(repo())
        .output()
        .expect("run packaging/build-deb.sh");
    assert!(
        built.status.success(),
        "packaging/build-deb.sh failed (is cargo-deb installed?):\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let scratch = std::env::temp_dir().join(format!("understudy-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut setup = String::from("set -e\n");
    for dir in ["usr", "etc", "var"] {
        for sub in [dir.to_owned(), format!("{dir}.work")] {
            std::fs::create_dir_all(scratch.join(sub)).unwrap();
        }
        setup.push_str(&format!(
            "mount -t overlay overlay -o lowerdir=/{dir},upperdir={s}/{dir},workdir={s}/{dir}.work /{dir}\n",
            s = scratch.display()
        ));
    }
    setup.push_str("mount -t tmpfs tmpfs /run\nset -x\n");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{setup}{CHECKS}"))
        .current_dir(repo())
        .output()
        .expect("unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&scratch);
    for line in text.lines().filter(|l| l.starts_with("SCORE")) {
        eprintln!("{line}");
    }
    assert!(
        out.status.success() && text.contains("CHECKS PASSED"),
        "the installed package failed a check:\n{text}"
    );
}
