//! `cofre up`: the whole system on the INSECURE example keys, for a laptop: the daemon on
//! `keys-example/hsm.toml` (127.0.0.1:7300, metrics on :7301) and the REST facade on
//! `keys-example/api.toml` (https://127.0.0.1:8443, SQLite file `keys-example/state/api.db`,
//! created on first start). Prints where each listens; Ctrl-C (or SIGTERM) stops both.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::api::{ApiRunArgs, run_server as run_api};
use super::hsm::{HsmArgs, run as run_hsm};

/// Arguments of `cofre up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The example set (its hsm.toml and api.toml are used).
    #[arg(long, default_value = "keys-example")]
    pub dir: PathBuf,
    /// Daemon address instead of hsm.toml's.
    #[arg(long)]
    pub hsm_listen: Option<SocketAddr>,
    /// Daemon metrics address instead of hsm.toml's.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Facade address instead of api.toml's.
    #[arg(long)]
    pub api_listen: Option<SocketAddr>,
}

/// Runs the system until Ctrl-C.
pub fn run(args: UpArgs) -> ExitCode {
    let hsm_config = args.dir.join("hsm.toml");
    let api_config = args.dir.join("api.toml");
    for f in [&hsm_config, &api_config] {
        if !f.exists() {
            eprintln!(
                "cofre up: {} not found; run from the repository root or pass --dir",
                f.display()
            );
            return ExitCode::from(64);
        }
    }
    eprintln!(
        "cofre up: INSECURE example keys from {}",
        args.dir.display()
    );
    let hsm_addr = args.hsm_listen;
    let metrics = args.metrics_listen;
    let hsm = std::thread::spawn(move || {
        run_hsm(HsmArgs {
            config: hsm_config,
            listen: hsm_addr,
            metrics_listen: metrics,
        })
    });
    let hsm_target = match hsm_addr {
        Some(a) => a.to_string(),
        None => match crate::hsm::HsmConfig::load(&args.dir.join("hsm.toml")) {
            Ok(c) => c.listen.to_string(),
            Err(e) => {
                eprintln!("cofre up: {e}");
                return ExitCode::from(64);
            }
        },
    };
    eprintln!(
        "cofre up: REST facade: example API client `example-client`, api key `example-api-key`, \
         secret `example-secret-not-for-production` (keys-example/README.md); OpenAPI at /openapi.json"
    );
    let api = run_api(ApiRunArgs {
        config: api_config,
        listen: args.api_listen,
        database: None,
        hsm: Some(hsm_target),
        hsm_wait: 30,
        require_tls: false,
    });
    // The facade has stopped (a signal, or it could not start): stop the daemon too,
    // rather than leave it running without the process anyone is watching.
    if let Err(e) =
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM)
    {
        eprintln!("cofre up: cannot stop the daemon: {e}");
    }
    let hsm = hsm.join().unwrap_or(ExitCode::FAILURE);
    if api == ExitCode::SUCCESS { hsm } else { api }
}
