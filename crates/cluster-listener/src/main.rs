//! `cluster-listener`: load the configuration, bind the ECCluster_Listener,
//! join the cluster, serve until SIGINT/SIGTERM. Everything else lives in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cluster_listener::config::{self, Source};
use service_kit::grpc::{Health, check_health};

/// The cluster node agent: ECCluster_Listener and the msgc client.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// ecelerity-cluster.conf to read (default: an embedded one: listen *:4802,
    /// msgc server 127.0.0.1:4809).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// This node's name when the config sets no `cluster { nodename }`
    /// (default: EC_NODE_NAME, else the host name).
    #[arg(long)]
    name: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ask a node's gRPC health service; exit 0 only if SERVING.
    Healthcheck {
        /// host:port of the node.
        #[arg(long, default_value = "127.0.0.1:4802")]
        addr: String,
        /// Health service name ("" = the whole node; eccluster.v1.Node = joined the cluster).
        #[arg(long, default_value = "")]
        service: String,
    },
}

/// EX_USAGE: the configuration is wrong.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Healthcheck { addr, service }) = args.command {
        return match check_health(&addr, &service, Duration::from_secs(3)).await {
            Ok(Health::Serving) => ExitCode::SUCCESS,
            Ok(Health::NotServing) => {
                eprintln!("{addr}: {service:?} is NOT_SERVING");
                ExitCode::FAILURE
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        };
    }
    let cfg = match config::load(&Source::from_process(
        args.config.clone(),
        args.name.clone(),
    )) {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("cluster-listener: configuration refused:\n{err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check {
        let listens: Vec<String> = cfg
            .enabled_listens()
            .iter()
            .map(|l| l.addr.to_string())
            .collect();
        println!(
            "Configuration valid: node {} at {}, listening on {}, msgc servers {}",
            cfg.nodename,
            cfg.nodeaddr,
            listens.join(" "),
            cfg.msgc.servers.join(" ")
        );
        return ExitCode::SUCCESS;
    }
    service_kit::telemetry::init(&format!("{},cluster_listener=info", cfg.log_level));
    if let Some(flag) = args.name.as_deref().filter(|n| *n != cfg.nodename) {
        tracing::warn!(flag, nodename = %cfg.nodename, "--name ignored: the configuration sets cluster nodename");
    }
    let listeners = match service_kit::listen::bind_all(&cfg.listens) {
        Ok(listeners) => listeners,
        Err(err) => {
            eprintln!("cluster-listener: {err}");
            return ExitCode::FAILURE;
        }
    };
    for listener in &listeners {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, node = %cfg.nodename, "listening");
        }
    }
    let shutdown = service_kit::shutdown::on_signal();
    match cluster_listener::serve(cfg, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "node failed");
            ExitCode::FAILURE
        }
    }
}
