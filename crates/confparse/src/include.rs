//! Loading: reading files, resolving `include` / `readonly_include`, and building the
//! resolved tree.
//!
//! * A relative include path is looked up in the including file's directory first,
//!   then in each directory of the search path ([`Loader::new`] reads the colon-separated
//!   `EC_CONF_SEARCH_PATH`; [`Loader::with_search_path`] sets it explicitly). An
//!   absolute path is used as is.
//! * An included directory includes every regular file in it, in byte-wise sorted name
//!   order, skipping names that start with `.`, without recursing into subdirectories.
//! * Included statements land in the scope where the include stands.
//! * A file that (directly or not) includes itself is an error naming the chain, e.g.
//!   `cycle-a.conf -> cycle-b.conf -> cycle-a.conf`. Includes nest at most
//!   [`MAX_INCLUDE_DEPTH`] files deep.
//! * Nodes that come from a `readonly_include` (or anything it includes), or from a
//!   file that is included more than once, are flagged read-only.
//! * A missing file is an error at the include statement; loading goes on, so several
//!   errors are reported together.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{DiagSink, Diagnostic, Diagnostics, Location, Sources};
use crate::parser::{Parser, Sink};
use crate::tree::Value;
use crate::tree::{Config, ScopeId, SetOutcome, Tree};

/// The most files that can be open in one include chain.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// The environment variable holding the include search path (colon-separated).
pub const SEARCH_PATH_ENV: &str = "EC_CONF_SEARCH_PATH";

/// Loads configuration files and strings into a [`Config`].
#[derive(Clone, Debug)]
pub struct Loader {
    search_path: Vec<PathBuf>,
    includes: bool,
}

impl Default for Loader {
    fn default() -> Self {
        Loader::with_search_path(Vec::new())
    }
}

impl Loader {
    /// A loader whose search path comes from `EC_CONF_SEARCH_PATH` (colon-separated;
    /// empty entries are ignored). Unset means no search path.
    pub fn new() -> Self {
        let search_path = std::env::var_os(SEARCH_PATH_ENV)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Loader::with_search_path(search_path)
    }

    /// A loader with an explicit search path (the environment is not read).
    pub fn with_search_path(search_path: Vec<PathBuf>) -> Self {
        Loader {
            search_path,
            includes: true,
        }
    }

    /// Refuse every include with an error instead of touching the file system: for
    /// untrusted text (and the fuzzer).
    pub fn without_includes(mut self) -> Self {
        self.includes = false;
        self
    }

    /// The directories searched for relative includes, after the including file's own.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// Load a file and everything it includes.
    ///
    /// Locations name the file as `path` is written (included files as
    /// `<dir of includer>/<include path>`).
    pub fn load_file(&self, path: &Path) -> Result<Config, Diagnostics> {
        let display: Arc<str> = Arc::from(path.display().to_string());
        let text = match read_text(path) {
            Ok(t) => t,
            Err(msg) => {
                return Err(Diagnostics::from(Diagnostic::error(format!(
                    "cannot read configuration file `{display}`: {msg}"
                ))));
            }
        };
        let mut b = Builder::new(self, display.clone());
        let canonical = std::fs::canonicalize(path).ok();
        let origin = b.file_id(canonical.clone());
        b.parse_file(
            display,
            text,
            canonical,
            path.parent().map(Path::to_path_buf),
            origin,
        );
        b.finish()
    }

    /// Load configuration text: `name` is used as the file name in locations, and
    /// includes resolve against `base_dir` (if any), then the search path.
    pub fn load_str(
        &self,
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<Config, Diagnostics> {
        let display: Arc<str> = Arc::from(name);
        let mut b = Builder::new(self, display.clone());
        let origin = b.file_id(None);
        b.parse_file(
            display,
            Arc::from(text),
            None,
            base_dir.map(Path::to_path_buf),
            origin,
        );
        b.finish()
    }
}

fn read_text(path: &Path) -> Result<Arc<str>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(Arc::from(s)),
        Err(e) => Err(format!(
            "not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )),
    }
}

/// One file being parsed, for cycle detection and relative includes.
struct Frame {
    display: Arc<str>,
    canonical: Option<PathBuf>,
    dir: Option<PathBuf>,
    origin: u32,
}

/// Builds the tree from parser events; parses included files in place.
struct Builder<'l> {
    loader: &'l Loader,
    tree: Tree,
    /// Open scopes, innermost last; `stack[0]` is the root.
    stack: Vec<ScopeId>,
    files: Vec<Frame>,
    /// Nesting of read-only includes currently active.
    readonly: usize,
    /// Canonical path -> file id; and how often each id was included.
    file_ids: HashMap<PathBuf, u32>,
    include_counts: Vec<u32>,
    sources: Sources,
    diags: DiagSink,
}

