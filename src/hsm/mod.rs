//! The daemon, `cofre hsm`: TLS accept loop, connection tasks, request execution,
//! authorisation, key cache, metrics.
//!
//! Owns: sockets, TLS, limits, the role policy, and turning protocol requests into
//! calls on `crypto` with keys from `keys`. Must not touch: the REST facade's records.
//! Request execution ([`ops`]) is synchronous and takes the time as an input; async code
//! only moves bytes.

pub mod admission;
pub mod config;
mod connection;
pub mod counters;
pub mod dispatch;
pub mod guard;
pub mod keyring;
pub mod ledger;
pub mod ledger_pg;
pub mod local;
pub mod metrics;
pub use crate::notify;
pub mod ops;
pub mod payshield;
pub mod pin_policy;
pub mod policy;
pub mod server;
pub mod state;
pub mod tls;

pub use config::HsmConfig;
pub use state::Shared;
