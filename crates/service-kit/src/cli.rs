//! What both binaries do the same way: the exit code for a refused
//! configuration, the `healthcheck` subcommand and the TLS flags of client
//! commands, and binding the configured listeners with one clear line on
//! failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::grpc::{Health, check_health_over};
use crate::listen::{BoundListener, ListenSpec, bind_all};
use crate::tls::{ClientTls, ClientTlsFiles, IdentityFiles, TlsError};

/// EX_USAGE: the configuration is wrong.
pub const EXIT_CONFIG: u8 = 64;

/// TLS flags of a client command, named as grpcurl names them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM CA certificates that verify the server; turns TLS on.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate to present (mutual TLS; with --key).
    #[arg(long, value_name = "FILE", requires_all = ["key", "cacert"])]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host dialled).
    #[arg(long, value_name = "NAME", requires = "cacert")]
    pub servername: Option<String>,
}

impl TlsArgs {
    /// The client TLS these flags ask for (`None` = plaintext), files read.
    pub fn load(&self) -> Result<Option<ClientTls>, TlsError> {
        let Some(ca) = &self.cacert else {
            return Ok(None);
        };
        let identity = match (&self.cert, &self.key) {
            (Some(certificate), Some(key)) => Some(IdentityFiles {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let tls = ClientTls::load(&ClientTlsFiles {
            ca: ca.clone(),
            identity,
        })?;
        Ok(Some(match &self.servername {
            Some(name) => tls.for_server(name),
            None => tls,
        }))
    }
}

/// `healthcheck`: asks `addr` for the health of `service` (over TLS when
/// the flags ask for it); success only if SERVING (so container health
/// checks need no other tool).
pub async fn healthcheck(addr: &str, service: &str, tls: &TlsArgs) -> ExitCode {
    let tls = match tls.load() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    match check_health_over(addr, tls.as_ref(), service, Duration::from_secs(3)).await {
        Ok(Health::Serving) => ExitCode::SUCCESS,
        Ok(Health::NotServing) => {
            eprintln!("{addr}: {service:?} is NOT_SERVING");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds every enabled `Listen` and logs each address; on failure prints one
/// line naming the address (`<program>: cannot listen on <addr>: <reason>`,
/// or `<program>: TLS for Listen <addr>: cannot read tls_key <file>: ...`).
pub fn bind_listeners(program: &str, specs: &[ListenSpec]) -> Result<Vec<BoundListener>, ExitCode> {
    let listeners = bind_all(specs).map_err(|err| {
        eprintln!("{program}: {err}");
        ExitCode::FAILURE
    })?;
    for listener in &listeners {
        if let Ok(addr) = listener.local_addr() {
            let tls = listener.is_tls();
            tracing::info!(%addr, tls, "listening");
        }
    }
    Ok(listeners)
}
