//! Schemas: the scopes a service owns, their options, kinds and defaults.
//!
//! A service declares the top-level scopes it owns (and, inside them, the sub-scopes it
//! knows). [`Config::validate`] then checks only those scopes:
//! * an option not declared in an owned scope is an error, with a "did you mean" hint;
//! * a sub-scope not declared in an owned scope is an error unless the scope schema is
//!   [`ScopeSchema::open`];
//! * a value that does not fit the declared [`Kind`] is an error at the value;
//! * a scope declared [`ScopeSchema::named`] needs an instance name and one declared
//!   [`ScopeSchema::anonymous`] must not have one.
//!
//! Scopes the schema does not own (e.g. `Security`, `ec_logger`) are accepted and left
//! alone. After validation the schema stays attached to the [`Config`], so the typed
//! getters fall back to the declared defaults. Defaults are strings parsed like values
//! in a file (`"( a b )"` is a list). Names are compared ASCII case-insensitively.
//!
//! ```
//! use confparse::{Kind, Loader, Schema, ScopeSchema};
//! let schema = Schema::new().scope(
//!     ScopeSchema::anonymous("msgc_server")
//!         .option("port", Kind::Int, Some("4809"))
//!         .option("keepalive_interval", Kind::Duration, Some("5")),
//! );
//! let mut cfg = Loader::with_search_path(vec![])
//!     .load_str("inline.conf", "msgc_server { keepalive_interval = 2 }", None)
//!     .unwrap();
//! cfg.validate(&schema).unwrap();
//! let s = cfg.root().scope("MSGC_SERVER").unwrap();
//! assert_eq!(s.get_int("port").unwrap(), Some(4809));
//! assert_eq!(s.get_duration("keepalive_interval").unwrap(), Some(std::time::Duration::from_secs(2)));
//! ```

use std::sync::Arc;

use crate::access::{ScopeRef, check_kind, kind_error};
use crate::diagnostic::{Diagnostic, Diagnostics, MAX_ERRORS};
use crate::tree::Config;

/// The kind of value an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Any scalar.
    Str,
    /// A decimal integer.
    Int,
    /// An octal number (file modes).
    Octal,
    /// A boolean in any Momentum spelling.
    Bool,
    /// Seconds, or a number with `ms`/`s`/`m`/`h`.
    Duration,
    /// A list of scalars.
    List,
    /// A dictionary of scalars.
    Dict,
    /// Anything.
    Any,
}

impl Kind {
    /// "an integer", "a boolean", ... for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Octal => "an octal number (e.g. 0660)",
            Kind::Bool => "a boolean (true/false, on/off, enabled/disabled, yes/no, 1/0)",
            Kind::Duration => "a duration (seconds, or a number with ms, s, m or h)",
            Kind::List => "a list of scalars `( ... )`",
            Kind::Dict => "a dictionary of scalars `[ key = value ... ]`",
            Kind::Any => "any value",
        }
    }
}

/// One declared option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionSchema {
    /// The option name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// The default, written like a value in a file.
    pub default: Option<String>,
}

/// A declared scope: its options and known sub-scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSchema {
    /// The scope type name.
    pub name: String,
    /// True if instances are named (`Listen "*:4802" { }`).
    pub named: bool,
    /// Declared options.
    pub options: Vec<OptionSchema>,
    /// Declared sub-scopes.
    pub children: Vec<ScopeSchema>,
    /// Accept undeclared sub-scopes.
    pub open: bool,
    /// Accept anything inside: options and sub-scopes are not checked.
    pub unchecked: bool,
}

impl ScopeSchema {
    /// An anonymous scope `name { ... }`.
    pub fn anonymous(name: impl Into<String>) -> Self {
        ScopeSchema {
            name: name.into(),
            named: false,
            options: Vec::new(),
            children: Vec::new(),
            open: false,
            unchecked: false,
        }
    }

    /// A named scope `name "instance" { ... }`.
    pub fn named(name: impl Into<String>) -> Self {
        ScopeSchema {
            named: true,
            ..Self::anonymous(name)
        }
    }

    /// Declare an option with its kind and optional default.
    pub fn option(mut self, name: impl Into<String>, kind: Kind, default: Option<&str>) -> Self {
        self.options.push(OptionSchema {
            name: name.into(),
            kind,
            default: default.map(str::to_owned),
        });
        self
    }

    /// Declare a sub-scope.
    pub fn child(mut self, child: ScopeSchema) -> Self {
        self.children.push(child);
        self
    }

    /// Accept sub-scopes that are not declared (they are left unchecked).
    pub fn open(mut self) -> Self {
        self.open = true;
        self
    }

    /// Accept anything inside this scope (it belongs to a module that is not
    /// implemented here, but its place in the file is checked).
    pub fn unchecked(mut self) -> Self {
        self.unchecked = true;
        self
    }

    fn find_option(&self, name: &str) -> Option<&OptionSchema> {
        self.options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }

    fn find_child(&self, name: &str) -> Option<&ScopeSchema> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// The scopes a service owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    /// Top-level scopes owned.
    pub scopes: Vec<ScopeSchema>,
}

impl Schema {
    /// An empty schema (owns nothing).
    pub fn new() -> Self {
        Schema::default()
    }

    /// Own a top-level scope.
    pub fn scope(mut self, scope: ScopeSchema) -> Self {
        self.scopes.push(scope);
        self
    }

