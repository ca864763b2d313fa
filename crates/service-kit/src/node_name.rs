//! Which node this process is: `--name`, else `EC_NODE_NAME`, else the host
//! name up to its first dot (Momentum's rule).

/// Environment variable that names the node when no flag does.
pub const NODE_NAME_ENV: &str = "EC_NODE_NAME";

/// Resolves the node name from an explicit flag, the environment value of
/// [`NODE_NAME_ENV`], or the host name, in that order. Empty values are skipped.
pub fn resolve(flag: Option<&str>, env: Option<&str>) -> String {
    flag.filter(|s| !s.is_empty())
        .or(env.filter(|s| !s.is_empty()))
        .map(str::to_owned)
        .unwrap_or_else(short_hostname)
}

/// The host name up to its first dot.
pub fn short_hostname() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    host.split('.').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_env_and_env_over_host() {
        assert_eq!(resolve(Some("a"), Some("b")), "a");
        assert_eq!(resolve(None, Some("b")), "b");
        assert_eq!(resolve(Some(""), Some("b")), "b");
        assert_eq!(resolve(None, None), short_hostname());
        assert!(!short_hostname().contains('.'));
    }
}
