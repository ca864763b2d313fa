//! Lexer: turns source text into tokens, byte by byte, without allocating.
//!
//! Tokens borrow their text from the source. Structural tokens are `= { } ( ) [ ]`;
//! everything else is a bare word or a quoted string. Comments (`#` to end of line,
//! non-nesting `/* */`) and ASCII whitespace are skipped.
//!
//! Bare words are runs of bytes that are neither ASCII whitespace nor one of
//! `# " ' = { } [ ] ( )`, and stop before a `/*`. So `/var/log/x`, `10.0.0.0/16`,
//! `host:port` and `*:4802` are single bare words.
//!
//! Double-quoted strings take the escapes `\"`, `\\`, `\n`, `\t` (any other backslash
//! pair is kept as written). Single-quoted strings are literal. Neither may contain a
//! raw newline: a string still open at the end of its line is an "unterminated string"
//! error located at its opening quote, and lexing resumes on the next line, so later
//! errors are still found.

/// Kinds of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word.
    Word,
    /// A double-quoted string (text is the raw content between the quotes).
    DString,
    /// A single-quoted string (text is the content between the quotes).
    SString,
    Eq,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eof,
}

impl Tok {
    /// How the token is named in "expected X, found Y" messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Tok::Word => "a word",
            Tok::DString | Tok::SString => "a string",
            Tok::Eq => "`=`",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Eof => "end of file",
        }
    }

    pub(crate) fn is_scalar(self) -> bool {
        matches!(self, Tok::Word | Tok::DString | Tok::SString)
    }
}

/// A lexing problem attached to a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LexError {
    UnterminatedString,
    UnterminatedComment,
}

/// One token. `text` borrows from the source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Tok,
    pub(crate) text: &'a str,
    pub(crate) line: u32,
    pub(crate) col: u32,
    /// Byte offset where the token's line starts.
    pub(crate) line_start: usize,
    /// Byte length of the token as written (quotes included).
    pub(crate) len: usize,
    pub(crate) error: Option<LexError>,
}

const C_WS: u8 = 1;
const C_DELIM: u8 = 2;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = C_WS;
    t[b'\t' as usize] = C_WS;
    t[b'\n' as usize] = C_WS;
    t[b'\r' as usize] = C_WS;
    t[0x0b] = C_WS;
    t[0x0c] = C_WS;
    let delims = b"#\"'={}[]()";
    let mut i = 0;
    while i < delims.len() {
        t[delims[i] as usize] = C_DELIM;
        i += 1;
    }
    t
};

/// True for the bytes that end a bare word (besides whitespace and `/*`).
pub(crate) fn is_delimiter(b: u8) -> bool {
    CLASS[b as usize] == C_DELIM
}

/// True if `s` can be written as a bare word and lexes back as exactly that word.
pub(crate) fn is_bare_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| CLASS[b as usize] == 0) && !s.contains("/*")
}

/// The lexer. Call [`Lexer::next_token`] until it returns [`Tok::Eof`].
pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The text of the line starting at `line_start`, without the newline.
    pub(crate) fn line_text(src: &str, line_start: usize) -> &str {
        let rest = src.get(line_start..).unwrap_or("");
        let end = rest.find('\n').unwrap_or(rest.len());
        rest[..end].trim_end_matches('\r')
    }

    #[inline]
    fn tok(&self, kind: Tok, start: usize, end: usize, text: &'a str) -> Token<'a> {
        Token {
            kind,
            text,
            line: self.line,
            col: col_of(start, self.line_start),
            line_start: self.line_start,
            len: end - start,
            error: None,
        }
    }

    /// Skip whitespace and comments. Returns an unterminated-comment token if a `/*`
    /// never closes.
    #[inline]
    fn skip_trivia(&mut self) -> Option<Token<'a>> {
        let b = self.bytes;
        loop {
            while self.pos < b.len() && CLASS[b[self.pos] as usize] == C_WS {
                if b[self.pos] == b'\n' {
                    self.line = self.line.saturating_add(1);
                    self.line_start = self.pos + 1;
                }
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return None;
            }
            match b[self.pos] {
                b'#' => {
                    while self.pos < b.len() && b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'/' if b.get(self.pos + 1) == Some(&b'*') => {
                    let start = self.pos;
                    let (line, line_start) = (self.line, self.line_start);
                    self.pos += 2;
                    loop {
                        if self.pos + 1 >= b.len() {
                            // Unterminated: report at the opening `/*`.
                            self.pos = b.len();
                            return Some(Token {
                                kind: Tok::Eof,
                                text: "",
                                line,
                                col: col_of(start, line_start),
                                line_start,
                                len: 2,
                                error: Some(LexError::UnterminatedComment),
                            });
                        }
                        match b[self.pos] {
                            b'*' if b[self.pos + 1] == b'/' => {
                                self.pos += 2;
                                break;
                            }
                            b'\n' => {
                                self.line = self.line.saturating_add(1);
                                self.line_start = self.pos + 1;
                            }
                            _ => {}
                        }
                        self.pos += 1;
                    }
                }
                _ => return None,
            }
        }
    }

    /// The next token. After the end it keeps returning `Eof`.
    #[inline]
    pub(crate) fn next_token(&mut self) -> Token<'a> {
        if let Some(err) = self.skip_trivia() {
            return err;
        }
        let b = self.bytes;
        let start = self.pos;
        if start >= b.len() {
            return self.tok(Tok::Eof, start, start, "");
        }
        let single = |k| Some(k);
        let kind = match b[start] {
            b'=' => single(Tok::Eq),
            b'{' => single(Tok::LBrace),
            b'}' => single(Tok::RBrace),
            b'(' => single(Tok::LParen),
            b')' => single(Tok::RParen),
            b'[' => single(Tok::LBracket),
            b']' => single(Tok::RBracket),
            _ => None,
        };
        if let Some(kind) = kind {
            self.pos += 1;
            return self.tok(kind, start, start + 1, &self.src[start..start + 1]);
        }
        match b[start] {
            b'"' => self.string(start, b'"', Tok::DString),
            b'\'' => self.string(start, b'\'', Tok::SString),
            _ => {
                let mut i = start;
                while i < b.len() {
                    let c = b[i];
                    if CLASS[c as usize] != 0 || (c == b'/' && b.get(i + 1) == Some(&b'*')) {
                        break;
                    }
                    i += 1;
                }
                self.pos = i;
                // Word boundaries are ASCII bytes, so the slice is on char boundaries.
                self.tok(Tok::Word, start, i, self.src.get(start..i).unwrap_or(""))
            }
        }
    }

    fn string(&mut self, start: usize, quote: u8, kind: Tok) -> Token<'a> {
        let b = self.bytes;
        let mut i = start + 1;
        let mut error = None;
        let end_content;
        loop {
            if i >= b.len() || b[i] == b'\n' {
                error = Some(LexError::UnterminatedString);
                end_content = i;
                break;
            }
            let c = b[i];
            if c == quote {
                end_content = i;
                i += 1;
                break;
            }
            if c == b'\\' && quote == b'"' && i + 1 < b.len() && b[i + 1] != b'\n' {
                i += 2;
                continue;
            }
            i += 1;
        }
        // Strip a trailing '\r' from an unterminated string's content.
        let mut content_end = end_content;
        if error.is_some() && content_end > start + 1 && b[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        self.pos = i;
        let text = self.src.get(start + 1..content_end).unwrap_or("");
        let mut t = self.tok(kind, start, i, text);
        t.error = error;
        t
    }
}

