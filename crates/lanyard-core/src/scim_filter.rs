//! SCIM 2.0 filter expressions: the `filter` query parameter of a SCIM search
//! (`GET /Users?filter=userName eq "bjensen"`), parsed into a [`Filter`] tree. The grammar
//! is RFC 7644 §3.4.2.2 (Figure 1 and the ABNF there).
//!
//! What [`parse`] accepts:
//! - `attrPath op value`, where `op` is `eq`, `ne`, `co`, `sw`, `ew`, `gt`, `ge`, `lt` or
//!   `le`, and `attrPath pr` (present; takes no value).
//! - `a and b`, `a or b`, `not (a)` and `(a)`. `not` binds tightest, then `and`, then
//!   `or`; `and` and `or` group from the left. `not` needs its parentheses.
//! - Value paths, `emails[type eq "work" and value co "@example.com"]`. They do not nest,
//!   and `emails[type eq "work"].value` is not accepted.
//! - Attribute paths `name` and `name.sub`, with an optional schema URI in front
//!   (`urn:ietf:params:scim:schemas:core:2.0:User:userName`). A name starts with a letter
//!   and holds letters, digits, `-` and `_`; `$ref` is also allowed.
//! - Values as in JSON: strings in double quotes (with JSON escapes), numbers, `true`,
//!   `false` and `null`. Numbers stay the text as written ([`Value::Num`]).
//!
//! Operators and the words `and`, `or`, `not`, `pr`, `true`, `false` and `null` are case
//! insensitive. Attribute names are kept as written; compare them with [`AttrPath::is`],
//! which ignores case (RFC 7644 §3.4.2.2: "Attribute names and attribute operators used in
//! filters are case insensitive").
//!
//! Tokens are separated by spaces (tabs and line breaks count too, and extra ones are
//! fine). A filter is at most 4096 bytes and 32 levels deep (each `(`, `not (` and `[` is a
//! level). Errors say what was expected and where; offsets count characters (not bytes)
//! from 0.
//!
//! This checks syntax only. Whether an attribute exists, and whether an operator suits its
//! type (RFC 7644 §3.4.2.2 refuses `gt` on booleans, for example), is the evaluator's job.

use std::fmt;

/// A filter value naming an instant (`meta.lastModified gt "2026-12-01T00:00:00Z"`): RFC
/// 3339, as milliseconds since the epoch.
pub fn parse_instant(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The longest filter accepted, in bytes.
const MAX_LEN: usize = 4096;
/// How deep `(`, `not (` and `[` may nest.
const MAX_DEPTH: usize = 32;

/// The core User schema; as a prefix it means the same as no prefix.
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema; as a prefix it means the same as no prefix.
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The operators, as written in a filter.
const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le or pr";
/// What a value may be, for error messages.
const VALUES: &str = "a string in double quotes, a number, true, false or null";

/// A parsed SCIM filter (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `path op value`, e.g. `userName eq "bjensen"`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The comparison.
        op: CompareOp,
        /// What the attribute is compared with.
        value: Value,
    },
    /// `path pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches `filter`, whose paths
    /// name its sub-attributes.
    ValuePath {
        /// The multi-valued attribute, e.g. `emails`.
        attr: AttrPath,
        /// The filter on each of its values, e.g. `type eq "work"`.
        filter: Box<Filter>,
    },
}

/// An attribute path: `[uri:]attr[.sub]`, names kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URI in front, without the `:` that ends it
    /// (`urn:ietf:params:scim:schemas:core:2.0:User`), if one was written.
    pub uri: Option<String>,
    /// The attribute, e.g. `emails`.
    pub attr: String,
    /// The sub-attribute after the `.`, e.g. `value` in `emails.value`.
    pub sub: Option<String>,
}

