//! Authentication as the processor does it (its published API guide; docs/facade.md,
//! "Request signing"): `POST /token` with HTTP Basic (api key : secret) answers a
//! Bearer token valid 900 s; every other call carries `apikey`, `X-ClientID`,
//! `Authorization: Bearer ...`, `Timestamp` (epoch milliseconds, accepted within 5
//! minutes), `X-Client-Request-Id` (1-40 characters) and `Signature` =
//! Base64(HMAC-SHA256(secret, apikey + X-Client-Request-Id + Timestamp + body)).
//!
//! The HMAC needs the client's secret itself, so secrets are kept **encrypted** at rest
//! (never clear): AES-256-CBC then HMAC-SHA256 (encrypt-then-MAC) under two keys derived
//! from the facade key, which is delivered like the LMK (a file or a systemd
//! credential). Tokens are not stored: each carries its expiry and a MAC under a key
//! derived from the facade key ([`super::bearer`]), so every facade instance of a
//! deployment accepts the tokens of the others. Pure: the time and the random source
//! come in as parameters; the HTTP layer owns the headers and the idempotency store.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::CryptoRng;
use zeroize::Zeroizing;

use super::bearer::BearerKey;
use crate::crypto::cipher::BlockCipher;
use crate::crypto::mac::hmac_sha256;
use crate::crypto::{ClearKey, ct_eq};

/// Tokens live this long.
pub const TOKEN_TTL_MS: u64 = 900_000;
/// Timestamps are accepted this far from the facade's clock, either way.
pub const TIMESTAMP_WINDOW_MS: u64 = 300_000;
/// Longest `X-Client-Request-Id`.
pub const MAX_REQUEST_ID: usize = 40;

/// Why a call is refused (all answered 401 in the processor's error shape).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A required header is missing or malformed.
    #[error("missing or malformed header {0}")]
    Header(&'static str),
    /// Unknown api key, wrong secret, or `X-ClientID` not the key's client.
    #[error("unknown client or wrong credentials")]
    Credentials,
    /// The Bearer token is unknown, expired, or another client's.
    #[error("invalid or expired token")]
    Token,
    /// `Timestamp` outside the accepted window.
    #[error("stale timestamp")]
    Stale,
    /// `Signature` does not verify.
    #[error("signature does not verify")]
    Signature,
    /// The client must call over a connection with its client certificate, and did not.
    #[error("this client calls with its TLS client certificate")]
    Certificate,
    /// The facade key or a sealed secret is unusable.
    #[error("client secret store: {0}")]
    Store(String),
}

impl AuthError {
    /// Whether the refusal is what guessing a credential produces (a wrong secret, api
    /// key, token or signature, or the wrong certificate): these are throttled. A
    /// missing header or a stale timestamp guesses nothing.
    pub fn is_guess(&self) -> bool {
        matches!(
            self,
            AuthError::Credentials
                | AuthError::Token
                | AuthError::Signature
                | AuthError::Certificate
        )
    }
}

fn derive(key: &ClearKey, label: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(key.expose_secret(), label))
}

/// Seals a client secret under the facade key: hex of IV || CBC || MAC(16).
pub fn seal_secret(
    facade_key: &ClearKey,
    secret: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<String, AuthError> {
    let enc = derive(facade_key, b"cofre/api/v1/secret-enc");
    let mac = derive(facade_key, b"cofre/api/v1/secret-mac");
    let cipher = BlockCipher::aes(&enc[..]).map_err(|e| AuthError::Store(e.to_string()))?;
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    let mut body = Zeroizing::new(secret.to_vec());
    body.push(0x80);
    while !body.len().is_multiple_of(16) {
        body.push(0);
    }
    cipher
        .encrypt_cbc(&iv, &mut body)
        .map_err(|e| AuthError::Store(e.to_string()))?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&body);
    let tag = hmac_sha256(&mac[..], &out);
    out.extend_from_slice(&tag[..16]);
    Ok(hex::encode_upper(out))
}