#[inline]
fn col_of(start: usize, line_start: usize) -> u32 {
    u32::try_from(start - line_start + 1).unwrap_or(u32::MAX)
}

/// Decode the escapes of a double-quoted string's raw content.
pub(crate) fn unescape(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Write `s` as a double-quoted string that lexes back to exactly `s`.
pub(crate) fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, String)> {
        let mut l = Lexer::new(src);
        let mut v = Vec::new();
        loop {
            let t = l.next_token();
            if t.kind == Tok::Eof {
                break;
            }
            v.push((t.kind, t.text.to_string()));
        }
        v
    }

    #[test]
    fn words_and_punctuation() {
        let v = kinds("a = /var/log/x # c\n b { 10.0.0.0/16 *:4802 } ( x ) [ k = v ]");
        let texts: Vec<&str> = v.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "a",
                "=",
                "/var/log/x",
                "b",
                "{",
                "10.0.0.0/16",
                "*:4802",
                "}",
                "(",
                "x",
                ")",
                "[",
                "k",
                "=",
                "v",
                "]"
            ]
        );
    }

    #[test]
    fn block_comment_ends_word() {
        let v = kinds("abc/* x */def");
        assert_eq!(v, [(Tok::Word, "abc".into()), (Tok::Word, "def".into())]);
    }

    #[test]
    fn strings_and_escapes() {
        let v = kinds(r#""a \"b\" \\ c" 'it\s'"#);
        assert_eq!(v[0], (Tok::DString, r#"a \"b\" \\ c"#.into()));
        assert_eq!(unescape(&v[0].1), r#"a "b" \ c"#);
        assert_eq!(v[1], (Tok::SString, r"it\s".into()));
        assert_eq!(unescape(r"a\nb\tc\q"), "a\nb\tc\\q");
    }

    #[test]
    fn unterminated_string_is_located_at_quote() {
        let mut l = Lexer::new("x = \"abc\ny");
        l.next_token();
        l.next_token();
        let t = l.next_token();
        assert_eq!(t.error, Some(LexError::UnterminatedString));
        assert_eq!((t.line, t.col, t.text), (1, 5, "abc"));
        let t = l.next_token();
        assert_eq!((t.kind, t.line, t.text), (Tok::Word, 2, "y"));
    }

    #[test]
    fn unterminated_comment() {
        let mut l = Lexer::new("a\n /* never");
        l.next_token();
        let t = l.next_token();
        assert_eq!(t.error, Some(LexError::UnterminatedComment));
        assert_eq!((t.kind, t.line, t.col), (Tok::Eof, 2, 2));
        assert_eq!(l.next_token().kind, Tok::Eof);
    }

    #[test]
    fn bare_word_check() {
        assert!(is_bare_word("/var/log/x"));
        assert!(!is_bare_word("a b"));
        assert!(!is_bare_word("a/*b"));
        assert!(!is_bare_word(""));
        let mut s = String::new();
        quote("a\"\\\n\t", &mut s);
        assert_eq!(unescape(&s[1..s.len() - 1]), "a\"\\\n\t");
    }
}
