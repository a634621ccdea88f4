//! Byte-exact Python text forms of JSON values: `json.dumps` (the pipeline wire format and the
//! export format) and `repr()` (fed into the message hash).

use serde_json::{Map, Number, Value};

use super::internal::PackedValue;
use super::FieldRef;

/// Python's `json.dumps(v)` with default settings: ASCII-only (`\uXXXX`, surrogate pairs),
/// separators `", "` / `": "`, keys in insertion order.
pub fn dumps(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, true, false);
    out
}

/// Python's `json.dumps(v, ensure_ascii=False, sort_keys=True)` (IntelMQ `to_json`).
pub fn dumps_sorted_unicode(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, false, true);
    out
}

/// An object of `entries` in the given order, as [`dumps_sorted_unicode`] writes one (the caller
/// sorts them).
pub fn dumps_entries_unicode(entries: &[(&str, FieldRef<'_>)]) -> String {
    let mut out = String::with_capacity(entries.len() * 48 + 2);
    out.push('{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_json_str(&mut out, k, false);
        out.push_str(": ");
        match v {
            FieldRef::Value(v) => write_json(&mut out, v, false, true),
            FieldRef::Packed(PackedValue::Str(s)) => write_json_str(&mut out, s, false),
            FieldRef::Packed(p) => write_json(&mut out, &p.to_value(), false, true),
        }
    }
    out.push('}');
    out
}

/// Python's `json.dumps(v, sort_keys=True)` (ASCII-only, sorted keys): what the JSON types'
/// sanitize produces from a non-string value.
pub fn dumps_sorted(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, true, true);
    out
}

/// Python's `json.dumps(v, ensure_ascii=False)` (insertion order).
pub fn dumps_unicode(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v, false, false);
    out
}

/// A JSON string literal as `json.dumps` writes it.
pub fn json_string(s: &str, ensure_ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_json_str(&mut out, s, ensure_ascii);
    out
}

/// Writes `v` as Python's json module would, appending to `out`.
pub fn write_json(out: &mut String, v: &Value, ensure_ascii: bool, sort_keys: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => write_json_str(out, s, ensure_ascii),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item, ensure_ascii, sort_keys);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in entries(map, sort_keys).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_str(out, k, ensure_ascii);
                out.push_str(": ");
                write_json(out, item, ensure_ascii, sort_keys);
            }
            out.push('}');
        }
    }
}

fn entries(map: &Map<String, Value>, sort_keys: bool) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if sort_keys {
        // Byte order of UTF-8 equals Python's code point order.
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

fn write_json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    // Fast path: copy runs of characters that need no escaping in one go.
    let bytes = s.as_bytes();
    let plain = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
    let mut start = 0;
    while start < bytes.len() {
        let run = bytes[start..].iter().take_while(|b| plain(**b) || (!ensure_ascii && **b >= 0x80)).count();
        out.push_str(&s[start..start + run]);
        start += run;
        if start >= bytes.len() {
            break;
        }
        let Some(c) = s[start..].chars().next() else { break };
        start += c.len_utf8();
        escape_char(out, c, ensure_ascii);
    }
    out.push('"');
}

fn escape_char(out: &mut String, c: char, ensure_ascii: bool) {
    for c in std::iter::once(c) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u_escape(out, c as u32),
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    push_u_escape(out, u32::from(*unit));
                }
            }
            c => out.push(c),
        }
    }
}

fn push_u_escape(out: &mut String, unit: u32) {
    out.push_str(&format!("\\u{unit:04x}"));
}

