//! A re-creation of Python's `html.parser.HTMLParser` tokenizer (incremental `feed`, CDATA mode
//! for `script`/`style`, both `convert_charrefs` modes) and of the tree BeautifulSoup builds on
//! top of it (`BeautifulSoup(markup, "html.parser")`): its nesting rules, whitespace collapsing,
//! `get_text()` and `str(tag)` serialisation with the "minimal" formatter. The HTML parsers of
//! IntelMQ (html_table, malwareurl, threatminer) depend on exactly these behaviours, which an HTML5
//! parser does not have.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// One event of Python's `HTMLParser`.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// `handle_starttag`, or `handle_startendtag` when `self_closing`.
    StartTag {
        name: String,
        attrs: Vec<(String, Option<String>)>,
        self_closing: bool,
    },
    EndTag(String),
    Data(String),
    Comment(String),
    /// `handle_decl` (`<!DOCTYPE ...>` without `<!` and `>`).
    Decl(String),
    /// `handle_pi` (`<?...>` without `<?` and `>`).
    Pi(String),
    /// `unknown_decl` (`<![CDATA[...]]>` without `<![` and `]]>`).
    UnknownDecl(String),
    /// `handle_entityref` (only without `convert_charrefs`).
    EntityRef(String),
    /// `handle_charref` (only without `convert_charrefs`).
    CharRef(String),
}

/// Python's `html.parser.HTMLParser` state.
#[derive(Debug, Default)]
pub struct PyHtmlParser {
    rawdata: String,
    convert_charrefs: bool,
    cdata_elem: Option<String>,
    /// Events produced so far (the caller drains them).
    pub tokens: Vec<Token>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// Python `str.isspace`-style whitespace for `\s` in Python regexes (ASCII part plus Unicode).
fn is_py_space_char(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\x1c'..='\x1f')
}

impl PyHtmlParser {
    pub fn new(convert_charrefs: bool) -> Self {
        PyHtmlParser { convert_charrefs, ..PyHtmlParser::default() }
    }

    /// `feed(data)`: processes what is complete, keeps the rest buffered.
    pub fn feed(&mut self, data: &str) {
        self.rawdata.push_str(data);
        self.goahead(false);
    }

    /// `close()`: processes everything left.
    pub fn close(&mut self) {
        self.goahead(true);
    }

    fn data(&mut self, text: &str) {
        self.tokens.push(Token::Data(text.to_string()));
    }

