//! `[monitor]`: probe timing, the grace period, the data service, what an
//! application URL must answer, and the limits on moves (dwell, flapping).

use std::time::Duration;

use super::super::check::{parse_data_service, parse_status_range, Checker};
use super::super::locate::Seg;
use super::super::raw::RawMonitor;
use super::super::{DataService, Expect, MaintenanceSignal, Monitor, ProbeTiming};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Three minutes, like the failover modules understudy replaces.
const DEFAULT_GRACE: Duration = Duration::from_secs(180);
const DEFAULT_RISE: u32 = 2;
/// Pacemaker's migration-threshold and failure-timeout are the model: six
/// automatic moves in ten minutes is a pair fighting itself, not failing
/// over (at the default grace of 3 minutes, failures cannot move it that
/// often).
const DEFAULT_FLAP_LIMIT: u32 = 6;
const DEFAULT_FLAP_WINDOW: Duration = Duration::from_secs(600);

fn key(k: &'static str) -> [Seg<'static>; 2] {
    [Seg::Key("monitor"), Seg::Key(k)]
}

pub(in crate::config) fn monitor(ck: &mut Checker, m: RawMonitor) -> Monitor {
    let interval = ck.duration(&m.interval, &key("interval"), DEFAULT_INTERVAL);
    // A short interval brings its own default limit: a probe must end
    // before the next one starts.
    let timeout = ck.duration(
        &m.timeout,
        &key("timeout"),
        DEFAULT_TIMEOUT.min(interval / 2),
    );
    let grace = ck.duration(&m.grace, &key("grace"), DEFAULT_GRACE);
    let rise = ck.count(m.rise, &key("rise"), DEFAULT_RISE, (1, 100));
    let fall = ck.count(m.fall, &key("fall"), 1, (1, 100));
    check_timing(ck, interval, timeout, grace);
    let flap_limit = ck.count(
        m.flap_limit,
        &key("flap_limit"),
        DEFAULT_FLAP_LIMIT,
        (0, 1000),
    );
    let flap_window = ck.duration(&m.flap_window, &key("flap_window"), DEFAULT_FLAP_WINDOW);
    if flap_limit > 0 && flap_window.is_zero() {
        ck.report(
            &key("flap_window"),
            "must be greater than zero (or set flap_limit = 0)",
        );
    }
    let data_probe = ProbeTiming {
        interval: ck.duration(&m.data_interval, &key("data_interval"), interval),
        timeout: ck.duration(&m.data_timeout, &key("data_timeout"), timeout),
        rise: ck.count(m.data_rise, &key("data_rise"), rise, (1, 100)),
        fall: ck.count(m.data_fall, &key("data_fall"), fall, (1, 100)),
    };
    let own_data_timing = m.data_interval.is_some() || m.data_timeout.is_some();
    if own_data_timing && data_probe.timeout >= data_probe.interval {
        ck.report(&key("data_timeout"), "must be shorter than data_interval");
    }
    Monitor {
        interval,
        timeout,
        grace,
        rise,
        fall,
        data_probe,
        data: data_service(ck, &m),
        expect: expectations(ck, &m),
        ca_file: m.ca_file.map(Into::into),
        client_cert: m.client_cert.map(Into::into),
        dwell: ck.duration(&m.dwell, &key("dwell"), Duration::ZERO),
        flap_limit,
        flap_window,
    }
}

/// timeout < interval ≤ grace, all above zero.
fn check_timing(ck: &mut Checker, interval: Duration, timeout: Duration, grace: Duration) {
    if interval.is_zero() {
        ck.report(&key("interval"), "must be greater than zero");
    }
    if timeout.is_zero() {
        ck.report(&key("timeout"), "must be greater than zero");
    }
    if timeout >= interval {
        ck.report(
            &key("timeout"),
            format!("must be shorter than the interval ({timeout:?} >= {interval:?})"),
        );
    }
    if grace < interval {
        ck.report(
            &key("grace"),
            format!("must be at least the interval ({grace:?} < {interval:?})"),
        );
    }
}

/// `data` (and, for PostgreSQL, `data_query`).
fn data_service(ck: &mut Checker, m: &RawMonitor) -> Option<DataService> {
    let query = m.data_query.clone().unwrap_or_else(|| "SELECT 1".into());
    match parse_data_service(m.data.as_deref()?) {
        Ok(DataService::Postgres { conn, .. }) => Some(DataService::Postgres { conn, query }),
        Ok(ds) => Some(ds),
        Err(msg) => {
            ck.report(&key("data"), msg);
            None
        }
    }
}

/// What an application URL must answer: status, body, header, and the
/// application's own maintenance signal.
fn expectations(ck: &mut Checker, m: &RawMonitor) -> Expect {
    let mut expect = Expect::default();
    if let Some(raw_status) = &m.expect_status {
        match parse_status_range(raw_status) {
            Ok(range) => expect.status = range,
            Err(msg) => ck.report(&key("expect_status"), msg),
        }
    }
    expect.body = m.expect_body.clone();
    if let Some(re) = &m.expect_body_regex {
        match regex::Regex::new(re) {
            Ok(r) => expect.body_regex = Some(r),
            Err(e) => ck.report(
                &key("expect_body_regex"),
                format!("not a regular expression: {e}"),
            ),
        }
    }
    if let Some(h) = &m.expect_header {
        let (name, value) = match h.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
            None => (h.trim(), None),
        };
        if name.is_empty() || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            ck.report(
                &key("expect_header"),
                format!("{h:?}: write \"Name\" or \"Name: value\""),
            );
        } else {
            expect.header = Some((name.to_owned(), value));
        }
    }
    expect.maintenance = maintenance_signal(ck, m);
    expect
}

fn maintenance_signal(ck: &mut Checker, m: &RawMonitor) -> Option<MaintenanceSignal> {
    let signal = MaintenanceSignal {
        status: m.maintenance_status.and_then(|n| match u16::try_from(n) {
            Ok(code) if (100..=599).contains(&code) => Some(code),
            _ => {
                ck.report(
                    &key("maintenance_status"),
                    format!("{n} is not an HTTP status"),
                );
                None
            }
        }),
        header: m.maintenance_header.clone(),
        body: m.maintenance_body.clone(),
    };
    (signal.status.is_some() || signal.header.is_some() || signal.body.is_some()).then_some(signal)
}
