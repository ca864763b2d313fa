//! What both binaries do the same way: the exit code for a refused
//! configuration, the `healthcheck` subcommand, and binding the configured
//! listeners with one clear line on failure.

use std::process::ExitCode;
use std::time::Duration;

use crate::grpc::{Health, check_health};
use crate::listen::{BoundListener, ListenSpec, bind_all};

/// EX_USAGE: the configuration is wrong.
pub const EXIT_CONFIG: u8 = 64;

/// `healthcheck`: asks `addr` for the health of `service`; success only if
/// SERVING (so container health checks need no other tool).
pub async fn healthcheck(addr: &str, service: &str) -> ExitCode {
    match check_health(addr, service, Duration::from_secs(3)).await {
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
/// line naming the address (`<program>: cannot listen on <addr>: <reason>`).
pub fn bind_listeners(program: &str, specs: &[ListenSpec]) -> Result<Vec<BoundListener>, ExitCode> {
    let listeners = bind_all(specs).map_err(|err| {
        eprintln!("{program}: {err}");
        ExitCode::FAILURE
    })?;
    for listener in &listeners {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
    }
    Ok(listeners)
}