    fn goahead(&mut self, end: bool) {
        let raw = std::mem::take(&mut self.rawdata);
        let n = raw.len();
        let b = raw.as_bytes();
        let mut i = 0usize;
        while i < n {
            let j;
            if self.convert_charrefs && self.cdata_elem.is_none() {
                match raw[i..].find('<') {
                    Some(p) => j = i + p,
                    None => {
                        let floor = i.max(n.saturating_sub(34));
                        if let Some(amp) = raw[i..].rfind('&').map(|p| p + i).filter(|p| *p >= floor) {
                            if !raw[amp..].bytes().any(|c| is_ws(c) || c == b';') {
                                break;
                            }
                        }
                        j = n;
                    }
                }
            } else {
                let found = match &self.cdata_elem {
                    Some(elem) => find_cdata_end(&raw, i, elem),
                    None => raw[i..].find(['&', '<']).map(|p| p + i),
                };
                match found {
                    Some(p) => j = p,
                    None => {
                        if self.cdata_elem.is_some() {
                            break;
                        }
                        j = n;
                    }
                }
            }
            if i < j {
                if self.convert_charrefs && self.cdata_elem.is_none() {
                    let text = unescape(&raw[i..j]);
                    self.data(&text);
                } else {
                    self.data(&raw[i..j]);
                }
            }
            i = j;
            if i == n {
                break;
            }
            if b[i] == b'<' {
                let k: Option<usize>;
                if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) {
                    k = self.parse_starttag(&raw, i);
                } else if raw[i..].starts_with("</") {
                    k = self.parse_endtag(&raw, i);
                } else if raw[i..].starts_with("<!--") {
                    k = self.parse_comment(&raw, i);
                } else if raw[i..].starts_with("<?") {
                    k = self.parse_pi(&raw, i);
                } else if raw[i..].starts_with("<!") {
                    k = self.parse_html_declaration(&raw, i);
                } else if i + 1 < n {
                    self.data("<");
                    k = Some(i + 1);
                } else {
                    break;
                }
                let k = match k {
                    Some(k) => k,
                    None => {
                        if !end {
                            break;
                        }
                        let k = match raw[i + 1..].find('>') {
                            Some(p) => i + 1 + p + 1,
                            None => match raw[i + 1..].find('<') {
                                Some(p) => i + 1 + p,
                                None => i + 1,
                            },
                        };
                        self.data(&raw[i..k]);
                        k
                    }
                };
                i = k;
            } else if raw[i..].starts_with("&#") {
                match match_charref(&raw, i) {
                    Some((name, mut k)) => {
                        self.tokens.push(Token::CharRef(name));
                        if b[k - 1] != b';' {
                            k -= 1;
                        }
                        i = k;
                        continue;
                    }
                    None => {
                        if raw[i..].contains(';') {
                            self.data("&#");
                            i += 2;
                        }
                        break;
                    }
                }
            } else if b[i] == b'&' {
                if let Some((name, mut k)) = match_entityref(&raw, i) {
                    self.tokens.push(Token::EntityRef(name));
                    if b[k - 1] != b';' {
                        k -= 1;
                    }
                    i = k;
                    continue;
                }
                if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'#') {
                    if end && n - i == 2 {
                        i += 1;
                    }
                    break;
                } else if i + 1 < n {
                    self.data("&");
                    i += 1;
                } else {
                    break;
                }
            } else {
                // `j` stops only at `<` or `&`; anything else is plain text.
                let len = raw[i..].chars().next().map_or(1, char::len_utf8);
                self.data(&raw[i..i + len]);
                i += len;
            }
        }
        if end && i < n && self.cdata_elem.is_none() {
            if self.convert_charrefs {
                let text = unescape(&raw[i..n]);
                self.data(&text);
            } else {
                self.data(&raw[i..n]);
            }
            i = n;
        }
        self.rawdata = raw[i..].to_string();
    }

    fn parse_starttag(&mut self, raw: &str, i: usize) -> Option<usize> {
        let b = raw.as_bytes();
        let n = b.len();
        let mut j = i + 1;
        while j < n && !matches!(b[j], b'\t' | b'\n' | b'\r' | 0x0c | b' ' | b'/' | b'>' | 0) {
            j += 1;
        }
        let tag = raw[i + 1..j].to_lowercase();
        let mut k = j;
        while k < n && (is_ws(b[k]) || b[k] == b'/') {
            k += 1;
        }
        let mut attrs = Vec::new();
        let mut last_attr_end = None;
        loop {
            if k >= n {
                break;
            }
            let prev = b[k - 1];
            if !(prev == b'\'' || prev == b'"' || is_ws(prev) || prev == b'/') {
                break;
            }
            if is_ws(b[k]) || b[k] == b'/' || b[k] == b'>' {
                break;
            }
            let name_start = k;
            k += 1;
            while k < n && !(is_ws(b[k]) || b[k] == b'/' || b[k] == b'=' || b[k] == b'>') {
                k += 1;
            }
            let aname = raw[name_start..k].to_lowercase();
            let mut value = None;
            let mut t = k;
            while t < n && is_ws(b[t]) {
                t += 1;
            }
            if t < n && b[t] == b'=' {
                while t < n && b[t] == b'=' {
                    t += 1;
                }
                while t < n && is_ws(b[t]) {
                    t += 1;
                }
                let mut ok = true;
                if t < n && (b[t] == b'\'' || b[t] == b'"') {
                    let q = b[t] as char;
                    match raw[t + 1..].find(q) {
                        Some(p) => {
                            value = Some(raw[t + 1..t + 1 + p].to_string());
                            t = t + 1 + p + 1;
                        }
                        None => ok = false,
                    }
                } else {
                    let s = t;
                    while t < n && !(b[t] == b'>' || is_ws(b[t])) {
                        t += 1;
                    }
                    value = Some(raw[s..t].to_string());
                }
                if ok {
                    while t < n && is_ws(b[t]) {
                        t += 1;
                    }
                    k = t;
                } else {
                    value = None;
                }
            }
            while k < n && (is_ws(b[k]) || (b[k] == b'/' && b.get(k + 1) != Some(&b'>'))) {
                k += 1;
            }
            let value = value.map(|v| if v.is_empty() { v } else { unescape(&v) });
            attrs.push((aname, value));
            last_attr_end = Some(k);
        }
        while k < n && is_ws(b[k]) {
            k += 1;
        }
        let endpos = match b.get(k) {
            Some(b'>') => k + 1,
            Some(b'/') => {
                if raw[k..].starts_with("/>") {
                    k + 2
                } else {
                    return None;
                }
            }
            None => return None,
            Some(c) if c.is_ascii_alphabetic() || *c == b'=' => return None,
            Some(_) => {
                if k > i {
                    k
                } else {
                    i + 1
                }
            }
        };
        // Python: the text between the last attribute and the end must be `>` or `/>`.
        let after_attrs = last_attr_end.unwrap_or_else(|| {
            let mut t = j;
            while t < n && (is_ws(b[t]) || (b[t] == b'/' && b.get(t + 1) != Some(&b'>'))) {
                t += 1;
            }
            t
        });
        let end_text = raw[after_attrs.min(endpos)..endpos].trim_matches(is_py_space_char);
        if end_text != ">" && end_text != "/>" {
            self.data(&raw[i..endpos]);
            return Some(endpos);
        }
        if end_text.ends_with("/>") {
            self.tokens.push(Token::StartTag { name: tag, attrs, self_closing: true });
        } else {
            if tag == "script" || tag == "style" {
                self.cdata_elem = Some(tag.clone());
            }
            self.tokens.push(Token::StartTag { name: tag, attrs, self_closing: false });
        }
        Some(endpos)
    }

    fn parse_endtag(&mut self, raw: &str, i: usize) -> Option<usize> {
        let b = raw.as_bytes();
        let n = b.len();
        let gtpos = raw[i + 1..].find('>').map(|p| i + 1 + p + 1)?;
        // endtagfind: `</\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>`
        let mut t = i + 2;
        while t < n && is_ws(b[t]) {
            t += 1;
        }
        let mut exact = None;
        if t < n && b[t].is_ascii_alphabetic() {
            let s = t;
            t += 1;
            while t < n && (b[t].is_ascii_alphanumeric() || matches!(b[t], b'-' | b'.' | b':' | b'_')) {
                t += 1;
            }
            let name = &raw[s..t];
            while t < n && is_ws(b[t]) {
                t += 1;
            }
            if t < n && b[t] == b'>' {
                exact = Some((name.to_lowercase(), t + 1));
            }
        }
        match exact {
            Some((elem, end)) => {
                if let Some(cdata) = &self.cdata_elem {
                    if &elem != cdata {
                        self.data(&raw[i..end]);
                        return Some(end);
                    }
                }
                self.tokens.push(Token::EndTag(elem));
                self.cdata_elem = None;
                Some(end)
            }
            None => {
                if self.cdata_elem.is_some() {
                    self.data(&raw[i..gtpos]);
                    return Some(gtpos);
                }
                if !b.get(i + 2).is_some_and(|c| c.is_ascii_alphabetic()) {
                    if raw[i..].starts_with("</>") {
                        return Some(i + 3);
                    }
                    return self.parse_bogus_comment(raw, i);
                }
                let s = i + 2;
                let mut t = s;
                while t < n && !matches!(b[t], b'\t' | b'\n' | b'\r' | 0x0c | b' ' | b'/' | b'>' | 0) {
                    t += 1;
                }
                let name = raw[s..t].to_lowercase();
                let gt = raw[t..].find('>').map(|p| t + p)?;
                self.tokens.push(Token::EndTag(name));
                Some(gt + 1)
            }
        }
    }

    fn parse_comment(&mut self, raw: &str, i: usize) -> Option<usize> {
        // `--\s*>`
        let b = raw.as_bytes();
        let mut from = i + 4;
        loop {
            let p = raw[from..].find("--").map(|p| from + p)?;
            let mut t = p + 2;
            while t < b.len() && is_ws(b[t]) {
                t += 1;
            }
            if t < b.len() && b[t] == b'>' {
                self.tokens.push(Token::Comment(raw[i + 4..p].to_string()));
                return Some(t + 1);
            }
            if t >= b.len() {
                return None;
            }
            from = p + 1;
        }
    }

    fn parse_pi(&mut self, raw: &str, i: usize) -> Option<usize> {
        let j = raw[i + 2..].find('>').map(|p| i + 2 + p)?;
        self.tokens.push(Token::Pi(raw[i + 2..j].to_string()));
        Some(j + 1)
    }

    fn parse_bogus_comment(&mut self, raw: &str, i: usize) -> Option<usize> {
        let pos = raw[i + 2..].find('>').map(|p| i + 2 + p)?;
        self.tokens.push(Token::Comment(raw[i + 2..pos].to_string()));
        Some(pos + 1)
    }

    fn parse_html_declaration(&mut self, raw: &str, i: usize) -> Option<usize> {
        if raw[i..].starts_with("<![") {
            let j = raw[i + 3..].find("]]>").map(|p| i + 3 + p)?;
            self.tokens.push(Token::UnknownDecl(raw[i + 3..j].to_string()));
            return Some(j + 3);
        }
        let head = raw.get(i..i + 9).map(str::to_ascii_lowercase);
        if head.as_deref() == Some("<!doctype") {
            let gt = raw[i + 9..].find('>').map(|p| i + 9 + p)?;
            self.tokens.push(Token::Decl(raw[i + 2..gt].to_string()));
            return Some(gt + 1);
        }
        self.parse_bogus_comment(raw, i)
    }
}

