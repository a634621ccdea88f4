//! Helpers shared by the network and file outputs and the push collectors: lenient parameter
//! forms (IntelMQ configs write numbers and booleans as strings too), IntelMQ's
//! `str.format(ev=event)` templates, the host name, and the committed-length file appends used by
//! the bro and rpz file outputs.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::bots::{BotError, Context, Level};
use crate::message::wire::python_str;
use crate::message::Message;

/// Parameter deserializers that accept IntelMQ's config forms.
pub mod de {
    use super::*;

    fn truthy(v: &Value) -> Result<bool, String> {
        match v {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(*b),
            Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" | "" => Ok(false),
                _ => Err(format!("`{s}` is not a boolean")),
            },
            other => Err(format!("{other} is not a boolean")),
        }
    }

    /// A boolean: JSON bool, `"true"`/`"false"`, 0/1; null is false.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        truthy(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    fn number(v: &Value) -> Result<Option<f64>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_f64()),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s.trim().parse::<f64>().map(Some).map_err(|_| format!("`{s}` is not a number")),
            other => Err(format!("{other} is not a number")),
        }
    }

    /// An optional port: a number or a numeric string; null or "" is none.
    pub fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        match number(&Value::deserialize(d)?).map_err(serde::de::Error::custom)? {
            None => Ok(None),
            Some(f) if f.fract() == 0.0 && (0.0..=65535.0).contains(&f) => Ok(Some(f as u16)),
            Some(f) => Err(serde::de::Error::custom(format!("{f} is not a port number"))),
        }
    }

    /// A port: a number or a numeric string.
    pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        let v = Value::deserialize(d)?;
        let text = v.to_string();
        match number(&v).map_err(serde::de::Error::custom)? {
            Some(f) if f.fract() == 0.0 && (0.0..=65535.0).contains(&f) => Ok(f as u16),
            _ => Err(serde::de::Error::custom(format!("{text} is not a port number"))),
        }
    }

    /// A non-negative integer: a number or a numeric string.
    pub fn uint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = Value::deserialize(d)?;
        let text = v.to_string();
        match number(&v).map_err(serde::de::Error::custom)? {
            Some(f) if f.fract() == 0.0 && f >= 0.0 => Ok(f as u64),
            _ => Err(serde::de::Error::custom(format!("{text} is not a non-negative integer"))),
        }
    }

    /// An optional text: strings as they are, numbers and booleans as their JSON text, null none.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// A text: strings as they are, numbers as their JSON text; null is "".
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    /// `single_key`: `false`/`null`/"" (the whole event) or a field name.
    pub fn single_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null | Value::Bool(false) => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(serde::de::Error::custom(format!("{other} is neither false nor a field name"))),
        }
    }

    /// Serializes `single_key` as IntelMQ's default `false` when unset.
    pub fn ser_single_key<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_bool(false),
            Some(key) => s.serialize_str(key),
        }
    }

    /// Serializes a list as IntelMQ's comma-separated default text (none as null).
    pub fn ser_list_as_text<S: serde::Serializer>(v: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(items) => s.serialize_str(&items.join(",")),
        }
    }

    /// A list of names: a JSON list or a comma-separated string (items trimmed, empty ones dropped);
    /// null is none.
    pub fn opt_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.split(',').map(str::to_string).collect())),
            Value::Array(items) => Ok(Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            )),
            other => Err(serde::de::Error::custom(format!("{other} is neither a list nor a comma-separated text"))),
        }
    }
}

/// The machine's host name (as Python's `socket.gethostname()`), "localhost" if unknown.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// A piece of an IntelMQ `str.format(ev=event)` template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Field(String),
}

/// IntelMQ's `template.format(ev=event)` restricted to `{ev[<field>]}` (and `{{`/`}}`): a missing
/// field renders as `None` (IntelMQ's `set_default_value`), values as Python's `str()`.
#[derive(Clone, Debug, PartialEq)]
pub struct EvTemplate {
    pieces: Vec<Piece>,
}

impl EvTemplate {
    /// Parses a template; the error names what is wrong.
    pub fn parse(template: &str) -> Result<EvTemplate, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(format!("single `}}` in template `{template}`")),
                '{' => {
                    let mut field = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => field.push(c),
                            None => return Err(format!("unclosed `{{` in template `{template}`")),
                        }
                    }
                    let key = field
                        .strip_prefix("ev[")
                        .and_then(|k| k.strip_suffix(']'))
                        .filter(|k| !k.is_empty() && !k.contains(['[', ']']))
                        .ok_or_else(|| {
                            format!("field `{{{field}}}` of template `{template}` is not `{{ev[<field>]}}`")
                        })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(key.to_string()));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(EvTemplate { pieces })
    }

    /// The template filled with the event's values.
    pub fn render(&self, event: &Message) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(key) => match event.get(key) {
                    Some(v) => out.push_str(&python_str(v)),
                    None => match event.get_jsondict(key) {
                        Some(v) => out.push_str(&python_str(&v)),
                        None => out.push_str("None"),
                    },
                },
            }
        }
        out
    }
}

