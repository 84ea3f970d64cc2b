//! The daemon's configuration file (TOML). Every setting is documented in docs/operations.md
//! ("Daemon configuration"); relative paths are relative to the file's directory. A bad
//! file is refused with a message naming the setting, before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::pin_policy::{MAX_EXCLUDED, PinPolicy};
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
    #[serde(default)]
    counters: Option<String>,
    #[serde(default)]
    counters_password_file: Option<PathBuf>,
    tls: TlsFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    lockout: LockoutFile,
    #[serde(default)]
    pin_policy: PinPolicyFile,
    #[serde(default)]
    pin_delivery_transport_keys: Option<bool>,
    #[serde(default)]
    payshield: Option<super::payshield::config::PayshieldFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinPolicyFile {
    enabled: Option<bool>,
    current_pin: Option<bool>,
    repeated_digits: Option<bool>,
    sequences: Option<bool>,
    caller_digits: Option<bool>,
    #[serde(default)]
    excluded: Vec<String>,
}

impl PinPolicyFile {
    /// The policy, with its bounds checked (each error names the setting).
    fn policy(self) -> Result<PinPolicy, String> {
        if self.excluded.len() > MAX_EXCLUDED {
            return Err(format!(
                "pin_policy.excluded has {} entries (at most {MAX_EXCLUDED})",
                self.excluded.len()
            ));
        }
        if let Some(bad) = self
            .excluded
            .iter()
            .find(|e| !(4..=12).contains(&e.len()) || !e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "pin_policy.excluded entry {bad:?} is not a PIN of 4 to 12 digits"
            ));
        }
        let d = PinPolicy::default();
        Ok(PinPolicy {
            enabled: self.enabled.unwrap_or(d.enabled),
            current: self.current_pin.unwrap_or(d.current),
            repeated: self.repeated_digits.unwrap_or(d.repeated),
            sequences: self.sequences.unwrap_or(d.sequences),
            caller_digits: self.caller_digits.unwrap_or(d.caller_digits),
            excluded: self.excluded.into_iter().collect(),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockoutFile {
    pin_limit: Option<i64>,
    dcvv2_limit: Option<i64>,
    #[serde(default)]
    bin_limits: Vec<BinLimitFile>,
    guard_failures_per_minute: Option<i64>,
    guard_refuse: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BinLimitFile {
    prefix: String,
    limit: i64,
}

/// A PIN try limit for PANs starting with `prefix`.
#[derive(Debug, Clone)]
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
    max_connections: Option<i64>,
    max_frame: Option<i64>,
    max_in_flight: Option<i64>,
    max_handshakes: Option<i64>,
    max_handshakes_per_source: Option<i64>,
    answer_buffer: Option<i64>,
    idle_timeout: Option<String>,
    read_timeout: Option<String>,
    handshake_timeout: Option<String>,
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
    /// Authenticated connections served at once; more wait, after their handshake,
    /// for one to close.
    pub max_connections: usize,
    /// Largest request payload in bytes.
    pub max_frame: usize,
    /// Requests per connection without a response yet.
    pub max_in_flight: usize,
    /// TLS handshakes in progress at once; a connection beyond is closed at once.
    pub max_handshakes: usize,
    /// TLS handshakes in progress from one source address; beyond, closed at once.
    pub max_handshakes_per_source: usize,
    /// Bytes of answers a connection may hold before they are written; a peer that
    /// does not read stops being read.
    pub answer_buffer: usize,
    /// Close a connection with no complete frame for this long.
    pub idle_timeout: Duration,
    /// Close a connection whose frame is not complete this long after its first byte.
    pub read_timeout: Duration,
    /// Close a connection whose TLS handshake is not done this long after accept.
    pub handshake_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_frame: DEFAULT_MAX_FRAME,
            max_in_flight: 256,
            max_handshakes: 256,
            max_handshakes_per_source: 64,
            answer_buffer: 64 * 1024,
            idle_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The bounds every setting must lie within (inclusive), named in the error.
mod bounds {
    use std::time::Duration;

    pub const CONNECTIONS: (i64, i64) = (1, 65_536);
    pub const IN_FLIGHT: (i64, i64) = (1, 65_536);
    pub const HANDSHAKES: (i64, i64) = (1, 65_536);
    pub const ANSWER_BUFFER: (i64, i64) = (32 * 1024, 16 * 1024 * 1024);
    /// A try limit above 20 makes the lock a weak defence for 4-digit PINs and 3-digit
    /// dCVV2 codes; an issuer wanting more is outside what cofre supports.
    pub const TRIES: (i64, i64) = (1, 20);
    pub const GUARD_PER_MINUTE: (i64, i64) = (1, 100_000_000);
    pub const IDLE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));
    pub const READ: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(600));
    pub const HANDSHAKE: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(60));
    pub const GRACE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));
}

