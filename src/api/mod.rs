//! The REST facade (`cofre api`): customer, account and card records, the issuing flow
//! and card management at the processor's paths, and the cardholder API
//! `/api/v1/portadores`.
//!
//! Owns: the records and their history, in SQLite (default) or PostgreSQL (by URL)
//! through one migration set; API clients and their sealed secrets; idempotency.
//! Must not touch: keys, PINs, clear PANs; every secret operation goes to the daemon
//! through [`crate::client`] with the `facade` role.
//!
//! Layers, each importing only the ones before it (checked by `tests/api_layers.rs`):
//!
//! 1. [`domain`]: typed values and rules (tenants, numbers, card states, money, dates,
//!    CPF/CNPJ); imports nothing of `api`.
//! 2. [`store`]: tenant-scoped, transactional persistence of domain values; the writer.
//! 3. [`config`], [`throttle`], [`auth`], [`clients`], [`openapi`] (the processor's spec): leaves
//!    beside the store; [`state`] (the application state every layer above may name);
//!    [`error`] and [`call`] (what an operation is, gets and answers).
//! 4. Features, one module per resource: [`issuing`] (shared issuing steps),
//!    [`customers`], [`accounts`], [`embosser`], [`card_ops`], [`mass`], [`portadores`].
//!    A feature may import an earlier feature of this list, never a later one.
//! 5. [`http`]: routes, auth, idempotency, error shapes, OpenAPI, the server.

pub mod auth;
pub mod bearer;
pub mod call;
pub mod clients;
pub mod config;
pub mod domain;
pub mod error;
pub mod openapi;
pub mod state;
pub mod store;
pub mod throttle;

pub mod issuing;

pub mod customers;

pub mod accounts;

pub mod embosser;

pub mod card_ops;
pub mod mass;
pub mod portadores;

pub mod http;
