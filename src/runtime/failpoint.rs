//! Fault injection for the tests of the daemon's last line of defence (a
//! panic must bring it down the safe way). Debug builds only: a release
//! build compiles every failpoint to nothing.
//!
//! `UNDERSTUDY_FAILPOINT_FILE=PATH`: when that file holds a failpoint's
//! name, the code at that failpoint panics. The file is read at each hit,
//! so a test arms a failpoint at the moment it chooses.

/// Panics here if the failpoint file names `name` (debug builds only).
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("UNDERSTUDY_FAILPOINT_FILE") {
        let armed = std::fs::read_to_string(path).unwrap_or_default();
        if armed.split_whitespace().any(|w| w == name) {
            panic!("failpoint {name} hit");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
