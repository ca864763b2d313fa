//! The Ecelerity / Momentum configuration language: lexer, parser, includes, resolved
//! tree, typed access, schema validation, diagnostics, environment overrides, a
//! `config` crate format, and a JSON dump.
//!
//! ```
//! use confparse::Loader;
//! let cfg = Loader::with_search_path(vec![])
//!     .load_str("inline.conf", r#"
//!         ECCluster_Listener {
//!           listen_backlog = 100
//!           Listen "*:4802" { enable = yes }
//!         }"#, None)
//!     .unwrap();
//! let listener = cfg.root().scope("eccluster_listener").unwrap();
//! let listen = listener.scopes("listen").next().unwrap();
//! assert_eq!(listen.instance(), Some("*:4802"));
//! assert_eq!(listen.get_bool("enable").unwrap(), Some(true));
//! // Scope fallback: not set in `Listen`, found in the enclosing listener.
//! assert_eq!(listen.get_int("listen_backlog").unwrap(), Some(100));
//! ```
//!
//! # The language, and the decisions taken where Momentum's docs are silent
//!
//! * **Comments**: `#` to end of line; `/* ... */` block comments, which do not nest.
//!   Whitespace, newlines included, is insignificant (with the one exception below).
//! * **Strings**: double-quoted strings take the escapes `\"`, `\\`, `\n`, `\t`; any
//!   other backslash pair is kept as written (so `"C:\dir"` works). Single-quoted strings
//!   are literal, no escapes. A string cannot contain a raw newline: an unterminated
//!   string is an error at its opening quote, and parsing resumes on the next line.
//! * **Bare words**: any run of characters other than whitespace and
//!   `# " ' = { } [ ] ( )`, ending before a `/*`. `/` is allowed, so `/var/log/x`,
//!   `10.0.0.0/16`, `*:4802`, `host:port`, `0660`, `yahoo.com` are all bare words.
//!   Quoting is always safe.
//! * **Statements**: `name = value` sets an option. `name value` (no `=`) is accepted
//!   when the value starts on the same line as the name. `name { ... }` is an anonymous
//!   scope, `name "instance" { ... }` or `name instance { ... }` a named scope (the `{`
//!   may be on a later line). `include PATH` and `readonly_include PATH` are legal in
//!   any scope. Names must be bare words. After `name =` the value may start on a later
//!   line, except that `name =` at the end of a line followed by a line that starts a
//!   statement of its own (`b = ...`, `b {`, `b inst {`) is reported as a missing value
//!   rather than silently swallowing that line's name.
//! * **Names** are ASCII case-insensitive everywhere (lookups, merging, schema); the
//!   spelling first written is kept for messages and dumps. Instance names are compared
//!   exactly.
//! * **Values**: scalars (with a `quoted` flag), lists `( v v ... )` (possibly empty;
//!   elements may be scalars, lists or dictionaries), dictionaries `[ k = v ... ]` (the
//!   `=` is required; keys are words or strings and may hold dots; values may be
//!   scalars, lists or dictionaries; entries keep source order).
//! * **Nesting**: at most [`MAX_DEPTH`] levels of scopes and values together (counted
//!   across includes). Deeper input gets one "nested too deeply" error and is skipped
//!   without recursion, so no input can overflow the stack.
//! * **Merging**: anonymous scopes of one name in one parent are merged into one (so a
//!   file in `conf.d/` can add to `msgc_server { }`); named scopes merge when type and
//!   instance match. An option set twice in one scope: the last value wins and a
//!   warning is produced ([`Config::warnings`]); warnings never fail a load.
//! * **Includes**: see [`include`](mod@include) — relative to the including file (for
//!   [`Loader::load_str`], its `base_dir`), then the search path `EC_CONF_SEARCH_PATH`;
//!   only regular files and directories; directories in byte-wise sorted order skipping
//!   dot-files, not recursing; cycles are errors naming the chain; read-only flags
//!   recorded. [`Loader::without_includes`] refuses all includes (untrusted text).
//! * **Locations**: every scope, option and value has a [`Location`] `file:line:col`
//!   (1-based; the column counts bytes).
//! * **Errors** are collected, not fatal at the first: a load reports every error it
//!   can (up to 100) as [`Diagnostics`], rendered like rustc with the source line and a
//!   caret.
//! * **Typed getters** ([`ScopeRef::get_int`] and friends) use scope fallback, then
//!   schema defaults; durations are seconds or take `ms`/`s`/`m`/`h`; booleans accept
//!   `true/false on/off enabled/disabled yes/no 1/0`. See [`access`].
//!
//! # Modules
//!
//! `lexer` and `parser` (private) turn text into statements; [`include`](mod@include) loads
//! files and builds the [`tree`]; [`access`] is the typed read API; [`schema`]
//! validates; [`momentum`] holds the schemas of the Momentum scopes this project
//! reads; [`diagnostic`] renders errors; [`overrides`] and [`format`](mod@format) integrate the
//! environment and the `config` crate; [`dump`] is the JSON form. The `confparse`
//! binary (`check`, `dump`) sits on top.
//!
//! # Environment variables
//!
//! * `EC_CONF_SEARCH_PATH` — colon-separated include search path ([`Loader::new`]).
//! * `EC_CONF__<SCOPE>__<OPTION>` — overrides, e.g. `EC_CONF__MSGC_SERVER__PORT=4810`
//!   or `EC_CONF__CLUSTER__NODEADDR=10.0.0.5`; see [`overrides`]. Read by
//!   [`env_overrides`] and applied by [`Config::apply_overrides`], or layered by the
//!   `config` crate with [`format::Ecelerity`] and
//!   `config::Environment::with_prefix("EC_CONF").prefix_separator("__").separator("__")`.

#![forbid(unsafe_code)]

pub mod access;
pub mod diagnostic;
pub mod dump;
pub mod format;
pub mod include;
mod lexer;
pub mod momentum;
pub mod overrides;
mod parser;
pub mod schema;
pub mod tree;

pub use access::{OptionRef, ScopeRef};
pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity};
pub use include::Loader;
pub use overrides::{Override, env_overrides, env_overrides_from};
pub use schema::{Kind, OptionSchema, Schema, ScopeSchema};
pub use tree::{Config, Dict, DictEntry, List, Scalar, Value};

/// The deepest nesting of scopes and values (together) that a configuration may have.
pub const MAX_DEPTH: usize = 64;

/// Parse `text` as exactly one value (a scalar, list or dictionary), with `origin` as
/// the file name of its locations. Used for overrides and schema defaults; exposed for
/// services that take values from elsewhere (command lines, consoles).
pub fn parse_value(origin: &str, text: &str) -> Result<Value, Diagnostics> {
    parser::parse_value(origin, text).map_err(|d| d.into_report())
}
