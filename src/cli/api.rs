//! `cofre api run --config <file>`: runs the REST facade; `cofre api add-client`:
//! registers an API client and prints its api key and secret once; `cofre api call`: one
//! signed call (`api_call.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::api::config::ApiConfig;

/// `cofre api` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Serve the REST facade until SIGTERM.
    Run(ApiRunArgs),
    /// Register an API client: prints its api key and secret (shown once; the clients
    /// file keeps the secret sealed under the facade key).
    AddClient(AddClientArgs),
    /// One signed call to a running facade (the example client by default): prints the
    /// status and the JSON answer; exit 1 on 4xx/5xx.
    Call(Box<super::api_call::ApiCallArgs>),
}

/// Arguments of `cofre api run`.
#[derive(Debug, Args)]
pub struct ApiRunArgs {
    /// Configuration file (TOML; see the README, "REST facade configuration").
    #[arg(long)]
    pub config: PathBuf,
    /// Listen here instead of the configured address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Use this database URL instead of the configured one.
    #[arg(long)]
    pub database: Option<String>,
    /// Daemon address instead of the configured ones.
    #[arg(long)]
    pub hsm: Option<String>,
    /// How long to wait for the daemon at start, seconds.
    #[arg(long, default_value_t = 30)]
    pub hsm_wait: u64,
}

/// Arguments of `cofre api add-client`.
#[derive(Debug, Args)]
pub struct AddClientArgs {
    /// Configuration file (names the clients file and the facade key).
    #[arg(long)]
    pub config: PathBuf,
    /// The client's id (`X-ClientID`).
    #[arg(long)]
    pub client_id: String,
    /// The tenant (issuer / store, `idLoja`) whose records the client sees.
    #[arg(long)]
    pub tenant: String,
}

const EXIT_CONFIG: u8 = 64;

/// Runs a subcommand.
pub fn run(cmd: ApiCommand) -> ExitCode {
    match cmd {
        ApiCommand::Run(args) => run_server(args),
        ApiCommand::Call(args) => super::api_call::run(*args),
        ApiCommand::AddClient(args) => {
            let result = ApiConfig::load(&args.config).and_then(|config| {
                let key = crate::api::clients::load_facade_key(config.facade_key.as_deref())?;
                crate::api::clients::add_client(
                    &config.clients,
                    &key,
                    &args.client_id,
                    &args.tenant,
                )
            });
            match result {
                Ok((api_key, secret)) => {
                    println!("client_id {}", args.client_id);
                    println!("api_key {api_key}");
                    println!("secret {}", secret.as_str());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cofre api add-client: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
    }
}

/// Serves until SIGTERM/SIGINT.
pub fn run_server(args: ApiRunArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut config = match ApiConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cofre api: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.database {
        config.database = d;
    }
    if let Some(h) = args.hsm {
        config.hsm.addresses = vec![h];
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cofre api: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match crate::api::http::server::open(config, Duration::from_secs(args.hsm_wait))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                eprintln!("cofre api: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        match crate::api::http::server::serve(app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cofre api: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