/// Opens a sealed secret (MAC checked in constant time first).
pub fn open_secret(
    facade_key: &ClearKey,
    sealed_hex: &str,
) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let bad =
        || AuthError::Store("a sealed client secret does not verify under the facade key".into());
    let raw = hex::decode(sealed_hex.trim()).map_err(|_| bad())?;
    if raw.len() < 16 + 16 + 16 || (raw.len() - 32) % 16 != 0 {
        return Err(bad());
    }
    let enc = derive(facade_key, b"cofre/api/v1/secret-enc");
    let mac = derive(facade_key, b"cofre/api/v1/secret-mac");
    let (data, tag) = raw.split_at(raw.len() - 16);
    if !ct_eq(&hmac_sha256(&mac[..], data)[..16], tag) {
        return Err(bad());
    }
    let (iv, ct) = data.split_at(16);
    let cipher = BlockCipher::aes(&enc[..]).map_err(|e| AuthError::Store(e.to_string()))?;
    let mut body = Zeroizing::new(ct.to_vec());
    cipher.decrypt_cbc(iv, &mut body).map_err(|_| bad())?;
    let end = body.iter().rposition(|b| *b == 0x80).ok_or_else(bad)?;
    body.truncate(end);
    Ok(body)
}

/// A registered API client.
pub struct ApiClient {
    /// `X-ClientID`.
    pub client_id: String,
    /// `apikey`.
    pub api_key: String,
    /// The Common Name of the TLS client certificate this client's calls must come
    /// with (`None`: any connection).
    pub tls_identity: Option<String>,
    secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiClient({}, [REDACTED secret])", self.client_id)
    }
}

impl ApiClient {
    /// A client with its (opened) secret.
    pub fn new(client_id: &str, api_key: &str, secret: Zeroizing<Vec<u8>>) -> Self {
        Self {
            client_id: client_id.to_owned(),
            api_key: api_key.to_owned(),
            tls_identity: None,
            secret,
        }
    }

    /// Requires the TLS client certificate `identity` (its Common Name) on every call.
    #[must_use]
    pub fn with_tls_identity(mut self, identity: Option<String>) -> Self {
        self.tls_identity = identity;
        self
    }

    fn connection_allowed(&self, peer_identity: Option<&str>) -> Result<(), AuthError> {
        match &self.tls_identity {
            Some(required) if peer_identity != Some(required.as_str()) => {
                Err(AuthError::Certificate)
            }
            _ => Ok(()),
        }
    }
}

/// `scheme credentials` of an `Authorization` header, the scheme matched without regard
/// to letter case (RFC 9110: `Bearer`, `bearer` and `BEARER` are one scheme).
pub fn credentials<'a>(authorization: Option<&'a str>, scheme: &str) -> Option<&'a str> {
    let a = authorization?.trim_start();
    let (given, rest) = a.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|c| !c.is_empty())
}

/// The signature of a call: Base64(HMAC-SHA256(secret, apikey + request id + timestamp + body)).
pub fn signature(
    secret: &[u8],
    api_key: &str,
    request_id: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let mut data =
        Vec::with_capacity(api_key.len() + request_id.len() + timestamp.len() + body.len());
    data.extend_from_slice(api_key.as_bytes());
    data.extend_from_slice(request_id.as_bytes());
    data.extend_from_slice(timestamp.as_bytes());
    data.extend_from_slice(body);
    B64.encode(hmac_sha256(secret, &data))
}

