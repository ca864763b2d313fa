//! Diagnostics: located errors and warnings, rendered like rustc.
//!
//! A [`Diagnostic`] carries a severity, a message that names what was expected and what
//! was found, an optional [`Location`], an optional help line (for example a "did you
//! mean" hint) and, when known, the text of the source line so that it renders without
//! re-reading files:
//!
//! ```text
//! error: unknown option `listen_backlogg` in scope `Listen`
//!   --> testdata/conf-examples/tricky/bad-unknown-option.conf:3:5
//!    |
//!  3 |     listen_backlogg = 500
//!    |     ^^^^^^^^^^^^^^^
//!    = help: did you mean `listen_backlog`?
//! ```
//!
//! [`Diagnostics`] is a list of them: a load collects every error it can before giving
//! up, and the list is what `Loader::load_file` returns on failure.

use std::fmt;
use std::sync::Arc;

/// A position in a configuration source: file, 1-based line and 1-based column.
///
/// The column counts bytes from the start of the line (equal to characters for ASCII
/// text). Displays as `file:line:col`. Values that do not come from a file (environment
/// overrides, schema defaults) use a descriptive "file" such as
/// `env EC_CONF__CLUSTER__NODEADDR`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file name as it was given to the loader (or a description of the origin).
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column (bytes from the start of the line, plus one).
    pub column: u32,
}

impl Location {
    /// Make a location.
    pub fn new(file: impl Into<Arc<str>>, line: u32, column: u32) -> Self {
        Location {
            file: file.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How serious a diagnostic is. Errors fail a load; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The configuration is refused.
    Error,
    /// Worth telling the operator, but the configuration is accepted.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One located error or warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What went wrong: names what was expected and what was found.
    pub message: String,
    /// Where, if the problem has a place in a source.
    pub location: Option<Location>,
    /// An optional hint, e.g. "did you mean `listen_backlog`?".
    pub help: Option<String>,
    /// The text of the source line at `location` (without its newline), if known.
    pub source_line: Option<Box<str>>,
    /// How many columns the caret underline covers; computed from the source line when
    /// not set explicitly.
    pub span_len: Option<u32>,
}

impl Diagnostic {
    fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            message: message.into(),
            location: None,
            help: None,
            source_line: None,
            span_len: None,
        }
    }

    /// A new error with the given message.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A new warning with the given message.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    /// Attach a location.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Attach a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Attach the text of the source line the location points into.
    pub fn with_source_line(mut self, line: impl Into<String>) -> Self {
        self.source_line = Some(line.into().into_boxed_str());
        self
    }

