//! `cofre api`'s configuration file (TOML; relative paths are relative to the file's
//! directory). Every setting is documented in docs/facade.md ("REST facade
//! configuration") and docs/facade-edge.md (`[tls]`, `[limits]`).
//! A bad file is refused with a message naming the setting, before any port is bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::api::domain::Organization;
use crate::client::ClientConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: String,
    database: String,
    clients: PathBuf,
    #[serde(default)]
    facade_key: Option<PathBuf>,
    #[serde(default)]
    max_body: Option<usize>,
    #[serde(default)]
    check_responses: bool,
    #[serde(default, with = "humantime_serde_opt")]
    idempotency_retention: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    call_lease: Option<Duration>,
    hsm: HsmFile,
    keys: DaemonKeys,
    #[serde(default)]
    key_associations: BTreeMap<String, KeyAssociation>,
    #[serde(default)]
    products: Vec<Product>,
    #[serde(default)]
    bureau: Option<Bureau>,
    #[serde(default)]
    tls: Option<TlsFile>,
    #[serde(default)]
    plain_http: bool,
    #[serde(default)]
    limits: LimitsFile,
    sms: Option<SmsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
    #[serde(default)]
    client_ca: Option<PathBuf>,
    #[serde(default)]
    client_certificates: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    max_connections_per_source: Option<usize>,
    #[serde(default, with = "humantime_serde_opt")]
    handshake_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    body_timeout: Option<Duration>,
    #[serde(default)]
    auth_failures: Option<u32>,
    #[serde(default, with = "humantime_serde_opt")]
    auth_failure_window: Option<Duration>,
}

/// Whether API clients present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Clients may present one (verified against `client_ca` if they do); a client
    /// whose entry names a `tls_identity` must.
    Optional,
    /// Every connection presents one.
    Required,
}

/// The facade's HTTPS settings.
#[derive(Debug, Clone)]
pub struct FacadeTls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// CA that API clients' certificates chain to (`None`: no client certificates).
    pub client_ca: Option<PathBuf>,
    /// Optional or required, when `client_ca` is set.
    pub client_certificates: ClientCertificates,
}

/// Limits against slow and hostile clients (docs/facade-edge.md, "Limits").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; beyond, a new connection is closed at once.
    pub max_connections: usize,
    /// Connections from one source address at once; beyond, closed at once.
    pub max_connections_per_source: usize,
    /// A TLS handshake not done by then closes the connection.
    pub handshake_timeout: Duration,
    /// A request head (request line and headers) not complete this long after the
    /// connection is ready for it closes the connection (this also closes idle
    /// keep-alive connections).
    pub header_timeout: Duration,
    /// A request body not complete this long after its head is answered `408` and the
    /// connection closed.
    pub body_timeout: Duration,
    /// Failed `/token` or signature checks from one client (source address, or api key)
    /// within `auth_failure_window` before its calls are refused with `429`.
    pub auth_failures: u32,
    /// The window of `auth_failures`, and how long a throttled client waits.
    pub auth_failure_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_source: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsFile {
    #[serde(default)]
    delivery_key: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    gateway_token_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde_opt")]
    gateway_timeout: Option<Duration>,
    #[serde(default)]
    pin_per_card_per_day: Option<i64>,
    #[serde(default)]
    pin_per_phone_per_day: Option<i64>,
    #[serde(default)]
    codes_per_phone_per_day: Option<i64>,
    #[serde(default)]
    max_attempts: Option<i64>,
    #[serde(default, with = "humantime_serde_opt")]
    retry_base: Option<Duration>,
}

