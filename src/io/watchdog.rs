//! The Linux watchdog device (the kernel's
//! `Documentation/watchdog/watchdog-api.rst`): opening it starts its timer;
//! every write feeds it; `WDIOC_SETTIMEOUT` sets its timeout in whole
//! seconds (the driver may pick another, and writes back the one it
//! chose); writing `V` just before closing it stops it (the *magic close*),
//! and any other close, such as the kernel's when the process dies, leaves
//! it running, so that the host resets when it runs out.
//!
//! A named pipe at the configured path stands in for a device where there
//! is none (the tests': no watchdog driver, no softdog): the same writes go
//! to it, the ioctls are skipped, and the reader on the other end does what
//! a reset would.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `_IOWR('W', 6, int)`: set the timeout (seconds); the driver writes back
/// the one it chose.
pub const WDIOC_SETTIMEOUT: u64 = ioc(IOC_READ | IOC_WRITE, 6);

const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

/// The generic `_IOC(dir, 'W', nr, sizeof(int))` encoding of asm-generic
/// ioctl.h: direction in bits 30–31, size in 16–29, type in 8–15, number
/// in 0–7.
const fn ioc(dir: u64, nr: u64) -> u64 {
    (dir << 30) | (4 << 16) | ((b'W' as u64) << 8) | nr
}

/// What went wrong with the device, said with its path.
#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a watchdog device (WDIOC_SETTIMEOUT: {source})")]
    NotAWatchdog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} runs out after {chosen}s, not the {asked}s asked: that breaks the lease order; set [fencing] watchdog_timeout to what it supports")]
    Rounded {
        path: PathBuf,
        asked: u64,
        chosen: u64,
    },
    #[error("cannot feed {path}: {source}")]
    Feed {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An armed device: while this lives, the timer runs.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    /// The timeout the device runs with (what the driver chose).
    timeout: Duration,
    /// A named pipe standing in for a device (no ioctls).
    stand_in: bool,
}

