//! The start-up both services share, once: configuration (refused with
//! exit 64 and its diagnostics) → `--check` summary → logging → bind every
//! enabled `Listen` (one line naming the address on failure, exit 1) → serve
//! until SIGINT/SIGTERM → drain (the service's `serve` returns within its
//! grace) → exit code.
//!
//! A service makes its typed configuration a [`Service`] and its `main` is
//! then flag parsing plus one call:
//!
//! ```ignore
//! let args = Args::parse();
//! let source = service_kit::config::Source::from_process(args.config, args.name);
//! service_kit::shell::run(config::load(&source), args.check).await
//! ```

use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::ConfigError;
use crate::listen::{BoundListener, ListenSpec};

/// A service's typed configuration, and how the service runs from it.
pub trait Service: Sized {
    /// The program name that starts every line printed before logging is up.
    const PROGRAM: &'static str;
    /// Why serving failed.
    type Error: std::fmt::Display;

    /// The one line `--check` prints for a valid configuration.
    fn check_summary(&self) -> String;
    /// The tracing filter used when `RUST_LOG` is unset.
    fn log_filter(&self) -> String;
    /// Every configured `Listen` (disabled ones are not bound).
    fn listens(&self) -> &[ListenSpec];
    /// Called once logging is up, before binding (e.g. to warn about flags
    /// the configuration overrides).
    fn on_start(&self) {}
    /// Serves on `listeners` until `shutdown` is cancelled, then drains.
    fn serve(
        self,
        listeners: Vec<BoundListener>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// Prints `<program>: configuration refused:` and the rendered diagnostics;
/// the exit code is [`crate::cli::EXIT_CONFIG`] (64).
pub fn config_refused(program: &str, err: &ConfigError) -> ExitCode {
    eprintln!("{program}: configuration refused:\n{err}");
    ExitCode::from(crate::cli::EXIT_CONFIG)
}

/// Runs a service from its loaded configuration: refused → 64; `check` →
/// print [`Service::check_summary`], 0; else logging, bind, serve until
/// SIGINT/SIGTERM, 0 on a clean stop and 1 on a bind or serve failure.
pub async fn run<S: Service>(loaded: Result<S, ConfigError>, check: bool) -> ExitCode {
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(err) => return config_refused(S::PROGRAM, &err),
    };
    if check {
        println!("{}", cfg.check_summary());
        return ExitCode::SUCCESS;
    }
    crate::telemetry::init(&cfg.log_filter());
    cfg.on_start();
    let listeners = match crate::cli::bind_listeners(S::PROGRAM, cfg.listens()) {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    let shutdown = crate::shutdown::on_signal();
    match cfg.serve(listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "{} failed", S::PROGRAM);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        listens: Vec<ListenSpec>,
    }

    impl Service for Fake {
        const PROGRAM: &'static str = "fake";
        type Error = String;
        fn check_summary(&self) -> String {
            "fine".into()
        }
        fn log_filter(&self) -> String {
            "error".into()
        }
        fn listens(&self) -> &[ListenSpec] {
            &self.listens
        }
        async fn serve(
            self,
            listeners: Vec<BoundListener>,
            _shutdown: CancellationToken,
        ) -> Result<(), String> {
            if listeners.len() == 1 {
                Err("served".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn refusal_is_64_check_is_0_and_serve_errors_are_1() {
        let refused: Result<Fake, _> = Err(ConfigError::Refused("no".into()));
        assert_eq!(run(refused, false).await, ExitCode::from(64));
        let fake = || Fake {
            listens: vec![ListenSpec::plain(
                crate::listen::ListenAddr::parse("127.0.0.1:0").unwrap(),
            )],
        };
        assert_eq!(run(Ok(fake()), true).await, ExitCode::SUCCESS);
        assert_eq!(run(Ok(fake()), false).await, ExitCode::FAILURE);
    }
}