/// A number within `bounds`, or an error naming the setting and the bounds.
fn number(name: &str, value: Option<i64>, default: i64, bounds: (i64, i64)) -> Result<i64, String> {
    let v = value.unwrap_or(default);
    if v < bounds.0 || v > bounds.1 {
        return Err(format!(
            "{name} = {v} is out of bounds ({} to {})",
            bounds.0, bounds.1
        ));
    }
    Ok(v)
}

fn count(
    name: &str,
    value: Option<i64>,
    default: usize,
    bounds: (i64, i64),
) -> Result<usize, String> {
    let d = i64::try_from(default).unwrap_or(i64::MAX);
    usize::try_from(number(name, value, d, bounds)?).map_err(|e| format!("{name}: {e}"))
}

fn tries(name: &str, value: Option<i64>, default: u32) -> Result<u32, String> {
    u32::try_from(number(name, value, i64::from(default), bounds::TRIES)?)
        .map_err(|e| format!("{name}: {e}"))
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
    /// Which counter store: redb in `state_dir`, or PostgreSQL shared by a pair.
    pub counters: CounterBackend,
    /// Lockout settings.
    pub lockout: Lockout,
    /// The weak-PIN policy.
    pub pin_policy: PinPolicy,
    /// Whether PIN delivery (`pin.deliver`, `pin.generate` with `delivery_key`) also
    /// accepts a transport key, the kind that protects security codes and the bureau's
    /// file, besides a `pin-delivery` key: a migration switch, off by default.
    pub pin_delivery_transport_keys: bool,
    /// The payShield-compatible listener (`[payshield]`; `None`: off).
    pub payshield: Option<super::payshield::config::PayshieldConfig>,
}

/// The counter store the daemon uses (`counters` in `hsm.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterBackend {
    /// `counters = "redb"` (the default): one node, a file in `state_dir`.
    Redb,
    /// `counters = "postgres://user@host/db"`: shared by a pair of daemons.
    Postgres {
        /// The URL, without a password.
        url: String,
        /// `counters_password_file`; without it the systemd credential
        /// `cofre-counters-password`, if the daemon has one.
        password_file: Option<PathBuf>,
    },
}

/// The counter store setting, checked: a URL must not carry a password (it goes in
/// `counters_password_file` or the systemd credential, never in the file or the logs).
pub fn counter_backend(
    value: Option<String>,
    password_file: Option<PathBuf>,
) -> Result<CounterBackend, String> {
    let url = match value.as_deref() {
        None | Some("redb") => {
            if password_file.is_some() {
                return Err(
                    "counters_password_file is set but counters is not a postgres:// URL".into(),
                );
            }
            return Ok(CounterBackend::Redb);
        }
        Some(u) => u,
    };
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return Err("counters must be \"redb\" or a postgres:// URL".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err(
            "counters: the URL carries a password; put it in counters_password_file \
             (or the systemd credential cofre-counters-password) instead"
                .into(),
        );
    }
    if authority.is_empty() || !rest.contains('/') {
        return Err(
            "counters: the URL names no host and database (postgres://user@host/db)".into(),
        );
    }
    Ok(CounterBackend::Postgres {
        url: url.to_owned(),
        password_file,
    })
}

