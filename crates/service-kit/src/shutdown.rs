//! Shutdown as a value: a token cancelled on SIGINT or SIGTERM, which every
//! task of a service watches.

use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled when the process receives SIGINT or
/// SIGTERM (the first one; a second signal is left to its default action only
/// after the token's holders have had their chance to drain).
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let name = wait_for_signal().await;
        tracing::info!(signal = name, "shutting down");
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process is stopped by the default action.
        std::future::pending::<()>().await;
        unreachable!("pending never completes")
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
