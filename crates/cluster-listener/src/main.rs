//! `cluster-listener`: load the configuration, bind the ECCluster_Listener,
//! join the cluster, serve until SIGINT/SIGTERM. Subcommands: `healthcheck`,
//! `aggregate` (pull every node's logs) and `move` (send files to a node by
//! name). Everything else lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cluster_listener::aggregate::{self, AggregateOptions};
use cluster_listener::config::{self, NodeConfig, Source};
use cluster_listener::mover::{self, Retry};
use proto::eccluster::v1::Envelope;
use service_kit::listen::ListenAddr;

/// The cluster node agent: ECCluster_Listener and the msgc client.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// ecelerity-cluster.conf to read (default: an embedded one: listen *:4802,
    /// msgc server 127.0.0.1:4809).
    #[arg(long, short = 'c', global = true)]
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
    /// Pull the offered logs of every node in the membership into
    /// <dir>/<log>/<node>, exactly once, every --interval seconds.
    Aggregate {
        /// Root directory of the pulled copies.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 60)]
        interval: u64,
        /// One round, then exit (1 if any pull failed).
        #[arg(long)]
        once: bool,
        /// Subscriber to pull as (created on each node if missing).
        #[arg(long, default_value = "master")]
        subscriber: String,
        /// host:port of the node asked for the membership (default: this
        /// configuration's node).
        #[arg(long)]
        node: Option<String>,
    },
    /// Move files to a node by name (looked up in the membership), as
    /// messages with the file name as id.
    Move {
        /// Target node name.
        #[arg(long)]
        to: String,
        /// host:port of the target, skipping the membership lookup.
        #[arg(long)]
        addr: Option<String>,
        /// host:port of the node asked for the membership (default: this
        /// configuration's node).
        #[arg(long)]
        node: Option<String>,
        /// Envelope sender.
        #[arg(long, default_value = "")]
        sender: String,
        /// Envelope recipient (repeatable).
        #[arg(long = "recipient")]
        recipients: Vec<String>,
        /// Envelope binding.
        #[arg(long, default_value = "")]
        binding: String,
        /// Files to move.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The address of the node a configuration describes, for the client
/// subcommands: its advertised address, wildcards read as loopback.
fn local_node_addr(cfg: &NodeConfig) -> Option<String> {
    let listens: Vec<ListenAddr> = cfg.enabled_listens().into_iter().map(|l| l.addr).collect();
    cfg.advertised_address(&listens)
}

fn load_config(args_config: Option<PathBuf>, name: Option<String>) -> Result<NodeConfig, ExitCode> {
    config::load(&Source::from_process(args_config, name)).map_err(|err| {
        eprintln!("cluster-listener: configuration refused:\n{err}");
        ExitCode::from(service_kit::cli::EXIT_CONFIG)
    })
}

async fn run_aggregate(cfg: &NodeConfig, cmd: Cmd) -> ExitCode {
    let Cmd::Aggregate {
        dir,
        interval,
        once,
        subscriber,
        node,
    } = cmd
    else {
        return ExitCode::FAILURE;
    };
    let Some(node_addr) = node.or_else(|| local_node_addr(cfg)) else {
        eprintln!("cluster-listener: no TCP Listen in the configuration: give --node HOST:PORT");
        return ExitCode::from(service_kit::cli::EXIT_CONFIG);
    };
    let opts = AggregateOptions {
        node_addr,
        dir,
        subscriber,
        interval: Duration::from_secs(interval.max(1)),
    };
    if once {
        return match aggregate::round(&opts).await {
            Ok(pulled) if pulled.iter().all(|p| p.result.is_ok()) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(status) => {
                eprintln!(
                    "cluster-listener: no membership from {}: {}",
                    opts.node_addr,
                    status.message()
                );
                ExitCode::FAILURE
            }
        };
    }
    aggregate::run(opts, service_kit::shutdown::on_signal()).await;
    ExitCode::SUCCESS
}

async fn run_move(cfg: &NodeConfig, cmd: Cmd) -> ExitCode {
    let Cmd::Move {
        to,
        addr,
        node,
        sender,
        recipients,
        binding,
        files,
    } = cmd
    else {
        return ExitCode::FAILURE;
    };
    let target = match addr {
        Some(addr) => addr,
        None => {
            let Some(node_addr) = node.or_else(|| local_node_addr(cfg)) else {
                eprintln!(
                    "cluster-listener: no TCP Listen in the configuration: give --node or --addr"
                );
                return ExitCode::from(service_kit::cli::EXIT_CONFIG);
            };
            match aggregate::nodes(&node_addr).await {
                Ok(nodes) => match nodes.into_iter().find(|(name, _)| *name == to) {
                    Some((_, address)) => address,
                    None => {
                        eprintln!(
                            "cluster-listener: node {to:?} is not in the membership of {node_addr}"
                        );
                        return ExitCode::FAILURE;
                    }
                },
                Err(status) => {
                    eprintln!(
                        "cluster-listener: no membership from {node_addr}: {}",
                        status.message()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let channel = match mover::data_channel(&target) {
        Ok(channel) => channel,
        Err(err) => {
            eprintln!("cluster-listener: {target}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for file in &files {
        let envelope = Envelope {
            id: mover::default_id(file),
            sender: sender.clone(),
            recipients: recipients.clone(),
            binding: binding.clone(),
            size: 0,
        };
        match mover::move_file(&channel, &envelope, Path::new(file), Retry::default()).await {
            Ok((reply, attempts)) => println!(
                "{} -> {to} ({target}): {} bytes{}{}",
                reply.id,
                reply.size,
                if reply.duplicate { ", duplicate" } else { "" },
                if attempts > 1 {
                    format!(", {attempts} attempts")
                } else {
                    String::new()
                },
            ),
            Err(err) => {
                eprintln!("cluster-listener: {}: {err}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Healthcheck { addr, service }) = args.command {
        return service_kit::cli::healthcheck(&addr, &service).await;
    }
    let cfg = match load_config(args.config.clone(), args.name.clone()) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    match args.command {
        Some(cmd @ Cmd::Aggregate { .. }) => {
            service_kit::telemetry::init(&format!("{},cluster_listener=info", cfg.log_level));
            return run_aggregate(&cfg, cmd).await;
        }
        Some(cmd @ Cmd::Move { .. }) => {
            service_kit::telemetry::init(&format!("{},cluster_listener=info", cfg.log_level));
            return run_move(&cfg, cmd).await;
        }
        _ => {}
    }
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
    let listeners = match service_kit::cli::bind_listeners("cluster-listener", &cfg.listens) {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    let shutdown = service_kit::shutdown::on_signal();
    match cluster_listener::serve(cfg, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "node failed");
            ExitCode::FAILURE
        }
    }
}
