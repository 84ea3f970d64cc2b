//! The payShield-compatible listener (`[payshield]` in `hsm.toml`, off by default):
//! switches that speak the Thales payShield host-command dialect (`NC`, `DC`, `EC`,
//! `CA`, `CC`, `G0`, `CW`, `CY`, `M6`, `M8`) reach cofre's operations without being rewritten. Each command maps
//! onto one native operation and goes through the one dispatch path
//! ([`super::dispatch`]): the same role policy (by client certificate), key patterns,
//! PIN-try counters and metrics. `protocol/payshield.md` is the reference.
//!
//! * [`frame`]: the message framing (pure).
//! * [`fields`]: reading a command's fields (pure, total).
//! * [`commands`]: command -> native request, native answer -> command answer.
//! * [`listener`] and `connection`: sockets, TLS, limits, answers in order.
//! * [`config`]: the `[payshield]` section.

pub mod commands;
pub mod config;
mod connection;
pub mod fields;
pub mod frame;
pub mod listener;