/// Where `</elem\s*>` (case-insensitive) starts at or after `from`.
fn find_cdata_end(raw: &str, from: usize, elem: &str) -> Option<usize> {
    let lower = raw.to_ascii_lowercase();
    let needle = format!("</{elem}");
    let b = raw.as_bytes();
    let mut start = from;
    while let Some(p) = lower[start..].find(&needle) {
        let p = start + p;
        let mut t = p + needle.len();
        while t < b.len() && is_ws(b[t]) {
            t += 1;
        }
        if t < b.len() && b[t] == b'>' {
            return Some(p);
        }
        start = p + 2;
    }
    None
}

/// `&#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]` at `i`: the name (without `&#`) and the match end.
fn match_charref(raw: &str, i: usize) -> Option<(String, usize)> {
    let b = raw.as_bytes();
    let mut t = i + 2;
    let start = t;
    if b.get(t).is_some_and(|c| *c == b'x' || *c == b'X') {
        t += 1;
        let s = t;
        while t < b.len() && b[t].is_ascii_hexdigit() {
            t += 1;
        }
        if t == s {
            return None;
        }
    } else {
        let s = t;
        while t < b.len() && b[t].is_ascii_digit() {
            t += 1;
        }
        if t == s {
            return None;
        }
        // `[^0-9a-fA-F]` follows: a hex letter right after decimal digits fails the match.
    }
    let next = *b.get(t)?;
    if next.is_ascii_hexdigit() {
        return None;
    }
    let end = t + raw[t..].chars().next().map_or(1, char::len_utf8);
    Some((raw[start..t].to_string(), end))
}

