//! Typed read access: [`ScopeRef`] and [`OptionRef`] views into a [`Config`].
//!
//! Names are compared ASCII case-insensitively. The typed getters (`get_str`,
//! `get_int`, ...) look for the option in the scope, then in the enclosing scopes out
//! to the top level ("scope fallback"), then in the defaults of the schema attached by
//! [`Config::validate`] (innermost declaring scope first). They return `Ok(None)` when
//! nothing is found, and `Err` (located at the value) when a value is present but has
//! the wrong type.
//!
//! Conversions:
//! * int: decimal `i64` / `u64`, optional sign for `i64`;
//! * octal: octal digits with an optional leading `0` or `0o` (`0660` is `0o660`);
//! * bool: `true/false`, `on/off`, `enabled/disabled`, `yes/no`, `1/0`, any case;
//! * duration: a bare number is seconds (`5`, `1.5`); suffixes `ms`, `s`, `m`, `h`
//!   (`250ms`, `30s`, `5m`, `1h`);
//! * list: a list of scalars; dict: a dictionary of scalars, in source order, keys as
//!   written.

use std::time::Duration;

use crate::diagnostic::{Diagnostic, Location};
use crate::schema::Kind;
use crate::tree::{Config, Item, OptId, ScopeId, Value};

impl Config {
    /// The top level of the configuration.
    pub fn root(&self) -> ScopeRef<'_> {
        ScopeRef { cfg: self, id: 0 }
    }
}

/// A scope of a [`Config`] (the root, an anonymous scope or a named scope).
#[derive(Clone, Copy)]
pub struct ScopeRef<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) id: ScopeId,
}

impl std::fmt::Debug for ScopeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeRef")
            .field("name", &self.name())
            .field("instance", &self.instance())
            .field("location", &self.location().to_string())
            .finish()
    }
}

/// An option of a [`Config`].
#[derive(Clone, Copy)]
pub struct OptionRef<'a> {
    cfg: &'a Config,
    id: OptId,
}

impl std::fmt::Debug for OptionRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptionRef")
            .field("name", &self.name())
            .field("value", self.value())
            .finish()
    }
}

impl<'a> OptionRef<'a> {
    /// The option name as written.
    pub fn name(&self) -> &'a str {
        &self.cfg.tree.option(self.id).name
    }

    /// The value.
    pub fn value(&self) -> &'a Value {
        &self.cfg.tree.option(self.id).value
    }

    /// Where the option was (last) set.
    pub fn location(&self) -> &'a Location {
        &self.cfg.tree.option(self.id).location
    }

    /// True if the option came from a read-only include.
    pub fn readonly(&self) -> bool {
        self.cfg.tree.option(self.id).readonly
    }

    /// The scope holding the option.
    pub fn scope(&self) -> ScopeRef<'a> {
        ScopeRef {
            cfg: self.cfg,
            id: self.cfg.tree.option(self.id).scope,
        }
    }
}