/// SMS delivery of the cardholder API (`[sms]`): the daemon key PINs travel under, the
/// HTTP gateway the delivery worker posts to, and the rate limits.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// Daemon id of the PIN-delivery key (kind enforced by the daemon); `None`: PINs
    /// are not sent by SMS (`503 sms_unavailable`).
    pub delivery_key: Option<String>,
    /// `http://host:port/path` of the SMS gateway; `None`: messages wait in the outbox
    /// (`queued`) for another sender.
    pub gateway: Option<String>,
    /// A file holding the gateway's bearer token (sent as `Authorization: Bearer`).
    pub gateway_token_file: Option<PathBuf>,
    /// One gateway call's time limit (default 10 s).
    pub gateway_timeout: Duration,
    /// PIN messages per card in 24 h (default 3).
    pub pin_per_card_per_day: i64,
    /// PIN messages per phone in 24 h (default 5).
    pub pin_per_phone_per_day: i64,
    /// Confirmation codes per phone in 24 h (default 5).
    pub codes_per_phone_per_day: i64,
    /// Gateway attempts before a message is `failed` (default 6).
    pub max_attempts: i64,
    /// The first retry's delay, doubled at each attempt up to 10 minutes (default 5 s).
    pub retry_base: Duration,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            delivery_key: None,
            gateway: None,
            gateway_token_file: None,
            gateway_timeout: Duration::from_secs(10),
            pin_per_card_per_day: 3,
            pin_per_phone_per_day: 5,
            codes_per_phone_per_day: 5,
            max_attempts: 6,
            retry_base: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HsmFile {
    addresses: Vec<String>,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    connections: Option<usize>,
    #[serde(default, with = "humantime_serde_opt")]
    timeout: Option<Duration>,
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The daemon key ids the facade names in its calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonKeys {
    /// PIN verification key (Visa PVV).
    pub pvk: String,
    /// Card verification key (CVV, CVV2, iCVV).
    pub cvk: String,
    /// Dynamic CVV2 key.
    pub dcvv2: String,
}

/// What a processor `keyAssociation` value stands for: the daemon keys of one client
/// channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAssociation {
    /// The ZPK (TDES, ISO 9564 format 0) of PIN blocks this client sends.
    pub pin_key: String,
    /// The TDES transport key (32 hex characters at the client) that security codes are
    /// returned under.
    pub transport_key: String,
}

/// A card product: the processor's organization and logo, mapped to a BIN and the
/// card's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// `organizationNumber`.
    pub organization: i64,
    /// `logo`.
    pub logo: i64,
    /// Issuer BIN (6-11 digits) the daemon draws PANs under.
    pub bin: String,
    /// PAN length (default 16).
    #[serde(default)]
    pub pan_length: Option<u8>,
    /// Service code printed on the card (default `201`).
    #[serde(default)]
    pub service_code: Option<String>,
    /// Years from issue to expiry (default 5).
    #[serde(default)]
    pub validity_years: Option<u32>,
    /// Product name, e.g. `gold`.
    #[serde(default)]
    pub name: Option<String>,
}

/// The card bureau that receives embosser files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bureau {
    /// Daemon id of the bureau's transport key (sensitive fields are encrypted under it).
    pub transport_key: String,
    /// Directory embosser files are written to.
    pub output_dir: PathBuf,
    /// How long a facade instance's claim on a running mass issue lasts without being
    /// renewed (renewed every third of it); another instance takes over a batch whose
    /// lease ended. 1 s to 1 h; default [`Bureau::DEFAULT_LEASE`].
    #[serde(default, with = "humantime_serde_opt")]
    pub lease: Option<Duration>,
}

impl Bureau {
    /// The lease when `lease` is not set.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// The lease of a running batch.
    pub fn lease(&self) -> Duration {
        self.lease.unwrap_or(Self::DEFAULT_LEASE)
    }
}

/// The loaded configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// `sqlite://path` (relative paths resolved against the file) or `postgres://...`.
    pub database: String,
    /// The registered API clients (TOML, see `cofre api add-client`).
    pub clients: PathBuf,
    /// Facade key file (hex, 32 bytes); `None`: the systemd credential `cofre-facade-key`.
    pub facade_key: Option<PathBuf>,
    /// Largest request body accepted, bytes (default 65536).
    pub max_body: usize,
    /// Validate every response against the spec and log violations (tests turn it on).
    pub check_responses: bool,
    /// How long a call's answer is kept for replay under its request id (default 24 h);
    /// after that the same id runs as a new call.
    pub idempotency_retention: Duration,
    /// PostgreSQL: how long the marker of a call in progress, shared by every facade,
    /// holds its request id (default 60 s, longer than a daemon call's timeout); a
    /// crashed instance's markers end with it. See docs/scale-out.md.
    pub call_lease: Duration,
    /// How to reach the daemon.
    pub hsm: ClientConfig,
    /// Daemon key ids.
    pub keys: DaemonKeys,
    /// `keyAssociation` values.
    pub key_associations: BTreeMap<String, KeyAssociation>,
    /// Products.
    pub products: Vec<Product>,
    /// Card bureau (mass issue).
    pub bureau: Option<Bureau>,
    /// HTTPS (`None`: plain HTTP, which the file must ask for with `plain_http = true`,
    /// and only on a loopback address).
    pub tls: Option<FacadeTls>,
    /// Limits.
    pub limits: Limits,
    /// SMS delivery (cardholder API).
    pub sms: SmsConfig,
}