/// `&([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]` at `i`.
fn match_entityref(raw: &str, i: usize) -> Option<(String, usize)> {
    let b = raw.as_bytes();
    let mut t = i + 1;
    if !b.get(t).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let s = t;
    t += 1;
    while t < b.len() && (b[t].is_ascii_alphanumeric() || b[t] == b'-' || b[t] == b'.') {
        t += 1;
    }
    let next = *b.get(t)?;
    if next.is_ascii_alphanumeric() {
        return None;
    }
    let end = t + raw[t..].chars().next().map_or(1, char::len_utf8);
    Some((raw[s..t].to_string(), end))
}

/// Python's `str.splitlines()`.
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break =
            matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if is_break {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some((_, '\n')) = chars.peek() {
                    chars.next();
                    end += 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space_char)
}

// ---------------------------------------------------------------------------------------------
// Character references

/// The HTML5 named references that may appear without a semicolon (Python `html.entities.html5`).
const LEGACY_ENTITIES: &[&str] = &[
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil", "ETH", "Eacute", "Ecirc",
    "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT", "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash",
    "Otilde", "Ouml", "QUOT", "REG", "THORN", "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc",
    "acute", "aelig", "agrave", "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy",
    "curren", "deg", "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt",
    "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro", "middot", "nbsp", "not",
    "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash", "otilde", "ouml", "para", "plusmn", "pound",
    "quot", "raquo", "reg", "sect", "shy", "sup1", "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc",
    "ugrave", "uml", "uuml", "yacute", "yen", "yuml",
];

