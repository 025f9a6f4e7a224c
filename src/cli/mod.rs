//! The `tidepool` command line. Each subcommand is a thin shell over the library.

mod decode;
mod load;
mod node;
mod sim;

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
    /// Run a mempool node on the embedded dev chain: gossip, JSON-RPC, metrics, dev blocks.
    Node(node::NodeArgs),
    /// Sign transfers for N accounts and submit them to a node over JSON-RPC at a target rate.
    Load(load::LoadArgs),
    /// Simulate transaction gossip over many nodes in one process (deterministic, virtual time).
    Sim(sim::SimArgs),
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
        Command::Node(args) => node::run(args),
        Command::Load(args) => load::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Tx(TxCommand::Decode(args)) => decode::run(&args),
    }
}

/// Logs to stderr at `RUST_LOG`'s filter, or `default` without one.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    // Colour only on a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}
