//! Helpers shared by the outputs to databases and brokers (amqptopic, mqtt, redis, elasticsearch,
//! sql) and the AMQP collector: IntelMQ's `OutputBot.export_event` rendering, the `single_key`
//! and list parameters as IntelMQ configs write them, Python `str.format` templates of the form
//! `{ev[field]}`, and [`Worker`], the thread of a blocking client library.

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

use crate::bots::BotError;
use crate::message::{ExportOptions, Message};

/// `single_key`: `false`/`null`/`""` (export the whole event) or a field name.
pub fn de_single_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::String(s) if s.is_empty() || s.eq_ignore_ascii_case("false") => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(serde::de::Error::custom(format!("{other} is neither false nor a field name"))),
    }
}

/// Writes `single_key` back as IntelMQ has it: `false` or the field name.
pub fn ser_single_key<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_bool(false),
        Some(key) => s.serialize_str(key),
    }
}

/// A list of names given as a JSON list or a comma-separated string; `null` = none given.
pub fn de_name_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => {
            Ok(Some(s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()))
        }
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(serde::de::Error::custom(format!("list item {other} is not a string"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(serde::de::Error::custom(format!("{other} is neither a list nor a comma-separated string"))),
    }
}

/// An optional string that may also be given as a number (IntelMQ configs hold both).
pub fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(serde::de::Error::custom(format!("{other} is not a string"))),
    }
}

/// A string that may also be given as a number (`port: 5432` or `port: "5432"`).
pub fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_opt_string(d)?.ok_or_else(|| serde::de::Error::custom("null is not a string"))
}

/// IntelMQ's `OutputBot.export_event` flags.
#[derive(Clone, Debug, Default)]
pub struct ExportFlags {
    pub single_key: Option<String>,
    pub keep_raw_field: bool,
    pub hierarchical: bool,
    pub with_type: bool,
    pub jsondict_as_string: bool,
}

/// Decodes bytes as UTF-8, dropping invalid sequences (Python `errors='ignore'`).
fn decode_ignoring_errors(bytes: &[u8]) -> String {
    bytes.utf8_chunks().map(|chunk| chunk.valid()).collect()
}

/// IntelMQ `OutputBot.export_event(event, return_type=str)`: one field with `single_key` (`raw`
/// decoded, `output` as its JSON text or the string it holds), else the event as sorted JSON
/// without `raw` unless `keep_raw_field`.
pub fn export_event(event: &Message, flags: &ExportFlags) -> Result<String, BotError> {
    if let Some(key) = &flags.single_key {
        return match key.as_str() {
            "raw" => Ok(decode_ignoring_errors(&event.raw_bytes().unwrap_or_default())),
            "output" => {
                let data = event
                    .get_str("output")
                    .ok_or_else(|| BotError::Invalid("field `output` (single_key) is missing".to_string()))?;
                match serde_json::from_str::<Value>(data) {
                    Ok(Value::String(text)) => Ok(text),
                    Ok(_) => Ok(data.to_string()),
                    Err(e) => Err(BotError::Invalid(format!("field `output` is not JSON: {e}"))),
                }
            }
            other => match event.get(other) {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(value) => Ok(value.to_string()),
                None => Err(BotError::Invalid(format!("field `{other}` (single_key) is missing"))),
            },
        };
    }
    let opts = ExportOptions {
        hierarchical: flags.hierarchical,
        with_type: flags.with_type,
        jsondict_as_string: flags.jsondict_as_string,
    };
    if flags.keep_raw_field || !event.contains("raw") {
        return Ok(event.to_export_json(opts));
    }
    let mut event = event.clone();
    event.remove("raw");
    Ok(event.to_export_json(opts))
}

/// A piece of a `{ev[field]}` template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Field(String),
}

/// A Python `str.format` template restricted to `{<name>[<field>]}` placeholders (`{{`/`}}` are
/// literal braces), e.g. IntelMQ's `routing_key.format(ev=event)`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventTemplate {
    pieces: Vec<Piece>,
}

impl EventTemplate {
    /// Parses `template` whose placeholders name the event `name` (`ev` for `{ev[source.ip]}`).
    pub fn parse(template: &str, name: &str) -> Result<EventTemplate, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        let prefix = format!("{name}[");
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
                            Some('{') => return Err(format!("nested `{{` in template `{template}`")),
                            Some(c) => field.push(c),
                            None => return Err(format!("unclosed `{{` in template `{template}`")),
                        }
                    }
                    let spec = field.split([':', '!']).next().unwrap_or_default();
                    let key = spec
                        .strip_prefix(prefix.as_str())
                        .and_then(|k| k.strip_suffix(']'))
                        .filter(|k| !k.is_empty())
                        .ok_or_else(|| format!("placeholder `{{{field}}}` is not of the form `{{{name}[<field>]}}`"))?;
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
        Ok(EventTemplate { pieces })
    }

    /// The template filled with the event's values (Python `str()` of each); a missing field is
    /// an error naming it (Python raises `KeyError`).
    pub fn render(&self, event: &Message) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(key) => match event.get(key) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Bool(true)) => out.push_str("True"),
                    Some(Value::Bool(false)) => out.push_str("False"),
                    Some(other) => out.push_str(&other.to_string()),
                    None => return Err(format!("field `{key}` of the template is missing in the event")),
                },
            }
        }
        Ok(out)
    }
}

