//! The configuration exactly as written: every field optional, so that one
//! pass can report every missing or malformed value instead of stopping at
//! the first. `validate` turns this into a [`super::Config`].

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub cluster: Option<RawCluster>,
    pub node: Option<Vec<RawNode>>,
    pub monitor: Option<RawMonitor>,
    pub application: Option<RawApplication>,
    pub announce: Option<RawAnnounce>,
    pub heartbeat: Option<RawHeartbeat>,
    pub failback: Option<RawFailback>,
    pub control: Option<RawControl>,
    pub process: Option<RawProcess>,
    pub api: Option<RawApi>,
    pub notify: Option<RawNotify>,
    pub witness: Option<RawWitness>,
    pub fencing: Option<RawFencing>,
    pub mirror: Option<Vec<RawMirror>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Option<String>,
    pub vip: Option<RawVip>,
    pub netmask: Option<RawNetmask>,
    pub alias: Option<String>,
    pub sync_config: Option<bool>,
}

/// `vip = "192.0.2.10"` or `vip = ["192.0.2.10/24", "2001:db8::10/64"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawVip {
    One(String),
    Many(Vec<String>),
}

/// `netmask = "255.255.255.0"`, `netmask = 24` or `netmask = "24"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawNetmask {
    Prefix(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: Option<String>,
    pub role: Option<String>,
    pub nic: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
    pub priority: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub grace: Option<String>,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    pub data: Option<String>,
    pub data_interval: Option<String>,
    pub data_timeout: Option<String>,
    pub data_rise: Option<i64>,
    pub data_fall: Option<i64>,
    pub data_query: Option<String>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub expect_status: Option<RawStatus>,
    pub expect_body: Option<String>,
    pub expect_body_regex: Option<String>,
    pub expect_header: Option<String>,
    pub dwell: Option<String>,
    pub flap_limit: Option<i64>,
    pub flap_window: Option<String>,
    pub maintenance_status: Option<i64>,
    pub maintenance_header: Option<String>,
    pub maintenance_body: Option<String>,
}

/// `expect_status = 200` or `expect_status = "200-299"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    Code(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub start: Option<String>,
    pub stop: Option<String>,
    pub timeout: Option<String>,
    pub ready_timeout: Option<String>,
    pub restart_attempts: Option<i64>,
    pub restart_backoff: Option<String>,
    pub unit: Option<String>,
    pub role_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnnounce {
    pub count: Option<i64>,
    pub interval: Option<String>,
    pub probe: Option<String>,
    pub refresh: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub port: Option<i64>,
    pub interval: Option<String>,
    pub peer_timeout: Option<String>,
    pub restart_allowance: Option<String>,
    pub startup: Option<String>,
    pub secret_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailback {
    pub mode: Option<String>,
    pub hold: Option<String>,
    pub drain_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub socket: Option<String>,
    pub state_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    pub rt_priority: Option<i64>,
    pub lock_memory: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub listen: Option<String>,
    pub tokens_file: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub events: Option<Vec<String>>,
    pub dedup_window: Option<String>,
    pub queue: Option<i64>,
    pub email: Option<RawEmail>,
    pub webhook: Option<RawWebhook>,
    pub hook: Option<RawHook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub server: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub allow_plain: Option<bool>,
    pub user: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub urls: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
    pub secret_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub commands: Option<Vec<String>>,
    pub timeout: Option<String>,
}

/// `[witness]`: the lease authority (PostgreSQL or etcd).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWitness {
    pub url: Option<String>,
    pub lease: Option<String>,
    pub on_loss: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
}

/// `[[mirror]]`: files the holder copies to the others (rsync over SSH).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMirror {
    pub name: Option<String>,
    pub paths: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub every: Option<String>,
    pub delete: Option<bool>,
    pub key: Option<String>,
    pub known_hosts: Option<String>,
    pub user: Option<String>,
    pub backup_dir: Option<String>,
    pub timeout: Option<String>,
    pub final_timeout: Option<String>,
    pub alert_after: Option<String>,
}

/// `[fencing]`: what stops a holder that cannot be reached.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFencing {
    pub watchdog: Option<String>,
    pub watchdog_mode: Option<String>,
    pub watchdog_timeout: Option<String>,
    pub fence: Option<String>,
    pub fence_timeout: Option<String>,
}
