//! The sieve language (IntelMQ 3.3's `sieve.tx` grammar): lexer, parser and the load-time checks
//! IntelMQ's textX object processors do (numeric comparisons only on numeric fields, IP literals
//! for IP fields, valid IP ranges, regular expressions and times). Produces the [`Program`] the
//! evaluator (`eval.rs`) runs; knows nothing about messages beyond the harmonization types.
//!
//! Grammar (whitespace and comments — `#` or `//` to the end of the line — between any tokens):
//!
//! ```text
//! program    := statement*
//! statement  := branching | action | '$'name '=' (key | literal)
//! branching  := 'if' expr block ('elif' expr block)* ('else' block)?
//! block      := '{' statement* '}'
//! expr       := conj ('||' conj)*
//! conj       := cond ('&&' cond)*
//! cond       := '!'? ('(' expr ')' | match)
//! match      := (':exists' | ':notexists') key
//!             | key ('==' | '!=' | ':contains' | ':notcontains' | '=~' | '!~') string
//!             | key (':in' | ':containsany' | ':regexin') '[' string, ... ']'
//!             | key ('==' | '!=' | '<' | '<=' | '>' | '>=') number
//!             | key ':in' '[' number, ... ']'
//!             | key '<<' (string | '[' string, ... ']')
//!             | key (':before' | ':after') string
//!             | key (':equals' | ':setequals' | ':overlaps' | ':subsetof' | ':supersetof') '[' literal, ... ']'
//!             | key ('==' | '!=') ('true' | 'false')
//! action     := 'drop' | 'keep' | 'path' (string | '[' string, ... ']')
//!             | ('add' | 'add!' | 'update') key ('=' | '+=' | '-=') operand
//!             | 'remove' key
//!             | ('append' | 'append!') key operand
//! operand    := literal | '$'name
//! literal    := float | int | 'true' | 'false' | string
//! key        := [a-z0-9_.]+
//! ```
//!
//! Extensions over IntelMQ (accepting more, never less of what IntelMQ accepts): `==`/`!=` with a
//! list (any element), `:notcontains`, empty lists everywhere, `+=`/`-=` with a number on numeric
//! fields, abbreviated relative time units (`10 h`, `2d`).

use std::fmt;

use chrono::{Duration, NaiveDateTime};
use regex::Regex;
use serde_json::{Number, Value};

use crate::message::types::{parse_network, IpAddr};
use crate::message::{datetime, Harmonization, MessageKind, TypeName};

