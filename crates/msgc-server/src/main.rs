//! `msgc-server`: load the configuration, bind the listeners, serve until
//! SIGINT/SIGTERM. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use msgc_server::config::{self, Source};

// Every message allocates a few small strings and buffers on each hop; the
// system allocator spent a quarter of the servers' CPU on them (see
// BENCHMARKS.md), mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The msgc group-communication bus server.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// msgc_server.conf to read (default: an embedded one-server bus on :4809).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// This server's name in `peers` (default: EC_NODE_NAME, else the host name).
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
    /// Ask a server's gRPC health service; exit 0 only if SERVING.
    Healthcheck {
        /// host:port of the server.
        #[arg(long, default_value = "127.0.0.1:4809")]
        addr: String,
        /// Health service name ("" = the whole server; msgc.v1.Bus = mesh formed).
        #[arg(long, default_value = "")]
        service: String,
        /// TLS to the server (plaintext without --cacert).
        #[command(flatten)]
        tls: service_kit::cli::TlsArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Cmd::Healthcheck { addr, service, tls }) = args.command {
        return service_kit::cli::healthcheck(&addr, &service, &tls).await;
    }
    let cfg = match config::load(&Source::from_process(args.config.clone(), args.name)) {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("msgc-server: configuration refused:\n{err}");
            return ExitCode::from(service_kit::cli::EXIT_CONFIG);
        }
    };
    if args.check {
        println!(
            "Configuration valid: server {} of {} peers",
            cfg.name,
            cfg.peers.len()
        );
        return ExitCode::SUCCESS;
    }
    service_kit::telemetry::init(&format!(
        "{},msgc_server=info,service_kit=info",
        cfg.log_level
    ));
    let listeners = match service_kit::cli::bind_listeners("msgc-server", &cfg.listens) {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    let shutdown = service_kit::shutdown::on_signal();
    match msgc_server::serve(cfg, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}