impl<'l> Builder<'l> {
    fn new(loader: &'l Loader, root_file: Arc<str>) -> Self {
        Builder {
            loader,
            tree: Tree::new(Location {
                file: root_file,
                line: 1,
                column: 1,
            }),
            stack: vec![0],
            files: Vec::new(),
            readonly: 0,
            file_ids: HashMap::new(),
            include_counts: Vec::new(),
            sources: Sources::default(),
            diags: DiagSink::default(),
        }
    }

    fn file_id(&mut self, canonical: Option<PathBuf>) -> u32 {
        let next = u32::try_from(self.include_counts.len()).unwrap_or(u32::MAX);
        let id = match canonical {
            Some(c) => *self.file_ids.entry(c).or_insert(next),
            None => next,
        };
        if id == next {
            self.include_counts.push(0);
        }
        if let Some(c) = self.include_counts.get_mut(id as usize) {
            *c += 1;
        }
        id
    }

    fn parse_file(
        &mut self,
        display: Arc<str>,
        text: Arc<str>,
        canonical: Option<PathBuf>,
        dir: Option<PathBuf>,
        origin: u32,
    ) {
        self.sources.add(display.clone(), text.clone());
        // A UTF-8 byte-order mark is not part of the first name.
        let body = text.strip_prefix('\u{feff}').unwrap_or(&text);
        self.files.push(Frame {
            display: display.clone(),
            canonical,
            dir,
            origin,
        });
        // Included text nests inside the scopes open where the include stands: the
        // parser counts those against the nesting limit.
        let base_depth = self.stack.len() - 1;
        let mut diags = std::mem::take(&mut self.diags);
        Parser::new(display, body, base_depth).parse_body(self, &mut diags);
        // Errors from nested includes were added to self.diags meanwhile.
        let nested = std::mem::replace(&mut self.diags, diags);
        for d in nested.errors.into_iter().chain(nested.warnings) {
            self.diags.push(d);
        }
        self.files.pop();
    }

    fn finish(mut self) -> Result<Config, Diagnostics> {
        if self.diags.has_errors() {
            return Err(self.diags.into_report());
        }
        // Files included more than once are read-only, wherever they were included.
        let multi: Vec<bool> = self.include_counts.iter().map(|&c| c > 1).collect();
        if multi.iter().any(|&m| m) {
            for s in &mut self.tree.scopes {
                if multi.get(s.origin as usize).copied().unwrap_or(false) {
                    s.readonly = true;
                }
            }
            for o in &mut self.tree.options {
                if multi.get(o.origin as usize).copied().unwrap_or(false) {
                    o.readonly = true;
                }
            }
        }
        Ok(Config::new(self.tree, self.diags.warnings, self.sources))
    }

    fn current(&self) -> ScopeId {
        self.stack.last().copied().unwrap_or(0)
    }

    fn origin(&self) -> u32 {
        self.files.last().map(|f| f.origin).unwrap_or(0)
    }

    /// Where to look for `path`: the includer's directory, then the search path.
    fn candidates(&self, path: &Path) -> Vec<PathBuf> {
        if path.is_absolute() {
            return vec![path.to_path_buf()];
        }
        let mut v = Vec::new();
        if let Some(d) = self.files.last().and_then(|f| f.dir.as_ref()) {
            v.push(d.join(path));
        }
        for d in &self.loader.search_path {
            v.push(d.join(path));
        }
        v
    }