/// A position in the sieve file (1-based line and column, in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A sieve file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sieve file {file}:{}:{}: {message}", pos.line, pos.col)]
pub struct SieveError {
    /// The file as given (or `<string>` for rules parsed from text).
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

/// A parsed sieve file.
#[derive(Debug, Default)]
pub struct Program {
    pub statements: Vec<Statement>,
}

#[derive(Debug)]
pub enum Statement {
    Branch(Branch),
    Action(Action, Pos),
    /// `$name = key` or `$name = literal`.
    Assign {
        name: String,
        source: Source,
        pos: Pos,
    },
}

/// What a variable takes its value from.
#[derive(Debug)]
pub enum Source {
    Key(String),
    Literal(Value),
}

/// `if … elif … else …`.
#[derive(Debug)]
pub struct Branch {
    /// The `if` clause and then each `elif`, in order.
    pub clauses: Vec<Clause>,
    pub otherwise: Option<Vec<Statement>>,
}

#[derive(Debug)]
pub struct Clause {
    pub expr: Expr,
    pub body: Vec<Statement>,
    pub pos: Pos,
}

/// A disjunction of conjunctions (`&&` binds tighter than `||`).
#[derive(Debug)]
pub struct Expr {
    pub any: Vec<Vec<Cond>>,
}

#[derive(Debug)]
pub struct Cond {
    pub negated: bool,
    pub test: Test,
}

#[derive(Debug)]
pub enum Test {
    Group(Expr),
    Exists { key: String, exists: bool },
    Str { key: String, op: StrOp, values: Vec<StrValue>, any: bool },
    Num { key: String, op: NumOp, values: Vec<Number> },
    IpRange { key: String, networks: Vec<(IpAddr, u32)> },
    Date { key: String, before: bool, when: TimeSpec },
    List { key: String, op: ListOp, values: Vec<Value> },
    Bool { key: String, equal: bool, value: bool },
}

/// A string operand of a string test, with its regular expression compiled when the test needs one.
#[derive(Debug)]
pub struct StrValue {
    pub text: String,
    pub regex: Option<Regex>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    Eq,
    Ne,
    Contains,
    NotContains,
    Regex,
    NotRegex,
    /// `:in`: equal to one of the list.
    In,
    ContainsAny,
    RegexIn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOp {
    Equals,
    SetEquals,
    Overlaps,
    SubsetOf,
    SupersetOf,
}

/// The right side of `:before`/`:after` and of time arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    /// Now minus this span.
    Relative(Duration),
    /// A point in time (UTC).
    Absolute(NaiveDateTime),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
}

#[derive(Debug)]
pub enum Operand {
    Literal(Value),
    Var(String),
}

#[derive(Debug)]
pub enum Action {
    Drop,
    Keep,
    Path(Vec<String>),
    /// `add` (`force` false: only when the key is missing) or `add!` (overwrites).
    Add {
        key: String,
        force: bool,
        op: AssignOp,
        value: Operand,
    },
    /// `update`: only when the key exists.
    Update {
        key: String,
        op: AssignOp,
        value: Operand,
    },
    Remove {
        key: String,
    },
    /// `append` (onto an existing list or a new one) or `append!` (turns a single value into a list).
    Append {
        key: String,
        force: bool,
        value: Operand,
    },
}

/// Parses a sieve text. `file` names the source in errors; `h` gives the field types for the
/// load-time checks.
pub fn parse(text: &str, file: &str, h: &Harmonization) -> Result<Program, SieveError> {
    let tokens = lex(text).map_err(|(pos, message)| SieveError { file: file.to_string(), pos, message })?;
    let mut parser = Parser { tokens, at: 0, h, end: end_pos(text) };
    parser.program().map_err(|(pos, message)| SieveError { file: file.to_string(), pos, message })
}

fn end_pos(text: &str) -> Pos {
    let mut pos = Pos { line: 1, col: 1 };
    for c in text.chars() {
        if c == '\n' {
            pos = Pos { line: pos.line + 1, col: 1 };
        } else {
            pos.col += 1;
        }
    }
    pos
}

type PResult<T> = Result<T, (Pos, String)>;

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A bare word: keyword, key, number or boolean (`add!`/`append!` included).
    Word(String),
    Str(String),
    /// `$name`.
    Var(String),
    /// `:exists`, `:in`, ...
    Colon(String),
    /// Operators and punctuation.
    Sym(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Var(v) => format!("variable `${v}`"),
            Tok::Colon(c) => format!("`{c}`"),
            Tok::Sym(s) => format!("`{s}`"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: Pos,
}

const SYMBOLS: [&str; 22] = [
    "==", "!=", "=~", "!~", "<<", "<=", ">=", "&&", "||", "+=", "-=", "<", ">", "!", "=", "{", "}", "(", ")", "[", "]",
    ",",
];

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn lex(text: &str) -> PResult<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let mut j = i + 1;
            let mut value = String::new();
            loop {
                match chars.get(j) {
                    None => return Err((pos, "unterminated string".to_string())),
                    Some('\\') if matches!(chars.get(j + 1), Some('\'') | Some('"')) => {
                        // textX unescapes only the quote characters; other backslashes stay
                        // (regular expressions keep their `\.`).
                        value.push(chars[j + 1]);
                        j += 2;
                    }
                    Some(&q) if q == c => break,
                    Some(&other) => {
                        value.push(other);
                        j += 1;
                    }
                }
            }
            let n = j + 1 - i;
            advance(&mut i, &mut line, &mut col, n);
            tokens.push(Token { tok: Tok::Str(value), pos });
            continue;
        }
        if c == '$' {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j == i + 1 {
                return Err((pos, "expected a variable name after `$`".to_string()));
            }
            let name: String = chars[i + 1..j].iter().collect();
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            tokens.push(Token { tok: Tok::Var(name), pos });
            continue;
        }
        if c == ':' {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == i + 1 {
                return Err((pos, "expected an operator name after `:`".to_string()));
            }
            let name: String = chars[i..j].iter().collect();
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            tokens.push(Token { tok: Tok::Colon(name), pos });
            continue;
        }
        let signed_number = (c == '-' || c == '+') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == '.');
        if is_word_char(c) || signed_number {
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    Some(&d) if is_word_char(d) => j += 1,
                    // An exponent sign inside a number: `1e-5`.
                    Some('-') | Some('+')
                        if matches!(chars.get(j - 1), Some('e') | Some('E'))
                            && chars[i..j - 1].iter().all(|d| d.is_ascii_digit() || matches!(d, '.' | '-' | '+'))
                            && chars.get(j + 1).is_some_and(char::is_ascii_digit) =>
                    {
                        j += 1
                    }
                    _ => break,
                }
            }
            let mut word: String = chars[i..j].iter().collect();
            // `add!` and `append!` are keywords; `!=` and `!~` after a word stay operators.
            if (word == "add" || word == "append")
                && chars.get(j) == Some(&'!')
                && !matches!(chars.get(j + 1), Some('=') | Some('~'))
            {
                word.push('!');
                j += 1;
            }
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            tokens.push(Token { tok: Tok::Word(word), pos });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match SYMBOLS.iter().find(|s| rest.starts_with(**s)) {
            Some(sym) => {
                advance(&mut i, &mut line, &mut col, sym.len());
                tokens.push(Token { tok: Tok::Sym(sym), pos });
            }
            None => return Err((pos, format!("unexpected character `{c}`"))),
        }
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    h: &'a Harmonization,
    end: Pos,
}