impl<'a> ScopeRef<'a> {
    /// The scope type name as first written (empty for the root).
    pub fn name(&self) -> &'a str {
        &self.cfg.tree.scope(self.id).name
    }

    /// The instance name of a named scope.
    pub fn instance(&self) -> Option<&'a str> {
        self.cfg.tree.scope(self.id).instance.as_deref()
    }

    /// Where the scope was first opened.
    pub fn location(&self) -> &'a Location {
        &self.cfg.tree.scope(self.id).location
    }

    /// True if the scope came from a read-only include.
    pub fn readonly(&self) -> bool {
        self.cfg.tree.scope(self.id).readonly
    }

    /// True for the top level.
    pub fn is_root(&self) -> bool {
        self.id == 0
    }

    /// The enclosing scope.
    pub fn parent(&self) -> Option<ScopeRef<'a>> {
        self.cfg
            .tree
            .scope(self.id)
            .parent
            .map(|id| ScopeRef { cfg: self.cfg, id })
    }

    /// The child anonymous scope `name`.
    pub fn scope(&self, name: &str) -> Option<ScopeRef<'a>> {
        self.cfg
            .tree
            .find_scope(self.id, name, None)
            .map(|id| ScopeRef { cfg: self.cfg, id })
    }

    /// The child named scope `name "instance"` (instance compared exactly).
    pub fn named_scope(&self, name: &str, instance: &str) -> Option<ScopeRef<'a>> {
        self.cfg
            .tree
            .find_scope(self.id, name, Some(instance))
            .map(|id| ScopeRef { cfg: self.cfg, id })
    }

    /// Every child scope of type `name` (anonymous or named), in source order.
    pub fn scopes(&self, name: &str) -> impl Iterator<Item = ScopeRef<'a>> + 'a {
        let name = name.to_owned();
        self.children()
            .filter(move |s| s.name().eq_ignore_ascii_case(&name))
    }

    /// Every child scope, in source order.
    pub fn children(&self) -> impl Iterator<Item = ScopeRef<'a>> + 'a {
        let cfg = self.cfg;
        cfg.tree
            .scope(self.id)
            .items
            .iter()
            .filter_map(move |it| match it {
                Item::Scope(id) => Some(ScopeRef { cfg, id: *id }),
                Item::Opt(_) => None,
            })
    }

    /// Every option of this scope, in source order.
    pub fn options(&self) -> impl Iterator<Item = OptionRef<'a>> + 'a {
        let cfg = self.cfg;
        cfg.tree
            .scope(self.id)
            .items
            .iter()
            .filter_map(move |it| match it {
                Item::Opt(id) => Some(OptionRef { cfg, id: *id }),
                Item::Scope(_) => None,
            })
    }

    /// The option `name` in this scope only.
    pub fn option(&self, name: &str) -> Option<OptionRef<'a>> {
        self.cfg
            .tree
            .find_option(self.id, name)
            .map(|id| OptionRef { cfg: self.cfg, id })
    }

    /// The option `name` in this scope, else in the enclosing scopes outwards to the
    /// top level.
    pub fn lookup(&self, name: &str) -> Option<OptionRef<'a>> {
        let mut cur = Some(*self);
        while let Some(s) = cur {
            if let Some(o) = s.option(name) {
                return Some(o);
            }
            cur = s.parent();
        }
        None
    }

    /// Scope type names from the top level down to this scope.
    pub fn path(&self) -> Vec<&'a str> {
        let mut v = Vec::new();
        let mut cur = Some(*self);
        while let Some(s) = cur {
            if !s.is_root() {
                v.push(s.name());
            }
            cur = s.parent();
        }
        v.reverse();
        v
    }

    /// The value for `name`: set in this or an enclosing scope, else a schema default.
    /// The default is returned as an owned value located at
    /// `<schema default for scope.option>`.
    pub fn resolve(&self, name: &str) -> Option<std::borrow::Cow<'a, Value>> {
        if let Some(o) = self.lookup(name) {
            return Some(std::borrow::Cow::Borrowed(o.value()));
        }
        let schema = self.cfg.schema.as_ref()?;
        let (decl_path, default) = schema.default_for(&self.path(), name)?;
        let origin = format!("schema default for {decl_path}");
        crate::parser::parse_value(&origin, default)
            .ok()
            .map(std::borrow::Cow::Owned)
    }

    fn typed<T>(
        &self,
        name: &str,
        kind: Kind,
        f: impl FnOnce(&Value) -> Result<T, Diagnostic>,
    ) -> Result<Option<T>, Diagnostic> {
        match self.resolve(name) {
            None => Ok(None),
            Some(v) => f(&v)
                .map(Some)
                .map_err(|d| self.cfg.annotate(kind_error(name, kind, &v, d))),
        }
    }

    /// A string (a scalar, quoted or not).
    pub fn get_str(&self, name: &str) -> Result<Option<String>, Diagnostic> {
        self.typed(name, Kind::Str, |v| convert_str(v).map(str::to_owned))
    }

    /// A signed decimal integer.
    pub fn get_int(&self, name: &str) -> Result<Option<i64>, Diagnostic> {
        self.typed(name, Kind::Int, convert_int)
    }

    /// An unsigned decimal integer.
    pub fn get_u64(&self, name: &str) -> Result<Option<u64>, Diagnostic> {
        self.typed(name, Kind::Int, |v| {
            convert_str(v)?.parse::<u64>().map_err(|_| blank())
        })
    }

    /// An octal number such as a file mode: `"0660"` gives `0o660`.
    pub fn get_octal(&self, name: &str) -> Result<Option<u32>, Diagnostic> {
        self.typed(name, Kind::Octal, convert_octal)
    }

    /// A boolean in any Momentum spelling (`true/false on/off enabled/disabled yes/no 1/0`).
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>, Diagnostic> {
        self.typed(name, Kind::Bool, convert_bool)
    }

    /// A duration: seconds, or a number with `ms`, `s`, `m` or `h`.
    pub fn get_duration(&self, name: &str) -> Result<Option<Duration>, Diagnostic> {
        self.typed(name, Kind::Duration, convert_duration)
    }

    /// A list of scalars.
    pub fn get_list(&self, name: &str) -> Result<Option<Vec<String>>, Diagnostic> {
        self.typed(name, Kind::List, convert_list)
    }

    /// A dictionary of scalars, in source order, keys as written.
    pub fn get_dict(&self, name: &str) -> Result<Option<Vec<(String, String)>>, Diagnostic> {
        self.typed(name, Kind::Dict, convert_dict)
    }
}

