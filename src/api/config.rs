//! `cofre api`'s configuration file (TOML; relative paths are relative to the file's
//! directory). Every setting is documented in the README ("REST facade configuration").
//! A bad file is refused with a message naming the setting, before any port is bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    hsm: HsmFile,
    keys: DaemonKeys,
    #[serde(default)]
    key_associations: BTreeMap<String, KeyAssociation>,
    #[serde(default)]
    products: Vec<Product>,
    #[serde(default)]
    bureau: Option<Bureau>,
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
}

/// Default largest body.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

impl ApiConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let file: File =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
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
        Ok(Self {
            listen,
            database,
            clients: rel(&file.clients),
            facade_key: file.facade_key.as_deref().map(rel),
            max_body,
            check_responses: file.check_responses,
            hsm,
            keys: file.keys,
            key_associations: file.key_associations,
            products: file.products,
            bureau: file.bureau.map(|b| Bureau {
                output_dir: rel(&b.output_dir),
                ..b
            }),
        })
    }

    /// The product of an organization and logo; with no logo, the organization's first.
    pub fn product(&self, organization: i64, logo: Option<i64>) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.organization == organization && logo.is_none_or(|l| l == p.logo))
    }
}
