//! Loading a service's configuration the one way both services do it: a file
//! (or the service's embedded default), then `EC_CONF__<SCOPE>__<OPTION>`
//! overrides from the environment, then the service's schema (from
//! `confparse::momentum`). Every mistake is a [`ConfigError`] that renders as
//! located diagnostics (file:line:col, the line, a caret) or one clear line.

use std::path::PathBuf;

use confparse::{Diagnostic, Diagnostics};

/// Why a configuration was refused. Displays as the rendered diagnostics or
/// one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Syntax, include, schema or type errors, with locations.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
    /// A whole-configuration rule was broken.
    #[error("{0}")]
    Refused(String),
}

impl From<Diagnostic> for ConfigError {
    fn from(d: Diagnostic) -> Self {
        Self::Invalid(Diagnostics(vec![d]))
    }
}

/// Where a configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// A file, or `None` for the service's embedded default.
    pub file: Option<PathBuf>,
    /// `--name`, if given.
    pub name: Option<String>,
    /// Environment: `EC_NODE_NAME`, and `EC_CONF__<SCOPE>__<OPTION>` overrides.
    pub env: Vec<(String, String)>,
}

impl Source {
    /// A source that reads the process environment.
    pub fn from_process(file: Option<PathBuf>, name: Option<String>) -> Self {
        Self {
            file,
            name,
            env: std::env::vars().collect(),
        }
    }

    /// The value of environment variable `key` in this source.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// This process's name by the shared rule: `--name`, else
    /// `EC_NODE_NAME`, else the host name up to its first dot.
    pub fn node_name(&self) -> String {
        crate::node_name::resolve(
            self.name.as_deref(),
            self.env_var(crate::node_name::NODE_NAME_ENV),
        )
    }
}

/// A service's embedded default configuration: what runs without `--config`.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// How diagnostics name it, e.g. `<embedded msgc_server.conf>`.
    pub origin: &'static str,
    /// The configuration text.
    pub text: &'static str,
}

/// Reads `source` (its file, else `embedded`), applies its environment
/// overrides and validates the result against `schema`, which is attached so
/// typed getters fall back to its defaults.
pub fn load(
    source: &Source,
    embedded: Embedded,
    schema: &confparse::Schema,
) -> Result<confparse::Config, ConfigError> {
    let loader = confparse::Loader::new();
    let mut conf = match &source.file {
        Some(path) => loader.load_file(path)?,
        None => loader.load_str(embedded.origin, embedded.text, None)?,
    };
    conf.apply_overrides(confparse::env_overrides_from(source.env.iter().cloned()))?;
    conf.validate(schema)?;
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMBEDDED: Embedded = Embedded {
        origin: "<embedded test.conf>",
        text: "msgc_client { server = ( \"a:1\" ) }\n",
    };

    fn schema() -> confparse::Schema {
        confparse::Schema::new().scope(confparse::momentum::msgc_client())
    }

    #[test]
    fn embedded_default_overrides_and_schema_defaults_apply() {
        let source = Source {
            env: vec![(
                "EC_CONF__MSGC_CLIENT__RECONNECT_INTERVAL".into(),
                "2".into(),
            )],
            ..Source::default()
        };
        let conf = load(&source, EMBEDDED, &schema()).unwrap();
        let scope = conf.root().scope("msgc_client").unwrap();
        assert_eq!(scope.get_list("server").unwrap().unwrap(), ["a:1"]);
        assert_eq!(
            scope.get_duration("reconnect_interval").unwrap(),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            scope.get_duration("connect_timeout").unwrap(),
            Some(std::time::Duration::from_secs(60))
        );
    }

    #[test]
    fn mistakes_render_with_their_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, "msgc_client {\n  servr = ( \"a:1\" )\n}\n").unwrap();
        let source = Source {
            file: Some(path),
            ..Source::default()
        };
        let err = load(&source, EMBEDDED, &schema()).unwrap_err().to_string();
        assert!(
            err.contains("bad.conf:2:") && err.contains("servr"),
            "{err}"
        );
        assert_eq!(
            Source {
                name: Some("n1".into()),
                ..Source::default()
            }
            .node_name(),
            "n1"
        );
    }
}
