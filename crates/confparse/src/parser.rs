//! Parser: tokens to statements, reported as events to a [`Sink`].
//!
//! The parser does not build a syntax tree: it calls the sink for each scope opened or
//! closed, each option and each include, and the include resolver builds the resolved
//! tree directly (and parses included files in place). Scope nesting is handled with a
//! counter, not recursion; values (lists, dictionaries) recurse but at most
//! [`crate::MAX_DEPTH`] levels in total with the scopes around them, and anything deeper
//! is skipped iteratively after one "nested too deeply" error. No input can overflow
//! the stack.
//!
//! Grammar (whitespace and newlines are insignificant except where noted):
//!
//! ```text
//! body      := statement*
//! statement := NAME '=' value                       option
//!            | NAME value                           option without '=' (value must
//!                                                   start on the NAME's line)
//!            | NAME '{' body '}'                    anonymous scope
//!            | NAME scalar '{' body '}'             named scope (instance)
//!            | ('include' | 'readonly_include') scalar
//! value     := scalar | '(' value* ')' | '[' (key '=' value)* ']'
//! scalar    := WORD | "double quoted" | 'single quoted'
//! ```
//!
//! Errors are collected and parsing goes on: a bad token is skipped, an unclosed scope
//! is closed at end of file, a missing value is reported and the statement dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::MAX_DEPTH;
use crate::diagnostic::{DiagSink, Diagnostic, Location};
use crate::lexer::{LexError, Lexer, Tok, Token, unescape};
use crate::tree::{Dict, DictEntry, List, Scalar, Value};

/// Receives the statements of a parse.
pub(crate) trait Sink {
    /// A scope opens (`instance` is the decoded instance name of a named scope).
    fn open_scope(&mut self, name: &str, instance: Option<&str>, loc: Location);
    /// The innermost open scope closes.
    fn close_scope(&mut self);
    /// An option statement.
    fn option(&mut self, name: &str, value: Value, loc: Location, diags: &mut DiagSink);
    /// An include statement.
    fn include(&mut self, path: &str, readonly: bool, loc: Location, diags: &mut DiagSink);
}

/// Longest source line quoted in a diagnostic.
const MAX_SNIPPET: usize = 512;