/// Default largest body.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Default time answers are kept for idempotent replay.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default lease of a call-in-progress marker.
pub const DEFAULT_CALL_LEASE: Duration = Duration::from_secs(60);

fn limits(f: &LimitsFile) -> Result<Limits, String> {
    let d = Limits::default();
    let count =
        |v: Option<usize>, default: usize, name: &str, max: usize| -> Result<usize, String> {
            let v = v.unwrap_or(default);
            if !(1..=max).contains(&v) {
                return Err(format!("limits.{name} = {v} is out of bounds (1 to {max})"));
            }
            Ok(v)
        };
    let time = |v: Option<Duration>, default: Duration, name: &str| -> Result<Duration, String> {
        let v = v.unwrap_or(default);
        if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&v) {
            return Err(format!("limits.{name} is out of bounds (100ms to 1h)"));
        }
        Ok(v)
    };
    let max_connections = count(
        f.max_connections,
        d.max_connections,
        "max_connections",
        65_536,
    )?;
    let per_source = count(
        f.max_connections_per_source,
        d.max_connections_per_source.min(max_connections),
        "max_connections_per_source",
        max_connections,
    )?;
    let failures = f.auth_failures.unwrap_or(d.auth_failures);
    if !(1..=1_000_000).contains(&failures) {
        return Err(format!(
            "limits.auth_failures = {failures} is out of bounds (1 to 1000000)"
        ));
    }
    Ok(Limits {
        max_connections,
        max_connections_per_source: per_source,
        handshake_timeout: time(
            f.handshake_timeout,
            d.handshake_timeout,
            "handshake_timeout",
        )?,
        header_timeout: time(f.header_timeout, d.header_timeout, "header_timeout")?,
        body_timeout: time(f.body_timeout, d.body_timeout, "body_timeout")?,
        auth_failures: failures,
        auth_failure_window: time(
            f.auth_failure_window,
            d.auth_failure_window,
            "auth_failure_window",
        )?,
    })
}

/// A TOML error as one line naming the file, the line and the setting on it (toml's
/// own message names neither for a value its deserializer refused).
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let place = e.span().and_then(|span| {
        let line_no = text.get(..span.start)?.matches('\n').count() + 1;
        let line = text.lines().nth(line_no - 1)?;
        let setting = line
            .split_once('=')
            .map(|(key, _)| format!(" {}:", key.trim()))
            .unwrap_or_default();
        Some(format!(" line {line_no}:{setting}"))
    });
    format!(
        "{}:{} {}",
        path.display(),
        place.unwrap_or_default(),
        e.message()
    )
}

