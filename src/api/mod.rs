//! The REST facade (`cofre api`): customer, account and card records, the issuing flow
//! and card management at the processor's paths, and the cardholder API
//! `/api/v1/portadores`.
//!
//! Owns: the records and their history, in SQLite (default) or PostgreSQL (by URL)
//! through one migration set; API clients and their sealed secrets; idempotency.
//! Must not touch: keys, PINs, clear PANs; every secret operation goes to the daemon
//! through [`crate::client`] with the `facade` role.

pub mod accounts;
pub mod auth;
pub mod card_ops;
pub mod clients;
pub mod config;
pub mod customers;
pub mod doc;
pub mod embosser;
pub mod http;
pub mod issuing;
pub mod mass;
pub mod openapi;
pub mod portadores;
pub mod routes;
pub mod server;
pub mod store;