pub(crate) struct Parser<'a> {
    lex: Lexer<'a>,
    src: &'a str,
    file: Arc<str>,
    /// Lookahead buffer (at most three tokens).
    la: VecDeque<Token<'a>>,
    /// Depth of the enclosing scopes outside this source (includes inside scopes).
    base_depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(file: Arc<str>, src: &'a str, base_depth: usize) -> Self {
        Parser {
            lex: Lexer::new(src),
            src,
            file,
            la: VecDeque::with_capacity(4),
            base_depth,
        }
    }

    #[inline]
    fn lex_one(&mut self, diags: &mut DiagSink) -> Token<'a> {
        let t = self.lex.next_token();
        if let Some(e) = t.error {
            let d = match e {
                LexError::UnterminatedString => {
                    let q = if t.kind == Tok::SString { '\'' } else { '"' };
                    Diagnostic::error(format!(
                        "unterminated string: expected a closing `{q}` before the end of the line"
                    ))
                    .with_help("strings cannot span lines; write `\\n` for a newline")
                    .with_span_len(1)
                }
                LexError::UnterminatedComment => Diagnostic::error(
                    "unterminated block comment: expected `*/` before the end of the file",
                )
                .with_span_len(2),
            };
            self.error(diags, d, &t);
        }
        t
    }

    #[inline]
    fn peek(&mut self, diags: &mut DiagSink) -> Token<'a> {
        self.peek_n(0, diags)
    }

    fn peek2(&mut self, diags: &mut DiagSink) -> Token<'a> {
        self.peek_n(1, diags)
    }

    #[inline]
    fn peek_n(&mut self, n: usize, diags: &mut DiagSink) -> Token<'a> {
        while self.la.len() <= n {
            let t = self.lex_one(diags);
            self.la.push_back(t);
        }
        self.la[n]
    }

    #[inline]
    fn next(&mut self, diags: &mut DiagSink) -> Token<'a> {
        match self.la.pop_front() {
            Some(t) => t,
            None => self.lex_one(diags),
        }
    }

    fn unread(&mut self, t: Token<'a>) {
        self.la.push_front(t);
    }

    #[inline]
    fn loc(&self, t: &Token<'_>) -> Location {
        Location {
            file: self.file.clone(),
            line: t.line,
            column: t.col,
        }
    }

    /// Record an error located at `t`, with its source line (unless the report is
    /// already full: then it is only counted, and the line is not even looked up).
    fn error(&self, diags: &mut DiagSink, d: Diagnostic, t: &Token<'_>) {
        if diags.is_full() {
            diags.dropped += 1;
            return;
        }
        diags.push(self.located(d, t));
    }

    fn located(&self, d: Diagnostic, t: &Token<'_>) -> Diagnostic {
        let line = Lexer::line_text(self.src, t.line_start);
        let d = d.at(self.loc(t));
        // Very long lines (minified or garbage input) are not quoted in the report.
        let d = if line.len() <= MAX_SNIPPET {
            d.with_source_line(line)
        } else {
            d
        };
        if d.span_len.is_none() {
            d.with_span_len(t.len.max(1))
        } else {
            d
        }
    }

    fn found(t: &Token<'_>) -> String {
        match t.kind {
            Tok::Word => format!("`{}`", t.text),
            Tok::DString | Tok::SString => format!("string \"{}\"", t.text),
            k => k.describe().to_string(),
        }
    }

    fn scalar_text(t: &Token<'_>) -> String {
        match t.kind {
            Tok::DString => unescape(t.text),
            _ => t.text.to_owned(),
        }
    }

    fn is_include(name: &str) -> Option<bool> {
        if name.eq_ignore_ascii_case("include") {
            Some(false)
        } else if name.eq_ignore_ascii_case("readonly_include") {
            Some(true)
        } else {
            None
        }
    }

    /// Parse a whole source, reporting statements to `sink`.
    pub(crate) fn parse_body(&mut self, sink: &mut dyn Sink, diags: &mut DiagSink) {
        // Open scopes: the `{` token of each, for "unclosed" errors.
        let mut open: Vec<Token<'a>> = Vec::new();
        loop {
            let t = self.next(diags);
            match t.kind {
                Tok::Eof => break,
                Tok::RBrace => {
                    if open.pop().is_some() {
                        sink.close_scope();
                    } else {
                        self.error(
                            diags,
                            Diagnostic::error(
                                "unexpected `}`: expected an option, a scope or an include",
                            )
                            .with_help("this `}` has no matching `{`"),
                            &t,
                        );
                    }
                }
                Tok::Word => self.statement(t, &mut open, sink, diags),
                Tok::DString | Tok::SString => {
                    self.error(
                        diags,
                        Diagnostic::error(format!(
                            "expected an option or scope name, found {}",
                            Self::found(&t)
                        ))
                        .with_help("names are bare words; only values may be quoted"),
                        &t,
                    );
                    // Parse the rest of the statement as if the name were bare.
                    self.statement(t, &mut open, sink, diags);
                }
                _ => {
                    self.error(
                        diags,
                        Diagnostic::error(format!(
                            "expected an option, a scope or an include, found {}",
                            Self::found(&t)
                        )),
                        &t,
                    );
                    if matches!(t.kind, Tok::LParen | Tok::LBracket | Tok::LBrace) {
                        self.skip_balanced(diags);
                    }
                }
            }
        }
        // Close anything left open, innermost first, with one error for the outermost.
        if let Some(first) = open.first().copied() {
            self.error(
                diags,
                Diagnostic::error("unclosed `{`: expected `}` before the end of the file")
                    .with_span_len(1),
                &first,
            );
        }
        for _ in open.drain(..) {
            sink.close_scope();
        }
    }

    fn statement(
        &mut self,
        name: Token<'a>,
        open: &mut Vec<Token<'a>>,
        sink: &mut dyn Sink,
        diags: &mut DiagSink,
    ) {
        let depth = self.base_depth + open.len();
        let t1 = self.peek(diags);
        match t1.kind {
            Tok::Eq => {
                self.next(diags);
                let vt = self.next(diags);
                if vt.kind == Tok::Word && vt.line != t1.line && self.starts_statement(diags) {
                    // `name =` at the end of a line, and the next line is a statement
                    // of its own: the value is missing (do not swallow that name).
                    self.error(
                        diags,
                        Diagnostic::error(format!(
                            "expected a value after `{} =`, found the end of the line",
                            name.text
                        )),
                        &t1,
                    );
                    self.unread(vt);
                    return;
                }
                if let Some(v) = self.value_or_error(vt, &name, depth, diags) {
                    sink.option(name.text, v, self.loc(&name), diags);
                }
            }
            Tok::LBrace => {
                self.next(diags);
                if depth + 1 > MAX_DEPTH {
                    self.too_deep(&t1, diags);
                    self.skip_balanced(diags);
                } else {
                    sink.open_scope(name.text, None, self.loc(&name));
                    open.push(t1);
                }
            }
            Tok::Word | Tok::DString | Tok::SString => {
                let t2 = self.peek2(diags);
                if t2.kind == Tok::LBrace {
                    self.next(diags);
                    self.next(diags);
                    if depth + 1 > MAX_DEPTH {
                        self.too_deep(&t2, diags);
                        self.skip_balanced(diags);
                    } else {
                        let inst = Self::scalar_text(&t1);
                        sink.open_scope(name.text, Some(&inst), self.loc(&name));
                        open.push(t2);
                    }
                } else if let Some(readonly) = Self::is_include(name.text) {
                    self.next(diags);
                    let path = Self::scalar_text(&t1);
                    sink.include(&path, readonly, self.loc(&name), diags);
                } else if t1.line == name.line {
                    self.next(diags);
                    if let Some(v) = self.value(t1, depth, diags) {
                        sink.option(name.text, v, self.loc(&name), diags);
                    }
                } else {
                    self.missing_after_name(&name, &t1, diags);
                }
            }
            Tok::LParen | Tok::LBracket if t1.line == name.line => {
                self.next(diags);
                if let Some(v) = self.value(t1, depth, diags) {
                    sink.option(name.text, v, self.loc(&name), diags);
                }
            }
            _ => {
                self.missing_after_name(&name, &t1, diags);
                if matches!(t1.kind, Tok::RParen | Tok::RBracket) {
                    self.next(diags);
                }
            }
        }
    }

    /// After a consumed word: does what follows make that word a statement name?
    fn starts_statement(&mut self, diags: &mut DiagSink) -> bool {
        let a = self.peek(diags);
        match a.kind {
            Tok::Eq | Tok::LBrace => true,
            k if k.is_scalar() => self.peek2(diags).kind == Tok::LBrace,
            _ => false,
        }
    }

    fn missing_after_name(&self, name: &Token<'_>, found: &Token<'_>, diags: &mut DiagSink) {
        let d = Diagnostic::error(format!(
            "expected `=`, `{{` or a value after `{}`, found {}",
            name.text,
            Self::found(found)
        ))
        .with_help(format!(
            "write `{} = value` for an option or `{} {{ ... }}` for a scope",
            name.text, name.text
        ));
        self.error(diags, d, name);
    }

    fn too_deep(&self, t: &Token<'_>, diags: &mut DiagSink) {
        self.error(
            diags,
            Diagnostic::error(format!(
                "nested too deeply: expected at most {MAX_DEPTH} levels of scopes and values"
            ))
            .with_span_len(1),
            t,
        );
    }

    /// Skip tokens until the bracket just consumed is balanced (or end of file),
    /// counting every kind of bracket. Iterative.
    fn skip_balanced(&mut self, diags: &mut DiagSink) {
        let mut level: usize = 1;
        loop {
            let t = self.next(diags);
            match t.kind {
                Tok::Eof => return,
                Tok::LBrace | Tok::LParen | Tok::LBracket => level += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket => {
                    level -= 1;
                    if level == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// A value where one is required after `name =`; a missing one is an error.
    fn value_or_error(
        &mut self,
        t: Token<'a>,
        name: &Token<'_>,
        depth: usize,
        diags: &mut DiagSink,
    ) -> Option<Value> {
        if t.kind.is_scalar() || matches!(t.kind, Tok::LParen | Tok::LBracket) {
            return self.value(t, depth, diags);
        }
        self.error(diags,
            Diagnostic::error(format!(
                "expected a value (a word, a string, a list or a dictionary) after `{} =`, found {}",
                name.text,
                Self::found(&t)
            )),
            &t,
        );
        // Give back a token that ends something so the caller sees it; drop a block.
        match t.kind {
            Tok::RBrace | Tok::Eof => self.unread(t),
            Tok::LBrace => self.skip_balanced(diags),
            _ => {}
        }
        None
    }

    /// Parse a value starting with the already consumed token `t`.
    fn value(&mut self, t: Token<'a>, depth: usize, diags: &mut DiagSink) -> Option<Value> {
        match t.kind {
            Tok::Word | Tok::DString | Tok::SString => Some(Value::Scalar(Scalar {
                text: Self::scalar_text(&t),
                quoted: t.kind != Tok::Word,
                location: self.loc(&t),
            })),
            Tok::LParen | Tok::LBracket if depth + 1 > MAX_DEPTH => {
                self.too_deep(&t, diags);
                self.skip_balanced(diags);
                None
            }
            Tok::LParen => Some(self.list(t, depth + 1, diags)),
            Tok::LBracket => Some(self.dict(t, depth + 1, diags)),
            _ => None,
        }
    }

    fn list(&mut self, open: Token<'a>, depth: usize, diags: &mut DiagSink) -> Value {
        let mut items = Vec::new();
        loop {
            let t = self.next(diags);
            match t.kind {
                Tok::RParen => break,
                Tok::Eof | Tok::RBrace => {
                    self.unclosed(&open, ")", &t, diags);
                    self.unread(t);
                    break;
                }
                Tok::Word | Tok::DString | Tok::SString | Tok::LParen | Tok::LBracket => {
                    if let Some(v) = self.value(t, depth, diags) {
                        items.push(v);
                    }
                }
                _ => self.error(
                    diags,
                    Diagnostic::error(format!(
                        "expected a list element or `)`, found {}",
                        Self::found(&t)
                    )),
                    &t,
                ),
            }
        }
        Value::List(List {
            items,
            location: self.loc(&open),
        })
    }

    fn dict(&mut self, open: Token<'a>, depth: usize, diags: &mut DiagSink) -> Value {
        let mut entries = Vec::new();
        loop {
            let t = self.next(diags);
            match t.kind {
                Tok::RBracket => break,
                Tok::Eof | Tok::RBrace => {
                    self.unclosed(&open, "]", &t, diags);
                    self.unread(t);
                    break;
                }
                Tok::Word | Tok::DString | Tok::SString => {
                    let eq = self.peek(diags);
                    if eq.kind != Tok::Eq {
                        self.error(
                            diags,
                            Diagnostic::error(format!(
                                "expected `=` after dictionary key `{}`, found {}",
                                t.text,
                                Self::found(&eq)
                            ))
                            .with_help("dictionary entries are written `key = value`"),
                            &eq,
                        );
                        if eq.kind.is_scalar() {
                            // Take it as the value of the entry and go on.
                            self.next(diags);
                        }
                        continue;
                    }
                    self.next(diags);
                    let vt = self.next(diags);
                    if let Some(v) = self.value_or_error(vt, &t, depth, diags) {
                        entries.push(DictEntry {
                            key: Self::scalar_text(&t),
                            key_location: self.loc(&t),
                            value: v,
                        });
                    }
                }
                _ => {
                    self.error(
                        diags,
                        Diagnostic::error(format!(
                            "expected a dictionary key or `]`, found {}",
                            Self::found(&t)
                        )),
                        &t,
                    );
                    if matches!(t.kind, Tok::LParen | Tok::LBracket | Tok::LBrace) {
                        self.skip_balanced(diags);
                    }
                }
            }
        }
        Value::Dict(Dict {
            entries,
            location: self.loc(&open),
        })
    }

    fn unclosed(&self, open: &Token<'_>, close: &str, found: &Token<'_>, diags: &mut DiagSink) {
        self.error(
            diags,
            Diagnostic::error(format!(
                "unclosed `{}`: expected `{close}`, found {}",
                open.text,
                Self::found(found)
            ))
            .with_span_len(1),
            open,
        );
    }

    /// Parse a source that must hold exactly one value (overrides, schema defaults).
    pub(crate) fn single_value(&mut self) -> Result<Value, DiagSink> {
        let mut diags = DiagSink::default();
        let t = self.next(&mut diags);
        let v = if t.kind.is_scalar() || matches!(t.kind, Tok::LParen | Tok::LBracket) {
            self.value(t, 0, &mut diags)
        } else {
            None
        };
        let rest = self.next(&mut diags);
        match v {
            Some(v) if rest.kind == Tok::Eof && !diags.has_errors() => Ok(v),
            _ => {
                if !diags.has_errors() {
                    self.error(
                        &mut diags,
                        Diagnostic::error(format!(
                            "expected exactly one value, found {}",
                            Self::found(if rest.kind == Tok::Eof { &t } else { &rest })
                        )),
                        if rest.kind == Tok::Eof { &t } else { &rest },
                    );
                }
                Err(diags)
            }
        }
    }
}

/// Parse `text` as exactly one value, with `origin` as the file name in locations.
pub(crate) fn parse_value(origin: &str, text: &str) -> Result<Value, DiagSink> {
    Parser::new(Arc::from(origin), text, 0).single_value()
}
