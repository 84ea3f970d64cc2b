//! The `cofre` binary: argument parsing only. Each subcommand lives in `cofre::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// cofre: a software payment HSM for card issuers.
#[derive(Debug, Parser)]
#[command(name = "cofre", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline calculator: CVV, PVV, IBM 3624, PIN blocks, KCV, MAC, TR-31, tokens, dCVV2.
    #[command(subcommand)]
    Calc(cofre::cli::calc::CalcCommand),
    /// Key management: LMK ceremony, the key store, rotation, TR-31 import/export, audit.
    #[command(subcommand)]
    Keys(cofre::cli::keys::KeysCommand),
    /// Runs the HSM daemon (mutual TLS, binary protocol; see protocol/README.md).
    Hsm(cofre::cli::hsm::HsmArgs),
    /// The REST facade: records, the issuing flow, the cardholder API.
    #[command(subcommand)]
    Api(cofre::cli::api::ApiCommand),
    /// One protocol call to a running daemon, from a shell.
    Client(cofre::cli::client::ClientArgs),
    /// Starts the whole system on the INSECURE example keys (keys-example/).
    Up(cofre::cli::up::UpArgs),
    /// Load generator: a live daemon (or --spawn one), and/or in process.
    Bench(cofre::cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hsm(args) => return cofre::cli::hsm::run(args),
        Command::Up(args) => return cofre::cli::up::run(args),
        Command::Api(cmd) => return cofre::cli::api::run(cmd),
        Command::Client(args) => cofre::cli::client::run(args),
        Command::Bench(args) => cofre::cli::bench::run(args),
        Command::Calc(cmd) => cofre::cli::calc::run(cmd).map_err(|e| e.to_string()),
        Command::Keys(cmd) => cofre::cli::keys::run(cmd).map_err(|e| e.to_string()),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("cofre: {reason}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's arguments are consistent (unique names, valid defaults): clap
    /// checks this only when a command is built, so a clash would otherwise surface as a
    /// panic at the first run of that subcommand.
    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
