//! `cofre`: a software payment HSM for card issuers.
//!
//! The crate is one library with one binary. Dependencies point one way:
//! `cli -> hsm -> {protocol, keys}`, `keys -> crypto`, `cli -> client -> protocol`.
//! [`crypto`] is pure: no I/O, no async, no clock; randomness comes in as a parameter.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod client;
pub mod crypto;
pub mod hsm;
pub mod keys;
pub mod notify;
pub mod protocol;
pub mod tls;
