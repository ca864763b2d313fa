//! The `cluster-listener` command line: flags, subcommands, and what each
//! does. `main.rs` parses [`Args`] and calls [`run`].
//!
//! * no subcommand: the node, through `service_kit::shell` (config → exit 64
//!   with diagnostics, `--check`, logging, bind, serve, drain);
//! * `healthcheck`, `aggregate`, `move`, `console …`: clients of a node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use proto::eccluster::v1::Envelope;
use service_kit::listen::{BoundListener, ListenAddr, ListenSpec};
use service_kit::tls::ClientTls;
use tokio_util::sync::CancellationToken;

use crate::aggregate::{self, AggregateOptions};
use crate::config::{self, NodeConfig, Source};
use crate::console::cli::ConsoleArgs;
use crate::mover::{self, Retry};
use crate::server::ServeError;

/// The cluster node agent: ECCluster_Listener and the msgc client.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// ecelerity-cluster.conf to read (default: an embedded one: listen *:4802,
    /// msgc server 127.0.0.1:4809).
    #[arg(long, short = 'c', global = true)]
    pub config: Option<PathBuf>,
    /// This node's name when the config sets no `cluster { nodename }`
    /// (default: EC_NODE_NAME, else the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub check: bool,
    /// A client subcommand instead of running the node.
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Ask a node's gRPC health service; exit 0 only if SERVING.
    Healthcheck {
        /// host:port of the node.
        #[arg(long, default_value = "127.0.0.1:4802")]
        addr: String,
        /// Health service name ("" = the whole node; eccluster.v1.Node = joined the cluster).
        #[arg(long, default_value = "")]
        service: String,
        /// TLS to the node (plaintext without --cacert).
        #[command(flatten)]
        tls: service_kit::cli::TlsArgs,
    },
    /// Pull the offered logs of every node in the membership into
    /// <dir>/<log>/<node>, exactly once, every --interval seconds.
    Aggregate(AggregateArgs),
    /// Move files to a node by name (looked up in the membership), as
    /// messages with the file name as id.
    Move(MoveArgs),
    /// Console fan-out (eccmgr): send a read-only command to every node, one
    /// subcluster or one node over ec_console / ec_sc_<sc>, and collect the replies.
    #[command(after_help = CONSOLE_EXAMPLES)]
    Console(ConsoleArgs),
}

const CONSOLE_EXAMPLES: &str = "Commands nodes answer: info, membership, logs, spool, \
config get <scope> <option>, help.

Examples:
  cluster-listener console retrieve membership
  cluster-listener console --deadline 2 retrieve info
  cluster-listener console retrieve_node node2 config get cluster nodeaddr
  cluster-listener console subcluster retrieve east spool
  cluster-listener console --node 127.0.0.1:24812 broadcast info";

/// `aggregate` flags.
#[derive(Debug, clap::Args)]
pub struct AggregateArgs {
    /// Root directory of the pulled copies.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// One round, then exit (1 if any pull failed).
    #[arg(long)]
    pub once: bool,
    /// Subscriber to pull as (created on each node if missing).
    #[arg(long, default_value = "master")]
    pub subscriber: String,
    /// host:port of the node asked for the membership (default: this
    /// configuration's node).
    #[arg(long)]
    pub node: Option<String>,
}

/// `move` flags.
#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// Target node name.
    #[arg(long)]
    pub to: String,
    /// host:port of the target, skipping the membership lookup.
    #[arg(long)]
    pub addr: Option<String>,
    /// host:port of the node asked for the membership (default: this
    /// configuration's node).
    #[arg(long)]
    pub node: Option<String>,
    /// Envelope sender.
    #[arg(long, default_value = "")]
    pub sender: String,
    /// Envelope recipient (repeatable).
    #[arg(long = "recipient")]
    pub recipients: Vec<String>,
    /// Envelope binding.
    #[arg(long, default_value = "")]
    pub binding: String,
    /// Files to move.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The node as `service_kit::shell` runs it, with the `--name` flag so a
/// flag the configuration overrides is reported once logging is up.
#[derive(Debug)]
pub struct Launch {
    /// The loaded configuration.
    pub cfg: NodeConfig,
    /// `--name`, if given.
    pub name_flag: Option<String>,
}

impl service_kit::shell::Service for Launch {
    const PROGRAM: &'static str = "cluster-listener";
    type Error = ServeError;

    fn check_summary(&self) -> String {
        let cfg = &self.cfg;
        let listens: Vec<String> = cfg
            .enabled_listens()
            .iter()
            .map(|l| l.addr.to_string())
            .collect();
        format!(
            "Configuration valid: node {} at {}, listening on {}, msgc servers {}",
            cfg.nodename,
            cfg.nodeaddr,
            listens.join(" "),
            cfg.msgc.servers.join(" ")
        )
    }

    fn log_filter(&self) -> String {
        format!(
            "{},cluster_listener=info,service_kit=info",
            self.cfg.log_level
        )
    }

    fn listens(&self) -> &[ListenSpec] {
        &self.cfg.listens
    }

