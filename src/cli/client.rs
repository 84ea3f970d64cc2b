//! `cofre client <operation> ...`: one protocol call from a shell.

use clap::Args;

/// Arguments of `cofre client`.
#[derive(Debug, Args)]
pub struct ClientArgs {}

/// Runs one call and returns the line to print.
pub fn run(_args: ClientArgs) -> Result<String, String> {
    Err("not built yet".into())
}