/// The character(s) of the named reference `&name;` (HTML5 table), if it exists.
pub fn named_entity(name: &str) -> Option<String> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<String>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if let Ok(cache) = CACHE.lock() {
        if let Some(hit) = cache.get(name) {
            return hit.clone();
        }
    }
    // html5ever knows the full HTML5 table; let it decode the reference as text.
    let literal = format!("&{name};");
    let fragment = scraper::Html::parse_fragment(&literal);
    let text: String = fragment.root_element().text().collect();
    let result = (text != literal).then_some(text);
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(name.to_string(), result.clone());
    }
    result
}

/// Windows-1252 for the C1 range (what Python maps `&#128;`..`&#159;` to).
fn cp1252(n: u32) -> Option<char> {
    const TABLE: [u32; 32] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D,
        0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,
        0x017E, 0x0178,
    ];
    if (0x80..0xA0).contains(&n) {
        let c = TABLE[(n - 0x80) as usize];
        return if c == 0 { None } else { char::from_u32(c) };
    }
    None
}

/// Python `html.unescape`.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        let (text, used) = unescape_one(after);
        out.push_str(&text);
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// Decodes one reference after `&`; returns the replacement and how many bytes of `after` it used.
fn unescape_one(after: &str) -> (String, usize) {
    let b = after.as_bytes();
    if b.first() == Some(&b'#') {
        let (hex, start) = if matches!(b.get(1), Some(b'x') | Some(b'X')) { (true, 2) } else { (false, 1) };
        let mut t = start;
        while t < b.len() && (if hex { b[t].is_ascii_hexdigit() } else { b[t].is_ascii_digit() }) {
            t += 1;
        }
        if t == start {
            return ("&".to_string(), 0);
        }
        let digits = &after[start..t];
        let used = if b.get(t) == Some(&b';') { t + 1 } else { t };
        let num = u32::from_str_radix(digits, if hex { 16 } else { 10 }).unwrap_or(u32::MAX);
        let text = if num == 0 {
            "\u{FFFD}".to_string()
        } else if num == 0x0d {
            "\r".to_string()
        } else if let Some(c) = cp1252(num) {
            c.to_string()
        } else if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
            "\u{FFFD}".to_string()
        } else if (0x1..=0x8).contains(&num)
            || (0xE..=0x1F).contains(&num)
            || (0x7F..=0x9F).contains(&num)
            || (0xFDD0..=0xFDEF).contains(&num)
            || num == 0xB
            || (num & 0xFFFE) == 0xFFFE
        {
            String::new()
        } else {
            char::from_u32(num).map(String::from).unwrap_or_default()
        };
        return (text, used);
    }
    // `[^\t\n\f <&#;]{1,32};?`
    let mut t = 0;
    let mut count = 0;
    for (idx, c) in after.char_indices() {
        if matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';') || count == 32 {
            break;
        }
        count += 1;
        t = idx + c.len_utf8();
    }
    if t == 0 {
        return ("&".to_string(), 0);
    }
    let name = &after[..t];
    if b.get(t) == Some(&b';') {
        if let Some(text) = named_entity(name) {
            return (text, t + 1);
        }
    }
    // The longest legacy prefix without a semicolon.
    let mut x = name.len();
    while x > 0 {
        if name.is_char_boundary(x) && LEGACY_ENTITIES.contains(&&name[..x]) {
            if let Some(text) = named_entity(&name[..x]) {
                return (text, x);
            }
        }
        x -= 1;
    }
    ("&".to_string(), 0)
}

// ---------------------------------------------------------------------------------------------
// The BeautifulSoup tree

/// The class of a string node (BeautifulSoup's NavigableString subclasses that matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrKind {
    Navigable,
    Comment,
    CData,
    Pi,
    Declaration,
    Doctype,
    /// Text inside `script`, `style`, `template`, `rt`, `rp` (not part of `get_text()`).
    Special,
}

/// An attribute value: multi-valued attributes (`class`, ...) are lists.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Single(String),
    List(Vec<String>),
}

impl AttrValue {
    /// The value as BeautifulSoup writes it (lists joined by one space).
    pub fn joined(&self) -> String {
        match self {
            AttrValue::Single(s) => s.clone(),
            AttrValue::List(items) => items.join(" "),
        }
    }

    /// SoupStrainer matching against a string.
    pub fn matches(&self, wanted: &str) -> bool {
        match self {
            AttrValue::Single(s) => s == wanted,
            AttrValue::List(items) => items.iter().any(|i| i == wanted) || items.join(" ") == wanted,
        }
    }
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Element { name: String, attrs: Vec<(String, AttrValue)> },
    Text { text: String, kind: StrKind },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub children: Vec<usize>,
    pub parent: Option<usize>,
}