/// A literal as read, before the test it belongs to is known.
enum Lit {
    Str(String, Pos),
    Num(Number, Pos),
    Bool(bool, Pos),
}

impl Lit {
    fn pos(&self) -> Pos {
        match self {
            Lit::Str(_, p) | Lit::Num(_, p) | Lit::Bool(_, p) => *p,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Lit::Str(s, _) => Value::String(s),
            Lit::Num(n, _) => Value::Number(n),
            Lit::Bool(b, _) => Value::Bool(b),
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.tok)
    }

    fn pos(&self) -> Pos {
        self.tokens.get(self.at).map_or(self.end, |t| t.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        if t.is_some() {
            self.at += 1;
        }
        t
    }

    fn found(&self) -> String {
        self.peek().map_or_else(|| "end of file".to_string(), Tok::describe)
    }

    fn error<T>(&self, expected: &str) -> PResult<T> {
        Err((self.pos(), format!("expected {expected}, found {}", self.found())))
    }

    fn is_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == word)
    }

    fn expect_sym(&mut self, sym: &str) -> PResult<()> {
        if self.is_sym(sym) {
            self.at += 1;
            Ok(())
        } else {
            self.error(&format!("`{sym}`"))
        }
    }

    fn program(&mut self) -> PResult<Program> {
        let mut statements = Vec::new();
        while self.peek().is_some() {
            statements.push(self.statement()?);
        }
        Ok(Program { statements })
    }

    fn block(&mut self) -> PResult<Vec<Statement>> {
        self.expect_sym("{")?;
        let mut statements = Vec::new();
        while !self.is_sym("}") {
            if self.peek().is_none() {
                return self.error("`}`");
            }
            statements.push(self.statement()?);
        }
        self.at += 1;
        Ok(statements)
    }

    fn statement(&mut self) -> PResult<Statement> {
        let pos = self.pos();
        match self.peek() {
            Some(Tok::Word(w)) if w == "if" => {
                self.at += 1;
                let mut clauses = vec![self.clause(pos)?];
                while self.is_word("elif") {
                    let pos = self.pos();
                    self.at += 1;
                    clauses.push(self.clause(pos)?);
                }
                let otherwise = if self.is_word("else") {
                    self.at += 1;
                    Some(self.block()?)
                } else {
                    None
                };
                Ok(Statement::Branch(Branch { clauses, otherwise }))
            }
            Some(Tok::Word(w)) if w == "elif" || w == "else" => {
                Err((pos, format!("`{w}` without a preceding `if` block")))
            }
            Some(Tok::Var(name)) => {
                let name = name.clone();
                self.at += 1;
                self.expect_sym("=")?;
                let source = match self.peek() {
                    Some(Tok::Word(w)) if parse_number(w).is_none() && w != "true" && w != "false" => {
                        Source::Key(self.key()?)
                    }
                    _ => Source::Literal(self.literal("a key or a value")?.into_value()),
                };
                Ok(Statement::Assign { name, source, pos })
            }
            Some(Tok::Word(_)) => Ok(Statement::Action(self.action()?, pos)),
            _ => self.error("`if`, an action or a variable assignment"),
        }
    }

    fn clause(&mut self, pos: Pos) -> PResult<Clause> {
        let expr = self.expr()?;
        let body = self.block()?;
        Ok(Clause { expr, body, pos })
    }

    fn expr(&mut self) -> PResult<Expr> {
        let mut any = vec![self.conj()?];
        while self.is_sym("||") {
            self.at += 1;
            any.push(self.conj()?);
        }
        Ok(Expr { any })
    }

    fn conj(&mut self) -> PResult<Vec<Cond>> {
        let mut all = vec![self.cond()?];
        while self.is_sym("&&") {
            self.at += 1;
            all.push(self.cond()?);
        }
        Ok(all)
    }

    fn cond(&mut self) -> PResult<Cond> {
        let negated = self.is_sym("!");
        if negated {
            self.at += 1;
        }
        if self.is_sym("(") {
            self.at += 1;
            let inner = self.expr()?;
            self.expect_sym(")")?;
            return Ok(Cond { negated, test: Test::Group(inner) });
        }
        Ok(Cond { negated, test: self.test()? })
    }

    fn key(&mut self) -> PResult<String> {
        match self.peek() {
            Some(Tok::Word(w))
                if !w.is_empty()
                    && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.') =>
            {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => self.error("a key (lowercase letters, digits, `_` and `.`)"),
        }
    }

    fn literal(&mut self, expected: &str) -> PResult<Lit> {
        let pos = self.pos();
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.at += 1;
                Ok(Lit::Str(s, pos))
            }
            Some(Tok::Word(w)) => {
                let lit = match w.as_str() {
                    "true" | "True" => Lit::Bool(true, pos),
                    "false" | "False" => Lit::Bool(false, pos),
                    other => match parse_number(other) {
                        Some(n) => Lit::Num(n, pos),
                        None => return self.error(expected),
                    },
                };
                self.at += 1;
                Ok(lit)
            }
            _ => self.error(expected),
        }
    }

    /// `[a, b, ...]` (possibly empty).
    fn list(&mut self) -> PResult<Vec<Lit>> {
        self.expect_sym("[")?;
        let mut items = Vec::new();
        if self.is_sym("]") {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.literal("a value")?);
            if self.is_sym(",") {
                self.at += 1;
                continue;
            }
            self.expect_sym("]")?;
            return Ok(items);
        }
    }

    /// A single literal or a list of them.
    fn value_or_list(&mut self) -> PResult<(Vec<Lit>, bool)> {
        if self.is_sym("[") {
            Ok((self.list()?, true))
        } else {
            Ok((vec![self.literal("a value")?], false))
        }
    }

    fn field_type(&self, key: &str) -> Option<TypeName> {
        self.h.field(MessageKind::Event, key).map(|s| s.type_name)
    }

    fn test(&mut self) -> PResult<Test> {
        if let Some(Tok::Colon(op)) = self.peek() {
            let exists = match op.as_str() {
                ":exists" => true,
                ":notexists" => false,
                _ => return self.error("a key, `:exists` or `:notexists`"),
            };
            self.at += 1;
            let key = self.key()?;
            return Ok(Test::Exists { key, exists });
        }
        let key = self.key()?;
        let op_pos = self.pos();
        let op = match self.next().map(|t| t.tok) {
            Some(Tok::Sym(s)) => s.to_string(),
            Some(Tok::Colon(c)) => c,
            other => {
                self.at -= usize::from(other.is_some());
                return self.error("an operator");
            }
        };
        match op.as_str() {
            "<<" => {
                let (items, _) = self.value_or_list()?;
                let mut networks = Vec::new();
                for item in items {
                    let Lit::Str(text, pos) = item else {
                        return Err((item.pos(), "expected an IP range in quotes".to_string()));
                    };
                    match parse_network(text.trim(), false) {
                        Some(net) => networks.push(net),
                        None => return Err((pos, format!("invalid ip range: {text}"))),
                    }
                }
                Ok(Test::IpRange { key, networks })
            }
            ":before" | ":after" => {
                let lit = self.literal("a time in quotes")?;
                let Lit::Str(text, pos) = lit else {
                    return Err((lit.pos(), "expected a time in quotes".to_string()));
                };
                let when = parse_time_spec(&text).ok_or((pos, format!("invalid time: {text}")))?;
                Ok(Test::Date { key, before: op == ":before", when })
            }
            ":equals" | ":setequals" | ":overlaps" | ":subsetof" | ":supersetof" => {
                let op = match op.as_str() {
                    ":equals" => ListOp::Equals,
                    ":setequals" => ListOp::SetEquals,
                    ":overlaps" => ListOp::Overlaps,
                    ":subsetof" => ListOp::SubsetOf,
                    _ => ListOp::SupersetOf,
                };
                if !self.is_sym("[") {
                    return self.error("a list `[...]`");
                }
                let values = self.list()?.into_iter().map(Lit::into_value).collect();
                Ok(Test::List { key, op, values })
            }
            ":in" | ":containsany" | ":regexin" => {
                if !self.is_sym("[") {
                    return self.error("a list `[...]`");
                }
                let items = self.list()?;
                let all_numbers = !items.is_empty() && items.iter().all(|l| matches!(l, Lit::Num(..)));
                if op == ":in" && all_numbers {
                    return self.numeric_test(key, NumOp::In, items);
                }
                let op = match op.as_str() {
                    ":in" => StrOp::In,
                    ":containsany" => StrOp::ContainsAny,
                    _ => StrOp::RegexIn,
                };
                self.string_test(key, op, items, true)
            }
            "==" | "!=" | ":contains" | ":notcontains" | "=~" | "!~" | "<" | "<=" | ">" | ">=" => {
                let (items, is_list) = self.value_or_list()?;
                let numeric = match items.first() {
                    Some(Lit::Num(..)) => true,
                    Some(Lit::Bool(value, pos)) if !is_list => {
                        let (value, pos) = (*value, *pos);
                        return match op.as_str() {
                            "==" | "!=" => Ok(Test::Bool { key, equal: op == "==", value }),
                            _ => Err((pos, format!("operator `{op}` cannot compare with a boolean"))),
                        };
                    }
                    _ => false,
                };
                if numeric {
                    let op = match op.as_str() {
                        "==" => NumOp::Eq,
                        "!=" => NumOp::Ne,
                        "<" => NumOp::Lt,
                        "<=" => NumOp::Le,
                        ">" => NumOp::Gt,
                        ">=" => NumOp::Ge,
                        _ => return Err((op_pos, format!("operator `{op}` needs a string value"))),
                    };
                    return self.numeric_test(key, op, items);
                }
                let op = match op.as_str() {
                    "==" => StrOp::Eq,
                    "!=" => StrOp::Ne,
                    ":contains" => StrOp::Contains,
                    ":notcontains" => StrOp::NotContains,
                    "=~" => StrOp::Regex,
                    "!~" => StrOp::NotRegex,
                    _ => return Err((op_pos, format!("operator `{op}` needs a number"))),
                };
                self.string_test(key, op, items, is_list)
            }
            other => Err((op_pos, format!("unknown operator `{other}`"))),
        }
    }

    fn numeric_test(&self, key: String, op: NumOp, items: Vec<Lit>) -> PResult<Test> {
        let mut values = Vec::new();
        let first = items.first().map_or(self.pos(), Lit::pos);
        for item in items {
            match item {
                Lit::Num(n, _) => values.push(n),
                other => return Err((other.pos(), "expected a number".to_string())),
            }
        }
        // IntelMQ checks the field: numeric comparisons only on Integer, Float, Accuracy and ASN.
        match self.field_type(&key) {
            Some(TypeName::Integer | TypeName::Float | TypeName::Accuracy | TypeName::ASN) => {}
            Some(other) => return Err((first, format!("incompatible type: {other} (key `{key}` is not numeric)"))),
            None => return Err((first, format!("invalid key: {key} (not a numeric harmonization field)"))),
        }
        Ok(Test::Num { key, op, values })
    }

    fn string_test(&self, key: String, op: StrOp, items: Vec<Lit>, any: bool) -> PResult<Test> {
        let needs_regex = matches!(op, StrOp::Regex | StrOp::NotRegex | StrOp::RegexIn);
        let checks_ip =
            matches!(op, StrOp::Eq | StrOp::Ne | StrOp::In) && self.field_type(&key) == Some(TypeName::IPAddress);
        let mut values = Vec::new();
        for item in items {
            let Lit::Str(text, pos) = item else {
                return Err((item.pos(), "expected a string in quotes".to_string()));
            };
            if checks_ip && IpAddr::parse(&text).is_none() {
                return Err((pos, format!("invalid IP address: {text}")));
            }
            let regex = if needs_regex {
                Some(Regex::new(&text).map_err(|e| (pos, format!("invalid regular expression {text:?}: {e}")))?)
            } else {
                None
            };
            values.push(StrValue { text, regex });
        }
        Ok(Test::Str { key, op, values, any })
    }

    fn action(&mut self) -> PResult<Action> {
        let pos = self.pos();
        let word = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return self.error("an action"),
        };
        self.at += 1;
        match word.as_str() {
            "drop" => Ok(Action::Drop),
            "keep" => Ok(Action::Keep),
            "path" => {
                let (items, _) = self.value_or_list()?;
                let mut paths = Vec::new();
                for item in items {
                    match item {
                        Lit::Str(s, _) => paths.push(s),
                        other => return Err((other.pos(), "expected a path name in quotes".to_string())),
                    }
                }
                Ok(Action::Path(paths))
            }
            "add" | "add!" | "update" => {
                let key = self.key()?;
                let op_pos = self.pos();
                let op = match self.next().map(|t| t.tok) {
                    Some(Tok::Sym("=")) => AssignOp::Set,
                    Some(Tok::Sym("+=")) => AssignOp::Add,
                    Some(Tok::Sym("-=")) => AssignOp::Sub,
                    _ => return Err((op_pos, format!("expected `=`, `+=` or `-=` after `{word} {key}`"))),
                };
                let value = self.operand()?;
                if op != AssignOp::Set {
                    if let Operand::Literal(v) = &value {
                        let ok = match v {
                            Value::String(s) => parse_relative(s).is_some(),
                            Value::Number(_) => true,
                            _ => false,
                        };
                        if !ok {
                            return Err((op_pos, "`+=`/`-=` needs a relative time such as '1 hour' or a number".to_string()));
                        }
                    }
                }
                Ok(match word.as_str() {
                    "update" => Action::Update { key, op, value },
                    _ => Action::Add { key, force: word == "add!", op, value },
                })
            }
            "remove" => Ok(Action::Remove { key: self.key()? }),
            "append" | "append!" => {
                let key = self.key()?;
                let value = self.operand()?;
                Ok(Action::Append { key, force: word == "append!", value })
            }
            other => Err((
                pos,
                format!("unknown action `{other}` (expected if, drop, keep, path, add, add!, update, remove, append or append!)"),
            )),
        }
    }

    fn operand(&mut self) -> PResult<Operand> {
        if let Some(Tok::Var(name)) = self.peek() {
            let name = name.clone();
            self.at += 1;
            return Ok(Operand::Var(name));
        }
        Ok(Operand::Literal(self.literal("a value or a `$variable`")?.into_value()))
    }
}