/// A JSON number as Python writes it: integers verbatim, floats as `repr(float)`.
pub fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        // A serde_json Number is always one of i64, u64 or finite f64.
        float_repr(n.as_f64().unwrap_or(0.0))
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the decimal
/// exponent is < -4 or >= 16 (`1e+16`, `1e-05`), otherwise fixed with at least one decimal
/// (`100.0`). Non-finite values give `inf`, `-inf`, `nan`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // A whole number below 1e16 (`feed.accuracy`'s 100.0): its digits and `.0`, as below.
    if f.fract() == 0.0 && f.abs() < 1e16 {
        return format!("{}.0", f as i64);
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-5", "1e16".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    // Python's decpt: the position of the decimal point relative to the digit string.
    let decpt = exp + 1;
    if !(-3..=16).contains(&decpt) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if decpt <= 0 {
        format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
    } else if decpt >= n {
        format!("{}{}.0", digits, "0".repeat((decpt - n) as usize))
    } else {
        format!("{}.{}", &digits[..decpt as usize], &digits[decpt as usize..])
    };
    format!("{sign}{body}")
}

/// Python's `repr()` of the value a JSON value stands for (`str`, `int`, `float`, `bool`,
/// `None`, `list`, `dict`): `'abc'`, `100.0`, `True`, `None`, `[1, 'a']`, `{'a': 1}`.
pub fn python_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

/// Python's `str()` of the value: the string itself for a `str`, otherwise its repr.
pub fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// [`write_repr`] of a field's value, decoded or packed.
pub(crate) fn write_field_repr(out: &mut String, v: FieldRef<'_>) {
    match v {
        FieldRef::Value(v) => write_repr(out, v),
        FieldRef::Packed(PackedValue::Str(s)) => write_str_repr(out, s),
        FieldRef::Packed(p) => write_repr(out, &p.to_value()),
    }
}

pub(crate) fn write_repr(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => write_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, k);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`; escapes `\\`,
/// the quote, `\t\n\r`, other control characters as `\xNN`, and non-printable non-ASCII as
/// `\xNN`/`\uNNNN`/`\UNNNNNNNN`.
pub fn str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str_repr(&mut out, s);
    out
}

/// [`str_repr`], appended to `out`.
fn write_str_repr(out: &mut String, s: &str) {
    // Printable ASCII without quote or backslash is the common case: nothing to escape.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\' && b != b'\'') {
        out.reserve(s.len() + 2);
        out.push('\'');
        out.push_str(s);
        out.push('\'');
        return;
    }
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        let cp = c as u32;
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            _ if cp < 0x20 || cp == 0x7f => out.push_str(&format!("\\x{cp:02x}")),
            c if cp < 0x7f => out.push(c),
            c if is_printable(c) => out.push(c),
            _ if cp <= 0xff => out.push_str(&format!("\\x{cp:02x}")),
            _ if cp <= 0xffff => out.push_str(&format!("\\u{cp:04x}")),
            _ => out.push_str(&format!("\\U{cp:08x}")),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable()` for one non-ASCII character, approximated: control (Cc),