impl ApiConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let file: File = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let listen = file
            .listen
            .parse()
            .map_err(|_| format!("listen: not an address: {}", file.listen))?;
        let database = match file.database.strip_prefix("sqlite://") {
            Some(p) if !p.starts_with('/') && !p.starts_with(':') => {
                format!("sqlite://{}", base.join(p).display())
            }
            _ => file.database.clone(),
        };
        if !database.starts_with("sqlite:") && !database.starts_with("postgres") {
            return Err("database: expected sqlite://path or postgres://...".into());
        }
        if file.hsm.addresses.is_empty() {
            return Err("hsm.addresses: at least one daemon address".into());
        }
        let max_body = file.max_body.unwrap_or(DEFAULT_MAX_BODY);
        if !(1024..=16 * 1024 * 1024).contains(&max_body) {
            return Err("max_body: between 1024 and 16777216 bytes".into());
        }
        let idempotency_retention = file
            .idempotency_retention
            .unwrap_or(DEFAULT_IDEMPOTENCY_RETENTION);
        if !(Duration::from_secs(60)..=Duration::from_secs(3660 * 24 * 3600))
            .contains(&idempotency_retention)
        {
            return Err("idempotency_retention: between 1m and 3660d".into());
        }
        let call_lease = file.call_lease.unwrap_or(DEFAULT_CALL_LEASE);
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&call_lease) {
            return Err("call_lease: between 1s and 1h".into());
        }
        for p in &file.products {
            if !(6..=11).contains(&p.bin.len()) || !p.bin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("products: bin {:?} is not 6-11 digits", p.bin));
            }
            if let Some(sc) = &p.service_code
                && (sc.len() != 3 || !sc.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!("products: service_code {sc:?} is not 3 digits"));
            }
        }
        let tls = match (file.tls, file.plain_http) {
            (Some(_), true) => {
                return Err("tls and plain_http: choose one".into());
            }
            (Some(t), false) => {
                let client_certificates = match t.client_certificates.as_deref() {
                    None | Some("optional") => ClientCertificates::Optional,
                    Some("required") => ClientCertificates::Required,
                    Some(other) => {
                        return Err(format!(
                            "tls.client_certificates: {other:?} is not optional or required"
                        ));
                    }
                };
                if t.client_ca.is_none() && t.client_certificates.is_some() {
                    return Err("tls.client_certificates: needs tls.client_ca".into());
                }
                Some(FacadeTls {
                    cert: rel(&t.cert),
                    key: rel(&t.key),
                    client_ca: t.client_ca.as_deref().map(rel),
                    client_certificates,
                })
            }
            (None, true) => None,
            (None, false) => {
                return Err(
                    "tls: required ([tls] cert and key), or plain_http = true on a loopback address"
                        .into(),
                );
            }
        };
        let limits = limits(&file.limits)?;
        if let Some(lease) = file.bureau.as_ref().and_then(|b| b.lease)
            && !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&lease)
        {
            return Err("bureau.lease: between 1s and 1h".into());
        }
        let hsm = ClientConfig {
            addresses: file.hsm.addresses,
            ca: rel(&file.hsm.ca),
            cert: rel(&file.hsm.cert),
            key: rel(&file.hsm.key),
            server_name: file.hsm.server_name.unwrap_or_else(|| "localhost".into()),
            connections: file.hsm.connections.unwrap_or(2).clamp(1, 64),
            max_in_flight: 128,
            timeout: file.hsm.timeout.unwrap_or(Duration::from_secs(10)),
        };
        let sms = match file.sms {
            None => SmsConfig::default(),
            Some(f) => {
                let d = SmsConfig::default();
                if let Some(g) = &f.gateway
                    && !g.starts_with("http://")
                {
                    return Err("sms.gateway: an http://host:port/path URL".into());
                }
                let limit = |v: Option<i64>, default: i64, name: &str| match v {
                    None => Ok(default),
                    Some(n) if (1..=1000).contains(&n) => Ok(n),
                    Some(_) => Err(format!("sms.{name}: between 1 and 1000")),
                };
                SmsConfig {
                    delivery_key: f.delivery_key,
                    gateway: f.gateway,
                    gateway_token_file: f.gateway_token_file.as_deref().map(rel),
                    gateway_timeout: f.gateway_timeout.unwrap_or(d.gateway_timeout),
                    pin_per_card_per_day: limit(
                        f.pin_per_card_per_day,
                        d.pin_per_card_per_day,
                        "pin_per_card_per_day",
                    )?,
                    pin_per_phone_per_day: limit(
                        f.pin_per_phone_per_day,
                        d.pin_per_phone_per_day,
                        "pin_per_phone_per_day",
                    )?,
                    codes_per_phone_per_day: limit(
                        f.codes_per_phone_per_day,
                        d.codes_per_phone_per_day,
                        "codes_per_phone_per_day",
                    )?,
                    max_attempts: limit(f.max_attempts, d.max_attempts, "max_attempts")?,
                    retry_base: f.retry_base.unwrap_or(d.retry_base),
                }
            }
        };
        Ok(Self {
            sms,
            listen,
            database,
            clients: rel(&file.clients),
            facade_key: file.facade_key.as_deref().map(rel),
            max_body,
            check_responses: file.check_responses,
            idempotency_retention,
            call_lease,
            hsm,
            keys: file.keys,
            key_associations: file.key_associations,
            products: file.products,
            bureau: file.bureau.map(|b| Bureau {
                output_dir: rel(&b.output_dir),
                ..b
            }),
            tls,
            limits,
        })
        .and_then(|c: Self| c.check_listen())
    }

    /// Plain HTTP only on a loopback address (checked again after `--listen`).
    pub fn check_listen(self) -> Result<Self, String> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "listen: {} is not a loopback address, and plain HTTP is only served on loopback (configure [tls])",
                self.listen
            ));
        }
        Ok(self)
    }

    /// Whether `org` is a configured organization (one of the products').
    pub fn organization_known(&self, org: Organization) -> bool {
        self.products.iter().any(|p| p.organization == org.0)
    }

    /// The product of an organization and logo; with no logo, the organization's first.
    pub fn product(&self, organization: i64, logo: Option<i64>) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.organization == organization && logo.is_none_or(|l| l == p.logo))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example file with its `idempotency_retention` line replaced by `line`.
    fn load_with(line: &str) -> Result<ApiConfig, String> {
        load_replacing("idempotency_retention = \"24h\"", line)
    }

    /// The example file with `from` replaced by `to` (each load in its own directory).
    fn load_replacing(from: &str, to: &str) -> Result<ApiConfig, String> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/api.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        assert!(text.contains(from), "{from}");
        let dir = std::env::temp_dir().join(format!(
            "cofre-api-config-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("api.toml");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let loaded = ApiConfig::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn bureau_lease_defaults_parses_and_is_bounded() {
        const LINE: &str = "output_dir = \"state/embosser\"";
        let lease = |extra: &str| {
            load_replacing(LINE, &format!("{LINE}\n{extra}")).map(|c| c.bureau.unwrap().lease())
        };
        assert_eq!(lease("").unwrap(), Bureau::DEFAULT_LEASE);
        assert_eq!(lease("lease = \"2s\"").unwrap(), Duration::from_secs(2));
        assert_eq!(lease("lease = \"1h\"").unwrap(), Duration::from_secs(3600));
        for bad in ["\"500ms\"", "\"2h\"", "\"0s\"", "\"soon\""] {
            let e = lease(&format!("lease = {bad}")).unwrap_err();
            assert!(e.contains("lease"), "{bad}: {e}");
        }
    }

    #[test]
    fn idempotency_retention_defaults_parses_and_is_bounded() {
        assert_eq!(
            load_with("").unwrap().idempotency_retention,
            DEFAULT_IDEMPOTENCY_RETENTION
        );
        assert_eq!(
            load_with("idempotency_retention = \"2h\"")
                .unwrap()
                .idempotency_retention,
            Duration::from_secs(7200)
        );
        for bad in ["\"30s\"", "\"4000d\"", "\"soon\""] {
            let e = load_with(&format!("idempotency_retention = {bad}")).unwrap_err();
            println!("{e}");
            assert!(e.contains("idempotency_retention"), "{bad}: {e}");
        }
    }

    #[test]
    fn call_lease_defaults_parses_and_is_bounded() {
        assert_eq!(load_with("").unwrap().call_lease, DEFAULT_CALL_LEASE);
        assert_eq!(
            load_with("call_lease = \"3s\"").unwrap().call_lease,
            Duration::from_secs(3)
        );
        assert_eq!(
            load_with("call_lease = \"1h\"").unwrap().call_lease,
            Duration::from_secs(3600)
        );
        for bad in ["\"500ms\"", "\"2h\"", "\"0s\"", "\"soon\""] {
            let e = load_with(&format!("call_lease = {bad}")).unwrap_err();
            assert!(e.contains("call_lease"), "{bad}: {e}");
        }
    }
}
