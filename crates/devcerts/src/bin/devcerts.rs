//! `devcerts --out DIR --servers a,b,c --nodes n1,n2`: a development CA and
//! a certificate per msgc server, node and client (see the library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Makes a development CA and mutual-TLS certificates for msgc servers,
/// nodes and clients.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Writes DIR/ca.pem, DIR/servers/<name>.{pem,key}, \
DIR/nodes/<name>.{pem,key} and DIR/clients/<name>.{pem,key}. Each certificate names its owner \
(the name peer links and node dials check) and every --san."
)]
struct Args {
    /// Directory to write into (created).
    #[arg(long)]
    out: PathBuf,
    /// msgc server names (the keys of msgc_server peers), comma-separated.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Node names (cluster nodename), comma-separated.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Client names (for the msgc CLI, grpcurl, healthchecks), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "client")]
    clients: Vec<String>,
    /// Names every certificate also carries (host names or IP addresses).
    #[arg(long, value_delimiter = ',', default_values_t = devcerts::DEFAULT_SANS.map(String::from))]
    san: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = devcerts::Plan {
        servers: args.servers,
        nodes: args.nodes,
        clients: args.clients,
        extra_sans: args.san,
    };
    match devcerts::write(&args.out, &plan) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("devcerts: {err}");
            ExitCode::FAILURE
        }
    }
}
