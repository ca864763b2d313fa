//! Logging through `tracing-subscriber`: the level comes from `RUST_LOG`
//! (default `info`), the format from `LOG_FORMAT` (`json` or plain text).

use tracing_subscriber::EnvFilter;

/// Environment variable choosing the log format: `json` or anything else for text.
pub const LOG_FORMAT_ENV: &str = "LOG_FORMAT";

/// Installs the global subscriber. `default_level` applies when `RUST_LOG` is
/// unset (e.g. from a config file's `debug_level`). Safe to call twice: the
/// second call does nothing.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var(LOG_FORMAT_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Maps Momentum's `debug_level` words (`DEBUG`, `INFO`, `NOTICE`, `WARNING`,
/// `ERROR`, `CRITICAL`, ...) to a tracing level filter.
pub fn level_from_debug_level(debug_level: &str) -> &'static str {
    match debug_level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "INFO" | "NOTICE" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" | "ALERT" | "EMERGENCY" => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_levels_map_to_tracing_levels() {
        assert_eq!(level_from_debug_level("ERROR"), "error");
        assert_eq!(level_from_debug_level("debug"), "debug");
        assert_eq!(level_from_debug_level("Warning"), "warn");
        assert_eq!(level_from_debug_level("bogus"), "info");
    }
}