/// A parsed document (node 0 is the `[document]` root).
#[derive(Debug)]
pub struct Soup {
    pub nodes: Vec<Node>,
}

const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem", "meta", "param",
    "source", "track", "wbr", "basefont", "bgsound", "command", "frame", "image", "isindex", "nextid", "spacer",
];

fn is_void(name: &str) -> bool {
    VOID_ELEMENTS.contains(&name)
}

/// Whether `attr` of `tag` is multi-valued in BeautifulSoup's HTML tree builder.
fn is_list_attribute(tag: &str, attr: &str) -> bool {
    matches!(attr, "class" | "accesskey" | "dropzone")
        || matches!(
            (tag, attr),
            ("a", "rel" | "rev")
                | ("link", "rel" | "rev")
                | ("td" | "th", "headers")
                | ("form", "accept-charset")
                | ("object", "archive")
                | ("area", "rel")
                | ("icon", "sizes")
                | ("iframe", "sandbox")
                | ("output", "for")
        )
}

struct Builder {
    nodes: Vec<Node>,
    stack: Vec<usize>,
    current_data: Vec<String>,
    open_count: HashMap<String, usize>,
    already_closed_empty: Vec<String>,
}

impl Builder {
    fn name_of(&self, id: usize) -> &str {
        match &self.nodes[id].kind {
            NodeKind::Element { name, .. } => name,
            NodeKind::Text { .. } => "",
        }
    }

    fn current(&self) -> usize {
        self.stack.last().copied().unwrap_or(0)
    }

    fn end_data(&mut self, kind: Option<StrKind>) {
        if self.current_data.is_empty() {
            return;
        }
        let mut text = self.current_data.concat();
        self.current_data.clear();
        let preserve = self.stack.iter().any(|id| matches!(self.name_of(*id), "pre" | "textarea"));
        if text.chars().all(|c| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')) && !preserve {
            text = if text.contains('\n') { "\n".to_string() } else { " ".to_string() };
        }
        let kind = kind.unwrap_or_else(|| {
            let special = self
                .stack
                .iter()
                .rev()
                .find(|id| matches!(self.name_of(**id), "script" | "style" | "template" | "rt" | "rp"));
            if special.is_some() {
                StrKind::Special
            } else {
                StrKind::Navigable
            }
        });
        let parent = self.current();
        let id = self.nodes.len();
        self.nodes.push(Node { kind: NodeKind::Text { text, kind }, children: Vec::new(), parent: Some(parent) });
        self.nodes[parent].children.push(id);
    }

    fn start(&mut self, name: &str, attrs: Vec<(String, Option<String>)>, handle_empty: bool) {
        self.end_data(None);
        let mut list: Vec<(String, AttrValue)> = Vec::new();
        for (key, value) in attrs {
            let value = value.unwrap_or_default();
            let value = if is_list_attribute(name, &key) {
                AttrValue::List(
                    value.split(|c: char| c.is_whitespace()).filter(|s| !s.is_empty()).map(str::to_string).collect(),
                )
            } else {
                AttrValue::Single(value)
            };
            match list.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => list.push((key, value)),
            }
        }
        let parent = self.current();
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind: NodeKind::Element { name: name.to_string(), attrs: list },
            children: Vec::new(),
            parent: Some(parent),
        });
        self.nodes[parent].children.push(id);
        self.stack.push(id);
        *self.open_count.entry(name.to_string()).or_insert(0) += 1;
        if handle_empty && is_void(name) {
            // html.parser sends no end tag for a void element: close it at once.
            self.end(name, false);
            self.already_closed_empty.push(name.to_string());
        }
    }

    fn end(&mut self, name: &str, check_already_closed: bool) {
        if check_already_closed {
            if let Some(pos) = self.already_closed_empty.iter().position(|n| n == name) {
                self.already_closed_empty.remove(pos);
                return;
            }
        }
        self.end_data(None);
        if self.open_count.get(name).copied().unwrap_or(0) == 0 {
            return;
        }
        while self.stack.len() > 1 {
            let Some(top) = self.stack.pop() else { break };
            let top_name = self.name_of(top).to_string();
            if let Some(c) = self.open_count.get_mut(&top_name) {
                *c = c.saturating_sub(1);
            }
            if top_name == name {
                break;
            }
        }
    }

    fn text(&mut self, data: String) {
        self.current_data.push(data);
    }

    fn special(&mut self, data: String, kind: StrKind) {
        self.end_data(None);
        self.current_data.push(data);
        self.end_data(Some(kind));
    }
}

