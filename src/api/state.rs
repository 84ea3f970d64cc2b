//! The application state every layer may name: configuration, the store, the daemon
//! client, the API clients and the processor's spec. A leaf: it holds the parts and
//! runs nothing; `http::server` builds it.

use std::collections::HashMap;

use super::auth::Authenticator;
use super::config::ApiConfig;
use super::domain::Tenant;
use super::openapi::Spec;
use super::store::Store;
use crate::client::Client;

/// Shared state of the facade.
#[derive(Debug)]
pub struct App {
    /// Configuration.
    pub config: ApiConfig,
    /// Records.
    pub store: Store,
    /// The daemon.
    pub hsm: Client,
    /// API clients and tokens.
    pub auth: Authenticator,
    /// Client id to tenant.
    pub tenants: HashMap<String, Tenant>,
    /// The processor's spec.
    pub spec: &'static Spec,
    /// Seals the stored idempotency answers (and SMS texts waiting in the outbox).
    pub seal: std::sync::Arc<dyn super::store::AnswerSeal>,
    /// Keys the hashes of SMS confirmation codes.
    pub code_key: CodeKey,
}

/// A key derived from the facade key that SMS confirmation codes are hashed under
/// (HMAC-SHA256): the database holds no code, and without the facade key a stored hash
/// cannot be searched for its six digits.
pub struct CodeKey(zeroize::Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey([REDACTED])")
    }
}

impl CodeKey {
    /// HMAC-SHA256(facade key, "cofre/api/v1/sms-code").
    pub fn derive(facade_key: &[u8]) -> Self {
        Self(zeroize::Zeroizing::new(crate::crypto::mac::hmac_sha256(
            facade_key,
            b"cofre/api/v1/sms-code",
        )))
    }

    /// The keyed hash of a code for a phone, hex.
    pub fn hash(&self, tenant: &str, phone_id: i64, code: &str) -> String {
        let msg = format!("{tenant}|{phone_id}|{code}");
        hex::encode(crate::crypto::mac::hmac_sha256(&self.0[..], msg.as_bytes()))
    }
}
