//! The harmonization types' `sanitize` and `is_valid`, with IntelMQ's exact rules and quirks,
//! plus the classification tables and small IP helpers other bots need.
//!
//! Values are JSON values standing for the Python objects IntelMQ handles: a string is a `str`,
//! an integer number an `int`, a float number a `float`, `true`/`false` a `bool`, `null` `None`.
//! Python values JSON cannot hold (NaN, infinities, bytes) never occur; a sanitize that would
//! produce one returns `None` instead.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Number, Value};

use super::harmonization::TypeName;
use super::{datetime, wire};

/// The 11 allowed values of `classification.taxonomy`.
pub const TAXONOMIES: [&str; 11] = [
    "abusive-content",
    "availability",
    "fraud",
    "information-content-security",
    "information-gathering",
    "intrusion-attempts",
    "intrusions",
    "malicious-code",
    "other",
    "test",
    "vulnerable",
];

/// The 44 allowed values of `classification.type`, each with its taxonomy (IntelMQ's taxonomy
/// expert table).
pub const TYPE_TAXONOMY: [(&str, &str); 44] = [
    ("application-compromise", "intrusions"),
    ("blacklist", "other"),
    ("brute-force", "intrusion-attempts"),
    ("burglary", "intrusions"),
    ("c2-server", "malicious-code"),
    ("copyright", "fraud"),
    ("data-leak", "information-content-security"),
    ("data-loss", "information-content-security"),
    ("ddos", "availability"),
    ("ddos-amplifier", "vulnerable"),
    ("dga-domain", "other"),
    ("dos", "availability"),
    ("exploit", "intrusion-attempts"),
    ("harmful-speech", "abusive-content"),
    ("ids-alert", "intrusion-attempts"),
    ("infected-system", "malicious-code"),
    ("information-disclosure", "vulnerable"),
    ("malware", "other"),
    ("malware-configuration", "malicious-code"),
    ("malware-distribution", "malicious-code"),
    ("masquerade", "fraud"),
    ("misconfiguration", "availability"),
    ("other", "other"),
    ("outage", "availability"),
    ("phishing", "fraud"),
    ("potentially-unwanted-accessible", "vulnerable"),
    ("privileged-account-compromise", "intrusions"),
    ("proxy", "other"),
    ("sabotage", "availability"),
    ("scanner", "information-gathering"),
    ("sniffing", "information-gathering"),
    ("social-engineering", "information-gathering"),
    ("spam", "abusive-content"),
    ("system-compromise", "intrusions"),
    ("test", "test"),
    ("tor", "other"),
    ("unauthorised-information-access", "information-content-security"),
    ("unauthorised-information-modification", "information-content-security"),
    ("unauthorized-use-of-resources", "fraud"),
    ("undetermined", "other"),
    ("unprivileged-account-compromise", "intrusions"),
    ("violence", "abusive-content"),
    ("vulnerable-system", "vulnerable"),
    ("weak-crypto", "vulnerable"),
];

/// The 44 allowed values of `classification.type` (sorted).
pub const CLASSIFICATION_TYPES: [&str; 44] = {
    let mut out = [""; 44];
    let mut i = 0;
    while i < 44 {
        out[i] = TYPE_TAXONOMY[i].0;
        i += 1;
    }
    out
};

/// `ClassificationType.sanitize` aliases, applied to the lowercased value. (IntelMQ also lists
/// `Unauthorised-information-access`, which can never match a lowercased value.)
pub const TYPE_ALIASES: [(&str, &str); 18] = [
    ("botnet drone", "infected-system"),
    ("ids alert", "ids-alert"),
    ("c&c", "c2-server"),
    ("c2server", "c2-server"),
    ("infected system", "infected-system"),
    ("malware configuration", "malware-configuration"),
    ("vulnerable client", "vulnerable-system"),
    ("vulnerable service", "vulnerable-system"),
    ("leak", "data-leak"),
    ("ransomware", "infected-system"),
    ("unknown", "undetermined"),
    ("dga domain", "dga-domain"),
    ("unauthorized-login", "system-compromise"),
    ("unauthorized-command", "system-compromise"),
    ("compromised", "system-compromise"),
    ("defacement", "unauthorised-information-modification"),
    ("backdoor", "system-compromise"),
    ("dropzone", "other"),
];

/// `ClassificationTaxonomy.sanitize` aliases, applied to the lowercased value.
pub const TAXONOMY_ALIASES: [(&str, &str); 4] = [
    ("abusive content", "abusive-content"),
    ("information gathering", "information-gathering"),
    ("intrusion attempts", "intrusion-attempts"),
    ("malicious code", "malicious-code"),
];

/// The allowed `Registry` values.
pub const REGISTRIES: [&str; 5] = ["AFRINIC", "APNIC", "ARIN", "LACNIC", "RIPE"];

/// The allowed `TLP` values (TLP 1.0; no `CLEAR`).
pub const TLP_LEVELS: [&str; 4] = ["WHITE", "GREEN", "AMBER", "RED"];

/// The taxonomy of an allowed classification type (`None` for anything else).
pub fn taxonomy_of(classification_type: &str) -> Option<&'static str> {
    TYPE_TAXONOMY.iter().find(|(t, _)| *t == classification_type).map(|(_, tax)| *tax)
}

/// The type's sanitize: `None` when the value cannot be repaired.
pub fn sanitize(ty: TypeName, v: &Value) -> Option<Value> {
    match ty {
        TypeName::String => generic_sanitize(v).map(Value::String),
        TypeName::LowercaseString => lowercase_sanitize(v).map(Value::String),
        TypeName::UppercaseString => uppercase_sanitize(v).map(Value::String),
        TypeName::Base64 => base64_sanitize(v),
        TypeName::Boolean => boolean_sanitize(v).map(Value::Bool),
        TypeName::Integer => integer_sanitize(v),
        TypeName::ASN => asn_sanitize(v),
        TypeName::Float => float_sanitize(v).and_then(float_value),
        TypeName::Accuracy => accuracy_sanitize(v),
        TypeName::FQDN => fqdn_sanitize(v).map(Value::String),
        TypeName::IPAddress => ip_address_sanitize(v).map(Value::String),
        TypeName::IPNetwork => ip_network_sanitize(v).map(Value::String),
        TypeName::DateTime => match v {
            Value::String(s) => datetime::sanitize(s).map(Value::String),
            _ => None,
        },
        TypeName::ClassificationType => classification_type_sanitize(v).map(Value::String),
        TypeName::ClassificationTaxonomy => taxonomy_sanitize(v).map(Value::String),
        TypeName::Registry => registry_sanitize(v).map(Value::String),
        TypeName::TLP => tlp_sanitize(v).map(Value::String),
        TypeName::URL => url_sanitize(v).map(Value::String),
        TypeName::JSON => json_sanitize(v).map(Value::String),
        TypeName::JSONDict => jsondict_sanitize(v).map(Value::String),
    }
}

