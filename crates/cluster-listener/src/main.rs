//! `cluster-listener`: the node (no subcommand) or one of its client
//! subcommands. Glue only: everything lives in `cluster_listener::cli`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    cluster_listener::cli::run(cluster_listener::cli::Args::parse()).await
}