    fn on_start(&self) {
        if let Some(flag) = self
            .name_flag
            .as_deref()
            .filter(|n| *n != self.cfg.nodename)
        {
            tracing::warn!(flag, nodename = %self.cfg.nodename, "--name ignored: the configuration sets cluster nodename");
        }
    }

    async fn serve(
        self,
        listeners: Vec<BoundListener>,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        crate::serve(self.cfg, listeners, shutdown).await
    }
}

/// Runs what `args` ask for and gives the process's exit code.
pub async fn run(args: Args) -> ExitCode {
    if let Some(Cmd::Healthcheck { addr, service, tls }) = &args.command {
        return service_kit::cli::healthcheck(addr, service, tls).await;
    }
    let loaded = config::load(&Source::from_process(
        args.config.clone(),
        args.name.clone(),
    ));
    let Some(command) = args.command else {
        let launch = loaded.map(|cfg| Launch {
            cfg,
            name_flag: args.name,
        });
        return service_kit::shell::run(launch, args.check).await;
    };
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(err) => return service_kit::shell::config_refused("cluster-listener", &err),
    };
    service_kit::telemetry::init(&format!("{},cluster_listener=info", cfg.log_level));
    // The client subcommands dial nodes as the node itself does.
    let tls = match cfg.dial_tls.as_ref().map(ClientTls::load).transpose() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("cluster-listener: {err}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Cmd::Healthcheck { .. } => ExitCode::SUCCESS,
        Cmd::Aggregate(a) => run_aggregate(&cfg, tls, a).await,
        Cmd::Move(m) => run_move(&cfg, tls.as_ref(), m).await,
        Cmd::Console(c) => match node_or_local(&cfg, c.node.clone(), "--node") {
            Ok(addr) => crate::console::cli::run(&addr, tls.as_ref(), c).await,
            Err(code) => code,
        },
    }
}

/// The address of the node a configuration describes, for the client
/// subcommands: its advertised address, wildcards read as loopback.
pub fn local_node_addr(cfg: &NodeConfig) -> Option<String> {
    let listens: Vec<ListenAddr> = cfg.enabled_listens().into_iter().map(|l| l.addr).collect();
    cfg.advertised_address(&listens)
}

/// `flag_value`, else this configuration's node; exit 64 if neither.
fn node_or_local(
    cfg: &NodeConfig,
    flag_value: Option<String>,
    flag: &str,
) -> Result<String, ExitCode> {
    flag_value.or_else(|| local_node_addr(cfg)).ok_or_else(|| {
        eprintln!("cluster-listener: no TCP Listen in the configuration: give {flag} HOST:PORT");
        ExitCode::from(service_kit::cli::EXIT_CONFIG)
    })
}

async fn run_aggregate(cfg: &NodeConfig, tls: Option<ClientTls>, args: AggregateArgs) -> ExitCode {
    let node_addr = match node_or_local(cfg, args.node, "--node") {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let opts = AggregateOptions {
        node_addr,
        dir: args.dir,
        subscriber: args.subscriber,
        interval: Duration::from_secs(args.interval.max(1)),
        tls,
    };
    if !args.once {
        aggregate::run(opts, service_kit::shutdown::on_signal()).await;
        return ExitCode::SUCCESS;
    }
    match aggregate::round(&opts).await {
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
    }
}

/// Where `move` sends: `--addr`, else the target's address in the membership.
async fn move_target(
    cfg: &NodeConfig,
    tls: Option<&ClientTls>,
    args: &MoveArgs,
) -> Result<String, ExitCode> {
    if let Some(addr) = &args.addr {
        return Ok(addr.clone());
    }
    let node_addr = node_or_local(cfg, args.node.clone(), "--node or --addr")?;
    let nodes = aggregate::nodes(&node_addr, tls).await.map_err(|status| {
        eprintln!(
            "cluster-listener: no membership from {node_addr}: {}",
            status.message()
        );
        ExitCode::FAILURE
    })?;
    match nodes.into_iter().find(|(name, _)| *name == args.to) {
        Some((_, address)) => Ok(address),
        None => {
            eprintln!(
                "cluster-listener: node {:?} is not in the membership of {node_addr}",
                args.to
            );
            Err(ExitCode::FAILURE)
        }
    }
}

async fn run_move(cfg: &NodeConfig, tls: Option<&ClientTls>, args: MoveArgs) -> ExitCode {
    let target = match move_target(cfg, tls, &args).await {
        Ok(target) => target,
        Err(code) => return code,
    };
    let tls = tls.map(|tls| tls.for_server(&args.to));
    let channel = match mover::data_channel(&target, tls.as_ref()) {
        Ok(channel) => channel,
        Err(err) => {
            eprintln!("cluster-listener: {target}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for file in &args.files {
        let envelope = Envelope {
            id: mover::default_id(file),
            sender: args.sender.clone(),
            recipients: args.recipients.clone(),
            binding: args.binding.clone(),
            size: 0,
        };
        match mover::move_file(&channel, &envelope, Path::new(file), Retry::default()).await {
            Ok((reply, attempts)) => println!(
                "{} -> {} ({target}): {} bytes{}{}",
                reply.id,
                args.to,
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
