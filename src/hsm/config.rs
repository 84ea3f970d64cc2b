//! The daemon's configuration file (TOML). Every setting is documented in the README
//! ("Daemon configuration"); relative paths are relative to the file's directory. A bad
//! file is refused with a message naming the setting, before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::{ABSOLUTE_MAX_FRAME, DEFAULT_MAX_FRAME, REQUEST_HEADER_LEN};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: String,
    #[serde(default)]
    metrics_listen: Option<String>,
    key_store: PathBuf,
    audit_log: PathBuf,
    #[serde(default)]
    lmk_components: Vec<PathBuf>,
    policy: PathBuf,
    token_key: String,
    lookup_key: String,
    state_dir: PathBuf,
    tls: TlsFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    lockout: LockoutFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockoutFile {
    pin_limit: Option<u32>,
    dcvv2_limit: Option<u32>,
    #[serde(default)]
    bin_limits: Vec<BinLimit>,
    guard_failures_per_minute: Option<u64>,
    guard_refuse: Option<bool>,
}

/// A PIN try limit for PANs starting with `prefix`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinLimit {
    /// Leading PAN digits.
    pub prefix: String,
    /// Tries allowed.
    pub limit: u32,
}

/// Lockout settings.
#[derive(Debug, Clone)]
pub struct Lockout {
    /// PIN tries before lock (default 3).
    pub pin_limit: u32,
    /// dCVV2 tries before lock (default 3).
    pub dcvv2_limit: u32,
    /// Per-BIN PIN limits; the longest matching prefix wins.
    pub bin_limits: Vec<BinLimit>,
    /// PIN failures per minute, across all cards, that raise the brute-force alert.
    pub guard_failures_per_minute: u64,
    /// Whether the alert also refuses PIN verification until reset.
    pub guard_refuse: bool,
}

impl Lockout {
    /// The PIN limit for a PAN.
    pub fn pin_limit_for(&self, pan: &str) -> u32 {
        self.bin_limits
            .iter()
            .filter(|b| pan.starts_with(&b.prefix))
            .max_by_key(|b| b.prefix.len())
            .map_or(self.pin_limit, |b| b.limit)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_connections: Option<usize>,
    max_frame: Option<usize>,
    max_in_flight: Option<usize>,
    idle_timeout: Option<String>,
    read_timeout: Option<String>,
    shutdown_grace: Option<String>,
}

/// TLS files.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    /// CA that client certificates must chain to.
    pub ca: PathBuf,
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
}

/// Limits enforced per daemon and per connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; more wait in the backlog.
    pub max_connections: usize,
    /// Largest request payload in bytes.
    pub max_frame: usize,
    /// Requests per connection without a response yet.
    pub max_in_flight: usize,
    /// Close a connection with no complete frame for this long.
    pub idle_timeout: Duration,
    /// Close a connection stalled inside a frame (or a TLS handshake) for this long.
    pub read_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 256,
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Protocol listener.
    pub listen: SocketAddr,
    /// Prometheus listener (None: off).
    pub metrics_listen: Option<SocketAddr>,
    /// Key store file.
    pub key_store: PathBuf,
    /// Audit log file.
    pub audit_log: PathBuf,
    /// LMK component files; empty means the systemd credential.
    pub lmk_components: Vec<PathBuf>,
    /// Role policy file.
    pub policy: PathBuf,
    /// Token key id.
    pub token_key: String,
    /// Lookup-token key id.
    pub lookup_key: String,
    /// TLS files.
    pub tls: TlsPaths,
    /// Limits.
    pub limits: Limits,
    /// Directory of the counter store.
    pub state_dir: PathBuf,
    /// Lockout settings.
    pub lockout: Lockout,
}

fn duration(name: &str, value: Option<String>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(v) => {
            let d = humantime::parse_duration(&v)
                .map_err(|e| format!("limits.{name}: {v:?} is not a duration ({e})"))?;
            if d.is_zero() {
                return Err(format!("limits.{name} must be more than zero"));
            }
            Ok(d)
        }
    }
}

fn addr(name: &str, value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: {value:?} is not an address like 127.0.0.1:7300"))
}