/// The type's `is_valid` for a value as it would be stored (no sanitizing).
pub fn is_valid(ty: TypeName, v: &Value) -> bool {
    match ty {
        TypeName::String => generic_is_valid(v),
        TypeName::LowercaseString => as_valid_str(v).is_some_and(|s| s.to_lowercase() == s),
        TypeName::UppercaseString => as_valid_str(v).is_some_and(|s| s.to_uppercase() == s),
        TypeName::Base64 => as_valid_str(v).is_some_and(|s| is_canonical_base64(s) || base64_decode(s).is_some()),
        TypeName::Boolean => v.is_boolean(),
        TypeName::Integer => is_int(v),
        TypeName::ASN => is_int(v) && v.as_u64().is_some_and(asn_in_range),
        TypeName::Float => v.is_number(),
        TypeName::Accuracy => match v {
            // Quirk: any bool passes.
            Value::Bool(_) => true,
            Value::Number(n) => n.as_f64().is_some_and(|f| (0.0..=100.0).contains(&f)),
            _ => false,
        },
        TypeName::FQDN => as_valid_str(v).is_some_and(fqdn_is_valid),
        TypeName::IPAddress => as_valid_str(v).is_some_and(ip_address_is_valid),
        TypeName::IPNetwork => as_valid_str(v).is_some_and(|s| parse_network_scoped(s, true).is_some()),
        TypeName::DateTime => as_valid_str(v).is_some_and(datetime::is_valid),
        TypeName::ClassificationType => as_valid_str(v).is_some_and(|s| CLASSIFICATION_TYPES.contains(&s)),
        TypeName::ClassificationTaxonomy => as_valid_str(v).is_some_and(|s| TAXONOMIES.contains(&s)),
        TypeName::Registry => as_valid_str(v).is_some_and(|s| REGISTRIES.contains(&s)),
        TypeName::TLP => as_valid_str(v).is_some_and(|s| TLP_LEVELS.contains(&s)),
        TypeName::URL => as_valid_str(v).is_some_and(url_is_valid),
        TypeName::JSON => matches!(v, Value::String(s) if serde_json::from_str::<Value>(s).is_ok()),
        TypeName::JSONDict => matches!(v, Value::String(s) if is_nonempty_json_object(s)),
    }
}

// ---------------------------------------------------------------------------------------------
// Python helpers

/// Python's truthiness: `None`, `False`, `0`, `0.0`, `""`, `[]`, `{}` are falsy.
pub fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Python's `str.isspace()` for one character.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// `GenericType.sanitize`: falsy → `None`; a string is stripped; anything else becomes `str(v)`.
pub fn generic_sanitize(v: &Value) -> Option<String> {
    if is_falsy(v) {
        return None;
    }
    match v {
        Value::String(s) => Some(py_strip(s).to_string()),
        other => Some(wire::python_str(other)),
    }
}

/// `GenericType.is_valid`: a non-empty string.
fn generic_is_valid(v: &Value) -> bool {
    as_valid_str(v).is_some()
}

fn as_valid_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn lowercase_sanitize(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    generic_sanitize(&Value::String(s.to_lowercase()))
}

fn uppercase_sanitize(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    generic_sanitize(&Value::String(s.to_uppercase()))
}

fn classification_type_sanitize(v: &Value) -> Option<String> {
    let s = lowercase_sanitize(v).filter(|s| !s.is_empty())?;
    let mapped = TYPE_ALIASES.iter().find(|(from, _)| *from == s).map(|(_, to)| to.to_string()).unwrap_or(s);
    Some(py_strip(&mapped).to_string())
}

fn taxonomy_sanitize(v: &Value) -> Option<String> {
    let s = lowercase_sanitize(v).filter(|s| !s.is_empty())?;
    Some(TAXONOMY_ALIASES.iter().find(|(from, _)| *from == s).map(|(_, to)| to.to_string()).unwrap_or(s))
}

fn registry_sanitize(v: &Value) -> Option<String> {
    let s = uppercase_sanitize(v)?;
    Some(if s == "RIPENCC" || s == "RIPE-NCC" { "RIPE".to_string() } else { s })
}

fn tlp_sanitize(v: &Value) -> Option<String> {
    let s = uppercase_sanitize(v).filter(|s| !s.is_empty())?;
    // Remove the prefix `^(TLP:?)?\s*`.
    let rest = s.strip_prefix("TLP").map(|r| r.strip_prefix(':').unwrap_or(r)).unwrap_or(&s);
    let rest = rest.trim_start_matches(py_isspace);
    Some(if rest == "YELLOW" { "AMBER".to_string() } else { rest.to_string() })
}

// ---------------------------------------------------------------------------------------------
// Base64

fn base64_sanitize(v: &Value) -> Option<Value> {
    use base64::Engine as _;
    let s = v.as_str()?;
    Some(Value::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())))
}

/// Python's `base64.b64decode(s)` (non-validating): characters outside the alphabet are
/// skipped, decoding stops at a complete padding sequence, and a dangling partial quantum is an
/// error (`None`).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    // Canonical text (what every encoder writes) decodes the same way in both; the crate's decoder
    // is several times faster. It refuses non-zero trailing bits, which Python ignores.
    if is_canonical_base64(s) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s) {
            return Some(bytes);
        }
    }
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut quad_pos = 0u32;
    let mut left = 0u32;
    let mut pads = 0u32;
    for &c in s.as_bytes() {
        if c == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    // A complete pad sequence ends the data.
                    return Some(out);
                }
            }
            continue;
        }
        let Some(bits) = sextet(c) else { continue };
        pads = 0;
        match quad_pos {
            0 => {
                left = bits;
                quad_pos = 1;
            }
            1 => {
                out.push(((left << 2) | (bits >> 4)) as u8);
                left = bits & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push(((left << 4) | (bits >> 2)) as u8);
                left = bits & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push(((left << 6) | bits) as u8);
                quad_pos = 0;
            }
        }
    }
    if quad_pos == 0 {
        Some(out)
    } else {
        None
    }
}

/// Standard base64 as encoders write it: the alphabet only, `=` padding only at the end, a length
/// that is a multiple of 4. Python decodes such text without skipping or failing.
fn is_canonical_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return false;
    }
    let body = b.strip_suffix(b"==").or_else(|| b.strip_suffix(b"=")).unwrap_or(b);
    body.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

// ---------------------------------------------------------------------------------------------
// Numbers and booleans

fn boolean_sanitize(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match py_strip(s).to_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Value::Number(n) => match (n.as_i64(), n.is_f64()) {
            (Some(0), false) => Some(false),
            (Some(1), false) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// An integer JSON number (Python `int`, not `bool`).
fn is_int(v: &Value) -> bool {
    matches!(v, Value::Number(n) if !n.is_f64())
}

/// Python's `int(v)`: bool → 0/1, float → truncated, str → integer literal (whitespace,
/// sign, `_` between digits); results outside i64/u64 cannot be stored and give `None`.
fn integer_sanitize(v: &Value) -> Option<Value> {
    match v {
        Value::Bool(b) => Some(Value::from(i64::from(*b))),
        Value::Number(n) if !n.is_f64() => Some(v.clone()),
        Value::Number(n) => {
            let f = n.as_f64()?.trunc();
            if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
                Some(Value::from(f as i64))
            } else if (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                Some(Value::from(f as u64))
            } else {
                None
            }
        }
        Value::String(s) => parse_py_int(s),
        _ => None,
    }
}

/// Python's `int(str)` for decimal literals.
fn parse_py_int(s: &str) -> Option<Value> {
    let s = py_strip(s);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = remove_digit_underscores(digits)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: u128 = digits.trim_start_matches('0').parse().ok().or_else(|| {
        if digits.bytes().all(|b| b == b'0') {
            Some(0)
        } else {
            None
        }
    })?;
    if neg {
        let m = i128::try_from(magnitude).ok()?;
        i64::try_from(-m).ok().map(Value::from)
    } else if let Ok(i) = i64::try_from(magnitude) {
        Some(Value::from(i))
    } else {
        u64::try_from(magnitude).ok().map(Value::from)
    }
}

/// Removes `_` that sit between two digits (Python's numeric literal rule); `None` for any
/// other underscore.
fn remove_digit_underscores(s: &str) -> Option<String> {
    if !s.contains('_') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let ok = i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !ok {
                return None;
            }
        } else {
            out.push(c as char);
        }
    }
    Some(out)
}

fn asn_in_range(n: u64) -> bool {
    (1..=4_294_967_295).contains(&n)
}

