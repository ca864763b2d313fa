//! The JSON dump of a resolved tree (`confparse dump`).
//!
//! Every node carries `"location": "file:line:col"`:
//!
//! ```json
//! { "kind": "scope", "name": "", "location": "a.conf:1:1", "readonly": false, "items": [
//!   { "kind": "scope", "name": "Listen", "instance": "*:4802", "location": "a.conf:2:3",
//!     "readonly": false, "items": [
//!       { "kind": "option", "name": "enable", "location": "a.conf:2:22", "readonly": false,
//!         "value": { "scalar": "true", "quoted": false, "location": "a.conf:2:31" } } ] } ] }
//! ```
//!
//! Lists are `{ "list": [values], "location": .. }` and dictionaries
//! `{ "dict": [ { "key": .., "location": .., "value": .. } ], "location": .. }`.
//! Items keep source order; the root scope has an empty name.

use serde_json::{Map, Value as Json, json};

use crate::access::ScopeRef;
use crate::tree::{Config, Value};

impl Config {
    /// The resolved tree as JSON (see the module docs for the format).
    pub fn to_json(&self) -> Json {
        scope_json(self.root())
    }
}

fn scope_json(s: ScopeRef<'_>) -> Json {
    let mut m = Map::new();
    m.insert("kind".into(), json!("scope"));
    m.insert("name".into(), json!(s.name()));
    if let Some(i) = s.instance() {
        m.insert("instance".into(), json!(i));
    }
    m.insert("location".into(), json!(s.location().to_string()));
    m.insert("readonly".into(), json!(s.readonly()));
    let mut items = Vec::new();
    for item in s.cfg.tree.scope(s.id).items.iter() {
        match *item {
            crate::tree::Item::Scope(id) => items.push(scope_json(ScopeRef { cfg: s.cfg, id })),
            crate::tree::Item::Opt(id) => {
                let o = s.cfg.tree.option(id);
                items.push(json!({
                    "kind": "option",
                    "name": o.name,
                    "location": o.location.to_string(),
                    "readonly": o.readonly,
                    "value": value_json(&o.value),
                }));
            }
        }
    }
    m.insert("items".into(), Json::Array(items));
    Json::Object(m)
}

/// A value as JSON (see the module docs).
pub fn value_json(v: &Value) -> Json {
    match v {
        Value::Scalar(s) => json!({
            "scalar": s.text,
            "quoted": s.quoted,
            "location": s.location.to_string(),
        }),
        Value::List(l) => json!({
            "list": l.items.iter().map(value_json).collect::<Vec<_>>(),
            "location": l.location.to_string(),
        }),
        Value::Dict(d) => json!({
            "dict": d.entries.iter().map(|e| json!({
                "key": e.key,
                "location": e.key_location.to_string(),
                "value": value_json(&e.value),
            })).collect::<Vec<_>>(),
            "location": d.location.to_string(),
        }),
    }
}
