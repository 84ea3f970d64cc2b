//! `cofre up`: the whole system on the INSECURE example keys, for a laptop. Today that
//! is the daemon on `keys-example/hsm.toml` (127.0.0.1:7300, metrics on :7301); the
//! REST facade joins it here when it exists. Stop with Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::hsm::{HsmArgs, run as run_hsm};

/// Arguments of `cofre up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The example set (its hsm.toml is used).
    #[arg(long, default_value = "keys-example")]
    pub dir: PathBuf,
}

/// Runs the system until Ctrl-C.
pub fn run(args: UpArgs) -> ExitCode {
    let config = args.dir.join("hsm.toml");
    if !config.exists() {
        eprintln!(
            "cofre up: {} not found; run from the repository root or pass --dir",
            config.display()
        );
        return ExitCode::from(64);
    }
    eprintln!(
        "cofre up: INSECURE example keys from {}",
        args.dir.display()
    );
    run_hsm(HsmArgs {
        config,
        listen: None,
        metrics_listen: None,
    })
}
