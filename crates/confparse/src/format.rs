//! `config` crate integration: [`Ecelerity`], a `config::Format` for `.conf` files.
//!
//! ```no_run
//! use confparse::format::Ecelerity;
//! let cfg = config::Config::builder()
//!     .add_source(config::File::new("/etc/ecelerity/ecelerity.conf", Ecelerity))
//!     .add_source(
//!         config::Environment::with_prefix("EC_CONF")
//!             .prefix_separator("__")
//!             .separator("__"),
//!     )
//!     .build()
//!     .unwrap();
//! let port: String = cfg.get("msgc_server.port").unwrap();
//! ```
//!
//! Mapping: the file's top level is the root table. An anonymous scope becomes a table
//! under its name; named scopes become a table under the type name keyed by instance
//! (`eccluster_listener.listen."*:4802"`); lists become arrays, dictionaries tables,
//! scalars strings. Scope and option names are lower-cased (the environment source
//! lower-cases its keys too, so `EC_CONF__MSGC_SERVER__PORT` lands on
//! `msgc_server.port`); instance names and dictionary keys are kept as written. Each
//! value's origin is its `file:line:col`. Includes resolve relative to the file (the
//! `uri` the `config` crate passes), then `EC_CONF_SEARCH_PATH`. If a scope and an option
//! of one scope share a name, the scope wins.

use std::error::Error;
use std::path::Path;

use config::{Map, Value as CValue, ValueKind};

use crate::access::ScopeRef;
use crate::include::Loader;
use crate::tree::Value;

/// The Ecelerity / Momentum configuration format, file extension `conf`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ecelerity;

impl config::Format for Ecelerity {
    fn parse(
        &self,
        uri: Option<&String>,
        text: &str,
    ) -> Result<Map<String, CValue>, Box<dyn Error + Send + Sync>> {
        let name = uri.map(String::as_str).unwrap_or("<config>");
        let dir = uri.and_then(|u| Path::new(u).parent());
        let cfg = Loader::new().load_str(name, text, dir)?;
        Ok(scope_table(cfg.root()))
    }
}

impl config::FileStoredFormat for Ecelerity {
    fn file_extensions(&self) -> &'static [&'static str] {
        &["conf"]
    }
}

fn origin(loc: &crate::Location) -> String {
    loc.to_string()
}

fn scope_table(s: ScopeRef<'_>) -> Map<String, CValue> {
    let mut m = Map::new();
    for o in s.options() {
        m.insert(o.name().to_ascii_lowercase(), value(o.value()));
    }
    for c in s.children() {
        let key = c.name().to_ascii_lowercase();
        let table = scope_table(c);
        match c.instance() {
            None => merge_into(&mut m, key, table, c.location()),
            Some(inst) => {
                let mut wrap = Map::new();
                wrap.insert(
                    inst.to_string(),
                    CValue::new(Some(&origin(c.location())), ValueKind::Table(table)),
                );
                merge_into(&mut m, key, wrap, c.location());
            }
        }
    }
    m
}

/// Insert `table` at `key`, merging with a table already there.
fn merge_into(
    m: &mut Map<String, CValue>,
    key: String,
    table: Map<String, CValue>,
    loc: &crate::Location,
) {
    if let Some(existing) = m.get_mut(&key)
        && let ValueKind::Table(t) = &mut existing.kind
    {
        t.extend(table);
        return;
    }
    m.insert(
        key,
        CValue::new(Some(&origin(loc)), ValueKind::Table(table)),
    );
}

fn value(v: &Value) -> CValue {
    let o = origin(v.location());
    match v {
        Value::Scalar(s) => CValue::new(Some(&o), ValueKind::String(s.text.clone())),
        Value::List(l) => CValue::new(
            Some(&o),
            ValueKind::Array(l.items.iter().map(value).collect()),
        ),
        Value::Dict(d) => {
            let mut t = Map::new();
            for e in &d.entries {
                t.insert(e.key.clone(), value(&e.value));
            }
            CValue::new(Some(&o), ValueKind::Table(t))
        }
    }
}
