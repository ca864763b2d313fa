//! `msgc`, the bus from the command line: `pub`, `sub`, `groups`, `view`,
//! `watch` and `bench`, over any of the servers `--server`/`MSGC_SERVER`
//! names (the first that accepts a connection is used).
//!
//! * [`args`]: the command line.
//! * [`connect`]: the server list and failover.
//! * [`pubsub`]: `pub` and `sub`.
//! * [`admin`]: `groups`, `view`, `watch` (which polls `Admin/GetServerView`;
//!   the Admin API has no stream).
//! * [`bench`]: publish/subscribe rates and publish→deliver latency.
#![forbid(unsafe_code)]

pub mod admin;
pub mod args;
pub mod bench;
pub mod connect;
pub mod pubsub;

use std::process::ExitCode;

use args::{Args, Command};
use connect::Servers;

/// Runs the command `args` name.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tls = args.tls.load()?;
    let servers = Servers::new(&args.server, args.connect_timeout()).with_tls(tls);
    anyhow::ensure!(
        !servers.is_empty(),
        "no server given (--server or MSGC_SERVER)"
    );
    match args.command {
        Command::Pub(a) => pubsub::publish(&servers, a).await,
        Command::Sub(a) => pubsub::subscribe(&servers, a).await,
        Command::Groups { group, json } => admin::groups(&servers, group, json).await,
        Command::View { json } => admin::view(&servers, json).await,
        Command::Watch(a) => admin::watch(&servers, a).await,
        Command::Bench(a) => bench::run(&servers, a).await,
    }
}
