//! Overrides: values layered on top of a loaded tree, typically from the environment.
//!
//! Environment variables named `EC_CONF__<SCOPE>__<OPTION>` (double underscore
//! separators, case-insensitive) override `<option>` in the anonymous top-level scope
//! `<scope>`; more `__<SCOPE>` parts reach nested anonymous scopes, and
//! `EC_CONF__<OPTION>` sets a top-level option. Examples:
//!
//! | variable | overrides |
//! |---|---|
//! | `EC_CONF__MSGC_SERVER__PORT=4810` | `msgc_server { port = 4810 }` |
//! | `EC_CONF__CLUSTER__NODEADDR=10.0.0.5` | `cluster { nodeaddr = 10.0.0.5 }` |
//! | `EC_CONF__MSGC_CLIENT__SERVER="( a:4809 b:4809 )"` | a list value |
//!
//! The variables are read through the `config` crate's `Environment` source, so the
//! names match what `config::Environment::with_prefix("EC_CONF").prefix_separator("__")
//! .separator("__")` sees when layering with [`crate::format::Ecelerity`].
//!
//! The value text is parsed as one configuration value (so `( a b )` and `[ k = v ]`
//! work); text that is not exactly one value is taken as a plain string. Missing scopes
//! are created. An overridden option is located at its origin, e.g.
//! `env EC_CONF__CLUSTER__NODEADDR:1:1`.

use std::sync::Arc;

use config::Source;

use crate::MAX_DEPTH;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::lexer::is_bare_word;
use crate::tree::{Config, Scalar, Value};

/// The environment variable prefix (followed by `__`).
pub const ENV_PREFIX: &str = "EC_CONF";

/// One override: a dotted key (`msgc_server.port`), the value text, and where it came
/// from (used as the file name of its location).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Dotted path of anonymous scopes ending in an option name, case-insensitive.
    pub key: String,
    /// The value text, parsed like a value in a file.
    pub value: String,
    /// Where it came from, e.g. `env EC_CONF__CLUSTER__NODEADDR`.
    pub origin: String,
}

impl Override {
    /// An override with an explicit origin.
    pub fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        origin: impl Into<String>,
    ) -> Self {
        Override {
            key: key.into(),
            value: value.into(),
            origin: origin.into(),
        }
    }
}

/// Overrides from the process environment (`EC_CONF__SCOPE__OPTION=value`), sorted by
/// key. Variables whose name or value is not UTF-8 are ignored.
pub fn env_overrides() -> Vec<Override> {
    env_overrides_from(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    )
}

/// Like [`env_overrides`], but reading the given `(name, value)` pairs instead of the
/// process environment (for tests and embedding).
pub fn env_overrides_from<I, K, V>(vars: I) -> Vec<Override>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let map: config::Map<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let env = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(map));
    let collected = match env.collect() {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<Override> = collected
        .into_iter()
        .filter_map(|(key, v)| {
            let value = v.into_string().ok()?;
            let origin = format!(
                "env {ENV_PREFIX}__{}",
                key.to_ascii_uppercase().replace('.', "__")
            );
            Some(Override { key, value, origin })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Config {
    /// Layer overrides on top of the tree (see the module docs). Every bad key is
    /// reported; good ones are applied.
    pub fn apply_overrides<I: IntoIterator<Item = Override>>(
        &mut self,
        overrides: I,
    ) -> Result<(), Diagnostics> {
        let mut errors = Vec::new();
        for o in overrides {
            let origin: Arc<str> = Arc::from(o.origin.as_str());
            let loc = Location::new(origin.clone(), 1, 1);
            let segs: Vec<&str> = o.key.split('.').collect();
            if segs.iter().any(|s| !is_bare_word(s)) {
                errors.push(
                    Diagnostic::error(format!(
                        "invalid override key `{}`: expected scope names and an option name separated by `.`",
                        o.key
                    ))
                    .at(loc),
                );
                continue;
            }
            if segs.len() > MAX_DEPTH {
                errors.push(
                    Diagnostic::error(format!(
                        "override key `{}` nests too deeply: expected at most {MAX_DEPTH} parts",
                        o.key
                    ))
                    .at(loc),
                );
                continue;
            }
            let value = crate::parser::parse_value(&o.origin, &o.value).unwrap_or_else(|_| {
                Value::Scalar(Scalar {
                    text: o.value.clone(),
                    quoted: true,
                    location: loc.clone(),
                })
            });
            self.sources
                .set(origin.clone(), Arc::from(o.value.as_str()));
            let (option, scopes) = match segs.split_last() {
                Some(x) => x,
                None => continue,
            };
            let mut scope = 0;
            for s in scopes {
                scope = self
                    .tree
                    .open_scope(scope, s, None, loc.clone(), false, u32::MAX);
            }
            self.tree
                .set_option(scope, option, value, loc, false, u32::MAX);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(errors))
        }
    }
}