fn asn_sanitize(v: &Value) -> Option<Value> {
    let v = match v {
        Value::String(s) if s.len() >= 2 && s.is_char_boundary(2) && s[..2].eq_ignore_ascii_case("as") => {
            Value::String(s[2..].to_string())
        }
        other => other.clone(),
    };
    let n = integer_sanitize(&v)?;
    if n.as_u64().is_some_and(asn_in_range) {
        Some(n)
    } else {
        None
    }
}

/// Python's `float(v)`; non-finite results cannot be stored and give `None`.
fn float_sanitize(v: &Value) -> Option<f64> {
    let f = match v {
        Value::Bool(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => parse_py_float(s)?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// Python's `float(str)`: whitespace, sign, decimal/exponent forms, `_` between digits,
/// `inf`/`nan` (returned as non-finite).
pub fn parse_py_float(s: &str) -> Option<f64> {
    let s = py_strip(s);
    let cleaned = remove_digit_underscores(s)?;
    let body = cleaned.trim_start_matches(['+', '-']);
    if cleaned.len() - body.len() > 1 {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let special = matches!(lower.as_str(), "inf" | "infinity" | "nan");
    if !special && !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

fn float_value(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

fn accuracy_sanitize(v: &Value) -> Option<Value> {
    if let Value::Bool(b) = v {
        return float_value(if *b { 100.0 } else { 0.0 });
    }
    let f = float_sanitize(v)?;
    if (0.0..=100.0).contains(&f) {
        float_value(f)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// FQDN

/// The label separators of Python's idna codec.
fn is_idna_dot(c: char) -> bool {
    matches!(c, '.' | '\u{3002}' | '\u{ff0e}' | '\u{ff61}')
}

/// Python's `str.encode('idna')` (IDNA 2003): ASCII names pass unchanged if every label but
/// the last is 1..63 characters; otherwise each non-ASCII label is nameprepped and punycoded.
/// `None` where Python raises `UnicodeError`.
pub fn idna2003_encode(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some(String::new());
    }
    if s.is_ascii() {
        let labels: Vec<&str> = s.split('.').collect();
        let (last, rest) = labels.split_last()?;
        if rest.iter().any(|l| l.is_empty() || l.len() > 63) || last.len() > 63 {
            return None;
        }
        return Some(s.to_string());
    }
    let mut labels: Vec<&str> = s.split(is_idna_dot).collect();
    let trailing_dot = labels.len() > 1 && labels.last().is_some_and(|l| l.is_empty());
    if trailing_dot {
        labels.pop();
    }
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        out.push(idna2003_label(label)?);
    }
    let mut joined = out.join(".");
    if trailing_dot {
        joined.push('.');
    }
    Some(joined)
}

/// IDNA 2003 ToASCII of one label (nameprep via UTS 46 mapping, after the IDNA 2003
/// deviations: `ß`→`ss`, final sigma → sigma, zero-width joiners removed).
fn idna2003_label(label: &str) -> Option<String> {
    let encoded = if label.is_ascii() {
        label.to_string()
    } else {
        let premapped: String = label
            .chars()
            .filter(|c| {
                !matches!(*c, '\u{ad}' | '\u{34f}' | '\u{1806}' | '\u{180b}'..='\u{180d}' | '\u{200b}'..='\u{200d}'
                    | '\u{2060}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}')
            })
            .flat_map(|c| match c {
                'ß' => vec!['s', 's'],
                'ς' => vec!['σ'],
                c => vec![c],
            })
            .collect();
        if premapped.is_empty() {
            return None;
        }
        if premapped.is_ascii() {
            premapped
        } else {
            match idna::domain_to_ascii(&premapped) {
                // The label must stay one label.
                Ok(mapped) if !mapped.contains('.') => mapped,
                Ok(_) => return None,
                // UTS 46 is stricter than IDNA 2003 (bidi and context rules, newer
                // disallowed code points): fall back to case folding and punycode.
                Err(_) => {
                    let folded = premapped.to_lowercase();
                    if folded.starts_with("xn--")
                        || folded.chars().any(is_nameprep_prohibited)
                        || !nameprep_bidi_ok(&folded)
                    {
                        return None;
                    }
                    if folded.is_ascii() {
                        folded
                    } else {
                        format!("xn--{}", idna::punycode::encode_str(&folded)?)
                    }
                }
            }
        }
    };
    if encoded.is_empty() || encoded.len() > 63 {
        return None;
    }
    Some(encoded)
}

/// Right-to-left letters (RFC 3454 RandALCat, approximated by block; Arabic-Indic digits and
/// combining marks excluded).
fn is_rand_al(c: char) -> bool {
    let cp = c as u32;
    let rtl_block =
        matches!(cp, 0x590..=0x8ff | 0xfb1d..=0xfdff | 0xfe70..=0xfefe | 0x10800..=0x10fff | 0x1e800..=0x1efff);
    let digit_or_mark = matches!(cp, 0x591..=0x5bd | 0x5bf | 0x5c1..=0x5c2 | 0x5c4..=0x5c5 | 0x5c7 | 0x610..=0x61a
        | 0x64b..=0x66d | 0x670 | 0x6d6..=0x6ed | 0x6f0..=0x6f9 | 0x711 | 0x730..=0x74a | 0x7a6..=0x7b0 | 0x7eb..=0x7f3);
    rtl_block && !digit_or_mark
}

/// The IDNA 2003 bidi rule: a label with right-to-left letters has no left-to-right letters
/// and starts and ends with a right-to-left letter.
fn nameprep_bidi_ok(label: &str) -> bool {
    if !label.chars().any(is_rand_al) {
        return true;
    }
    let has_ltr = label.chars().any(|c| c.is_alphabetic() && !is_rand_al(c) && !matches!(c as u32, 0x300..=0x36f));
    !has_ltr && label.chars().next().is_some_and(is_rand_al) && label.chars().last().is_some_and(is_rand_al)
}

/// Characters IDNA 2003 nameprep prohibits (RFC 3454 C.1.2–C.9, approximated).
fn is_nameprep_prohibited(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{a0}' | '\u{340}' | '\u{341}' | '\u{6dd}' | '\u{70f}' | '\u{1680}' | '\u{180e}'
        | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}' | '\u{205f}'..='\u{2063}' | '\u{206a}'..='\u{206f}'
        | '\u{2ff0}'..='\u{2ffb}' | '\u{3000}' | '\u{e000}'..='\u{f8ff}' | '\u{fdd0}'..='\u{fdef}' | '\u{feff}'
        | '\u{fff9}'..='\u{ffff}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}'
        | '\u{f0000}'..='\u{10ffff}')
        || (c as u32 & 0xfffe) == 0xfffe
}

fn fqdn_sanitize(v: &Value) -> Option<String> {
    let s = generic_sanitize(v)?;
    let s = s.trim_matches('.');
    if s.is_empty() {
        return None;
    }
    Some(idna2003_encode(s)?.to_lowercase())
}

fn fqdn_is_valid(s: &str) -> bool {
    if s.trim_matches('.') != s || s.to_lowercase() != s || s.contains(':') {
        return false;
    }
    if ip_address_is_valid(s) {
        return false;
    }
    match urlsplit(s) {
        Some(u) => {
            if !u.scheme.is_empty() || !u.netloc.is_empty() || !u.query.is_empty() || !u.fragment.is_empty() {
                return false;
            }
            if u.path.contains('/') {
                return false;
            }
        }
        None => return false,
    }
    idna2003_encode(s).is_some_and(|e| e == s)
}

// ---------------------------------------------------------------------------------------------
// IP addresses and networks

/// Python `ipaddress` IPv4 parsing: four decimal octets, no leading zeros, each <= 255.
pub fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        octets[i] = p.parse::<u8>().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// Python `ipaddress` IPv6 parsing with an optional `%scope` suffix (non-empty, one `%`).
pub fn parse_ipv6_scoped(s: &str) -> Option<(Ipv6Addr, Option<&str>)> {
    match s.split_once('%') {
        None => Some((parse_ipv6(s)?, None)),
        Some((addr, scope)) if !scope.is_empty() && !scope.contains('%') => Some((parse_ipv6(addr)?, Some(scope))),
        Some(_) => None,
    }
}

/// Python `ipaddress` IPv6 parsing (without scope ids).
pub fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if s.contains('%') || !s.contains(':') {
        return None;
    }
    // The embedded IPv4 part follows Python's stricter rules.
    if let Some(pos) = s.rfind(':') {
        let tail = &s[pos + 1..];
        if tail.contains('.') && parse_ipv4(tail).is_none() {
            return None;
        }
    }
    s.parse::<Ipv6Addr>().ok()
}

/// An IP address of either family, as `ipaddress.ip_address(str)` parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpAddr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl IpAddr {
    pub fn parse(s: &str) -> Option<IpAddr> {
        parse_ipv4(s).map(IpAddr::V4).or_else(|| parse_ipv6(s).map(IpAddr::V6))
    }

    pub fn version(self) -> u8 {
        match self {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        }
    }

    /// Python's `str(ip_address)`: dotted quad, or compressed lowercase IPv6 (IPv4-mapped
    /// addresses in hex, as Python 3.11 writes them).
    pub fn canonical(self) -> String {
        match self {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => ipv6_compressed(a),
        }
    }

    fn bits(self) -> u32 {
        match self {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    fn to_u128(self) -> u128 {
        match self {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn from_u128(v4: bool, n: u128) -> IpAddr {
        if v4 {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(n))
        }
    }
}

/// RFC 5952-style compression as Python does it: the first longest run of two or more zero
/// groups becomes `::`.
fn ipv6_compressed(a: Ipv6Addr) -> String {
    let groups = a.segments();
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let hex = |g: &[u16]| g.iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":");
    if best_len < 2 {
        return hex(&groups);
    }
    format!("{}::{}", hex(&groups[..best_start]), hex(&groups[best_start + best_len..]))
}

/// The IP version (4 or 6) of an address string, if it is one.
pub fn ip_version(s: &str) -> Option<u8> {
    IpAddr::parse(s).map(IpAddr::version)
}

/// The address as an integer (IntelMQ `IPAddress.to_int`).
pub fn ip_to_int(s: &str) -> Option<u128> {
    IpAddr::parse(s).map(IpAddr::to_u128)
}

/// The reverse-DNS (PTR) name of an address, with the trailing dot dnspython writes:
/// `192.0.2.1` → `1.2.0.192.in-addr.arpa.`.
pub fn ip_to_reverse(s: &str) -> Option<String> {
    match IpAddr::parse(s)? {
        IpAddr::V4(a) => {
            let o = a.octets();
            Some(format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]))
        }
        IpAddr::V6(a) => {
            let hex: String = a.octets().iter().map(|b| format!("{b:02x}")).collect();
            let mut out = String::with_capacity(73);
            for c in hex.chars().rev() {
                out.push(c);
                out.push('.');
            }
            out.push_str("ip6.arpa.");
            Some(out)
        }
    }
}

/// An IP network as `ipaddress.ip_network` parses it: (network address, prefix length).
pub fn parse_network(s: &str, strict: bool) -> Option<(IpAddr, u32)> {
    parse_network_scoped(s, strict).map(|(ip, plen, _)| (ip, plen))
}

/// Like [`parse_network`], also returning an IPv6 scope id that survives (Python keeps it on
/// the network address unless host bits had to be cleared).
fn parse_network_scoped(s: &str, strict: bool) -> Option<(IpAddr, u32, Option<&str>)> {
    let mut parts = s.split('/');
    let addr = parts.next()?;
    let prefix = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let mut scope = None;
    let ip = match parse_ipv4(addr) {
        Some(ip) => IpAddr::V4(ip),
        None => {
            let (ip, sc) = parse_ipv6_scoped(addr)?;
            scope = sc;
            IpAddr::V6(ip)
        }
    };
    let bits = ip.bits();
    let plen = match prefix {
        None => bits,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = p.parse().ok()?;
            if n > bits {
                return None;
            }
            n
        }
        Some(p) if bits == 32 => ipv4_mask_prefix(parse_ipv4(p)?)?,
        Some(_) => return None,
    };
    let mask: u128 = if plen == 0 { 0 } else { (!0u128 << (128 - plen)) >> (128 - bits) };
    let n = ip.to_u128();
    let host_bits = n & !mask & (u128::MAX >> (128 - bits)) != 0;
    if strict && host_bits {
        return None;
    }
    if host_bits {
        scope = None;
    }
    Some((IpAddr::from_u128(bits == 32, n & mask), plen, scope))
}

/// A dotted IPv4 netmask (`255.255.255.0`) or hostmask (`0.0.0.255`) as a prefix length.
fn ipv4_mask_prefix(mask: Ipv4Addr) -> Option<u32> {
    let m = u32::from(mask);
    let as_netmask = |m: u32| {
        let ones = m.leading_ones();
        (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
    };
    as_netmask(m).or_else(|| as_netmask(!m))
}

fn ip_address_sanitize(v: &Value) -> Option<String> {
    let ip = match v {
        // `bool` is an `int` in Python.
        Value::Bool(b) => ip_from_int(u128::from(*b))?,
        Value::Number(n) if !n.is_f64() => ip_from_int(u128::from(n.as_u64()?))?,
        Value::String(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            let s = generic_sanitize(v)?;
            let s = s.as_str();
            // Only the canonical decimal text of an integer counts as an integer address.
            let canonical_int = s == "0"
                || (s.starts_with(|c: char| ('1'..='9').contains(&c)) && s.bytes().all(|b| b.is_ascii_digit()));
            if canonical_int {
                ip_from_int(s.parse::<u128>().ok()?)?
            } else if s.starts_with('-')
                && s.len() > 1
                && !s[1..].starts_with('0')
                && s[1..].bytes().all(|b| b.is_ascii_digit())
            {
                // A negative integer: `ip_address(int)` rejects it.
                return None;
            } else {
                let s = s.split('%').next().unwrap_or(s);
                let (net, plen) = parse_network(s, true)?;
                if plen != net.bits() {
                    return None;
                }
                net
            }
        }
        _ => return None,
    };
    Some(ip.canonical())
}

fn ip_from_int(n: u128) -> Option<IpAddr> {
    Some(if let Ok(v4) = u32::try_from(n) { IpAddr::V4(Ipv4Addr::from(v4)) } else { IpAddr::V6(Ipv6Addr::from(n)) })
}

fn ip_address_is_valid(s: &str) -> bool {
    match IpAddr::parse(s) {
        Some(IpAddr::V4(a)) => !a.is_unspecified(),
        Some(IpAddr::V6(_)) => true,
        None => false,
    }
}

fn ip_network_sanitize(v: &Value) -> Option<String> {
    let s = generic_sanitize(v)?;
    let (net, plen, scope) = parse_network_scoped(&s, false)?;
    Some(match scope {
        Some(scope) => format!("{}%{}/{}", net.canonical(), scope, plen),
        None => format!("{}/{}", net.canonical(), plen),
    })
}

// ---------------------------------------------------------------------------------------------
// URL

/// The five parts of `urllib.parse.urlsplit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitUrl {
    pub scheme: String,
    pub netloc: String,
    pub path: String,
    pub query: String,
    pub fragment: String,
}

/// Python 3.11's `urlsplit`: `None` where it raises (unbalanced `[`/`]` in the netloc).
pub fn urlsplit(url: &str) -> Option<SplitUrl> {
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let url: std::borrow::Cow<'_, str> = if url.contains(['\t', '\r', '\n']) {
        url.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect::<String>().into()
    } else {
        url.into()
    };
    let mut out = SplitUrl::default();
    let mut rest: &str = &url;
    if let Some(i) = rest.find(':') {
        let candidate = &rest[..i];
        let first_ok = candidate.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if i > 0 && first_ok && candidate.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
            out.scheme = candidate.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        out.netloc = after[..end].to_string();
        rest = &after[end..];
        let open = out.netloc.contains('[');
        let close = out.netloc.contains(']');
        if open != close {
            return None;
        }
        if open {
            // The bracketed host must be an IPv6 address (or `v<hex>.<x>`, IPvFuture).
            let host = out.netloc.split_once('[').map(|(_, r)| r).unwrap_or("");
            let host = host.split_once(']').map(|(h, _)| h).unwrap_or(host);
            let ok = if let Some(rest) = host.strip_prefix('v') {
                rest.split_once('.').is_some_and(|(hex, tail)| {
                    !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) && !tail.is_empty()
                })
            } else {
                parse_ipv6_scoped(host).is_some()
            };
            if !ok {
                return None;
            }
        }
    }
    if let Some((before, frag)) = rest.split_once('#') {
        out.fragment = frag.to_string();
        rest = before;
    }
    if let Some((before, query)) = rest.split_once('?') {
        out.query = query.to_string();
        rest = before;
    }
    out.path = rest.to_string();
    Some(out)
}