    fn find(&self, name: &str) -> Option<&ScopeSchema> {
        self.scopes
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The default of option `name` for the scope at `path` (scope type names from the
    /// top): the innermost declaring scope along the path wins. Returns the declaring
    /// `scope.option` path and the default text.
    pub fn default_for(&self, path: &[&str], name: &str) -> Option<(String, &str)> {
        let mut chain: Vec<&ScopeSchema> = Vec::new();
        let mut level = path.first().and_then(|n| self.find(n));
        let mut rest = path.iter().skip(1);
        while let Some(s) = level {
            chain.push(s);
            level = rest.next().and_then(|n| s.find_child(n));
        }
        chain.iter().enumerate().rev().find_map(|(i, s)| {
            let o = s.find_option(name)?;
            let d = o.default.as_deref()?;
            let mut p: Vec<&str> = chain[..=i].iter().map(|s| s.name.as_str()).collect();
            p.push(&o.name);
            Some((p.join("."), d))
        })
    }

    /// Errors in the schema itself: defaults that do not parse or fit their kind.
    fn check_defaults(&self, out: &mut Vec<Diagnostic>) {
        let mut stack: Vec<(String, &ScopeSchema)> =
            self.scopes.iter().map(|s| (s.name.clone(), s)).collect();
        while let Some((path, s)) = stack.pop() {
            for o in &s.options {
                if let Some(d) = &o.default {
                    let origin = format!("schema default for {path}.{}", o.name);
                    match crate::parser::parse_value(&origin, d) {
                        Ok(v) => {
                            if let Err(e) = check_kind(o.kind, &v) {
                                out.push(kind_error(&o.name, o.kind, &v, e));
                            }
                        }
                        Err(_) => out.push(Diagnostic::error(format!(
                            "{origin}: expected one value, found `{d}`"
                        ))),
                    }
                }
            }
            for c in &s.children {
                stack.push((format!("{path}.{}", c.name), c));
            }
        }
    }
}

/// The closest of `candidates` to `name`, if close enough to suggest.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_ascii_lowercase())))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

impl Config {
    /// Check the scopes `schema` owns and attach it, so typed getters fall back to its
    /// defaults. All problems are reported together.
    pub fn validate(&mut self, schema: &Schema) -> Result<(), Diagnostics> {
        let mut errors = Vec::new();
        schema.check_defaults(&mut errors);
        // (scope, its schema), walked iteratively.
        let mut stack: Vec<(ScopeRef<'_>, &ScopeSchema)> = self
            .root()
            .children()
            .filter_map(|c| schema.find(c.name()).map(|s| (c, s)))
            .collect();
        stack.reverse();
        while let Some((scope, ss)) = stack.pop() {
            check_scope(scope, ss, &mut errors, &mut stack);
        }
        let total = errors.len();
        let mut errors: Vec<Diagnostic> = errors
            .into_iter()
            .take(MAX_ERRORS)
            .map(|d| self.annotate(d))
            .collect();
        if total > MAX_ERRORS {
            errors.push(Diagnostic::error(format!(
                "too many errors: {} more not shown",
                total - MAX_ERRORS
            )));
        }
        self.schema = Some(Arc::new(schema.clone()));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(errors))
        }
    }

    /// The schema attached by [`Config::validate`], if any.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_deref()
    }
}

fn check_scope<'a, 's>(
    scope: ScopeRef<'a>,
    ss: &'s ScopeSchema,
    errors: &mut Vec<Diagnostic>,
    stack: &mut Vec<(ScopeRef<'a>, &'s ScopeSchema)>,
) {
    match (ss.named, scope.instance()) {
        (true, None) => errors.push(
            Diagnostic::error(format!(
                "scope `{}` needs an instance name, found none",
                scope.name()
            ))
            .at(scope.location().clone())
            .with_help(format!("write `{} \"name\" {{ ... }}`", scope.name())),
        ),
        (false, Some(inst)) => errors.push(
            Diagnostic::error(format!(
                "scope `{}` takes no instance name, found \"{inst}\"",
                scope.name()
            ))
            .at(scope.location().clone()),
        ),
        _ => {}
    }
    if ss.unchecked {
        return;
    }
    for o in scope.options() {
        match ss.find_option(o.name()) {
            Some(os) => {
                if let Err(e) = check_kind(os.kind, o.value()) {
                    errors.push(kind_error(o.name(), os.kind, o.value(), e));
                }
            }
            None => {
                let mut d = Diagnostic::error(format!(
                    "unknown option `{}` in scope `{}`",
                    o.name(),
                    scope.name()
                ))
                .at(o.location().clone())
                .with_span_len(o.name().chars().count());
                if let Some(s) = did_you_mean(o.name(), ss.options.iter().map(|o| o.name.as_str()))
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else if ss.find_child(o.name()).is_some() {
                    d = d.with_help(format!("`{}` is a scope here, not an option", o.name()));
                } else if !ss.options.is_empty() {
                    let names: Vec<&str> = ss.options.iter().map(|o| o.name.as_str()).collect();
                    d = d.with_help(format!("expected one of: {}", names.join(", ")));
                }
                errors.push(d);
            }
        }
    }
    let mut children: Vec<(ScopeRef<'a>, &'s ScopeSchema)> = Vec::new();
    for c in scope.children() {
        match ss.find_child(c.name()) {
            Some(cs) => children.push((c, cs)),
            None if ss.open => {}
            None => {
                let mut d = Diagnostic::error(format!(
                    "unknown scope `{}` in scope `{}`",
                    c.name(),
                    scope.name()
                ))
                .at(c.location().clone())
                .with_span_len(c.name().chars().count());
                if let Some(s) = did_you_mean(c.name(), ss.children.iter().map(|c| c.name.as_str()))
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                errors.push(d);
            }
        }
    }
    children.reverse();
    stack.extend(children);
}