/// format (Cf), separator (Zs/Zl/Zp), private-use (Co) and noncharacters are not printable.
/// Unassigned code points (Cn) are treated as printable except the noncharacters.
fn is_printable(c: char) -> bool {
    let cp = c as u32;
    !matches!(cp,
        0x80..=0xa0
        | 0xad
        | 0x600..=0x605
        | 0x61c
        | 0x6dd
        | 0x70f
        | 0x890..=0x891
        | 0x8e2
        | 0x1680
        | 0x180e
        | 0x2000..=0x200f
        | 0x2028..=0x202f
        | 0x205f..=0x2064
        | 0x2066..=0x206f
        | 0x3000
        | 0xe000..=0xf8ff
        | 0xfdd0..=0xfdef
        | 0xfeff
        | 0xfff9..=0xfffb
        | 0xfffe..=0xffff
        | 0x110bd
        | 0x110cd
        | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a
        | 0xe0001
        | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
        && (cp & 0xfffe) != 0xfffe
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dumps_uses_python_separators_and_ascii_escapes() {
        let v = json!({"a": 1, "b": [1, 2.5, true, null], "c": "ö€😀\u{7f}\"\\\n\u{1}"});
        assert_eq!(
            dumps(&v),
            r#"{"a": 1, "b": [1, 2.5, true, null], "c": "\u00f6\u20ac\ud83d\ude00\u007f\"\\\n\u0001"}"#
        );
    }

    #[test]
    fn dumps_keeps_insertion_order() {
        let v: Value = serde_json::from_str(r#"{"z": 1, "a": {"y": 2, "b": 3}}"#).expect("json");
        assert_eq!(dumps(&v), r#"{"z": 1, "a": {"y": 2, "b": 3}}"#);
        assert_eq!(dumps_sorted_unicode(&v), r#"{"a": {"b": 3, "y": 2}, "z": 1}"#);
        assert_eq!(dumps_sorted(&v), r#"{"a": {"b": 3, "y": 2}, "z": 1}"#);
    }

    #[test]
    fn unicode_variant_keeps_non_ascii_but_escapes_controls() {
        let v = json!(["ö😀\u{7f}", "\u{1f}\t"]);
        assert_eq!(dumps_sorted_unicode(&v), "[\"ö😀\u{7f}\", \"\\u001f\\t\"]");
        assert_eq!(dumps_unicode(&json!({"k": "ä"})), "{\"k\": \"ä\"}");
    }

    #[test]
    fn empty_containers() {
        assert_eq!(dumps(&json!({})), "{}");
        assert_eq!(dumps(&json!([])), "[]");
        assert_eq!(python_repr(&json!({})), "{}");
        assert_eq!(python_repr(&json!([])), "[]");
    }

    #[test]
    fn floats_follow_python_repr() {
        let cases = [
            (100.0, "100.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e-7, "1.5e-07"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (123456789.0, "123456789.0"),
            (-7.0, "-7.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (48.2082, "48.2082"),
            (1e22, "1e+22"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
        ];
        for (f, s) in cases {
            assert_eq!(float_repr(f), s, "{f}");
        }
        assert_eq!(float_repr(f64::INFINITY), "inf");
        assert_eq!(float_repr(f64::NAN), "nan");
    }

    #[test]
    fn numbers_in_json_keep_int_vs_float() {
        let v: Value = serde_json::from_str(r#"[100, 100.0, -5, 18446744073709551615, 1e2]"#).expect("json");
        assert_eq!(dumps(&v), "[100, 100.0, -5, 18446744073709551615, 100.0]");
    }

    #[test]
    fn repr_of_scalars_and_containers() {
        assert_eq!(python_repr(&json!("abc")), "'abc'");
        assert_eq!(python_repr(&json!(true)), "True");
        assert_eq!(python_repr(&json!(false)), "False");
        assert_eq!(python_repr(&Value::Null), "None");
        assert_eq!(python_repr(&json!(80)), "80");
        assert_eq!(python_repr(&json!(100.0)), "100.0");
        assert_eq!(python_repr(&json!([1, "a", [true]])), "[1, 'a', [True]]");
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": {"c": null}}"#).expect("json");
        assert_eq!(python_repr(&v), "{'b': 1, 'a': {'c': None}}");
    }

    #[test]
    fn repr_of_strings_chooses_quotes_and_escapes() {
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("say \"hi\""), "'say \"hi\"'");
        assert_eq!(str_repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(str_repr("a\\b\tc\nd\re"), "'a\\\\b\\tc\\nd\\re'");
        assert_eq!(str_repr("\u{0}\u{1f}\u{7f}"), "'\\x00\\x1f\\x7f'");
        assert_eq!(str_repr("öß€😀"), "'öß€😀'");
        assert_eq!(str_repr("\u{85}\u{a0}\u{ad}"), "'\\x85\\xa0\\xad'");
        assert_eq!(str_repr("\u{200b}\u{feff}"), "'\\u200b\\ufeff'");
        assert_eq!(str_repr("\u{e0001}"), "'\\U000e0001'");
    }

    #[test]
    fn python_str_is_plain_for_strings() {
        assert_eq!(python_str(&json!("a'b")), "a'b");
        assert_eq!(python_str(&json!(12)), "12");
        assert_eq!(python_str(&json!(true)), "True");
    }
}
