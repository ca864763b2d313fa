//! `confparse`: check or dump an Ecelerity / Momentum configuration file.
//!
//! * `confparse check FILE` prints `Configuration valid` (and any warnings) and exits 0,
//!   or prints the errors to stderr and exits 1.
//! * `confparse dump FILE` prints the resolved tree (includes expanded) as pretty JSON,
//!   every node with its `"location": "file:line:col"`.
//!
//! `--search-path DIR` (repeatable, or colon-separated) replaces `EC_CONF_SEARCH_PATH`.
//! `--schema msgc-server|cluster-listener|all` also validates the scopes that schema
//! owns (see `confparse::momentum`), so unknown options are reported.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confparse::Loader;

#[derive(Parser, Debug)]
#[command(
    name = "confparse",
    version,
    about = "Check or dump an Ecelerity / Momentum configuration"
)]
struct Cli {
    /// Include search path (colon-separated, repeatable); default: EC_CONF_SEARCH_PATH.
    #[arg(long, global = true, value_name = "DIRS")]
    search_path: Vec<String>,
    /// Also validate against a built-in schema: msgc-server, cluster-listener or all
    /// (unknown options in the scopes it owns become errors).
    #[arg(long, global = true, value_name = "NAME")]
    schema: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse the file and its includes; report errors and warnings.
    Check {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print the resolved tree as JSON.
    Dump {
        /// The configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loader = if cli.search_path.is_empty() {
        Loader::new()
    } else {
        Loader::with_search_path(
            cli.search_path
                .iter()
                .flat_map(|s| std::env::split_paths(s).collect::<Vec<_>>())
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
        )
    };
    let file = match &cli.command {
        Command::Check { file } | Command::Dump { file } => file,
    };
    let schema = match cli
        .schema
        .as_deref()
        .map(|n| (n, confparse::momentum::by_name(n)))
    {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((n, None)) => {
            eprintln!("error: unknown schema `{n}`: expected msgc-server, cluster-listener or all");
            return ExitCode::from(2);
        }
    };
    let mut cfg = match loader.load_file(file) {
        Ok(cfg) => cfg,
        Err(diags) => {
            eprint!("{diags}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(schema) = &schema
        && let Err(diags) = cfg.validate(schema)
    {
        eprint!("{diags}");
        return ExitCode::FAILURE;
    }
    for w in cfg.warnings() {
        eprintln!("{w}");
    }
    match cli.command {
        Command::Check { .. } => {
            println!("Configuration valid");
        }
        Command::Dump { .. } => match serde_json::to_string_pretty(&cfg.to_json()) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}
