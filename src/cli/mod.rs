//! Subcommands of the `cofre` binary, one file each. `main.rs` only parses arguments and
//! calls into here; each subcommand returns its output or an error the binary prints as
//! one line on stderr with a non-zero exit.

pub mod api;
pub mod api_call;
pub mod bench;
pub mod bench_api;
pub mod calc;
pub mod client;
pub mod hsm;
pub mod keys;
mod keys_ledger;
pub mod up;
