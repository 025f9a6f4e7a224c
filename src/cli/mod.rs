//! The `tidepool` command line. Each subcommand is a thin shell over the library.

mod decode;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tidepool: a transaction mempool for Ethereum nodes.
#[derive(Debug, Parser)]
#[command(name = "tidepool", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with raw transactions.
    #[command(subcommand)]
    Tx(TxCommand),
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// Decode and statically validate raw transactions (signature included, no account state),
    /// printing one JSON object per input. Exit code 0 when every input is valid, 1 otherwise.
    Decode(decode::DecodeArgs),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tx(TxCommand::Decode(args)) => decode::run(&args),
    }
}