fn duration(
    name: &str,
    value: Option<String>,
    default: Duration,
    bounds: (Duration, Duration),
) -> Result<Duration, String> {
    let Some(v) = value else {
        return Ok(default);
    };
    let d = humantime::parse_duration(&v)
        .map_err(|e| format!("limits.{name}: {v:?} is not a duration ({e})"))?;
    if d < bounds.0 || d > bounds.1 {
        return Err(format!(
            "limits.{name} = {v:?} is out of bounds ({} to {})",
            humantime::format_duration(bounds.0),
            humantime::format_duration(bounds.1)
        ));
    }
    Ok(d)
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
        let max_handshakes = count(
            "limits.max_handshakes",
            l.max_handshakes,
            d.max_handshakes,
            bounds::HANDSHAKES,
        )?;
        let frame_bounds = (
            i64::try_from(REQUEST_HEADER_LEN).unwrap_or(8),
            i64::try_from(ABSOLUTE_MAX_FRAME).unwrap_or(1 << 20),
        );
        let limits = Limits {
            max_connections: count(
                "limits.max_connections",
                l.max_connections,
                d.max_connections,
                bounds::CONNECTIONS,
            )?,
            max_frame: count("limits.max_frame", l.max_frame, d.max_frame, frame_bounds)?,
            max_in_flight: count(
                "limits.max_in_flight",
                l.max_in_flight,
                d.max_in_flight,
                bounds::IN_FLIGHT,
            )?,
            max_handshakes,
            max_handshakes_per_source: count(
                "limits.max_handshakes_per_source",
                l.max_handshakes_per_source,
                d.max_handshakes_per_source.min(max_handshakes),
                (1, i64::try_from(max_handshakes).unwrap_or(i64::MAX)),
            )?,
            answer_buffer: count(
                "limits.answer_buffer",
                l.answer_buffer,
                d.answer_buffer,
                bounds::ANSWER_BUFFER,
            )?,
            idle_timeout: duration("idle_timeout", l.idle_timeout, d.idle_timeout, bounds::IDLE)?,
            read_timeout: duration("read_timeout", l.read_timeout, d.read_timeout, bounds::READ)?,
            handshake_timeout: duration(
                "handshake_timeout",
                l.handshake_timeout,
                d.handshake_timeout,
                bounds::HANDSHAKE,
            )?,
            shutdown_grace: duration(
                "shutdown_grace",
                l.shutdown_grace,
                d.shutdown_grace,
                bounds::GRACE,
            )?,
        };
        if f.lmk_components.len() == 1 {
            return Err(
                "lmk_components needs at least 2 files (or none: systemd credential)".into(),
            );
        }
        let lo = f.lockout;
        let bin_limits = lo
            .bin_limits
            .into_iter()
            .map(|b| {
                if b.prefix.is_empty() || !b.prefix.bytes().all(|c| c.is_ascii_digit()) {
                    return Err("lockout.bin_limits prefixes must be digits".to_owned());
                }
                let limit = tries(
                    &format!("lockout.bin_limits {:?} limit", b.prefix),
                    Some(b.limit),
                    3,
                )?;
                Ok(BinLimit {
                    prefix: b.prefix,
                    limit,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lockout = Lockout {
            pin_limit: tries("lockout.pin_limit", lo.pin_limit, 3)?,
            dcvv2_limit: tries("lockout.dcvv2_limit", lo.dcvv2_limit, 3)?,
            bin_limits,
            guard_failures_per_minute: u64::try_from(number(
                "lockout.guard_failures_per_minute",
                lo.guard_failures_per_minute,
                1000,
                bounds::GUARD_PER_MINUTE,
            )?)
            .map_err(|e| e.to_string())?,
            guard_refuse: lo.guard_refuse.unwrap_or(false),
        };
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
            counters: counter_backend(f.counters, f.counters_password_file.map(&path))?,
            lockout,
            pin_policy: f.pin_policy.policy()?,
            pin_delivery_transport_keys: f.pin_delivery_transport_keys.unwrap_or(false),
            payshield: f.payshield.map(|p| p.validate()).transpose()?,
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
#[path = "config_tests.rs"]
mod tests;