impl AttrPath {
    /// Whether this is the attribute `name` (`"userName"`, `"emails.value"`), ignoring
    /// case. The core User and Group schema URIs count as no URI; another URI must be in
    /// `name` too (`"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"`).
    pub fn is(&self, name: &str) -> bool {
        let (uri, rest) = match name.rsplit_once(':') {
            Some((uri, rest)) => (Some(uri), rest),
            None => (None, name),
        };
        if !same_schema(self.uri.as_deref(), uri) {
            return false;
        }
        let (attr, sub) = match rest.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (rest, None),
        };
        self.attr.eq_ignore_ascii_case(attr)
            && match (self.sub.as_deref(), sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    /// The path as written: `uri:attr.sub`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A schema URI with the core User and Group ones taken as none.
fn effective_schema(uri: Option<&str>) -> Option<&str> {
    match uri {
        Some(u) if u.eq_ignore_ascii_case(CORE_USER) || u.eq_ignore_ascii_case(CORE_GROUP) => None,
        other => other,
    }
}

/// Whether two schema URIs name the same schema (see [`effective_schema`]).
fn same_schema(a: Option<&str>, b: Option<&str>) -> bool {
    match (effective_schema(a), effective_schema(b)) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Every operator with its name.
    const ALL: [(&'static str, CompareOp); 9] = [
        ("eq", CompareOp::Eq),
        ("ne", CompareOp::Ne),
        ("co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("ge", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ];

    /// The operator's name in lower case (`"eq"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    /// The operator named `word`, in any case.
    fn from_word(word: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|(_, op)| *op)
    }
}

/// A value compared with (`compValue` in RFC 7644: JSON's `false`, `null`, `true`, number
/// and string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string, its JSON escapes decoded.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A number: its text exactly as written, checked against JSON's number grammar
    /// (`-12`, `3.5`, `1e3`). Kept as text so no precision is lost; `str::parse::<f64>()`
    /// (or `::<i64>()`) reads it.
    Num(String),
    /// `null`.
    Null,
}

/// Why a filter was refused: what was expected, and at which offset (characters from 0).
/// Fit for a SCIM `invalidFilter` error's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What is wrong, and where.
    pub message: String,
}

impl FilterError {
    /// An error saying `message`.
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Parses a SCIM filter (see the module docs for what is accepted).
///
/// # Errors
/// A [`FilterError`] if `input` is not a filter, or is too long or too deep; its message
/// says what was expected and at which offset.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_LEN {
        return Err(FilterError::new(format!(
            "the filter is {} bytes long; at most {MAX_LEN} are allowed",
            input.len()
        )));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(FilterError::new(
            "the filter is empty; expected an expression such as userName eq \"bjensen\"",
        ));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: input.chars().count(),
    };
    let filter = parser.parse_or(0, false)?;
    match parser.peek() {
        None => Ok(filter),
        Some(Token {
            kind: Kind::RParen,
            at,
        }) => Err(FilterError::new(format!(
            "unexpected `)` at offset {at}: there is no `(` for it to close"
        ))),
        Some(Token {
            kind: Kind::RBracket,
            at,
        }) => Err(FilterError::new(format!(
            "unexpected `]` at offset {at}: there is no `[` for it to close"
        ))),
        Some(token) => Err(FilterError::new(format!(
            "expected `and`, `or` or the end of the filter at offset {}, found {}",
            token.at,
            describe(Some(token))
        ))),
    }
}

// ---- Tokens ----

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// A string in double quotes, decoded.
    Str(String),
    /// Anything else up to a space, bracket, parenthesis or quote: an attribute path, an
    /// operator, a keyword, a number. The parser decides which from where it stands.
    Word(String),
}

/// A token and the offset (in characters) where it starts.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    at: usize,
}

/// Whether `c` ends a word.
fn ends_word(c: char) -> bool {
    c.is_ascii_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// Splits `input` into tokens.
fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let kind = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '[' => Kind::LBracket,
            ']' => Kind::RBracket,
            '"' => {
                let (text, next) = lex_string(&chars, i)?;
                tokens.push(Token {
                    kind: Kind::Str(text),
                    at: i,
                });
                i = next;
                continue;
            }
            _ => {
                let at = i;
                let mut word = String::new();
                while let Some(&c) = chars.get(i)
                    && !ends_word(c)
                {
                    word.push(c);
                    i += 1;
                }
                tokens.push(Token {
                    kind: Kind::Word(word),
                    at,
                });
                continue;
            }
        };
        tokens.push(Token { kind, at: i });
        i += 1;
    }
    Ok(tokens)
}

/// Reads the JSON string whose opening quote is at `start`; returns its decoded text and
/// the offset after its closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), FilterError> {
    let unterminated = || {
        FilterError::new(format!(
            "unterminated string starting at offset {start}: expected a closing `\"`"
        ))
    };
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(unterminated());
        };
        match c {
            '"' => return Ok((text, i + 1)),
            '\\' => {
                let Some(&escape) = chars.get(i + 1) else {
                    return Err(unterminated());
                };
                let decoded = match escape {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let (decoded, next) = lex_unicode_escape(chars, i)?;
                        text.push(decoded);
                        i = next;
                        continue;
                    }
                    other => {
                        return Err(FilterError::new(format!(
                            "invalid escape `\\{other}` at offset {i} in a string; JSON allows \
                             \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX"
                        )));
                    }
                };
                text.push(decoded);
                i += 2;
            }
            c if u32::from(c) < 0x20 => {
                return Err(FilterError::new(format!(
                    "control character U+{:04X} at offset {i} in a string; write it as a \
                     JSON escape",
                    u32::from(c)
                )));
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// Reads the `\uXXXX` escape at `at` (and the low surrogate after it, if it is a high
/// one); returns the character and the offset after the escape(s).
fn lex_unicode_escape(chars: &[char], at: usize) -> Result<(char, usize), FilterError> {
    let bad_hex = |at: usize| {
        FilterError::new(format!(
            "invalid `\\u` escape at offset {at} in a string: expected four hex digits"
        ))
    };
    let unpaired = |at: usize, unit: u32| {
        FilterError::new(format!(
            "invalid `\\u{unit:04X}` escape at offset {at} in a string: a UTF-16 surrogate \
             must come as a high-low pair"
        ))
    };
    let high = hex4(chars, at + 2).ok_or_else(|| bad_hex(at))?;
    let next = at + 6;
    match high {
        0xD800..=0xDBFF => {
            let low_at = next;
            if chars.get(low_at) == Some(&'\\') && chars.get(low_at + 1) == Some(&'u') {
                let low = hex4(chars, low_at + 2).ok_or_else(|| bad_hex(low_at))?;
                if (0xDC00..=0xDFFF).contains(&low) {
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    let c = char::from_u32(code).ok_or_else(|| unpaired(at, high))?;
                    return Ok((c, low_at + 6));
                }
            }
            Err(unpaired(at, high))
        }
        0xDC00..=0xDFFF => Err(unpaired(at, high)),
        _ => {
            let c = char::from_u32(high).ok_or_else(|| bad_hex(at))?;
            Ok((c, next))
        }
    }
}

/// The four hex digits from `at` as a number.
fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let mut n = 0;
    for k in 0..4 {
        let digit = chars.get(at + k)?.to_digit(16)?;
        n = n * 16 + digit;
    }
    Some(n)
}