/// The headers of a call, as the HTTP layer read them.
#[derive(Clone, Copy, Default)]
pub struct CallHeaders<'a> {
    /// `apikey`.
    pub api_key: Option<&'a str>,
    /// `X-ClientID`.
    pub client_id: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Client-Request-Id`.
    pub request_id: Option<&'a str>,
    /// `Signature`.
    pub signature: Option<&'a str>,
    /// The Common Name of the connection's verified client certificate, if any.
    pub peer_identity: Option<&'a str>,
}

/// An issued token.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it is valid.
    pub expires_in: u64,
}

// The bearer token and the signature are credentials: Debug names the client only.
impl std::fmt::Debug for CallHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallHeaders")
            .field("client_id", &self.client_id)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Grant([REDACTED token], expires_in: {})",
            self.expires_in
        )
    }
}

/// Registered clients and the key their tokens are MACed under.
pub struct Authenticator {
    clients: HashMap<String, ApiClient>,
    bearer: BearerKey,
}

impl std::fmt::Debug for Authenticator {
    // The token key is a secret: count the clients, never show the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// From the registered clients and the token key (derived from the facade key, the
    /// same on every instance).
    pub fn new(clients: Vec<ApiClient>, bearer: BearerKey) -> Self {
        Self {
            clients: clients
                .into_iter()
                .map(|c| (c.api_key.clone(), c))
                .collect(),
            bearer,
        }
    }

    /// Whether `api_key` is a registered client's.
    pub fn is_registered(&self, api_key: &str) -> bool {
        self.clients.contains_key(api_key)
    }

    /// The api key an `Authorization: Basic` header names (for throttling), if any.
    pub fn basic_api_key(authorization: Option<&str>) -> Option<String> {
        let decoded = B64.decode(credentials(authorization, "Basic")?).ok()?;
        let sep = decoded.iter().position(|b| *b == b':')?;
        String::from_utf8(decoded[..sep].to_vec()).ok()
    }

    /// `POST /token`: checks `Authorization: Basic base64(apikey:secret)`, over a
    /// connection that presented `peer_identity` (a client certificate's Common Name).
    pub fn issue_token(
        &self,
        authorization: Option<&str>,
        peer_identity: Option<&str>,
        now_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<Grant, AuthError> {
        let basic =
            credentials(authorization, "Basic").ok_or(AuthError::Header("Authorization"))?;
        let decoded = Zeroizing::new(
            B64.decode(basic.trim())
                .map_err(|_| AuthError::Header("Authorization"))?,
        );
        let sep = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or(AuthError::Header("Authorization"))?;
        let (key, secret) = (&decoded[..sep], &decoded[sep + 1..]);
        let key = std::str::from_utf8(key).map_err(|_| AuthError::Credentials)?;
        let client = self.clients.get(key).ok_or(AuthError::Credentials)?;
        if !ct_eq(&client.secret, secret) {
            return Err(AuthError::Credentials);
        }
        client.connection_allowed(peer_identity)?;
        let token = self
            .bearer
            .mint(&client.api_key, &client.secret, now_ms + TOKEN_TTL_MS, rng);
        Ok(Grant {
            access_token: token,
            expires_in: TOKEN_TTL_MS / 1000,
        })
    }

    /// Checks a call; returns its client id and request id. Replays of a request id are
    /// the idempotency store's to judge (same body: the first answer; other body: refused).
    pub fn check<'h>(
        &self,
        h: &CallHeaders<'h>,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(&str, &'h str), AuthError> {
        let api_key = h.api_key.ok_or(AuthError::Header("apikey"))?;
        let client = self.clients.get(api_key).ok_or(AuthError::Credentials)?;
        if h.client_id != Some(client.client_id.as_str()) {
            return Err(AuthError::Credentials);
        }
        client.connection_allowed(h.peer_identity)?;
        let bearer =
            credentials(h.authorization, "Bearer").ok_or(AuthError::Header("Authorization"))?;
        if !self
            .bearer
            .verify(bearer, &client.api_key, &client.secret, now_ms)
        {
            return Err(AuthError::Token);
        }
        let ts_text = h.timestamp.ok_or(AuthError::Header("Timestamp"))?;
        let ts: u64 = ts_text
            .parse()
            .map_err(|_| AuthError::Header("Timestamp"))?;
        if ts.abs_diff(now_ms) > TIMESTAMP_WINDOW_MS {
            return Err(AuthError::Stale);
        }
        let request_id = h
            .request_id
            .filter(|r| !r.is_empty() && r.len() <= MAX_REQUEST_ID)
            .ok_or(AuthError::Header("X-Client-Request-Id"))?;
        let presented = h.signature.ok_or(AuthError::Header("Signature"))?;
        let expected = signature(&client.secret, api_key, request_id, ts_text, body);
        if !ct_eq(expected.as_bytes(), presented.trim().as_bytes()) {
            return Err(AuthError::Signature);
        }
        Ok((client.client_id.as_str(), request_id))
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
