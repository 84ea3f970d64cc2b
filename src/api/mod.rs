//! The REST facade's foundations (`cofre api`, issue in progress): the record store.
//!
//! Owns: customer, account and card records and their history, in SQLite (default) or
//! PostgreSQL (by URL) through one migration set. Must not touch: keys, PINs, clear
//! PANs; every secret operation goes to the daemon through [`crate::client`].

pub mod auth;
pub mod openapi;
pub mod store;