/// bs4's `handle_charref`.
fn charref_text(name: &str) -> String {
    let num = if let Some(hex) = name.strip_prefix(['x', 'X']) {
        u32::from_str_radix(hex.trim_start_matches(['x', 'X']), 16).ok()
    } else {
        name.parse::<u32>().ok()
    };
    let Some(num) = num else { return "\u{FFFD}".to_string() };
    if let Some(c) = cp1252(num) {
        return c.to_string();
    }
    match char::from_u32(num) {
        Some(c) => c.to_string(),
        None => "\u{FFFD}".to_string(),
    }
}

impl Soup {
    /// `BeautifulSoup(markup, "html.parser")`.
    pub fn parse(markup: &str) -> Soup {
        let mut parser = PyHtmlParser::new(false);
        parser.feed(markup);
        parser.close();
        let root = Node {
            kind: NodeKind::Element { name: "[document]".to_string(), attrs: Vec::new() },
            children: Vec::new(),
            parent: None,
        };
        let mut b = Builder {
            nodes: vec![root],
            stack: vec![0],
            current_data: Vec::new(),
            open_count: HashMap::new(),
            already_closed_empty: Vec::new(),
        };
        for token in parser.tokens {
            match token {
                Token::StartTag { name, attrs, self_closing: false } => b.start(&name, attrs, true),
                Token::StartTag { name, attrs, self_closing: true } => {
                    b.start(&name, attrs, false);
                    b.end(&name, true);
                }
                Token::EndTag(name) => b.end(&name, true),
                Token::Data(text) => b.text(text),
                Token::EntityRef(name) => {
                    let text = named_entity(&name).unwrap_or_else(|| format!("&{name}"));
                    b.text(text);
                }
                Token::CharRef(name) => b.text(charref_text(&name)),
                Token::Comment(text) => b.special(text, StrKind::Comment),
                Token::Decl(text) => {
                    let text = text.strip_prefix("DOCTYPE ").map(str::to_string).unwrap_or(text);
                    b.special(text, StrKind::Doctype);
                }
                Token::Pi(text) => b.special(text, StrKind::Pi),
                Token::UnknownDecl(text) => {
                    if text.to_uppercase().starts_with("CDATA[") {
                        b.special(text["CDATA[".len()..].to_string(), StrKind::CData);
                    } else {
                        b.special(text, StrKind::Declaration);
                    }
                }
            }
        }
        b.end_data(None);
        Soup { nodes: b.nodes }
    }

    pub fn name(&self, id: usize) -> Option<&str> {
        match &self.nodes[id].kind {
            NodeKind::Element { name, .. } => Some(name),
            NodeKind::Text { .. } => None,
        }
    }

    pub fn attr(&self, id: usize, key: &str) -> Option<&AttrValue> {
        match &self.nodes[id].kind {
            NodeKind::Element { attrs, .. } => attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            NodeKind::Text { .. } => None,
        }
    }

    /// `tag.find_all(name)`: the descendant elements named `name`, in document order.
    pub fn find_all(&self, id: usize, name: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut todo: Vec<usize> = self.nodes[id].children.iter().rev().copied().collect();
        while let Some(n) = todo.pop() {
            if self.name(n) == Some(name) {
                out.push(n);
            }
            todo.extend(self.nodes[n].children.iter().rev().copied());
        }
        out
    }

    /// `tag.text` (`get_text()`): the plain strings below the tag, concatenated.
    pub fn text(&self, id: usize) -> String {
        let mut out = String::new();
        let mut todo: Vec<usize> = self.nodes[id].children.iter().rev().copied().collect();
        while let Some(n) = todo.pop() {
            match &self.nodes[n].kind {
                NodeKind::Text { text, kind: StrKind::Navigable } => out.push_str(text),
                NodeKind::Text { .. } => {}
                NodeKind::Element { .. } => todo.extend(self.nodes[n].children.iter().rev().copied()),
            }
        }
        out
    }

    /// `str(tag)` with the "minimal" formatter.
    pub fn outer_html(&self, id: usize) -> String {
        let mut out = String::new();
        self.write(id, &mut out);
        out
    }