/// An error whose message the caller fills in.
fn blank() -> Diagnostic {
    Diagnostic::error(String::new())
}

fn describe_found(v: &Value) -> String {
    match v {
        Value::Scalar(s) => format!("`{}`", s.text),
        other => other.kind_name().to_string(),
    }
}

pub(crate) fn convert_str(v: &Value) -> Result<&str, Diagnostic> {
    v.as_scalar().ok_or_else(blank)
}

pub(crate) fn convert_int(v: &Value) -> Result<i64, Diagnostic> {
    convert_str(v)?.parse::<i64>().map_err(|_| blank())
}

pub(crate) fn convert_octal(v: &Value) -> Result<u32, Diagnostic> {
    let s = convert_str(v)?;
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(blank());
    }
    u32::from_str_radix(digits, 8).map_err(|_| blank())
}

pub(crate) fn convert_bool(v: &Value) -> Result<bool, Diagnostic> {
    let s = convert_str(v)?;
    const TRUE: [&str; 5] = ["true", "on", "enabled", "yes", "1"];
    const FALSE: [&str; 5] = ["false", "off", "disabled", "no", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(false)
    } else {
        Err(blank())
    }
}

pub(crate) fn convert_duration(v: &Value) -> Result<Duration, Diagnostic> {
    let s = convert_str(v)?;
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(blank());
    }
    let n: f64 = num.parse().map_err(|_| blank())?;
    Duration::try_from_secs_f64(n * scale).map_err(|_| blank())
}

pub(crate) fn convert_list(v: &Value) -> Result<Vec<String>, Diagnostic> {
    match v {
        Value::List(l) => l
            .items
            .iter()
            .map(|i| match i {
                Value::Scalar(s) => Ok(s.text.clone()),
                other => Err(Diagnostic::error(format!(
                    "expected a list of scalars, found {} inside it",
                    other.kind_name()
                ))
                .at(other.location().clone())),
            })
            .collect(),
        _ => Err(blank()),
    }
}

pub(crate) fn convert_dict(v: &Value) -> Result<Vec<(String, String)>, Diagnostic> {
    match v {
        Value::Dict(d) => d
            .entries
            .iter()
            .map(|e| match &e.value {
                Value::Scalar(s) => Ok((e.key.clone(), s.text.clone())),
                other => Err(Diagnostic::error(format!(
                    "expected a scalar for dictionary key `{}`, found {}",
                    e.key,
                    other.kind_name()
                ))
                .at(other.location().clone())),
            })
            .collect(),
        _ => Err(blank()),
    }
}

/// Check a value against a kind; `Err` carries a message-less or located diagnostic.
pub(crate) fn check_kind(kind: Kind, v: &Value) -> Result<(), Diagnostic> {
    match kind {
        Kind::Any => Ok(()),
        Kind::Str => convert_str(v).map(|_| ()),
        Kind::Int => convert_int(v).map(|_| ()),
        Kind::Octal => convert_octal(v).map(|_| ()),
        Kind::Bool => convert_bool(v).map(|_| ()),
        Kind::Duration => convert_duration(v).map(|_| ()),
        Kind::List => convert_list(v).map(|_| ()),
        Kind::Dict => convert_dict(v).map(|_| ()),
    }
}

/// The full message for a value that does not fit `kind`.
pub(crate) fn kind_error(name: &str, kind: Kind, v: &Value, d: Diagnostic) -> Diagnostic {
    if d.message.is_empty() {
        Diagnostic::error(format!(
            "option `{name}` must be {}, found {}",
            kind.describe(),
            describe_found(v)
        ))
        .at(v.location().clone())
    } else {
        d
    }
}