fn url_sanitize(v: &Value) -> Option<String> {
    let s = generic_sanitize(v)?;
    let s = s.replace("hxxp://", "http://").replace("hxxps://", "https://");
    let split = urlsplit(&s)?;
    if split.scheme == "file" && split.netloc.is_empty() {
        let mut fixed = split;
        fixed.netloc = "localhost".to_string();
        let joined = urlunsplit(&fixed);
        return urlsplit(&joined).filter(|u| !u.netloc.is_empty()).map(|_| joined);
    }
    if split.netloc.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// Python's `urlunsplit` (used only for the `file:` repair).
fn urlunsplit(u: &SplitUrl) -> String {
    let mut url = u.path.clone();
    if !u.netloc.is_empty() {
        if !url.is_empty() && !url.starts_with('/') {
            url.insert(0, '/');
        }
        url = format!("//{}{}", u.netloc, url);
    }
    if !u.scheme.is_empty() {
        url = format!("{}:{}", u.scheme, url);
    }
    if !u.query.is_empty() {
        url = format!("{url}?{}", u.query);
    }
    if !u.fragment.is_empty() {
        url = format!("{url}#{}", u.fragment);
    }
    url
}

fn url_is_valid(s: &str) -> bool {
    // Python's `string.whitespace` (ASCII only).
    if s.starts_with([' ', '\t', '\n', '\r', '\x0b', '\x0c']) {
        return false;
    }
    urlsplit(s).is_some_and(|u| !u.netloc.is_empty())
}

/// IntelMQ `URL.to_domain_name`: the netloc when it is not an IP address.
pub fn url_to_domain_name(url: &str) -> Option<String> {
    let u = urlsplit(url)?;
    if u.netloc.is_empty() || ip_address_is_valid(&u.netloc) {
        None
    } else {
        Some(u.netloc)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

fn is_nonempty_json_object(s: &str) -> bool {
    matches!(serde_json::from_str::<Value>(s), Ok(Value::Object(o)) if !o.is_empty())
}

fn json_sanitize(v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    if let Value::String(_) = v {
        if let Some(stripped) = generic_sanitize(v) {
            if serde_json::from_str::<Value>(&stripped).is_ok() {
                return Some(stripped);
            }
        }
    }
    generic_sanitize(&Value::String(wire::dumps_sorted(v)))
}

fn jsondict_sanitize(v: &Value) -> Option<String> {
    if is_falsy(v) {
        return None;
    }
    if let Value::String(_) = v {
        if let Some(stripped) = generic_sanitize(v) {
            if is_nonempty_json_object(&stripped) {
                return Some(stripped);
            }
        }
    }
    Some(wire::dumps_sorted(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn san(ty: TypeName, v: Value) -> Option<Value> {
        sanitize(ty, &v)
    }

    fn ok(ty: TypeName, v: Value) -> bool {
        is_valid(ty, &v)
    }

    #[test]
    fn string_strips_and_stringifies() {
        assert_eq!(san(TypeName::String, json!("  abc \n")), Some(json!("abc")));
        assert_eq!(san(TypeName::String, json!(80)), Some(json!("80")));
        assert_eq!(san(TypeName::String, json!(1.5)), Some(json!("1.5")));
        assert_eq!(san(TypeName::String, json!(true)), Some(json!("True")));
        assert_eq!(san(TypeName::String, json!([1, "a"])), Some(json!("[1, 'a']")));
        assert_eq!(san(TypeName::String, json!(0)), None);
        assert_eq!(san(TypeName::String, json!(false)), None);
        assert_eq!(san(TypeName::String, json!("")), None);
        assert_eq!(san(TypeName::String, json!("\u{1c} x \u{a0}")), Some(json!("x")));
    }

    #[test]
    fn string_validity_does_not_check_whitespace() {
        assert!(ok(TypeName::String, json!(" padded ")));
        assert!(!ok(TypeName::String, json!("")));
        assert!(!ok(TypeName::String, json!(1)));
        assert!(!ok(TypeName::String, Value::Null));
    }

    #[test]
    fn lowercase_and_uppercase_strings() {
        assert_eq!(san(TypeName::LowercaseString, json!(" ABC Def ")), Some(json!("abc def")));
        assert_eq!(san(TypeName::LowercaseString, json!(12)), None);
        assert!(ok(TypeName::LowercaseString, json!("abc 1")));
        assert!(!ok(TypeName::LowercaseString, json!("Abc")));
        assert_eq!(san(TypeName::UppercaseString, json!(" at ")), Some(json!("AT")));
        assert_eq!(san(TypeName::UppercaseString, json!("straße")), Some(json!("STRASSE")));
        assert!(ok(TypeName::UppercaseString, json!("AT")));
        assert!(!ok(TypeName::UppercaseString, json!("At")));
        assert_eq!(san(TypeName::UppercaseString, json!(true)), None);
    }

    #[test]
    fn base64_encodes_on_sanitize_and_decodes_leniently() {
        assert_eq!(san(TypeName::Base64, json!("Hello")), Some(json!("SGVsbG8=")));
        assert_eq!(san(TypeName::Base64, json!("ö")), Some(json!("w7Y=")));
        assert_eq!(san(TypeName::Base64, json!(5)), None);
        assert!(ok(TypeName::Base64, json!("SGVsbG8=")));
        assert!(ok(TypeName::Base64, json!("SGVs\nbG8=")));
        assert!(ok(TypeName::Base64, json!("SGVsbA==")));
        assert!(!ok(TypeName::Base64, json!("SGVsbG8")));
        assert!(!ok(TypeName::Base64, json!("S")));
        assert!(!ok(TypeName::Base64, json!("")));
        assert_eq!(base64_decode("SGVsbG8=garbage"), Some(b"Hello".to_vec()));
        assert_eq!(base64_decode("SGVs bG8="), Some(b"Hello".to_vec()));
        assert_eq!(base64_decode("SGVsbG8"), None);
        assert_eq!(base64_decode("!!"), Some(Vec::new()));
    }

    #[test]
    fn canonical_base64_takes_the_fast_path_with_python_results() {
        // Non-zero trailing bits: the crate refuses, Python ignores them.
        assert_eq!(base64_decode("SGVsbG9="), Some(b"Hello".to_vec()));
        assert!(ok(TypeName::Base64, json!("SGVsbG9=")));
        assert!(is_canonical_base64("SGVsbA=="));
        assert!(!is_canonical_base64("SGVsbA=A"));
        assert!(!is_canonical_base64("SG==bA=="));
        assert!(!is_canonical_base64("SGVs\nbG8="));
        // Every length and padding: the fast path gives what the lenient decoder gives.
        use base64::Engine as _;
        for n in 0..64usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert!(is_canonical_base64(&text));
            assert_eq!(base64_decode(&text), Some(bytes.clone()), "length {n}");
            assert_eq!(base64_decode(&format!("{text}\n")), Some(bytes), "length {n} with a newline");
        }
    }

    #[test]
    fn boolean_accepts_words_and_zero_one() {
        assert_eq!(san(TypeName::Boolean, json!(" TRUE ")), Some(json!(true)));
        assert_eq!(san(TypeName::Boolean, json!("false")), Some(json!(false)));
        assert_eq!(san(TypeName::Boolean, json!(1)), Some(json!(true)));
        assert_eq!(san(TypeName::Boolean, json!(0)), Some(json!(false)));
        assert_eq!(san(TypeName::Boolean, json!(true)), Some(json!(true)));
        assert_eq!(san(TypeName::Boolean, json!(2)), None);
        assert_eq!(san(TypeName::Boolean, json!(1.0)), None);
        assert_eq!(san(TypeName::Boolean, json!("yes")), None);
        assert!(ok(TypeName::Boolean, json!(false)));
        assert!(!ok(TypeName::Boolean, json!(1)));
        assert!(!ok(TypeName::Boolean, json!("true")));
    }

    #[test]
    fn integer_parses_and_truncates() {
        assert_eq!(san(TypeName::Integer, json!("80")), Some(json!(80)));
        assert_eq!(san(TypeName::Integer, json!(" 80 ")), Some(json!(80)));
        assert_eq!(san(TypeName::Integer, json!("+8")), Some(json!(8)));
        assert_eq!(san(TypeName::Integer, json!("-8")), Some(json!(-8)));
        assert_eq!(san(TypeName::Integer, json!("1_000")), Some(json!(1000)));
        assert_eq!(san(TypeName::Integer, json!("007")), Some(json!(7)));
        assert_eq!(san(TypeName::Integer, json!(8.9)), Some(json!(8)));
        assert_eq!(san(TypeName::Integer, json!(-8.9)), Some(json!(-8)));
        assert_eq!(san(TypeName::Integer, json!(true)), Some(json!(1)));
        assert_eq!(san(TypeName::Integer, json!("8.0")), None);
        assert_eq!(san(TypeName::Integer, json!("0x10")), None);
        assert_eq!(san(TypeName::Integer, json!("_1")), None);
        assert_eq!(san(TypeName::Integer, json!("1__0")), None);
        assert_eq!(san(TypeName::Integer, json!("")), None);
        assert_eq!(san(TypeName::Integer, json!([1])), None);
        assert_eq!(san(TypeName::Integer, json!("18446744073709551615")), Some(json!(18446744073709551615u64)));
        assert_eq!(san(TypeName::Integer, json!("18446744073709551616")), None);
        assert!(ok(TypeName::Integer, json!(80)));
        assert!(ok(TypeName::Integer, json!(-1)));
        assert!(!ok(TypeName::Integer, json!(80.0)));
        assert!(!ok(TypeName::Integer, json!(true)));
        assert!(!ok(TypeName::Integer, json!("80")));
    }

    #[test]
    fn asn_strips_prefix_and_checks_range() {
        assert_eq!(san(TypeName::ASN, json!("AS64496")), Some(json!(64496)));
        assert_eq!(san(TypeName::ASN, json!("as 64496")), Some(json!(64496)));
        assert_eq!(san(TypeName::ASN, json!("64496")), Some(json!(64496)));
        assert_eq!(san(TypeName::ASN, json!(4294967295u64)), Some(json!(4294967295u64)));
        assert_eq!(san(TypeName::ASN, json!(4294967296u64)), None);
        assert_eq!(san(TypeName::ASN, json!(0)), None);
        assert_eq!(san(TypeName::ASN, json!(" AS1")), None);
        assert_eq!(san(TypeName::ASN, json!("ASX")), None);
        assert!(ok(TypeName::ASN, json!(1)));
        assert!(!ok(TypeName::ASN, json!(0)));
        assert!(!ok(TypeName::ASN, json!(-5)));
        assert!(!ok(TypeName::ASN, json!(5.0)));
    }

    #[test]
    fn float_parses_python_literals() {
        assert_eq!(san(TypeName::Float, json!("1.5")), Some(json!(1.5)));
        assert_eq!(san(TypeName::Float, json!(" -2 ")), Some(json!(-2.0)));
        assert_eq!(san(TypeName::Float, json!("1e3")), Some(json!(1000.0)));
        assert_eq!(san(TypeName::Float, json!(".5")), Some(json!(0.5)));
        assert_eq!(san(TypeName::Float, json!("1_0.5")), Some(json!(10.5)));
        assert_eq!(san(TypeName::Float, json!(5)), Some(json!(5.0)));
        assert_eq!(san(TypeName::Float, json!(true)), Some(json!(1.0)));
        assert_eq!(san(TypeName::Float, json!("nan")), None);
        assert_eq!(san(TypeName::Float, json!("inf")), None);
        assert_eq!(san(TypeName::Float, json!("abc")), None);
        assert_eq!(san(TypeName::Float, json!("1,5")), None);
        assert_eq!(san(TypeName::Float, Value::Null), None);
        assert!(ok(TypeName::Float, json!(1)));
        assert!(ok(TypeName::Float, json!(1.5)));
        assert!(!ok(TypeName::Float, json!(true)));
        assert!(!ok(TypeName::Float, json!("1.5")));
    }

    #[test]
    fn accuracy_range_and_bool_quirk() {
        assert_eq!(san(TypeName::Accuracy, json!(true)), Some(json!(100.0)));
        assert_eq!(san(TypeName::Accuracy, json!(false)), Some(json!(0.0)));
        assert_eq!(san(TypeName::Accuracy, json!("50")), Some(json!(50.0)));
        assert_eq!(san(TypeName::Accuracy, json!(100)), Some(json!(100.0)));
        assert_eq!(san(TypeName::Accuracy, json!(100.5)), None);
        assert_eq!(san(TypeName::Accuracy, json!(-1)), None);
        assert!(ok(TypeName::Accuracy, json!(true)));
        assert!(ok(TypeName::Accuracy, json!(0)));
        assert!(ok(TypeName::Accuracy, json!(100.0)));
        assert!(!ok(TypeName::Accuracy, json!(101)));
        assert!(!ok(TypeName::Accuracy, json!("50")));
    }

    #[test]
    fn fqdn_sanitize_strips_dots_lowercases_and_punycodes() {
        assert_eq!(san(TypeName::FQDN, json!("exAmple.net")), Some(json!("example.net")));
        assert_eq!(san(TypeName::FQDN, json!(".example.com.")), Some(json!("example.com")));
        assert_eq!(san(TypeName::FQDN, json!("ö1.at")), Some(json!("xn--1-0ga.at")));
        assert_eq!(san(TypeName::FQDN, json!("Ö1.at")), Some(json!("xn--1-0ga.at")));
        assert_eq!(san(TypeName::FQDN, json!("straße.de")), Some(json!("strasse.de")));
        assert_eq!(san(TypeName::FQDN, json!("my_host.example.com")), Some(json!("my_host.example.com")));
        assert_eq!(san(TypeName::FQDN, json!("a..b")), None);
        assert_eq!(san(TypeName::FQDN, json!(format!("{}.com", "a".repeat(64)))), None);
        assert_eq!(san(TypeName::FQDN, json!("...")), None);
        assert_eq!(san(TypeName::FQDN, json!("١٢٣.com")), Some(json!("xn--9hbcd.com")));
        assert_eq!(san(TypeName::FQDN, json!("ⅷ.com")), Some(json!("viii.com")));
        assert_eq!(san(TypeName::FQDN, json!("a\u{200d}b.com")), Some(json!("ab.com")));
        assert_eq!(san(TypeName::FQDN, json!("xn--ö.com")), None);
    }

    #[test]
    fn fqdn_validity() {
        assert!(ok(TypeName::FQDN, json!("example.com")));
        assert!(ok(TypeName::FQDN, json!("localhost")));
        assert!(ok(TypeName::FQDN, json!("_dmarc.example.com")));
        assert!(ok(TypeName::FQDN, json!("xn--1-0ga.at")));
        assert!(!ok(TypeName::FQDN, json!("example.com.")));
        assert!(!ok(TypeName::FQDN, json!("Example.com")));
        assert!(!ok(TypeName::FQDN, json!("192.0.2.1")));
        assert!(!ok(TypeName::FQDN, json!("::1")));
        assert!(!ok(TypeName::FQDN, json!("example.com/path")));
        assert!(!ok(TypeName::FQDN, json!("http://example.com")));
        assert!(!ok(TypeName::FQDN, json!("example.com?x")));
        assert!(!ok(TypeName::FQDN, json!("ö1.at")));
        assert!(!ok(TypeName::FQDN, json!("a..b")));
        assert!(!ok(TypeName::FQDN, json!("1:2")));
        assert!(!ok(TypeName::FQDN, json!("10.0.0.1:8080")));
        assert!(!ok(TypeName::FQDN, json!("")));
    }

    #[test]
    fn ip_address_sanitize_canonicalizes() {
        assert_eq!(san(TypeName::IPAddress, json!(" 192.0.2.1 ")), Some(json!("192.0.2.1")));
        assert_eq!(san(TypeName::IPAddress, json!("192.0.2.1/32")), Some(json!("192.0.2.1")));
        assert_eq!(san(TypeName::IPAddress, json!("192.0.2.0/24")), None);
        assert_eq!(san(TypeName::IPAddress, json!("2001:DB8:0:0::1")), Some(json!("2001:db8::1")));
        assert_eq!(san(TypeName::IPAddress, json!("fe80::1%eth0")), Some(json!("fe80::1")));
        assert_eq!(san(TypeName::IPAddress, json!(3232235777u64)), Some(json!("192.168.1.1")));
        assert_eq!(san(TypeName::IPAddress, json!("3232235777")), Some(json!("192.168.1.1")));
        assert_eq!(san(TypeName::IPAddress, json!(4294967296u64)), Some(json!("::1:0:0")));
        assert_eq!(san(TypeName::IPAddress, json!("::ffff:1.2.3.4")), Some(json!("::ffff:102:304")));
        assert_eq!(san(TypeName::IPAddress, json!("192.0.2.01")), None);
        assert_eq!(san(TypeName::IPAddress, json!("256.0.0.1")), None);
        assert_eq!(san(TypeName::IPAddress, json!("example.com")), None);
        assert_eq!(san(TypeName::IPAddress, json!(1.5)), None);
        assert_eq!(san(TypeName::IPAddress, json!("0123")), None);
        assert_eq!(san(TypeName::IPAddress, json!("-5")), None);
        assert_eq!(san(TypeName::IPAddress, json!("0")), Some(json!("0.0.0.0")));
        assert_eq!(san(TypeName::IPAddress, json!(true)), Some(json!("0.0.0.1")));
    }

    #[test]
    fn ip_address_validity() {
        assert!(ok(TypeName::IPAddress, json!("192.0.2.1")));
        assert!(ok(TypeName::IPAddress, json!("2001:DB8::1")));
        assert!(ok(TypeName::IPAddress, json!("::")));
        assert!(!ok(TypeName::IPAddress, json!("0.0.0.0")));
        assert!(!ok(TypeName::IPAddress, json!("fe80::1%eth0")));
        assert!(!ok(TypeName::IPAddress, json!("192.0.2.1/32")));
        assert!(!ok(TypeName::IPAddress, json!(" 192.0.2.1")));
        assert!(!ok(TypeName::IPAddress, json!(3232235777u64)));
    }

    #[test]
    fn ip_network_strict_validity_and_lenient_sanitize() {
        assert!(ok(TypeName::IPNetwork, json!("192.0.2.0/24")));
        assert!(ok(TypeName::IPNetwork, json!("192.0.2.1")));
        assert!(ok(TypeName::IPNetwork, json!("2001:DB8::/32")));
        assert!(ok(TypeName::IPNetwork, json!("192.0.2.0/255.255.255.0")));
        assert!(!ok(TypeName::IPNetwork, json!("192.0.2.1/24")));
        assert!(!ok(TypeName::IPNetwork, json!("192.0.2.0/37")));
        assert!(!ok(TypeName::IPNetwork, json!("192.0.2.0/")));
        assert_eq!(san(TypeName::IPNetwork, json!("192.0.2.1/24")), Some(json!("192.0.2.0/24")));
        assert_eq!(san(TypeName::IPNetwork, json!("192.0.2.1")), Some(json!("192.0.2.1/32")));
        assert_eq!(san(TypeName::IPNetwork, json!("2001:DB8::1")), Some(json!("2001:db8::1/128")));
        assert_eq!(san(TypeName::IPNetwork, json!("1.2.3.0/0.0.0.255")), Some(json!("1.2.3.0/24")));
        assert_eq!(san(TypeName::IPNetwork, json!("0.0.0.0/0")), Some(json!("0.0.0.0/0")));
        assert_eq!(san(TypeName::IPNetwork, json!("10.0.0.0/8/8")), None);
        assert_eq!(san(TypeName::IPNetwork, json!(" 10.1.0.0/8 ")), Some(json!("10.0.0.0/8")));
        assert_eq!(san(TypeName::IPNetwork, json!(5)), None);
        assert_eq!(san(TypeName::IPNetwork, json!("fe80::1%eth0")), Some(json!("fe80::1%eth0/128")));
        assert_eq!(san(TypeName::IPNetwork, json!("fe80::1%eth0/64")), Some(json!("fe80::/64")));
        assert!(ok(TypeName::IPNetwork, json!("fe80::%1/64")));
        assert_eq!(san(TypeName::IPNetwork, json!("2001:db8::/129")), None);
    }

    #[test]
    fn ip_helpers() {
        assert_eq!(ip_version("192.0.2.1"), Some(4));
        assert_eq!(ip_version("::1"), Some(6));
        assert_eq!(ip_version("x"), None);
        assert_eq!(ip_to_int("0.0.1.0"), Some(256));
        assert_eq!(ip_to_reverse("192.0.2.1").as_deref(), Some("1.2.0.192.in-addr.arpa."));
        assert_eq!(
            ip_to_reverse("2001:db8::1").as_deref(),
            Some("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.")
        );
        assert_eq!(ipv6_compressed("1:0:0:1:0:0:0:1".parse().expect("v6")), "1:0:0:1::1");
        assert_eq!(ipv6_compressed("2001:db8:0:0:1:0:0:1".parse().expect("v6")), "2001:db8::1:0:0:1");
        assert_eq!(ipv6_compressed("1:2:3:4:5:6:7:0".parse().expect("v6")), "1:2:3:4:5:6:7:0");
        assert_eq!(ipv6_compressed("::".parse().expect("v6")), "::");
    }

    #[test]
    fn classification_type_aliases() {
        assert_eq!(san(TypeName::ClassificationType, json!("Botnet Drone")), Some(json!("infected-system")));
        assert_eq!(san(TypeName::ClassificationType, json!("c&c")), Some(json!("c2-server")));
        assert_eq!(san(TypeName::ClassificationType, json!(" unknown ")), Some(json!("undetermined")));
        assert_eq!(san(TypeName::ClassificationType, json!("PHISHING")), Some(json!("phishing")));
        assert_eq!(san(TypeName::ClassificationType, json!("whatever")), Some(json!("whatever")));
        assert_eq!(san(TypeName::ClassificationType, json!("  ")), None);
        assert_eq!(san(TypeName::ClassificationTaxonomy, json!("  ")), None);
        assert_eq!(san(TypeName::TLP, json!("  ")), None);
        assert!(!ok(TypeName::ClassificationType, json!("whatever")));
        assert!(ok(TypeName::ClassificationType, json!("c2-server")));
        assert!(!ok(TypeName::ClassificationType, json!("c&c")));
        assert!(!ok(TypeName::ClassificationType, json!("Phishing")));
    }

    #[test]
    fn classification_taxonomy_aliases() {
        assert_eq!(san(TypeName::ClassificationTaxonomy, json!("Malicious Code")), Some(json!("malicious-code")));
        assert_eq!(san(TypeName::ClassificationTaxonomy, json!("Other")), Some(json!("other")));
        assert!(ok(TypeName::ClassificationTaxonomy, json!("vulnerable")));
        assert!(!ok(TypeName::ClassificationTaxonomy, json!("malicious code")));
    }

    #[test]
    fn taxonomy_table() {
        assert_eq!(taxonomy_of("c2-server"), Some("malicious-code"));
        assert_eq!(taxonomy_of("undetermined"), Some("other"));
        assert_eq!(taxonomy_of("nope"), None);
        assert_eq!(CLASSIFICATION_TYPES.len(), 44);
        for (_, tax) in TYPE_TAXONOMY {
            assert!(TAXONOMIES.contains(&tax));
        }
    }

    #[test]
    fn registry_and_tlp() {
        assert_eq!(san(TypeName::Registry, json!(" ripe-ncc ")), Some(json!("RIPE")));
        assert_eq!(san(TypeName::Registry, json!("RIPENCC")), Some(json!("RIPE")));
        assert_eq!(san(TypeName::Registry, json!("arin")), Some(json!("ARIN")));
        assert!(ok(TypeName::Registry, json!("APNIC")));
        assert!(!ok(TypeName::Registry, json!("apnic")));
        assert!(!ok(TypeName::Registry, json!("IANA")));
        assert_eq!(san(TypeName::TLP, json!("tlp:amber")), Some(json!("AMBER")));
        assert_eq!(san(TypeName::TLP, json!("tlp amber")), Some(json!("AMBER")));
        assert_eq!(san(TypeName::TLP, json!("TLP:YELLOW")), Some(json!("AMBER")));
        assert_eq!(san(TypeName::TLP, json!(" green")), Some(json!("GREEN")));
        assert_eq!(san(TypeName::TLP, json!("TLP:CLEAR")), Some(json!("CLEAR")));
        assert!(!ok(TypeName::TLP, json!("CLEAR")));
        assert!(ok(TypeName::TLP, json!("RED")));
        assert!(!ok(TypeName::TLP, json!("red")));
    }

    #[test]
    fn url_sanitize_repairs_hxxp_and_file() {
        assert_eq!(san(TypeName::URL, json!(" hxxp://example.com/a ")), Some(json!("http://example.com/a")));
        assert_eq!(san(TypeName::URL, json!("hxxps://example.com")), Some(json!("https://example.com")));
        assert_eq!(san(TypeName::URL, json!("HXXP://example.com")), Some(json!("HXXP://example.com")));
        assert_eq!(san(TypeName::URL, json!("file:///etc/passwd")), Some(json!("file://localhost/etc/passwd")));
        assert_eq!(san(TypeName::URL, json!("file:etc")), Some(json!("file://localhost/etc")));
        assert_eq!(san(TypeName::URL, json!("HTTP://Example.com/A?")), Some(json!("HTTP://Example.com/A?")));
        assert_eq!(san(TypeName::URL, json!("www.example.com/a")), None);
        assert_eq!(san(TypeName::URL, json!("example.com:80/a")), None);
        assert_eq!(san(TypeName::URL, json!("http://[::1/")), None);
        assert_eq!(san(TypeName::URL, json!("mailto:a@b")), None);
        assert_eq!(san(TypeName::URL, json!("hxxp://evil[.]com/x")), None);
        assert_eq!(san(TypeName::URL, json!("http://[::1]:80/")), Some(json!("http://[::1]:80/")));
        assert_eq!(san(TypeName::URL, json!("http://[1.2.3.4]/")), None);
    }

    #[test]
    fn url_validity() {
        assert!(ok(TypeName::URL, json!("http://example.com")));
        assert!(ok(TypeName::URL, json!("//example.com/x")));
        assert!(ok(TypeName::URL, json!("tcp://192.0.2.1:80")));
        assert!(ok(TypeName::URL, json!("http://a b/")));
        assert!(!ok(TypeName::URL, json!(" http://example.com")));
        assert!(ok(TypeName::URL, json!("\u{1c}//example.com")));
        assert!(!ok(TypeName::URL, json!("http:///x")));
        assert!(!ok(TypeName::URL, json!("example.com")));
        assert_eq!(url_to_domain_name("http://example.com/x").as_deref(), Some("example.com"));
        assert_eq!(url_to_domain_name("http://192.0.2.1/x"), None);
    }

    #[test]
    fn json_accepts_any_json_text() {
        assert_eq!(san(TypeName::JSON, json!(" {\"a\": 1} ")), Some(json!("{\"a\": 1}")));
        assert_eq!(san(TypeName::JSON, json!("[1,2]")), Some(json!("[1,2]")));
        assert_eq!(san(TypeName::JSON, json!("plain text")), Some(json!("\"plain text\"")));
        assert_eq!(san(TypeName::JSON, json!({"b": 1, "a": "ä"})), Some(json!("{\"a\": \"\\u00e4\", \"b\": 1}")));
        assert_eq!(san(TypeName::JSON, json!(5)), Some(json!("5")));
        assert_eq!(san(TypeName::JSON, Value::Null), None);
        assert!(ok(TypeName::JSON, json!("\"x\"")));
        assert!(ok(TypeName::JSON, json!("1")));
        assert!(!ok(TypeName::JSON, json!("plain text")));
        assert!(!ok(TypeName::JSON, json!({"a": 1})));
    }

    #[test]
    fn jsondict_requires_nonempty_object_text() {
        assert_eq!(san(TypeName::JSONDict, json!("{\"b\": 1, \"a\": 2}")), Some(json!("{\"b\": 1, \"a\": 2}")));
        assert_eq!(san(TypeName::JSONDict, json!({"b": 1, "a": 2})), Some(json!("{\"a\": 2, \"b\": 1}")));
        assert_eq!(san(TypeName::JSONDict, json!({})), None);
        assert_eq!(san(TypeName::JSONDict, json!("text")), Some(json!("\"text\"")));
        assert_eq!(san(TypeName::JSONDict, json!(" {\"a\": 1} ")), Some(json!("{\"a\": 1}")));
        assert!(ok(TypeName::JSONDict, json!("{\"a\": 1}")));
        assert!(!ok(TypeName::JSONDict, json!("{}")));
        assert!(!ok(TypeName::JSONDict, json!("[1]")));
        assert!(!ok(TypeName::JSONDict, json!({"a": 1})));
    }

    #[test]
    fn datetime_type_delegates_to_the_parser() {
        assert_eq!(
            san(TypeName::DateTime, json!("2016-07-19 06:40:01.617719+02:00 UTC")),
            Some(json!("2016-07-19T04:40:01.617719+00:00"))
        );
        assert_eq!(san(TypeName::DateTime, json!(1_500_000_000)), None);
        assert!(ok(TypeName::DateTime, json!("2016-07-19T04:40:01+00:00")));
        assert!(!ok(TypeName::DateTime, json!("2016-07-19 04:40:01")));
    }

    #[test]
    fn falsy_values() {
        for v in [Value::Null, json!(false), json!(0), json!(0.0), json!(""), json!([]), json!({})] {
            assert!(is_falsy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!(" "), json!([0]), json!({"a": 0})] {
            assert!(!is_falsy(&v), "{v}");
        }
    }
}