    fn write(&self, id: usize, out: &mut String) {
        let node = &self.nodes[id];
        match &node.kind {
            NodeKind::Text { text, kind } => match kind {
                StrKind::Navigable | StrKind::Special => {
                    let parent_is_cdata =
                        node.parent.and_then(|p| self.name(p)).is_some_and(|n| n == "script" || n == "style");
                    if parent_is_cdata {
                        out.push_str(text);
                    } else {
                        out.push_str(&escape_minimal(text));
                    }
                }
                StrKind::Comment => {
                    out.push_str("<!--");
                    out.push_str(text);
                    out.push_str("-->");
                }
                StrKind::CData => {
                    out.push_str("<![CDATA[");
                    out.push_str(text);
                    out.push_str("]]>");
                }
                StrKind::Pi => {
                    out.push_str("<?");
                    out.push_str(text);
                    out.push('>');
                }
                StrKind::Declaration => {
                    out.push_str("<?");
                    out.push_str(text);
                    out.push_str("?>");
                }
                StrKind::Doctype => {
                    out.push_str("<!DOCTYPE ");
                    out.push_str(text);
                    out.push('>');
                }
            },
            NodeKind::Element { name, attrs } => {
                out.push('<');
                out.push_str(name);
                let mut sorted: Vec<&(String, AttrValue)> = attrs.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, value) in sorted {
                    out.push(' ');
                    out.push_str(key);
                    out.push('=');
                    out.push_str(&quoted_attribute(&escape_minimal(&value.joined())));
                }
                if node.children.is_empty() && is_void(name) {
                    out.push_str("/>");
                    return;
                }
                out.push('>');
                for child in &node.children {
                    self.write(*child, out);
                }
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            }
        }
    }
}

/// bs4's minimal substitution: `&`, `<`, `>`.
fn escape_minimal(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// bs4's `quoted_attribute_value`.
fn quoted_attribute(value: &str) -> String {
    if value.contains('"') {
        if value.contains('\'') {
            format!("\"{}\"", value.replace('"', "&quot;"))
        } else {
            format!("'{value}'")
        }
    } else {
        format!("\"{value}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_start_tags_wait_for_more_input() {
        let mut p = PyHtmlParser::new(true);
        p.feed("<a href='x.php?q=1");
        assert!(p.tokens.is_empty());
        p.feed("'>name");
        assert_eq!(
            p.tokens,
            vec![
                Token::StartTag {
                    name: "a".into(),
                    attrs: vec![("href".into(), Some("x.php?q=1".into()))],
                    self_closing: false
                },
                Token::Data("name".into()),
            ]
        );
    }

    #[test]
    fn script_content_is_one_data_chunk() {
        let mut p = PyHtmlParser::new(true);
        p.feed("<script>if (a < b) {}</script>x");
        assert_eq!(p.tokens[1], Token::Data("if (a < b) {}".into()));
        assert_eq!(p.tokens[2], Token::EndTag("script".into()));
    }

    #[test]
    fn unescape_follows_python() {
        assert_eq!(unescape("a&amp;b&nbsp;c"), "a&b\u{a0}c");
        assert_eq!(unescape("&m=40&notit"), "&m=40\u{ac}it");
        assert_eq!(unescape("&#65;&#x42;&#150;"), "AB\u{2013}");
    }

    #[test]
    fn soup_serialises_like_beautifulsoup() {
        let soup = Soup::parse("<table><tr class='a  b'>\n\t<td width=1 align=x>A&amp;B</td><td><img src=x border=0><br/></td></tr></table>");
        let tr = soup.find_all(0, "tr")[0];
        assert_eq!(
            soup.outer_html(tr),
            "<tr class=\"a b\">\n<td align=\"x\" width=\"1\">A&amp;B</td><td><img border=\"0\" src=\"x\"/><br/></td></tr>"
        );
        let tds = soup.find_all(tr, "td");
        assert_eq!(soup.text(tds[0]), "A&B");
    }

    #[test]
    fn class_attributes_match_any_of_their_values() {
        let soup = Soup::parse("<table class='x ExploitTable'></table>");
        let table = soup.find_all(0, "table")[0];
        let class = soup.attr(table, "class").unwrap();
        assert!(class.matches("ExploitTable"));
        assert!(class.matches("x ExploitTable"));
        assert!(!class.matches("Exploit"));
    }
}
