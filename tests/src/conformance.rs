//! Shared helpers of the conformance harnesses (parsers, experts, outputs): where the corpus is,
//! reading its JSON files, IntelMQ's message comparison rule and a readable diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde_json::{Map, Value};

/// A flat message as JSON: dotted keys to values.
pub type JsonMessage = Map<String, Value>;

/// The corpus directory: `$<env_var>` if set, else `<workspace root>/../shared/<default_name>`.
pub fn corpus_dir(env_var: &str, default_name: &str) -> PathBuf {
    match std::env::var_os(env_var) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(default_name),
    }
}

/// Whether `INTELMQ_REQUIRE_CONFORMANCE=1` asks for the corpus to be present.
pub fn corpus_required() -> bool {
    std::env::var("INTELMQ_REQUIRE_CONFORMANCE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The case folders of a corpus (every directory not starting with `_` or `.`), sorted by name.
pub fn case_dirs(corpus: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(corpus).with_context(|| format!("cannot read corpus {}", corpus.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('_') || name.starts_with('.') || !entry.file_type()?.is_dir() {
            continue;
        }
        dirs.push(entry.path());
    }
    dirs.sort();
    Ok(dirs)
}

/// The folder name of a case.
pub fn case_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads and parses a JSON file.
pub fn load_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("invalid JSON in {}", path.display()))
}

/// Reads a JSON file holding an object.
pub fn load_object(path: &Path) -> anyhow::Result<Map<String, Value>> {
    match load_json(path)? {
        Value::Object(map) => Ok(map),
        other => bail!("{}: expected a JSON object, got {}", path.display(), type_name(&other)),
    }
}

/// Reads a JSON file holding one object or an array of objects (a report file, a message list).
pub fn load_objects(path: &Path) -> anyhow::Result<Vec<Map<String, Value>>> {
    match load_json(path)? {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(map) => Ok(map),
                other => bail!("{}: element {i} is {}, not an object", path.display(), type_name(&other)),
            })
            .collect(),
        other => bail!("{}: expected an object or an array, got {}", path.display(), type_name(&other)),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How two messages are compared.
#[derive(Clone, Debug)]
pub struct CompareRule {
    /// Keys removed from both sides before comparing (IntelMQ: `time.observation`).
    pub ignore_keys: Vec<String>,
    /// Python's `==` on numbers and bools (`1 == 1.0 == true`), as IntelMQ's `assertMessageEqual`;
    /// `false` keeps JSON types apart.
    pub python_equality: bool,
    /// Mask the year of `time.source` on both sides (cases whose input dates have no year).
    pub mask_time_source_year: bool,
}

impl CompareRule {
    /// IntelMQ's `assertMessageEqual`: without `time.observation`, `output` decoded, Python `==`.
    pub fn intelmq() -> Self {
        CompareRule {
            ignore_keys: vec!["time.observation".to_string()],
            python_equality: true,
            mask_time_source_year: false,
        }
    }

    /// The stricter rule of the expert corpus: every key, JSON types kept apart.
    pub fn strict() -> Self {
        CompareRule { ignore_keys: Vec::new(), python_equality: false, mask_time_source_year: false }
    }

    /// Prepares a message for comparison: drops the ignored keys and decodes `output` as JSON.
    pub fn normalize(&self, message: &JsonMessage) -> JsonMessage {
        let mut out = Map::new();
        for (key, value) in message {
            if self.ignore_keys.iter().any(|k| k == key) {
                continue;
            }
            let value = match (key.as_str(), value) {
                ("output", Value::String(text)) => serde_json::from_str(text).unwrap_or_else(|_| value.clone()),
                ("time.source", Value::String(text)) if self.mask_time_source_year && text.len() >= 4 => {
                    Value::String(format!("YYYY{}", text.get(4..).unwrap_or("")))
                }
                _ => value.clone(),
            };
            out.insert(key.clone(), value);
        }
        out
    }

    /// Whether two values are equal under this rule.
    pub fn values_equal(&self, a: &Value, b: &Value) -> bool {
        if self.python_equality {
            python_eq(a, b)
        } else {
            a == b
        }
    }

    /// The differences between two messages (after [`CompareRule::normalize`]), one line each;
    /// empty when they are equal.
    pub fn diff(&self, expected: &JsonMessage, actual: &JsonMessage) -> Vec<String> {
        let expected = self.normalize(expected);
        let actual = self.normalize(actual);
        let mut lines = Vec::new();
        for (key, want) in &expected {
            match actual.get(key) {
                None => lines.push(format!("  missing  {key}: {}", show(key, want))),
                Some(got) if !self.values_equal(want, got) => {
                    lines.push(format!("  differs  {key}: expected {}", show(key, want)));
                    lines.push(format!("           {key}:   actual {}", show(key, got)));
                }
                Some(_) => {}
            }
        }
        for (key, got) in &actual {
            if !expected.contains_key(key) {
                lines.push(format!("  extra    {key}: {}", show(key, got)));
            }
        }
        lines
    }

    /// Compares two message lists (same length, same order). `Err` holds a readable diff.
    pub fn compare_lists(&self, expected: &[JsonMessage], actual: &[JsonMessage]) -> Result<(), String> {
        let mut report = String::new();
        if expected.len() != actual.len() {
            let _ = writeln!(report, "  expected {} message(s), got {}", expected.len(), actual.len());
        }
        for (i, (want, got)) in expected.iter().zip(actual).enumerate() {
            let lines = self.diff(want, got);
            if !lines.is_empty() {
                let _ = writeln!(report, "  message #{i}:");
                for line in lines {
                    let _ = writeln!(report, "  {line}");
                }
            }
        }
        if actual.len() > expected.len() {
            for (i, extra) in actual.iter().enumerate().skip(expected.len()) {
                let _ = writeln!(report, "  unexpected message #{i}: {}", Value::Object(self.normalize(extra)));
            }
        }
        if expected.len() > actual.len() {
            for (i, missing) in expected.iter().enumerate().skip(actual.len()) {
                let _ = writeln!(report, "  missing message #{i}: {}", Value::Object(self.normalize(missing)));
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }
}

/// A value for a diff line; `raw` is shown decoded as well, since base64 is unreadable.
fn show(key: &str, value: &Value) -> String {
    use base64::Engine as _;
    if key == "raw" {
        if let Some(decoded) = value
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
        {
            return format!("{value} (decoded: {decoded:?})");
        }
    }
    value.to_string()
}

/// Python's `==` on JSON values: numbers compare by value (`1 == 1.0`), and a bool equals the
/// number 1 or 0; strings, lists and objects compare element-wise.
pub fn python_eq(a: &Value, b: &Value) -> bool {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Bool(_), Value::Number(_)) | (Value::Number(_), Value::Bool(_)) => number(a) == number(b),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| python_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| python_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonMessage {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn python_equality_mixes_ints_floats_and_bools_but_not_strings() {
        assert!(python_eq(&json!(16), &json!(16.0)));
        assert!(python_eq(&json!(true), &json!(1)));
        assert!(!python_eq(&json!(80), &json!("80")));
        assert!(!python_eq(&json!([1, "a"]), &json!([1, "b"])));
    }

    #[test]
    fn intelmq_rule_ignores_time_observation_and_decodes_output() {
        let rule = CompareRule::intelmq();
        let a = obj(json!({"time.observation": "x", "output": "{\"a\": 1}", "source.port": 80}));
        let b = obj(json!({"time.observation": "y", "output": "{\"a\":1}", "source.port": 80.0}));
        assert!(rule.diff(&a, &b).is_empty());
        assert!(!CompareRule::strict().diff(&a, &b).is_empty());
    }

    #[test]
    fn diff_names_missing_extra_and_differing_keys() {
        let rule = CompareRule::intelmq();
        let want = obj(json!({"a": 1, "b": "x"}));
        let got = obj(json!({"a": "1", "c": true}));
        let lines = rule.diff(&want, &got).join("\n");
        assert!(lines.contains("differs  a"));
        assert!(lines.contains("missing  b"));
        assert!(lines.contains("extra    c"));
    }

    #[test]
    fn list_comparison_reports_length_mismatches() {
        let rule = CompareRule::intelmq();
        let one = vec![obj(json!({"a": 1}))];
        assert!(rule.compare_lists(&one, &one).is_ok());
        let err = rule.compare_lists(&one, &[]).unwrap_err();
        assert!(err.contains("expected 1 message(s), got 0"));
        assert!(err.contains("missing message #0"));
    }

    #[test]
    fn raw_is_shown_decoded_in_diffs() {
        assert!(show("raw", &json!("YSxi")).contains("decoded: \"a,b\""));
    }
}