/// textX's NUMBER: a float when it has a `.` or an exponent, an integer otherwise.
fn parse_number(word: &str) -> Option<Number> {
    let digits = word.trim_start_matches(['-', '+']);
    if digits.is_empty() || !digits.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if !digits.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+')) {
        return None;
    }
    if !digits.contains(['.', 'e', 'E']) {
        let n: i64 = word.parse().ok()?;
        return Some(Number::from(n));
    }
    let f: f64 = word.parse().ok()?;
    Number::from_f64(f)
}

/// A relative time span: `<n> <unit>` with the units of IntelMQ's `parse_relative` (second,
/// minute, hour, day, week, month = 30 days, year = 365 days, singular or plural) and their
/// short forms (`s`, `sec`, `min`, `h`, `d`, `w`, `y`).
pub fn parse_relative(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let amount: i64 = text[..split].parse().ok()?;
    let unit = text[split..].trim_start();
    let unit = if unit.len() > 1 { unit.strip_suffix('s').unwrap_or(unit) } else { unit };
    let minutes_per: i64 = match unit {
        "s" | "sec" | "second" => return Duration::try_seconds(amount),
        "min" | "minute" => 1,
        "h" | "hr" | "hour" => 60,
        "d" | "day" => 24 * 60,
        "w" | "week" => 7 * 24 * 60,
        "month" => 30 * 24 * 60,
        "y" | "year" => 365 * 24 * 60,
        _ => return None,
    };
    Duration::try_minutes(amount.checked_mul(minutes_per)?)
}

