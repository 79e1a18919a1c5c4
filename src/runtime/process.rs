//! `[process]`: what keepalived offers so that a loaded host does not
//! delay the heartbeats — locked memory (`mlockall`) for the whole daemon,
//! and a real-time priority (SCHED_RR) for the loop's thread alone. Both
//! are off by default; when asked for and refused, the daemon does not
//! start, and says which capability or limit is missing.

use std::io;

use tracing::info;

use super::RuntimeError;
use crate::config::Process;

/// Locks the daemon's memory, now and as it grows, if configured.
pub fn lock_memory(process: &Process) -> Result<(), RuntimeError> {
    if !process.lock_memory {
        return Ok(());
    }
    // SAFETY: mlockall takes flags only and touches no memory of ours.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        let e = io::Error::last_os_error();
        return Err(RuntimeError::Process(format!(
            "[process] lock_memory: the system refused mlockall: {e} \
             (needs CAP_IPC_LOCK, or LimitMEMLOCK=infinity in the unit)"
        )));
    }
    info!("memory locked (mlockall)");
    Ok(())
}

/// Gives the calling thread (the loop's) the configured real-time
/// priority. Threads and processes it starts later fall back to the normal
/// scheduler (SCHED_RESET_ON_FORK): the application's start command must
/// not inherit a real-time priority.
pub fn raise_priority(process: &Process) -> Result<(), RuntimeError> {
    let Some(priority) = process.rt_priority else {
        return Ok(());
    };
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    let policy = libc::SCHED_RR | libc::SCHED_RESET_ON_FORK;
    // SAFETY: pid 0 is the calling thread; the kernel only reads `param`.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        let e = io::Error::last_os_error();
        return Err(RuntimeError::Process(format!(
            "[process] rt_priority = {priority}: the system refused SCHED_RR: {e} \
             (needs CAP_SYS_NICE, or LimitRTPRIO={priority} in the unit)"
        )));
    }
    info!(
        priority,
        "heartbeat and decision thread at real-time priority (SCHED_RR)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run as root (as in CI) the calls succeed; as another user the
    /// error names the capability. Either way nothing panics.
    #[test]
    fn real_time_priority_is_granted_or_refused_with_the_reason() {
        let process = Process {
            rt_priority: Some(10),
            lock_memory: false,
        };
        let outcome = std::thread::spawn(move || {
            let outcome = raise_priority(&process);
            // SAFETY: reads the calling thread's policy.
            let policy = unsafe { libc::sched_getscheduler(0) };
            (outcome, policy)
        })
        .join()
        .expect("the thread ran");
        match outcome {
            (Ok(()), policy) => {
                assert_eq!(policy & !libc::SCHED_RESET_ON_FORK, libc::SCHED_RR)
            }
            (Err(e), _) => assert!(e.to_string().contains("CAP_SYS_NICE"), "{e}"),
        }
    }

    #[test]
    fn nothing_is_asked_by_default() {
        assert!(raise_priority(&Process::default()).is_ok());
        assert!(lock_memory(&Process::default()).is_ok());
    }
}
