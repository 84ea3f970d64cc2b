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
    /// Seals the stored idempotency answers.
    pub seal: std::sync::Arc<dyn super::store::AnswerSeal>,
}
