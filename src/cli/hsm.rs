//! `cofre hsm --config <file>`: runs the daemon.
//!
//! Order of work: harden the process (no core dumps; the LMK is locked in memory as it
//! is loaded), read and check the whole configuration (exit 64 on any problem, before a
//! port is bound), bind, print `listening on <addr>` (and `metrics on <addr>`) to
//! stdout, serve until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::hsm::{HsmConfig, server};

/// Arguments of `cofre hsm`.
#[derive(Debug, Args)]
pub struct HsmArgs {
    /// Configuration file (TOML; see the README, "Daemon configuration").
    #[arg(long)]
    pub config: PathBuf,
    /// Listen here instead of the configured address (e.g. 127.0.0.1:0 for tests).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve metrics here instead of the configured address.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the payShield listener here instead of `payshield.listen` (needs a
    /// `[payshield]` section; with `plain = true`, a loopback address only).
    #[arg(long)]
    pub payshield_listen: Option<SocketAddr>,
}

/// Exit status for a bad configuration (EX_CONFIG in sysexits.h is 78; EX_USAGE is 64,
/// which the issue and most service managers' docs use for "fix your config").
const EXIT_CONFIG: u8 = 64;
/// Exit status when the shared (PostgreSQL) counter store does not answer at start
/// (EX_UNAVAILABLE): not the configuration's fault, so the unit restarts the daemon
/// (`Restart=on-failure` prevents only 64) until the database is up.
const EXIT_UNAVAILABLE: u8 = 69;

/// Runs the daemon until SIGTERM/SIGINT; returns the exit code.
pub fn run(args: HsmArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFRE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    for warning in crate::keys::lmk::harden_process() {
        tracing::warn!("{warning}");
    }
    let config = match HsmConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cofre hsm: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut config = config;
    if let Some(a) = args.payshield_listen {
        let Some(p) = config.payshield.as_mut() else {
            eprintln!(
                "cofre hsm: bad configuration: --payshield-listen needs a [payshield] section"
            );
            return ExitCode::from(EXIT_CONFIG);
        };
        if matches!(
            p.transport,
            crate::hsm::payshield::config::Transport::Plain { .. }
        ) && !a.ip().is_loopback()
        {
            eprintln!(
                "cofre hsm: bad configuration: payshield.plain = true is allowed only on a loopback address (127.0.0.0/8 or ::1), not {a}"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        p.listen = a;
    }
    let listen = args.listen.unwrap_or(config.listen);
    let metrics_listen = args.metrics_listen.or(config.metrics_listen);
    let shared = match server::load(config) {
        Ok(s) => Arc::new(s),
        Err(server::LoadError::StoreUnreachable(e)) => {
            eprintln!(
                "cofre hsm: the counter store is not reachable (will be tried again when restarted): {e}"
            );
            return ExitCode::from(EXIT_UNAVAILABLE);
        }
        Err(server::LoadError::Config(e)) => {
            eprintln!("cofre hsm: bad configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if !shared.lmk.is_locked_in_memory() {
        tracing::warn!("the LMK could not be locked in memory (mlock refused); raise LimitMEMLOCK");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cofre hsm: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // A write past RLIMIT_FSIZE must fail with an error the counter store reports,
        // not kill the daemon: taking SIGXFSZ over replaces its default action.
        #[cfg(unix)]
        let _xfsz = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
            nix::sys::signal::Signal::SIGXFSZ as i32,
        ));
        let mut listeners = match server::Listeners::bind(listen, metrics_listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cofre hsm: cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(p) = &shared.config.payshield {
            match tokio::net::TcpListener::bind(p.listen).await {
                Ok(l) => listeners.payshield = Some(l),
                Err(e) => {
                    eprintln!("cofre hsm: cannot listen on {} (payshield): {e}", p.listen);
                    return ExitCode::FAILURE;
                }
            }
        }
        // Signal handlers exist before anyone is told the daemon is up.
        use tokio::signal::unix::{SignalKind, signal};
        let (term, int, hup) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        );
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            eprintln!("cofre hsm: cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        let stop = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        // Not println!: a reader that has gone away (a closed pipe) must not stop the
        // daemon, so write errors on stdout are ignored.
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if let Ok(a) = listeners.protocol.local_addr() {
                let _ = writeln!(out, "listening on {a}");
            }
            if let Some(Ok(a)) = listeners.metrics.as_ref().map(|m| m.local_addr()) {
                let _ = writeln!(out, "metrics on {a}");
            }
            if let Some(Ok(a)) = listeners.payshield.as_ref().map(|m| m.local_addr()) {
                let _ = writeln!(out, "payshield on {a}");
            }
            let _ = out.flush();
        }
        tracing::info!(lmk_kcv = %shared.secrets.lmk_kcv, "cofre hsm ready");
        crate::hsm::notify::notify("READY=1");
        server::run(shared, listeners, stop, hup.ok()).await;
        ExitCode::SUCCESS
    })
}