    fn include_one(&mut self, file: PathBuf, readonly: bool, loc: &Location) {
        let display: Arc<str> = Arc::from(file.display().to_string());
        let canonical = std::fs::canonicalize(&file).ok();
        if let Some(c) = &canonical
            && let Some(pos) = self
                .files
                .iter()
                .position(|f| f.canonical.as_ref() == Some(c))
        {
            let chain: Vec<&str> = self.files[pos..]
                .iter()
                .map(|f| &*f.display)
                .chain(std::iter::once(&*display))
                .collect();
            let d = Diagnostic::error(format!("include cycle: {}", chain.join(" -> ")))
                .at(loc.clone())
                .with_help("a file cannot include itself, directly or through other files");
            self.diags.push(self.sources.annotate(d));
            return;
        }
        if self.files.len() >= MAX_INCLUDE_DEPTH {
            let d = Diagnostic::error(format!(
                "includes nested too deeply: expected at most {MAX_INCLUDE_DEPTH} files in one include chain, found more at `{display}`"
            ))
            .at(loc.clone());
            self.diags.push(self.sources.annotate(d));
            return;
        }
        if !file.is_file() {
            let d = Diagnostic::error(format!(
                "cannot include `{display}`: expected a regular file or a directory"
            ))
            .at(loc.clone());
            self.diags.push(self.sources.annotate(d));
            return;
        }
        let text = match read_text(&file) {
            Ok(t) => t,
            Err(msg) => {
                let d = Diagnostic::error(format!("cannot read included file `{display}`: {msg}"))
                    .at(loc.clone());
                self.diags.push(self.sources.annotate(d));
                return;
            }
        };
        let origin = self.file_id(canonical.clone());
        if readonly {
            self.readonly += 1;
        }
        let dir = file.parent().map(Path::to_path_buf);
        self.parse_file(display, text, canonical, dir, origin);
        if readonly {
            self.readonly -= 1;
        }
    }
}

impl Sink for Builder<'_> {
    fn open_scope(&mut self, name: &str, instance: Option<&str>, loc: Location) {
        let parent = self.current();
        let id = self.tree.open_scope(
            parent,
            name,
            instance,
            loc,
            self.readonly > 0,
            self.origin(),
        );
        self.stack.push(id);
    }

    fn close_scope(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    fn option(&mut self, name: &str, value: Value, loc: Location, diags: &mut DiagSink) {
        let scope = self.current();
        let readonly = self.readonly > 0;
        let origin = self.origin();
        if let SetOutcome::Replaced(old, id) = self
            .tree
            .set_option(scope, name, value, loc, readonly, origin)
        {
            let scope_name = scope_label(&self.tree, scope);
            let d = Diagnostic::warning(format!(
                "option `{name}` is set more than once in {scope_name}; the last value wins"
            ))
            .at(self.tree.option(id).location.clone())
            .with_help(format!("first set at {old}; remove one of the two"));
            diags.push(self.sources.annotate(d));
        }
    }

    fn include(&mut self, path: &str, readonly: bool, loc: Location, diags: &mut DiagSink) {
        if !self.loader.includes {
            let d = Diagnostic::error(format!(
                "include of `{path}` refused: includes are disabled for this load"
            ))
            .at(loc);
            diags.push(self.sources.annotate(d));
            return;
        }
        let p = Path::new(path);
        let found = self.candidates(p).into_iter().find(|c| c.exists());
        let Some(found) = found else {
            let mut looked: Vec<String> = self
                .candidates(p)
                .iter()
                .map(|c| c.display().to_string())
                .collect();
            looked.dedup();
            if looked.is_empty() {
                looked.push("nowhere (no base directory and an empty search path)".into());
            }
            let d = Diagnostic::error(format!(
                "included file `{path}` not found: expected a file or directory"
            ))
            .at(loc)
            .with_help(format!(
                "looked in: {}; the search path comes from {}",
                looked.join(", "),
                crate::include::SEARCH_PATH_ENV
            ));
            diags.push(self.sources.annotate(d));
            return;
        };
        if found.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(&found) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect(),
                Err(e) => {
                    let d = Diagnostic::error(format!(
                        "cannot read included directory `{}`: {e}",
                        found.display()
                    ))
                    .at(loc);
                    diags.push(self.sources.annotate(d));
                    return;
                }
            };
            entries.sort_by(|a, b| {
                let an = a.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b"");
                let bn = b.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b"");
                an.cmp(bn)
            });
            for e in entries {
                self.include_one(e, readonly, &loc);
            }
        } else {
            self.include_one(found, readonly, &loc);
        }
    }
}

/// "scope `Listen \"*:4802\"`" or "the top level", for messages.
pub(crate) fn scope_label(tree: &Tree, id: ScopeId) -> String {
    let s = tree.scope(id);
    if s.parent.is_none() {
        return "the top level".to_string();
    }
    match &s.instance {
        Some(i) => format!("scope `{} \"{}\"`", s.name, i),
        None => format!("scope `{}`", s.name),
    }
}