    /// Set the width of the caret underline explicitly.
    pub fn with_span_len(mut self, len: usize) -> Self {
        self.span_len = Some(u32::try_from(len.max(1)).unwrap_or(u32::MAX));
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The caret width: explicit, else the extent of the token at the column.
    fn caret_len(&self, line: &str, col0: usize) -> usize {
        if let Some(n) = self.span_len {
            return n as usize;
        }
        let rest = line.get(col0..).unwrap_or("");
        let bytes = rest.as_bytes();
        let len = match bytes.first() {
            None => 1,
            Some(&q @ (b'"' | b'\'')) => {
                let mut i = 1;
                let mut end = bytes.len();
                while i < bytes.len() {
                    if q == b'"' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == q {
                        end = i + 1;
                        break;
                    }
                    i += 1;
                }
                end.min(bytes.len())
            }
            Some(b) if crate::lexer::is_delimiter(*b) || b.is_ascii_whitespace() => 1,
            Some(_) => {
                let ends_word = |i: usize| {
                    let b = bytes[i];
                    crate::lexer::is_delimiter(b)
                        || b.is_ascii_whitespace()
                        || (b == b'/' && bytes.get(i + 1) == Some(&b'*'))
                };
                (0..bytes.len())
                    .find(|&i| ends_word(i))
                    .unwrap_or(bytes.len())
                    .max(1)
            }
        };
        // Count characters, not bytes, so the underline lines up with non-ASCII text.
        rest.get(..len)
            .map(|s| s.chars().count())
            .unwrap_or(len)
            .max(1)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.severity, self.message)?;
        let line_no = self.location.as_ref().map(|l| l.line).unwrap_or(0);
        let width = line_no.to_string().len() + 1;
        let pad = " ".repeat(width);
        if let Some(loc) = &self.location {
            writeln!(f, "{pad}--> {loc}")?;
            if let Some(src) = &self.source_line {
                let src = src.trim_end_matches(['\r', '\n']);
                let col0 = (loc.column.max(1) - 1) as usize;
                // Column is a byte offset; render the caret at the character position.
                let prefix_chars = src
                    .get(..col0.min(src.len()))
                    .map(|p| {
                        p.chars()
                            .map(|c| if c == '\t' { '\t' } else { ' ' })
                            .collect::<String>()
                    })
                    .unwrap_or_else(|| " ".repeat(col0));
                let carets = "^".repeat(self.caret_len(src, col0));
                writeln!(f, "{pad} |")?;
                writeln!(f, "{:>width$} | {src}", loc.line, width = width)?;
                writeln!(f, "{pad} | {prefix_chars}{carets}")?;
            }
        }
        if let Some(help) = &self.help {
            writeln!(f, "{pad} = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics reported together (the error type of a failed load).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    /// Add one diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// Iterate over all diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Diagnostics(v)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let errors = self.errors().count();
        if errors > 1 {
            writeln!(f)?;
            writeln!(f, "error: {errors} errors")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The most errors one load records; past this the rest are counted, not stored, so
/// garbage input cannot make the report explode.
pub(crate) const MAX_ERRORS: usize = 100;

/// Collector used while loading: errors and warnings, with a cap on stored errors.
#[derive(Debug, Default)]
pub(crate) struct DiagSink {
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) dropped: usize,
}

impl DiagSink {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Error if self.errors.len() >= MAX_ERRORS => self.dropped += 1,
            Severity::Error => self.errors.push(d),
            Severity::Warning if self.warnings.len() >= MAX_ERRORS => {}
            Severity::Warning => self.warnings.push(d),
        }
    }

    /// True once no more errors will be stored.
    pub(crate) fn is_full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All errors (and warnings, so that an operator sees everything) as one report.
    pub(crate) fn into_report(self) -> Diagnostics {
        let mut all = self.errors;
        if self.dropped > 0 {
            all.push(Diagnostic::error(format!(
                "too many errors: {} more not shown",
                self.dropped
            )));
        }
        all.extend(self.warnings);
        Diagnostics(all)
    }
}

/// Source texts by file name, so diagnostics made after parsing can show the line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Clone, Debug)]
struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
    /// Byte offsets of line starts, computed on first use.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl Sources {
    pub(crate) fn add(&mut self, name: Arc<str>, text: Arc<str>) {
        if !self.files.iter().any(|f| f.name == name) {
            self.files.push(SourceFile {
                name,
                text,
                lines: std::sync::OnceLock::new(),
            });
        }
    }

    /// Add or replace the text of `name` (overrides reuse their origin names).
    pub(crate) fn set(&mut self, name: Arc<str>, text: Arc<str>) {
        self.files.retain(|f| f.name != name);
        self.add(name, text);
    }

    /// The text of the line `loc` points into, if its file is known.
    pub(crate) fn line(&self, loc: &Location) -> Option<&str> {
        let f = self.files.iter().find(|f| *f.name == *loc.file)?;
        let starts = f.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(f.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let start = *starts.get(loc.line.checked_sub(1)? as usize)?;
        let rest = f.text.get(start..)?;
        let end = rest.find('\n').unwrap_or(rest.len());
        Some(rest[..end].trim_end_matches('\r'))
    }

    /// Attach the source line to `d` if it has a location in a known file.
    pub(crate) fn annotate(&self, mut d: Diagnostic) -> Diagnostic {
        if d.source_line.is_none()
            && let Some(loc) = &d.location
            && let Some(line) = self.line(loc)
            && line.len() <= 512
        {
            d.source_line = Some(line.into());
        }
        d
    }
}
