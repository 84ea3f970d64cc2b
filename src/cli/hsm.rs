//! `cofre hsm`: runs the daemon.

use clap::Args;

/// Arguments of `cofre hsm`.
#[derive(Debug, Args)]
pub struct HsmArgs {}

/// Runs the daemon until SIGTERM; returns the exit code.
pub fn run(_args: HsmArgs) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