impl Device {
    /// Opens (arms) the device at `path` and sets its timeout to `timeout`
    /// (whole seconds). A driver that picks a longer timeout is refused and
    /// stopped again: the lease order was computed for `timeout`.
    pub fn arm(path: &Path, timeout: Duration) -> Result<Device, WatchdogError> {
        let stand_in = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
        // Non-blocking: opening a pipe with no reader fails at once (ENXIO)
        // instead of waiting, and a write never waits behind a slow reader.
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| WatchdogError::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut device = Device {
            file,
            path: path.to_owned(),
            timeout,
            stand_in,
        };
        if !stand_in {
            let asked = timeout.as_secs();
            match device.set_timeout(asked) {
                Ok(chosen) if chosen <= asked => device.timeout = Duration::from_secs(chosen),
                Ok(chosen) => {
                    let path = device.path.clone();
                    let _ = device.disarm();
                    return Err(WatchdogError::Rounded {
                        path,
                        asked,
                        chosen,
                    });
                }
                Err(source) => {
                    // Not a watchdog: nothing runs, nothing to stop.
                    return Err(WatchdogError::NotAWatchdog {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        device.feed()?;
        Ok(device)
    }

    /// Takes over the device a re-executed predecessor left open at `fd`
    /// (see [`Device::keep_across_exec`]).
    ///
    /// # Safety
    /// `fd` must be the open device handed over through the exec, owned by
    /// nothing else in this process.
    pub unsafe fn adopt(fd: RawFd, path: &Path, timeout: Duration) -> Device {
        let stand_in = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
        // SAFETY: the caller hands over an fd nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        set_cloexec(file.as_raw_fd(), true);
        Device {
            file,
            path: path.to_owned(),
            timeout,
            stand_in,
        }
    }

    /// Feeds the timer: one byte that is not `V` (which would allow the
    /// magic close).
    pub fn feed(&mut self) -> Result<(), WatchdogError> {
        self.file
            .write_all(b"\0")
            .map_err(|source| WatchdogError::Feed {
                path: self.path.clone(),
                source,
            })
    }

    /// Stops the timer: the magic `V`, then close. A driver built with
    /// `nowayout` keeps running anyway; nothing more can be done here.
    pub fn disarm(mut self) -> Result<(), WatchdogError> {
        let written = self.file.write_all(b"V");
        drop(self.file);
        written.map_err(|source| WatchdogError::Feed {
            path: self.path,
            source,
        })
    }

    /// Leaves the device open across the coming exec (the fd is not closed
    /// on exec, so the timer neither stops nor loses its process) and
    /// returns the fd the new process adopts.
    pub fn keep_across_exec(self) -> RawFd {
        let fd = self.file.into_raw_fd();
        set_cloexec(fd, false);
        fd
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stand_in(&self) -> bool {
        self.stand_in
    }

    /// `WDIOC_SETTIMEOUT`: the driver answers with the timeout it chose.
    fn set_timeout(&self, seconds: u64) -> std::io::Result<u64> {
        let mut value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
        // SAFETY: the request takes a pointer to an int, which lives here.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                WDIOC_SETTIMEOUT as _,
                &mut value as *mut libc::c_int,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(u64::try_from(value).unwrap_or(0))
    }
}

fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: F_GETFD/F_SETFD on an fd this process owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            let flags = if on {
                flags | libc::FD_CLOEXEC
            } else {
                flags & !libc::FD_CLOEXEC
            };
            libc::fcntl(fd, libc::F_SETFD, flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A directory of this test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("understudy-watchdog-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The request numbers of linux/watchdog.h on every architecture with
    /// the generic ioctl encoding (x86, arm, arm64, riscv):
    /// WDIOC_KEEPALIVE is 0x80045705, WDIOC_SETTIMEOUT 0xC0045706.
    #[test]
    fn the_requests_are_the_kernels() {
        assert_eq!(ioc(IOC_READ, 5), 0x8004_5705);
        assert_eq!(WDIOC_SETTIMEOUT, 0xC004_5706);
    }

    /// A regular file is no watchdog: its SETTIMEOUT fails (ENOTTY) and
    /// the error names the path.
    #[test]
    fn a_file_that_is_not_a_device_is_refused() {
        let dir = Scratch::new("file");
        let path = dir.path().join("not-a-watchdog");
        std::fs::write(&path, b"").expect("the file");
        let err = Device::arm(&path, Duration::from_secs(5)).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("is not a watchdog device"), "{text}");
        assert!(text.contains("not-a-watchdog"), "{text}");
        let missing = dir.path().join("missing");
        let err = Device::arm(&missing, Duration::from_secs(5)).expect_err("refused");
        assert!(err.to_string().starts_with("cannot open"), "{err}");
    }

    /// On a pipe: arming feeds at once, feeds are bytes that are not `V`,
    /// and the disarm ends with the magic `V` and a close.
    #[test]
    fn feeds_and_the_magic_close_are_what_is_written() {
        let dir = Scratch::new("pipe");
        let path = dir.path().join("watchdog");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // The reader must be there before the writer opens (non-blocking).
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("the reader");
        let mut device = Device::arm(&path, Duration::from_secs(2)).expect("armed");
        assert!(device.stand_in());
        device.feed().expect("fed");
        device.disarm().expect("disarmed");
        let mut seen = Vec::new();
        reader.read_to_end(&mut seen).expect("read");
        assert_eq!(seen, b"\0\0V");
    }

    /// A pipe nobody reads is no stand-in: the open fails at once.
    #[test]
    fn a_pipe_without_a_reader_fails_at_once() {
        let dir = Scratch::new("lonely");
        let path = dir.path().join("watchdog");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = Device::arm(&path, Duration::from_secs(2)).expect_err("no reader");
        assert!(err.to_string().contains("cannot open"), "{err}");
    }
}
