//! `msgc`: glue only; everything lives in the `msgc_cli` library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match msgc_cli::run(msgc_cli::args::Args::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("msgc: {err:#}");
            ExitCode::FAILURE
        }
    }
}