/// The committed length of `path` recorded in the bot state, if any.
pub fn committed_len(ctx: &Context<'_>, path: &Path) -> Option<u64> {
    ctx.state
        .get(path.to_string_lossy().as_bytes())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Records the committed length of `path` (commits with the step).
pub fn record_len(ctx: &mut Context<'_>, path: &Path, len: u64) {
    ctx.state.put(path.to_string_lossy().as_bytes(), len.to_string().as_bytes(), None);
}

/// Creates the directory of `path` (mode 0755) if missing.
pub fn ensure_parent(path: &Path) -> Result<(), BotError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| BotError::Fatal(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// Cuts `path` back to its committed length (bytes written after the last commit, by a step that
/// never committed) and returns the file's length afterwards (0 if it does not exist).
pub fn cut_uncommitted(path: &Path, ctx: &mut Context<'_>) -> Result<u64, BotError> {
    let io_err = |e: std::io::Error| BotError::Transient(format!("cannot open file {}: {e}", path.display()));
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(e)),
    };
    match committed_len(ctx, path) {
        Some(committed) if len > committed => {
            let file = OpenOptions::new().write(true).open(path).map_err(io_err)?;
            file.set_len(committed).map_err(io_err)?;
            ctx.log.log(
                Level::Warning,
                &format!(
                    "Removed {} bytes from {:?} that were written after the last commit.",
                    len - committed,
                    path.display().to_string()
                ),
            );
            Ok(committed)
        }
        _ => Ok(len),
    }
}

/// Appends `data` to `path` after cutting off uncommitted bytes, and records the new length in
/// the bot state (committed with the acknowledgement). Nothing is written for empty data.
pub fn append_committed(path: &Path, data: &[u8], ctx: &mut Context<'_>) -> Result<(), BotError> {
    ensure_parent(path)?;
    let base = cut_uncommitted(path, ctx)?;
    if data.is_empty() {
        record_len(ctx, path, base);
        return Ok(());
    }
    let io_err = |e: std::io::Error| BotError::Transient(format!("cannot write file {}: {e}", path.display()));
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io_err)?;
    file.write_all(data).map_err(io_err)?;
    file.flush().map_err(io_err)?;
    record_len(ctx, path, base + data.len() as u64);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn ev_template_fills_fields_and_missing_ones_as_none() {
        let h = harmonization();
        let ev = event(&h, json!({"source.ip": "192.0.2.1", "source.asn": 64496}));
        let t = EvTemplate::parse("{{x}} {ev[source.ip]} AS{ev[source.asn]} {ev[classification.type]}").unwrap();
        assert_eq!(t.render(&ev), "{x} 192.0.2.1 AS64496 None");
        assert!(EvTemplate::parse("{event[x]}").is_err());
        assert!(EvTemplate::parse("{ev[x]").is_err());
    }

    #[test]
    fn append_committed_cuts_what_a_lost_step_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        let h = harmonization();
        let mut committed = MemoryState::default();
        let mut log = MemoryLog::default();
        {
            let mut ctx = Context::new("t", &h, dir.path(), &mut committed, &mut log);
            append_committed(&path, b"a\n", &mut ctx).unwrap();
        }
        let mut lost = MemoryState { entries: committed.entries.clone() };
        {
            let mut ctx = Context::new("t", &h, dir.path(), &mut lost, &mut log);
            append_committed(&path, b"b\n", &mut ctx).unwrap();
        }
        let mut ctx = Context::new("t", &h, dir.path(), &mut committed, &mut log);
        append_committed(&path, b"b\n", &mut ctx).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
    }

    #[derive(Deserialize)]
    struct P {
        #[serde(deserialize_with = "de::bool")]
        b: bool,
        #[serde(deserialize_with = "de::opt_port")]
        p: Option<u16>,
        #[serde(deserialize_with = "de::opt_list")]
        l: Option<Vec<String>>,
    }

    #[test]
    fn lenient_forms_are_accepted() {
        let p: P = serde_json::from_value(json!({"b": "true", "p": "5000", "l": "a,b"})).unwrap();
        assert!(p.b);
        assert_eq!(p.p, Some(5000));
        assert_eq!(p.l, Some(vec!["a".to_string(), "b".to_string()]));
        assert!(serde_json::from_value::<P>(json!({"b": "maybe", "p": 1, "l": null})).is_err());
        assert!(serde_json::from_value::<P>(json!({"b": 1, "p": 70000, "l": null})).is_err());
    }
}
