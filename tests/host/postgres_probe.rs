//! The PostgreSQL data-service probe against a real server on loopback,
//! started by the test from Debian's postgresql package (needs root, to run
//! the server as the postgres user; CI installs the package).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use understudy::config::Expect;
use understudy::io::probe::{Check, ProbeError, Prober};

use crate::common::pg_bin;

fn as_postgres(args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser")
}

/// A throwaway cluster on 127.0.0.1, stopped on drop.
struct Server {
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn start() -> Server {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root (CI runs it as root)"
        );
        let port = 55000 + (std::process::id() % 1000) as u16;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success());
        let data = dir.join("data");
        let initdb = pg_bin("initdb");
        let out = as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {}",
            dir.display()
        );
        let pg_ctl = pg_bin("pg_ctl");
        let log = dir.join("log");
        let out = as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "start",
        ]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Server { dir, port }
    }

    fn stop(&self) {
        let pg_ctl = pg_bin("pg_ctl");
        let data = self.dir.join("data");
        let _ = as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn postgres_probe_runs_the_query_and_reports_failures() {
    let server = Server::start();
    let prober = Prober::new(Duration::from_secs(2), None, Expect::default()).unwrap();
    let conn = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let check = |query: &str| Check::Postgres {
        conn: conn.clone(),
        query: query.into(),
    };
    let healthy = prober.check(&check("SELECT 1")).await;
    assert!(healthy.is_ok(), "{healthy:?}");
    let err = prober
        .check(&check("SELECT * FROM no_such_table"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::PostgresQuery { .. })
            && err.to_string().contains("no_such_table"),
        "{err}"
    );
    server.stop();
    let err = prober.check(&check("SELECT 1")).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::PostgresConnect { .. })
            && err.to_string().contains("cannot connect"),
        "{err}"
    );
}
