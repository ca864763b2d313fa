//! The `msgc` command line.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Environment variable holding the servers when `--server` is not given.
pub const SERVER_ENV: &str = "MSGC_SERVER";

const EXAMPLES: &str = "Examples:
  msgc sub demo                                  # print deliveries and views of group demo
  msgc pub demo hello                            # one message
  msgc pub demo 'msg {n}' --count 10             # ten, numbered from 1
  seq 5 | msgc pub demo -                        # one message per stdin line
  msgc pub demo --size 1024 --count 1000         # 1000 generated 1 KiB messages
  msgc groups                                    # every group, its gid, leader and members
  msgc groups demo
  msgc view                                      # this server's view and its peer links
  msgc watch                                     # a line whenever the view or a link changes
  msgc bench --pub 1 --sub 3 --msgs 100000 --size 128
  msgc --server 127.0.0.1:24809,127.0.0.1:24819 view   # failover: the next if the first is down
  MSGC_SERVER=127.0.0.1:24829 msgc groups
  msgc --cacert ca.pem --cert client.pem --key client.key view   # mutual TLS";

/// The msgc bus from the command line.
#[derive(Debug, Parser)]
#[command(name = "msgc", version, about, after_help = EXAMPLES)]
pub struct Args {
    /// msgc servers, host:port, comma-separated or repeated; the first that
    /// accepts the connection is used.
    #[arg(
        long,
        short = 's',
        global = true,
        env = SERVER_ENV,
        value_delimiter = ',',
        default_value = "127.0.0.1:4809"
    )]
    pub server: Vec<String>,
    /// Seconds one connection attempt may take.
    #[arg(long, global = true, default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// TLS to the servers (plaintext without --cacert; before the subcommand).
    #[command(flatten)]
    pub tls: service_kit::cli::TlsArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Args {
    /// `--connect-timeout` as a duration (at least 1 ms).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout.clamp(0.001, 3600.0))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish to a group: MSG, or each line of stdin (`-` or no MSG).
    Pub(PubArgs),
    /// Join groups and print their deliveries and views until interrupted.
    Sub(SubArgs),
    /// The groups of the bus with their members (Admin/ListGroups).
    Groups {
        /// Only this group, with each member's details.
        group: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The server's view and its peer links, as a table (Admin/GetServerView).
    View {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the server view and links whenever they change (polls
    /// Admin/GetServerView; fails over to the next server if one goes away).
    Watch(WatchArgs),
    /// Publish and subscribe as fast as the bus goes: rates and latency.
    Bench(BenchArgs),
}

/// `pub` flags.
#[derive(Debug, clap::Args)]
pub struct PubArgs {
    /// The group.
    pub group: String,
    /// The message; `{n}` in it becomes the message number. `-` or none:
    /// one message per line of stdin (unless --size is given).
    pub message: Option<String>,
    /// Send MSG this many times.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Without MSG: send generated payloads of this many bytes.
    #[arg(long)]
    pub size: Option<usize>,
    /// The `<client>` part of the sender's private name.
    #[arg(long)]
    pub name: Option<String>,
}

/// `sub` flags.
#[derive(Debug, clap::Args)]
pub struct SubArgs {
    /// The groups.
    #[arg(required = true)]
    pub groups: Vec<String>,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many deliveries.
    #[arg(long)]
    pub count: Option<u64>,
    /// Do not print group views, only deliveries.
    #[arg(long)]
    pub no_views: bool,
    /// The `<client>` part of this subscriber's private name.
    #[arg(long)]
    pub name: Option<String>,
}

/// `watch` flags.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Seconds between polls.
    #[arg(long, default_value_t = 0.5)]
    pub interval: f64,
    /// Exit after printing this many states (the first is the current one).
    #[arg(long)]
    pub count: Option<u64>,
}

/// `bench` flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The group to use.
    #[arg(long, default_value = "msgc.bench")]
    pub group: String,
    /// Publishers (sessions), spread over the servers.
    #[arg(long = "pub", default_value_t = 1)]
    pub publishers: usize,
    /// Subscribers (sessions), spread over the servers.
    #[arg(long = "sub", default_value_t = 1)]
    pub subscribers: usize,
    /// Messages each publisher sends.
    #[arg(long, default_value_t = 100_000)]
    pub msgs: u64,
    /// Payload bytes (at least 16: a timestamp and a sequence number).
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Seconds the whole run may take.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}
