//! The `understudy` binary: parse the command line, set up logging, and
//! hand over to [`cli::dispatch`].

mod cli;
mod manual;
mod mirror_cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Info for understudy; the netlink crate warns about every attribute a
/// newer kernel adds, which says nothing to an administrator.
const DEFAULT_LOG: &str = "info,netlink_packet_route=error";

/// A command whose output goes to `head` must end quietly when the pipe
/// closes, as every Unix tool does; Rust ignores SIGPIPE, so `println!`
/// would panic instead. The daemon keeps ignoring it: a peer that hangs up
/// on a socket must never kill it.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default has no
    // preconditions; no other thread runs yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if matches!(args.command, cli::Command::Run { .. }) {
        // SIGTERM, SIGINT and SIGHUP wait, pending, until the daemon's
        // handlers are in (their default action would end a daemon that
        // is starting, or kill it outright on a SIGHUP).
        understudy::runtime::restart::hold_until_handled();
    } else {
        restore_sigpipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("UNDERSTUDY_LOG")
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("understudy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::dispatch(args));
    // Everything that matters is released by now; do not let a stray
    // blocking thread (a packet read, a resolver) hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("understudy: {e:#}");
            ExitCode::FAILURE
        }
    }
}
