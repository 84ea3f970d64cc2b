//! The registered API clients (a TOML file written by `cofre api add-client`) and the
//! facade key that seals their secrets. The file holds each client's id, api key,
//! tenant and its secret **sealed** under the facade key (see [`super::auth`]); the
//! facade key comes from a file (development) or the systemd credential
//! `cofre-facade-key`, like the daemon's LMK.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::auth::{ApiClient, open_secret, seal_secret};
use crate::crypto::ClearKey;

/// One entry of the clients file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// `X-ClientID`.
    pub client_id: String,
    /// `apikey`.
    pub api_key: String,
    /// The tenant (issuer / store id, `idLoja`) whose records this client sees.
    pub tenant: String,
    /// The secret, sealed under the facade key (hex).
    pub secret: String,
    /// The Common Name of the TLS client certificate this client must call with
    /// (mutual TLS, for clients that want it; the facade's `tls.client_ca` verifies it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_identity: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    #[serde(default)]
    client: Vec<ClientEntry>,
}

/// Reads the facade key: `path` (hex text) or `$CREDENTIALS_DIRECTORY/cofre-facade-key`.
pub fn load_facade_key(path: Option<&Path>) -> Result<ClearKey, String> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|d| Path::new(&d).join("cofre-facade-key"))
            .ok_or("facade_key: not set and no systemd credential cofre-facade-key")?,
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| format!("facade key {}: cannot read: {e}", path.display()))?,
    );
    let bytes = zeroize::Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| format!("facade key {}: not hex", path.display()))?,
    );
    if bytes.len() != 32 {
        return Err(format!(
            "facade key {}: must be 32 bytes (64 hex characters)",
            path.display()
        ));
    }
    ClearKey::from_bytes(&bytes).map_err(|e| format!("facade key: {e}"))
}

/// Reads the clients file (missing: no clients).
pub fn read_entries(path: &Path) -> Result<Vec<ClientEntry>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let file: ClientsFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    Ok(file.client)
}

/// Opens every client's secret.
pub fn load_clients(
    path: &Path,
    facade_key: &ClearKey,
) -> Result<Vec<(ApiClient, String)>, String> {
    read_entries(path)?
        .into_iter()
        .map(|e| {
            let secret = open_secret(facade_key, &e.secret)
                .map_err(|err| format!("clients file, client {}: {err}", e.client_id))?;
            let client =
                ApiClient::new(&e.client_id, &e.api_key, secret).with_tls_identity(e.tls_identity);
            Ok((client, e.tenant))
        })
        .collect()
}

/// Adds a client with a fresh api key and secret; returns (api key, secret) to hand
/// over once. The file is rewritten atomically.
pub fn add_client(
    path: &Path,
    facade_key: &ClearKey,
    client_id: &str,
    tenant: &str,
    tls_identity: Option<&str>,
) -> Result<(String, zeroize::Zeroizing<String>), String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !valid(client_id) || !valid(tenant) {
        return Err("client id and tenant: 1-64 characters of A-Z a-z 0-9 - _ .".into());
    }
    let mut entries = read_entries(path)?;
    if entries.iter().any(|e| e.client_id == client_id) {
        return Err(format!("client {client_id} already exists"));
    }
    let mut rng = rand::rng();
    let mut raw = [0u8; 16];
    rand::Rng::fill_bytes(&mut rng, &mut raw);
    let api_key = hex::encode(raw);
    let mut secret_raw = zeroize::Zeroizing::new([0u8; 32]);
    rand::Rng::fill_bytes(&mut rng, &mut secret_raw[..]);
    let secret = zeroize::Zeroizing::new(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &secret_raw[..],
    ));
    let sealed = seal_secret(facade_key, secret.as_bytes(), &mut rng).map_err(|e| e.to_string())?;
    entries.push(ClientEntry {
        client_id: client_id.to_owned(),
        api_key: api_key.clone(),
        tenant: tenant.to_owned(),
        secret: sealed,
        tls_identity: tls_identity.map(str::to_owned),
    });
    let text = toml::to_string(&ClientsFile { client: entries }).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((api_key, secret))
}