/// A closure run on a [`Worker`]'s thread.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A thread that owns a client's state (a connection and the tokio runtime of a synchronous
/// client library: postgres, lapin, rumqttc) and runs closures on it. Bots run on the node's actix
/// threads, inside a tokio runtime, where such a library cannot block on its own runtime (nor
/// drop it); on the worker's thread it can. Dropping the worker ends the thread, which drops the
/// state there.
pub struct Worker<S: 'static> {
    jobs: Option<std::sync::mpsc::Sender<Job<S>>>,
    name: String,
}

impl<S: Send + 'static> Worker<S> {
    /// Starts the thread with `state`.
    pub fn start(name: &str, state: S) -> Result<Worker<S>, String> {
        let (jobs, inbox) = std::sync::mpsc::channel::<Job<S>>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut state = state;
                for job in inbox {
                    job(&mut state);
                }
            })
            .map_err(|e| format!("cannot start thread {name}: {e}"))?;
        Ok(Worker { jobs: Some(jobs), name: name.to_string() })
    }

    /// Runs `f` on the worker's thread and waits for its result.
    pub fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut S) -> R + Send + 'static) -> Result<R, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job<S> = Box::new(move |state: &mut S| {
            let _ = tx.send(f(state));
        });
        let jobs = self.jobs.as_ref().ok_or_else(|| format!("thread {} is stopped", self.name))?;
        jobs.send(job).map_err(|_| format!("thread {} is gone", self.name))?;
        rx.recv().map_err(|_| format!("thread {} stopped while working (a panic in the client library)", self.name))
    }
}

impl<S: 'static> Drop for Worker<S> {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; it drops the state on its own thread.
        self.jobs.take();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};

    #[test]
    fn export_drops_raw_unless_kept_and_sorts_keys() {
        let h = harmonization();
        let ev = event(&h, json!({"source.ip": "192.0.2.1", "raw": "YQ==", "feed.name": "x"}));
        let flags = ExportFlags::default();
        assert_eq!(export_event(&ev, &flags).unwrap(), r#"{"feed.name": "x", "source.ip": "192.0.2.1"}"#);
        let flags = ExportFlags { keep_raw_field: true, with_type: true, ..Default::default() };
        let out: Value = serde_json::from_str(&export_event(&ev, &flags).unwrap()).unwrap();
        assert_eq!(out["raw"], json!("YQ=="));
        assert_eq!(out["__type"], json!("Event"));
    }

    #[test]
    fn export_single_key_raw_is_decoded() {
        let h = harmonization();
        let ev = event(&h, json!({"raw": "aGVsbG8="}));
        let flags = ExportFlags { single_key: Some("raw".into()), ..Default::default() };
        assert_eq!(export_event(&ev, &flags).unwrap(), "hello");
        let flags = ExportFlags { single_key: Some("source.ip".into()), ..Default::default() };
        assert!(matches!(export_event(&ev, &flags), Err(BotError::Invalid(_))));
    }

    #[test]
    fn template_fills_event_fields_and_keeps_literal_braces() {
        let h = harmonization();
        let ev = event(&h, json!({"feed.name": "Feed", "source.port": 80}));
        let t = EventTemplate::parse("{{x}}.{ev[feed.name]}.{ev[source.port]}", "ev").unwrap();
        assert_eq!(t.render(&ev).unwrap(), "{x}.Feed.80");
        let t = EventTemplate::parse("{ev[source.ip]}", "ev").unwrap();
        assert!(t.render(&ev).unwrap_err().contains("source.ip"));
        assert!(EventTemplate::parse("{event[x]}", "ev").is_err());
        assert!(EventTemplate::parse("{ev[x]", "ev").is_err());
    }

    #[test]
    fn a_worker_runs_blocking_clients_inside_a_tokio_runtime() {
        let worker = Worker::start("test-worker", 0u32).unwrap();
        let outer = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // Inside a runtime a nested block_on panics; on the worker it runs.
        let got = outer.block_on(async {
            worker
                .call(|n| {
                    *n += 1;
                    let inner = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    inner.block_on(async { 41 }) + *n
                })
                .unwrap()
        });
        assert_eq!(got, 42);
        drop(worker);
    }

    #[test]
    fn name_lists_come_as_lists_or_comma_strings() {
        #[derive(Deserialize)]
        struct P {
            #[serde(deserialize_with = "de_name_list")]
            f: Option<Vec<String>>,
        }
        let p: P = serde_json::from_value(json!({"f": "a, b,c"})).unwrap();
        assert_eq!(p.f.unwrap(), vec!["a", "b", "c"]);
        let p: P = serde_json::from_value(json!({"f": ["x"]})).unwrap();
        assert_eq!(p.f.unwrap(), vec!["x"]);
        let p: P = serde_json::from_value(json!({"f": null})).unwrap();
        assert!(p.f.is_none());
    }
}