/// A relative span first, then an absolute time (naive times are UTC).
pub fn parse_time_spec(text: &str) -> Option<TimeSpec> {
    if let Some(span) = parse_relative(text) {
        return Some(TimeSpec::Relative(span));
    }
    datetime::parse_fuzzy(text).and_then(|s| parse_utc(&s)).map(TimeSpec::Absolute)
}

/// Parses IntelMQ's canonical UTC form (`2023-06-01T10:00:00+00:00`, optional fraction).
pub fn parse_utc(canonical: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(canonical, "%Y-%m-%dT%H:%M:%S%.f+00:00").ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h() -> std::sync::Arc<Harmonization> {
        Harmonization::builtin()
    }

    fn ok(text: &str) -> Program {
        parse(text, "test.sieve", &h()).unwrap()
    }

    fn err(text: &str) -> SieveError {
        parse(text, "test.sieve", &h()).unwrap_err()
    }

    #[test]
    fn nested_branches_and_actions_parse() {
        let p = ok("if a == 'x' { if :exists b { drop } elif c != 'y' { keep } else { path ['p', 'q'] } }\nadd! extra.v = 1.5\n$v = source.ip\nupdate comment = $v");
        assert_eq!(p.statements.len(), 4);
        let Statement::Branch(b) = &p.statements[0] else { panic!() };
        let Statement::Branch(inner) = &b.clauses[0].body[0] else { panic!() };
        assert_eq!(inner.clauses.len(), 2);
        assert!(inner.otherwise.is_some());
        assert!(matches!(&p.statements[1], Statement::Action(Action::Add { force: true, .. }, _)));
        assert!(matches!(&p.statements[2], Statement::Assign { source: Source::Key(k), .. } if k == "source.ip"));
    }

    #[test]
    fn comments_are_skipped_but_not_inside_strings() {
        let p = ok("# top\nif comment == '#x' { // line\n add comment = 'a#b' }");
        let Statement::Branch(b) = &p.statements[0] else { panic!() };
        let Test::Str { values, .. } = &b.clauses[0].expr.any[0][0].test else { panic!() };
        assert_eq!(values[0].text, "#x");
    }

    #[test]
    fn and_binds_tighter_than_or_and_negation_applies_to_one_condition() {
        let p = ok("if a == 'x' && b == 'y' || ! c == 'z' { drop }");
        let Statement::Branch(b) = &p.statements[0] else { panic!() };
        let expr = &b.clauses[0].expr;
        assert_eq!(expr.any.len(), 2);
        assert_eq!(expr.any[0].len(), 2);
        assert!(expr.any[1][0].negated);
    }

    #[test]
    fn value_kinds_choose_the_test() {
        let p = ok("if feed.accuracy >= 90 && extra.b == true && destination.asn :in [1, 2] && extra.l :equals [] && source.ip << ['10.0.0.0/8'] { drop }");
        let Statement::Branch(b) = &p.statements[0] else { panic!() };
        let tests: Vec<_> = b.clauses[0].expr.any[0].iter().map(|c| &c.test).collect();
        assert!(matches!(tests[0], Test::Num { op: NumOp::Ge, .. }));
        assert!(matches!(tests[1], Test::Bool { equal: true, value: true, .. }));
        assert!(matches!(tests[2], Test::Num { op: NumOp::In, .. }));
        assert!(matches!(tests[3], Test::List { op: ListOp::Equals, values, .. } if values.is_empty()));
        assert!(matches!(tests[4], Test::IpRange { networks, .. } if networks.len() == 1));
    }

    #[test]
    fn numeric_comparison_on_a_string_field_names_the_type_and_position() {
        let e = err("if source.fqdn == 2 {\n    add comment = 'x'\n}\n");
        assert_eq!(e.pos, Pos { line: 1, col: 19 });
        assert!(e.message.contains("incompatible type: FQDN"), "{}", e.message);
        assert!(e.to_string().starts_with("sieve file test.sieve:1:19: "), "{e}");
    }

    #[test]
    fn invalid_ip_literal_for_an_ip_field_is_refused() {
        let e = err("if source.ip == \"#fail\" {\n add comment = 'x' }");
        assert_eq!(e.pos, Pos { line: 1, col: 17 });
        assert!(e.message.contains("invalid IP address: #fail"), "{}", e.message);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("if comment == 'a' {\n  frobnicate\n}");
        assert_eq!(e.pos, Pos { line: 2, col: 3 });
        assert!(e.message.contains("unknown action `frobnicate`"));
        let e = err("if comment == 'a' {\n  drop\n");
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("expected `}`"), "{}", e.message);
        let e = err("if source.ip << 'nonsense' { drop }");
        assert!(e.message.contains("invalid ip range"));
        let e = err("if comment =~ '(' { drop }");
        assert!(e.message.contains("invalid regular expression"));
    }

    #[test]
    fn relative_times_accept_long_and_short_units() {
        assert_eq!(parse_relative("1 week"), Some(Duration::days(7)));
        assert_eq!(parse_relative("4 hours"), Some(Duration::hours(4)));
        assert_eq!(parse_relative("10 h"), Some(Duration::hours(10)));
        assert_eq!(parse_relative("2 months"), Some(Duration::days(60)));
        assert_eq!(parse_relative("30 seconds"), Some(Duration::seconds(30)));
        assert_eq!(parse_relative("2023-06-01"), None);
        assert_eq!(parse_relative("week"), None);
    }

    #[test]
    fn absolute_times_are_utc() {
        let TimeSpec::Absolute(t) = parse_time_spec("2023-06-01 15:00").unwrap() else { panic!() };
        assert_eq!(t.to_string(), "2023-06-01 15:00:00");
        assert!(matches!(parse_time_spec("1 week"), Some(TimeSpec::Relative(_))));
    }

    #[test]
    fn numbers_keep_int_and_float_apart() {
        assert_eq!(parse_number("4"), Some(Number::from(4)));
        assert_eq!(parse_number("-4"), Some(Number::from(-4)));
        assert!(parse_number("2.1").unwrap().is_f64());
        assert!(parse_number("100.0").unwrap().is_f64());
        assert_eq!(parse_number("source.ip"), None);
    }
}
