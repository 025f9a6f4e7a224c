//! The `tidepool` binary: see `tidepool --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