/// Whether `s` is a number by JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => i = digits_from(i),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = digits_from(start);
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        i = digits_from(start);
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Whether `name` is an ATTRNAME (a letter, then letters, digits, `-` and `_`) or `$ref`.
fn is_attr_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }
        Some('$') => name.eq_ignore_ascii_case("$ref"),
        _ => false,
    }
}

/// Whether `uri` looks like an absolute URI: a scheme (a letter, then letters, digits, `+`,
/// `-`, `.`), a `:`, and only printable ASCII that URIs may hold.
fn is_schema_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && rest.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
        })
}

/// Reads the word at `at` as an attribute path.
fn attr_path(word: &str, at: usize) -> Result<AttrPath, FilterError> {
    let (uri, rest) = match word.rsplit_once(':') {
        Some((uri, rest)) => (Some(uri), rest),
        None => (None, word),
    };
    if let Some(uri) = uri
        && !is_schema_uri(uri)
    {
        return Err(FilterError::new(format!(
            "invalid schema URI in attribute {} at offset {at}: expected `uri:name`, such as \
             urn:ietf:params:scim:schemas:core:2.0:User:userName",
            quote(word)
        )));
    }
    let (attr, sub) = match rest.split_once('.') {
        Some((attr, sub)) => (attr, Some(sub)),
        None => (rest, None),
    };
    if sub.is_some_and(|s| s.contains('.')) {
        return Err(FilterError::new(format!(
            "invalid attribute {} at offset {at}: at most one sub-attribute is allowed \
             (`name.sub`)",
            quote(word)
        )));
    }
    if !is_attr_name(attr) || sub.is_some_and(|s| !is_attr_name(s)) {
        return Err(FilterError::new(format!(
            "expected an attribute name at offset {at}, found {}; a name starts with a \
             letter and holds letters, digits, `-` and `_`",
            quote(word)
        )));
    }
    Ok(AttrPath {
        uri: uri.map(str::to_owned),
        attr: attr.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

/// `word` in backquotes, cut short if long.
fn quote(word: &str) -> String {
    const MAX: usize = 40;
    if word.chars().count() > MAX {
        let cut: String = word.chars().take(MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{word}`")
    }
}

/// A token (or the end) as error messages name it.
fn describe(token: Option<&Token>) -> String {
    match token.map(|t| &t.kind) {
        None => "the end of the filter".to_owned(),
        Some(Kind::LParen) => "`(`".to_owned(),
        Some(Kind::RParen) => "`)`".to_owned(),
        Some(Kind::LBracket) => "`[`".to_owned(),
        Some(Kind::RBracket) => "`]`".to_owned(),
        Some(Kind::Str(_)) => "a string".to_owned(),
        Some(Kind::Word(w)) => quote(w),
    }
}

// ---- Parser ----

/// A recursive-descent parser over the tokens. Recursion happens only where nesting does
/// (`(`, `not (`, `[`), so [`MAX_DEPTH`] bounds the stack.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// The input's length in characters: the offset of "the end".
    end: usize,
}

impl Parser {
    /// The next token, if any.
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// The token `n` after the next one.
    fn peek_after(&self, n: usize) -> Option<&Token> {
        self.tokens.get(self.pos + n)
    }

    /// Where `token` starts, or the end.
    fn offset_of(&self, token: Option<&Token>) -> usize {
        token.map_or(self.end, |t| t.at)
    }

    /// Takes the next token if it is the word `keyword` (in any case).
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = matches!(
            self.peek(),
            Some(Token { kind: Kind::Word(w), .. }) if w.eq_ignore_ascii_case(keyword)
        );
        if found {
            self.pos += 1;
        }
        found
    }

    /// `or` level: `and_expr ("or" and_expr)*`.
    fn parse_or(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_and(depth, in_value_path)?;
        while self.eat_keyword("or") {
            let right = self.parse_and(depth, in_value_path)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `and` level: `unary ("and" unary)*`.
    fn parse_and(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary(depth, in_value_path)?;
        while self.eat_keyword("and") {
            let right = self.parse_unary(depth, in_value_path)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `(filter)`, `not (filter)`, or an attribute expression.
    fn parse_unary(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, FilterError> {
        let Some(token) = self.peek().cloned() else {
            return Err(FilterError::new(format!(
                "expected an attribute, `(` or `not (` at offset {}, found the end of the filter",
                self.end
            )));
        };
        match token.kind {
            Kind::LParen => {
                self.pos += 1;
                self.parse_group(depth, in_value_path, token.at)
            }
            Kind::Word(word) if word.eq_ignore_ascii_case("not") => {
                let next = self.peek_after(1);
                if matches!(
                    next,
                    Some(Token {
                        kind: Kind::LParen,
                        ..
                    })
                ) {
                    let open = self.offset_of(next);
                    self.pos += 2;
                    let inner = self.parse_group(depth, in_value_path, open)?;
                    return Ok(Filter::Not(Box::new(inner)));
                }
                // An attribute that happens to be called "not".
                if starts_attr_expr(next) {
                    return self.parse_attr_expr(&word, token.at, depth, in_value_path);
                }
                Err(FilterError::new(format!(
                    "expected `(` after `not` at offset {}, found {}; write `not (...)`",
                    self.offset_of(next),
                    describe(next)
                )))
            }
            Kind::Word(word) => self.parse_attr_expr(&word, token.at, depth, in_value_path),
            _ => Err(FilterError::new(format!(
                "expected an attribute, `(` or `not (` at offset {}, found {}",
                token.at,
                describe(Some(&token))
            ))),
        }
    }

    /// The rest of `( filter )` after the `(` at `open`.
    fn parse_group(
        &mut self,
        depth: usize,
        in_value_path: bool,
        open: usize,
    ) -> Result<Filter, FilterError> {
        let depth = deeper(depth, open)?;
        let inner = self.parse_or(depth, in_value_path)?;
        let next = self.peek();
        if matches!(
            next,
            Some(Token {
                kind: Kind::RParen,
                ..
            })
        ) {
            self.pos += 1;
            return Ok(inner);
        }
        Err(FilterError::new(format!(
            "expected `)` to close the `(` at offset {open}, found {} at offset {}",
            describe(next),
            self.offset_of(next)
        )))
    }

    /// `path pr`, `path op value` or `path[filter]`, where `word` (at `at`) is the path.
    fn parse_attr_expr(
        &mut self,
        word: &str,
        at: usize,
        depth: usize,
        in_value_path: bool,
    ) -> Result<Filter, FilterError> {
        let next = self.peek_after(1).cloned();
        let next_at = self.offset_of(next.as_ref());
        match next.map(|t| t.kind) {
            Some(Kind::LBracket) => {
                if in_value_path {
                    return Err(FilterError::new(format!(
                        "unexpected `[` at offset {next_at}: value paths cannot be nested"
                    )));
                }
                let attr = attr_path(word, at)?;
                self.pos += 2;
                let depth = deeper(depth, next_at)?;
                let filter = self.parse_or(depth, true)?;
                let close = self.peek();
                if !matches!(
                    close,
                    Some(Token {
                        kind: Kind::RBracket,
                        ..
                    })
                ) {
                    return Err(FilterError::new(format!(
                        "expected `]` to close the `[` at offset {next_at}, found {} at offset {}",
                        describe(close),
                        self.offset_of(close)
                    )));
                }
                self.pos += 1;
                if let Some(Token {
                    kind: Kind::Word(after),
                    at: after_at,
                }) = self.peek()
                    && after.starts_with('.')
                {
                    return Err(FilterError::new(format!(
                        "unexpected {} at offset {after_at}: a sub-attribute after a value \
                         path (`attr[filter].sub`) is not supported",
                        quote(after)
                    )));
                }
                Ok(Filter::ValuePath {
                    attr,
                    filter: Box::new(filter),
                })
            }
            Some(Kind::Word(op)) if op.eq_ignore_ascii_case("pr") => {
                let path = attr_path(word, at)?;
                self.pos += 2;
                let after = self.peek();
                let takes_value = match after.map(|t| &t.kind) {
                    Some(Kind::Str(_)) => true,
                    Some(Kind::Word(w)) => {
                        !(w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or"))
                    }
                    _ => false,
                };
                if takes_value {
                    return Err(FilterError::new(format!(
                        "`pr` at offset {next_at} takes no value, found {} at offset {}",
                        describe(after),
                        self.offset_of(after)
                    )));
                }
                Ok(Filter::Present(path))
            }
            Some(Kind::Word(op)) => {
                let Some(compare) = CompareOp::from_word(&op) else {
                    if is_keyword(word) {
                        // "a pr and and b pr": the second `and` is not an attribute.
                        return Err(FilterError::new(format!(
                            "expected an attribute, `(` or `not (` at offset {at}, found {}",
                            quote(word)
                        )));
                    }
                    let path = attr_path(word, at)?;
                    return Err(FilterError::new(format!(
                        "unknown operator {} at offset {next_at} after {}; expected one of \
                         {OPERATORS}",
                        quote(&op),
                        quote(&path.to_string())
                    )));
                };
                let path = attr_path(word, at)?;
                self.pos += 2;
                let value = self.parse_value(&op, next_at)?;
                Ok(Filter::Compare {
                    path,
                    op: compare,
                    value,
                })
            }
            other => {
                if is_keyword(word) {
                    return Err(FilterError::new(format!(
                        "expected an attribute, `(` or `not (` at offset {at}, found {}",
                        quote(word)
                    )));
                }
                let path = attr_path(word, at)?;
                let found = match other {
                    None => "the end of the filter".to_owned(),
                    Some(kind) => describe(Some(&Token { kind, at: next_at })),
                };
                Err(FilterError::new(format!(
                    "expected an operator ({OPERATORS}) after {} at offset {next_at}, found \
                     {found}",
                    quote(&path.to_string())
                )))
            }
        }
    }

    /// The value after the operator `op` (at `op_at`).
    fn parse_value(&mut self, op: &str, op_at: usize) -> Result<Value, FilterError> {
        let token = self.peek().cloned();
        let at = self.offset_of(token.as_ref());
        let value = match token.as_ref().map(|t| &t.kind) {
            Some(Kind::Str(s)) => Value::Str(s.clone()),
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Kind::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            Some(Kind::Word(w)) if is_json_number(w) => Value::Num(w.clone()),
            Some(Kind::Word(w)) if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                return Err(FilterError::new(format!(
                    "invalid number {} at offset {at}; expected a JSON number such as 42, \
                     -1.5 or 1e3",
                    quote(w)
                )));
            }
            Some(Kind::Word(w)) => {
                return Err(FilterError::new(format!(
                    "expected a value ({VALUES}) after `{}` at offset {at}, found {}; strings \
                     must be in double quotes",
                    op.to_ascii_lowercase(),
                    quote(w)
                )));
            }
            _ => {
                return Err(FilterError::new(format!(
                    "expected a value ({VALUES}) after `{}` at offset {op_at}, found {} at \
                     offset {at}",
                    op.to_ascii_lowercase(),
                    describe(token.as_ref())
                )));
            }
        };
        self.pos += 1;
        Ok(value)
    }
}

/// Whether `token` can follow an attribute path: an operator, `pr`, or `[`.
fn starts_attr_expr(token: Option<&Token>) -> bool {
    match token.map(|t| &t.kind) {
        Some(Kind::LBracket) => true,
        Some(Kind::Word(w)) => w.eq_ignore_ascii_case("pr") || CompareOp::from_word(w).is_some(),
        _ => false,
    }
}

/// Whether `word` is `and`, `or` or `not`.
fn is_keyword(word: &str) -> bool {
    ["and", "or", "not"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// One level deeper than `depth`, for a group opened at `open`; an error past
/// [`MAX_DEPTH`].
fn deeper(depth: usize, open: usize) -> Result<usize, FilterError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(FilterError::new(format!(
            "the filter nests more than {MAX_DEPTH} levels deep at offset {open}"
        )));
    }
    Ok(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(attr: &str) -> AttrPath {
        let (attr, sub) = match attr.split_once('.') {
            Some((a, s)) => (a, Some(s.to_owned())),
            None => (attr, None),
        };
        AttrPath {
            uri: None,
            attr: attr.to_owned(),
            sub,
        }
    }

    fn cmp(attr: &str, op: CompareOp, value: Value) -> Filter {
        Filter::Compare {
            path: path(attr),
            op,
            value,
        }
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    fn num(v: &str) -> Value {
        Value::Num(v.to_owned())
    }

    fn pr(attr: &str) -> Filter {
        Filter::Present(path(attr))
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn vp(attr: &str, filter: Filter) -> Filter {
        Filter::ValuePath {
            attr: path(attr),
            filter: Box::new(filter),
        }
    }

    fn ok(input: &str) -> Filter {
        match parse(input) {
            Ok(f) => f,
            Err(e) => panic!("{input:?} failed: {e}"),
        }
    }

    /// The error message for `input`, which must fail.
    fn err(input: &str) -> String {
        match parse(input) {
            Ok(f) => panic!("{input:?} parsed as {f:?}"),
            Err(e) => e.message,
        }
    }

    #[track_caller]
    fn assert_err(input: &str, needles: &[&str]) {
        let message = err(input);
        for needle in needles {
            assert!(
                message.contains(needle),
                "{input:?}: {message:?} should mention {needle:?}"
            );
        }
    }

    #[test]
    fn every_comparison_operator() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(
                ok(&format!("userName {word} \"x\"")),
                cmp("userName", op, s("x"))
            );
            assert_eq!(op.as_str(), word);
        }
    }

    #[test]
    fn present() {
        assert_eq!(ok("title pr"), pr("title"));
        assert_eq!(ok("name.familyName PR"), pr("name.familyName"));
    }

    #[test]
    fn value_kinds() {
        assert_eq!(
            ok("active eq true"),
            cmp("active", CompareOp::Eq, Value::Bool(true))
        );
        assert_eq!(
            ok("active eq FALSE"),
            cmp("active", CompareOp::Eq, Value::Bool(false))
        );
        assert_eq!(
            ok("manager eq null"),
            cmp("manager", CompareOp::Eq, Value::Null)
        );
        for n in ["0", "42", "-7", "3.25", "-0.5", "1e3", "1E-3", "2.5e+10"] {
            assert_eq!(
                ok(&format!("count gt {n}")),
                cmp("count", CompareOp::Gt, num(n))
            );
        }
        assert_eq!(ok("s eq \"\""), cmp("s", CompareOp::Eq, s("")));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(
            ok("a eq 1 or b eq 2 and c eq 3"),
            or(
                cmp("a", CompareOp::Eq, num("1")),
                and(
                    cmp("b", CompareOp::Eq, num("2")),
                    cmp("c", CompareOp::Eq, num("3"))
                )
            )
        );
        assert_eq!(
            ok("a eq 1 and b eq 2 or c eq 3"),
            or(
                and(
                    cmp("a", CompareOp::Eq, num("1")),
                    cmp("b", CompareOp::Eq, num("2"))
                ),
                cmp("c", CompareOp::Eq, num("3"))
            )
        );
    }

    #[test]
    fn and_or_group_from_the_left() {
        assert_eq!(
            ok("a pr and b pr and c pr"),
            and(and(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(
            ok("a pr or b pr or c pr"),
            or(or(pr("a"), pr("b")), pr("c"))
        );
    }

    #[test]
    fn not_binds_tightest() {
        assert_eq!(ok("not (a pr) and b pr"), and(not(pr("a")), pr("b")));
        assert_eq!(ok("a pr or not (b pr)"), or(pr("a"), not(pr("b"))));
        assert_eq!(ok("NOT(a pr)"), not(pr("a")));
        assert_eq!(ok("not (not (a pr))"), not(not(pr("a"))));
    }

    #[test]
    fn parentheses_group() {
        assert_eq!(
            ok("(a pr or b pr) and c pr"),
            and(or(pr("a"), pr("b")), pr("c"))
        );
        assert_eq!(ok("((a pr))"), pr("a"));
        assert_eq!(
            ok("a eq \"x\"and(b pr)"),
            and(cmp("a", CompareOp::Eq, s("x")), pr("b"))
        );
    }

    #[test]
    fn value_paths() {
        assert_eq!(
            ok("emails[type eq \"work\" and value co \"@example.com\"]"),
            vp(
                "emails",
                and(
                    cmp("type", CompareOp::Eq, s("work")),
                    cmp("value", CompareOp::Co, s("@example.com"))
                )
            )
        );
        assert_eq!(
            ok("emails[not (type eq \"home\")] and active eq true"),
            and(
                vp("emails", not(cmp("type", CompareOp::Eq, s("home")))),
                cmp("active", CompareOp::Eq, Value::Bool(true))
            )
        );
        assert_eq!(ok("emails[ (value pr) ]"), vp("emails", pr("value")));
    }

    #[test]
    fn rfc_7644_examples() {
        let eq = CompareOp::Eq;
        let co = CompareOp::Co;
        let last = "meta.lastModified";
        let when = "2011-05-13T04:42:34Z";
        let core_user = AttrPath {
            uri: Some(CORE_USER.to_owned()),
            attr: "userName".to_owned(),
            sub: None,
        };
        let emails_co = || {
            or(
                cmp("emails", co, s("example.com")),
                cmp("emails.value", co, s("example.org")),
            )
        };
        let cases = [
            ("userName eq \"bjensen\"", cmp("userName", eq, s("bjensen"))),
            (
                "name.familyName co \"O'Malley\"",
                cmp("name.familyName", co, s("O'Malley")),
            ),
            ("userName sw \"J\"", cmp("userName", CompareOp::Sw, s("J"))),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
                Filter::Compare {
                    path: core_user,
                    op: CompareOp::Sw,
                    value: s("J"),
                },
            ),
            ("title pr", pr("title")),
            (
                "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                cmp(last, CompareOp::Gt, s(when)),
            ),
            (
                "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
                cmp(last, CompareOp::Ge, s(when)),
            ),
            (
                "meta.lastModified lt \"2011-05-13T04:42:34Z\"",
                cmp(last, CompareOp::Lt, s(when)),
            ),
            (
                "meta.lastModified le \"2011-05-13T04:42:34Z\"",
                cmp(last, CompareOp::Le, s(when)),
            ),
            (
                "title pr and userType eq \"Employee\"",
                and(pr("title"), cmp("userType", eq, s("Employee"))),
            ),
            (
                "title pr or userType eq \"Intern\"",
                or(pr("title"), cmp("userType", eq, s("Intern"))),
            ),
            (
                "schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
                cmp(
                    "schemas",
                    eq,
                    s("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
                ),
            ),
            (
                "userType eq \"Employee\" and (emails co \"example.com\" or\n  \
                 emails.value co \"example.org\")",
                and(cmp("userType", eq, s("Employee")), emails_co()),
            ),
            (
                "userType ne \"Employee\" and not (emails co \"example.com\" or\n  \
                 emails.value co \"example.org\")",
                and(
                    cmp("userType", CompareOp::Ne, s("Employee")),
                    not(emails_co()),
                ),
            ),
            (
                "userType eq \"Employee\" and (emails.type eq \"work\")",
                and(
                    cmp("userType", eq, s("Employee")),
                    cmp("emails.type", eq, s("work")),
                ),
            ),
            (
                "userType eq \"Employee\" and emails[type eq \"work\" and\n  \
                 value co \"@example.com\"]",
                and(
                    cmp("userType", eq, s("Employee")),
                    vp(
                        "emails",
                        and(
                            cmp("type", eq, s("work")),
                            cmp("value", co, s("@example.com")),
                        ),
                    ),
                ),
            ),
            (
                "emails[type eq \"work\" and value co \"@example.com\"] or\n  \
                 ims[type eq \"xmpp\" and value co \"@foo.com\"]",
                or(
                    vp(
                        "emails",
                        and(
                            cmp("type", eq, s("work")),
                            cmp("value", co, s("@example.com")),
                        ),
                    ),
                    vp(
                        "ims",
                        and(cmp("type", eq, s("xmpp")), cmp("value", co, s("@foo.com"))),
                    ),
                ),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(ok(input), expected, "{input}");
        }
    }

    #[test]
    fn operators_and_keywords_ignore_case() {
        assert_eq!(
            ok("userName EQ \"x\""),
            cmp("userName", CompareOp::Eq, s("x"))
        );
        assert_eq!(
            ok("userName Eq \"x\""),
            cmp("userName", CompareOp::Eq, s("x"))
        );
        assert_eq!(
            ok("a Pr AND b pR OR c PR"),
            or(and(pr("a"), pr("b")), pr("c"))
        );
        // Names are kept as written.
        assert_eq!(
            ok("USERNAME eq \"x\""),
            cmp("USERNAME", CompareOp::Eq, s("x"))
        );
    }

    #[test]
    fn uri_prefixed_attributes() {
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            ok(&format!("{enterprise}:manager.value eq \"26118915\"")),
            Filter::Compare {
                path: AttrPath {
                    uri: Some(enterprise.to_owned()),
                    attr: "manager".to_owned(),
                    sub: Some("value".to_owned()),
                },
                op: CompareOp::Eq,
                value: s("26118915"),
            }
        );
        assert_eq!(
            ok("urn:ietf:params:scim:schemas:core:2.0:Group:displayName pr"),
            Filter::Present(AttrPath {
                uri: Some(CORE_GROUP.to_owned()),
                attr: "displayName".to_owned(),
                sub: None,
            })
        );
    }

    #[test]
    fn attr_path_is() {
        let Filter::Present(p) = ok("Emails.Value pr") else {
            panic!("not a Present")
        };
        assert!(p.is("emails.value"));
        assert!(p.is("EMAILS.VALUE"));
        assert!(p.is("urn:ietf:params:scim:schemas:core:2.0:User:emails.value"));
        assert!(!p.is("emails"));
        assert!(!p.is("emails.type"));
        assert!(!p.is("emails.value.x"));
        assert!(!p.is("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:emails.value"));

        for input in [
            "urn:ietf:params:scim:schemas:core:2.0:User:userName pr",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:username pr",
            "urn:ietf:params:scim:schemas:core:2.0:Group:userName pr",
        ] {
            let Filter::Present(p) = ok(input) else {
                panic!("not a Present")
            };
            assert!(p.is("userName"), "{input}");
            assert!(!p.is("userName.x"), "{input}");
        }

        let Filter::Present(p) =
            ok("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr")
        else {
            panic!("not a Present")
        };
        assert!(!p.is("employeeNumber"));
        assert!(p.is("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeenumber"));
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
        );
    }

    #[test]
    fn string_escapes() {
        let cases = [
            (r#"a eq "say \"hi\"""#, "say \"hi\""),
            (r#"a eq "back\\slash""#, "back\\slash"),
            (
                r#"a eq "line\nbreak\ttab\r\/\b\f""#,
                "line\nbreak\ttab\r/\u{8}\u{c}",
            ),
            (r#"a eq "caf\u00e9""#, "café"),
            (r#"a eq "\u00E9\u4e2d""#, "é中"),
            (r#"a eq "\ud83d\ude00""#, "😀"),
            (r#"a eq "(not) [pr] and or""#, "(not) [pr] and or"),
            ("a eq \"ünïcödé 😀\"", "ünïcödé 😀"),
        ];
        for (input, expected) in cases {
            assert_eq!(ok(input), cmp("a", CompareOp::Eq, s(expected)), "{input}");
        }
    }

    #[test]
    fn lenient_about_spaces() {
        assert_eq!(
            ok("  userName   eq\t\"x\"   and  (  b  pr  )  "),
            and(cmp("userName", CompareOp::Eq, s("x")), pr("b"))
        );
        assert_eq!(ok("a eq\"x\""), cmp("a", CompareOp::Eq, s("x")));
    }

    #[test]
    fn attributes_named_like_keywords() {
        assert_eq!(ok("not eq \"x\""), cmp("not", CompareOp::Eq, s("x")));
        assert_eq!(ok("and pr or or pr"), or(pr("and"), pr("or")));
        assert_eq!(ok("members[$ref pr]"), vp("members", pr("$ref")));
        assert_eq!(ok("x-y_z9 pr"), pr("x-y_z9"));
    }

    #[test]
    fn error_unknown_operator() {
        assert_err(
            "userName is \"x\"",
            &["unknown operator `is`", "offset 9", "eq, ne"],
        );
        assert_err("userName == \"x\"", &["unknown operator `==`", "offset 9"]);
    }

    #[test]
    fn error_missing_operator() {
        assert_err(
            "userName",
            &["expected an operator", "offset 8", "end of the filter"],
        );
        assert_err(
            "userName \"x\"",
            &["expected an operator", "offset 9", "a string"],
        );
    }

    #[test]
    fn error_missing_value() {
        assert_err(
            "userName eq",
            &[
                "expected a value",
                "after `eq`",
                "offset 9",
                "end of the filter",
            ],
        );
        assert_err("userName eq )", &["expected a value", "found `)`"]);
        assert_err(
            "userName eq bjensen",
            &[
                "expected a value",
                "`bjensen`",
                "offset 12",
                "double quotes",
            ],
        );
        assert_err("count gt 01", &["invalid number `01`", "offset 9"]);
        assert_err("count gt 1.", &["invalid number `1.`"]);
        assert_err("count gt -", &["invalid number `-`"]);
        assert_err("count gt 1e", &["invalid number `1e`"]);
    }

    #[test]
    fn error_unterminated_string() {
        assert_err(
            "userName eq \"bjensen",
            &["unterminated string", "offset 12"],
        );
        assert_err(
            "userName eq \"ends in \\",
            &["unterminated string", "offset 12"],
        );
        assert_err("userName eq \"x\\\"", &["unterminated string"]);
    }

    #[test]
    fn error_bad_escapes() {
        assert_err(r#"a eq "\x""#, &["invalid escape `\\x`", "offset 6"]);
        assert_err(
            r#"a eq "\u12""#,
            &["invalid `\\u` escape", "four hex digits"],
        );
        assert_err(r#"a eq "\ud83d""#, &["surrogate", "offset 6"]);
        assert_err(r#"a eq "\ude00""#, &["surrogate"]);
        assert_err(r#"a eq "\ud83d\u0041""#, &["surrogate"]);
        assert_err(
            "a eq \"tab\there\"",
            &["control character U+0009", "offset 9"],
        );
    }

    #[test]
    fn error_trailing_garbage() {
        assert_err(
            "userName eq \"x\" foo",
            &[
                "expected `and`, `or` or the end of the filter",
                "offset 16",
                "`foo`",
            ],
        );
        assert_err("title pr (a pr)", &["expected `and`, `or`", "found `(`"]);
        assert_err(
            "emails[type eq \"work\"].value eq \"x\"",
            &["`.value`", "offset 22", "not supported"],
        );
    }

    #[test]
    fn error_unbalanced_parentheses() {
        assert_err(
            "(a pr",
            &[
                "expected `)` to close the `(` at offset 0",
                "end of the filter",
                "offset 5",
            ],
        );
        assert_err("((a pr)", &["expected `)` to close the `(` at offset 0"]);
        assert_err("a pr)", &["unexpected `)` at offset 4", "no `(`"]);
        assert_err("()", &["expected an attribute", "found `)`", "offset 1"]);
        assert_err(
            "emails[type pr",
            &["expected `]` to close the `[` at offset 6"],
        );
        assert_err("emails[type pr)", &["expected `]`", "found `)`"]);
        assert_err("a pr]", &["unexpected `]` at offset 4"]);
        assert_err("(emails[type pr)]", &["expected `]`", "found `)`"]);
    }

    #[test]
    fn error_pr_with_a_value() {
        assert_err(
            "title pr \"x\"",
            &["`pr` at offset 6 takes no value", "a string", "offset 9"],
        );
        assert_err("title pr true", &["takes no value", "`true`"]);
    }

    #[test]
    fn error_not_without_parentheses() {
        assert_err(
            "not a eq \"b\"",
            &["expected `(` after `not`", "offset 4", "`a`"],
        );
        assert_err("not", &["expected `(` after `not`", "end of the filter"]);
    }

    #[test]
    fn error_missing_operand() {
        assert_err(
            "a pr and",
            &["expected an attribute", "offset 8", "end of the filter"],
        );
        assert_err(
            "a pr or and b pr",
            &["expected an attribute", "found `and`", "offset 8"],
        );
        assert_err("and", &["expected an attribute", "found `and`"]);
        assert_err(
            "\"x\" eq \"x\"",
            &["expected an attribute", "found a string"],
        );
    }

    #[test]
    fn error_bad_attribute_names() {
        assert_err(
            "1abc eq 1",
            &["expected an attribute name", "`1abc`", "offset 0"],
        );
        assert_err("a.b.c pr", &["at most one sub-attribute"]);
        assert_err("emails. pr", &["expected an attribute name", "`emails.`"]);
        assert_err(":userName pr", &["invalid schema URI"]);
        assert_err("urn:ietf:x: pr", &["expected an attribute name"]);
        assert_err("emails.value:x pr", &["invalid schema URI"]);
        assert_err("emails[a[b pr]]", &["cannot be nested", "offset 8"]);
    }

    #[test]
    fn error_too_deep() {
        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ok(&nested(MAX_DEPTH)), pr("a"));
        assert_err(
            &nested(MAX_DEPTH + 1),
            &["more than 32 levels", "offset 32"],
        );
        let nots = |n: usize| format!("{}a pr{}", "not (".repeat(n), ")".repeat(n));
        assert!(parse(&nots(MAX_DEPTH)).is_ok());
        assert_err(&nots(MAX_DEPTH + 1), &["more than 32 levels"]);
        // Only opening parentheses, as many as fit.
        assert_err(&"(".repeat(MAX_LEN), &["more than 32 levels"]);
    }

    #[test]
    fn error_too_long() {
        let long = format!("a eq \"{}\"", "x".repeat(MAX_LEN));
        assert_err(&long, &["bytes long", "at most 4096"]);
        let fits = format!("a eq \"{}\"", "x".repeat(MAX_LEN - 7));
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn error_empty() {
        assert_err("", &["the filter is empty"]);
        assert_err("   \t ", &["the filter is empty"]);
    }

    #[test]
    fn offsets_count_characters() {
        // "é" is two bytes but one character.
        assert_err("a eq \"é\" zz", &["offset 9"]);
    }

    #[test]
    fn long_words_are_cut_in_messages() {
        let message = err(&format!("{} pr", "a.".repeat(200)));
        assert!(message.len() < 300, "{message}");
        assert!(message.contains('…'), "{message}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "a", "eq", "pr", "and", "or", "not", "(", ")", "[", "]", "\"", "\\", "\\u", "d83d",
            "1", "-", ".", ":", "é", " ", "true", "\"x\"", "$ref", "urn:x:",
        ];
        // Every string of up to three pieces.
        for a in pieces {
            let _ = parse(a);
            for b in pieces {
                let _ = parse(&format!("{a}{b}"));
                let _ = parse(&format!("{a} {b}"));
                for c in pieces {
                    let _ = parse(&format!("{a}{b}{c}"));
                    let _ = parse(&format!("{a} {b} {c}"));
                }
            }
        }
        // A long flat chain stays iterative.
        let chain = vec!["a pr"; 500].join(" or ");
        assert!(parse(&chain).is_ok());
    }
}