impl HsmConfig {
    /// Parses config text; `base` resolves relative paths.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        let path = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let d = Limits::default();
        let l = f.limits;
        let limits = Limits {
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            max_frame: l.max_frame.unwrap_or(d.max_frame),
            max_in_flight: l.max_in_flight.unwrap_or(d.max_in_flight),
            idle_timeout: duration("idle_timeout", l.idle_timeout, d.idle_timeout)?,
            read_timeout: duration("read_timeout", l.read_timeout, d.read_timeout)?,
            shutdown_grace: duration("shutdown_grace", l.shutdown_grace, d.shutdown_grace)?,
        };
        if !(REQUEST_HEADER_LEN..=ABSOLUTE_MAX_FRAME).contains(&limits.max_frame) {
            return Err(format!(
                "limits.max_frame must be {REQUEST_HEADER_LEN} to {ABSOLUTE_MAX_FRAME}"
            ));
        }
        if limits.max_connections == 0 || limits.max_in_flight == 0 {
            return Err(
                "limits.max_connections and limits.max_in_flight must be at least 1".into(),
            );
        }
        if f.lmk_components.len() == 1 {
            return Err(
                "lmk_components needs at least 2 files (or none: systemd credential)".into(),
            );
        }
        let lo = f.lockout;
        let lockout = Lockout {
            pin_limit: lo.pin_limit.unwrap_or(3),
            dcvv2_limit: lo.dcvv2_limit.unwrap_or(3),
            bin_limits: lo.bin_limits,
            guard_failures_per_minute: lo.guard_failures_per_minute.unwrap_or(1000),
            guard_refuse: lo.guard_refuse.unwrap_or(false),
        };
        if lockout.pin_limit == 0
            || lockout.dcvv2_limit == 0
            || lockout.bin_limits.iter().any(|b| b.limit == 0)
        {
            return Err("lockout limits must be at least 1".into());
        }
        if lockout
            .bin_limits
            .iter()
            .any(|b| b.prefix.is_empty() || !b.prefix.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err("lockout.bin_limits prefixes must be digits".into());
        }
        let metrics_listen = match f.metrics_listen.as_deref() {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 7301))),
            Some("off") => None,
            Some(m) => Some(addr("metrics_listen", m)?),
        };
        Ok(Self {
            listen: addr("listen", &f.listen)?,
            metrics_listen,
            key_store: path(f.key_store),
            audit_log: path(f.audit_log),
            lmk_components: f.lmk_components.into_iter().map(path).collect(),
            policy: path(f.policy),
            token_key: f.token_key,
            lookup_key: f.lookup_key,
            tls: TlsPaths {
                ca: path(f.tls.ca),
                cert: path(f.tls.cert),
                key: path(f.tls.key),
            },
            limits,
            state_dir: path(f.state_dir),
            lockout,
        })
    }

    /// Reads a config file.
    pub fn load(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| format!("{}: {e}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let c =
            HsmConfig::parse(include_str!("../../keys-example/hsm.toml"), Path::new("/x")).unwrap();
        assert_eq!(c.key_store, Path::new("/x/keys.json"));
        assert_eq!(c.limits.max_in_flight, 256);
        assert_eq!(c.lmk_components.len(), 2);
    }

    #[test]
    fn production_example_parses() {
        let c = HsmConfig::parse(include_str!("../../systemd/hsm.toml"), Path::new("/")).unwrap();
        assert!(
            c.lmk_components.is_empty(),
            "the LMK comes from the credential"
        );
        assert_eq!(c.state_dir, Path::new("/var/lib/cofre-hsm/state"));
    }

    #[test]
    fn bad_configs_name_the_setting() {
        let base = include_str!("../../keys-example/hsm.toml");
        let bad = |from: &str, to: &str| {
            HsmConfig::parse(&base.replace(from, to), Path::new("/x")).unwrap_err()
        };
        assert!(bad("127.0.0.1:7300", "nowhere").contains("listen"));
        assert!(bad("\"30s\"", "\"soon\"").contains("read_timeout"));
        assert!(bad("max_frame = 16384", "max_frame = 4").contains("max_frame"));
        assert!(bad("max_frame = 16384", "max_fram = 1").contains("max_fram"));
        assert!(bad("max_in_flight = 256", "max_in_flight = 0").contains("max_in_flight"));
    }
}
