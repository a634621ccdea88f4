//! `intelmq.bots.outputs.file.output`: appends one line per event to a file (IntelMQ's
//! `export_event` rendering + `\n`), creating the directories; with `format_filename` the file name
//! is a template such as `/var/out/{event[feed.name]}-{event[time.source]:%Y-%m-%d}.txt`.
//!
//! Exactly-once across crashes: the bot state holds, under the file's path, the length the file had
//! after the last committed write. A `write` first truncates the file back to that length if it is
//! longer (lines written before a crash that never committed; they are written again now), appends
//! the batch in one `write_all`, flushes, and stores the new length, which the runtime commits with
//! the acknowledgement. A file shorter than recorded (rotated or truncated by someone else) is
//! taken as it is. At start the bot records the length its file starts with (committed before the
//! first step), so even a first write is protected. With `format_filename`, a file first seen
//! in a step has no record yet: its uncommitted lines cannot be told from earlier content and are
//! kept after a crash (at-least-once for that first write only). No fsync: after a power loss the file may lose
//! its last committed lines.
//!
//! `encoding_errors_mode` is accepted for compatibility; Rust strings are always valid UTF-8, so
//! there is nothing to replace.

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// `single_key`: `false`/`null` (export the whole event) or a field name.
fn de_single_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(serde::de::Error::custom(format!("{other} is neither false nor a field name"))),
    }
}

fn ser_single_key<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_bool(false),
        Some(key) => s.serialize_str(key),
    }
}

/// Parameters of the file output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileOutputParams {
    /// The file to append to (relative paths resolve against the node root); default
    /// "/opt/intelmq/var/lib/bots/file-output/events.txt".
    pub file: String,
    /// Treat `file` as a template with `{event[field]}` placeholders; default false.
    pub format_filename: bool,
    /// Nest the dotted keys into objects; default false.
    pub hierarchical_output: bool,
    /// Write only this field (`raw` decoded, `output` as its JSON text or string); default false.
    #[serde(deserialize_with = "de_single_key", serialize_with = "ser_single_key")]
    pub single_key: Option<String>,
    /// Keep the `raw` field in the export; default false.
    pub keep_raw_field: bool,
    /// Include `__type`; default false.
    pub message_with_type: bool,
    /// Write JSONDict fields (`extra`) as one JSON string; default false.
    pub message_jsondict_as_string: bool,
    /// Python's codec error handling; accepted, without effect (see the module doc); default "strict".
    pub encoding_errors_mode: String,
}

impl Default for FileOutputParams {
    fn default() -> Self {
        FileOutputParams {
            file: "/opt/intelmq/var/lib/bots/file-output/events.txt".to_string(),
            format_filename: false,
            hierarchical_output: false,
            single_key: None,
            keep_raw_field: false,
            message_with_type: false,
            message_jsondict_as_string: false,
            encoding_errors_mode: "strict".to_string(),
        }
    }
}

/// A piece of a `format_filename` template.
#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Text(String),
    /// `{event[key]}` or `{event[key]:spec}`.
    Field {
        key: String,
        spec: String,
    },
}

/// Parses Python `str.format` syntax restricted to `{event[key]}` and `{event[key]:spec}` fields
/// (`{{` and `}}` are literal braces).
fn parse_template(template: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
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
            '}' => return Err("single `}` in file name template".to_string()),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => return Err("nested `{` in file name template".to_string()),
                        Some(c) => field.push(c),
                        None => return Err("unclosed `{` in file name template".to_string()),
                    }
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                let name = name.strip_suffix("!s").unwrap_or(name);
                let key = name
                    .strip_prefix("event[")
                    .and_then(|k| k.strip_suffix(']'))
                    .filter(|k| !k.is_empty() && !k.contains(['[', ']']))
                    .ok_or_else(|| format!("field `{{{field}}}` is not of the form `{{event[<key>]}}`"))?;
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                }
                segments.push(Segment::Field { key: key.to_string(), spec: spec.to_string() });
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(segments)
}

/// A field value as Python's `format(value, spec)` renders it in IntelMQ's file output, where
/// `time.observation` and `time.source` are naive datetimes.
fn render_field(event: &Message, key: &str, spec: &str) -> Result<String, BotError> {
    let value = event
        .get(key)
        .ok_or_else(|| BotError::Invalid(format!("field `{key}` of the file name template is missing")))?;
    if key == "time.observation" || key == "time.source" {
        let text = value.as_str().unwrap_or_default();
        let dt = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f+00:00")
            .map_err(|e| BotError::Invalid(format!("field `{key}` value `{text}` is not a UTC time: {e}")))?;
        if spec.is_empty() {
            let micros = dt.and_utc().timestamp_subsec_micros();
            let base = dt.format("%Y-%m-%d %H:%M:%S").to_string();
            return Ok(if micros == 0 { base } else { format!("{base}.{micros:06}") });
        }
        let items: Vec<chrono::format::Item<'_>> = chrono::format::StrftimeItems::new(spec).collect();
        if items.iter().any(|i| matches!(i, chrono::format::Item::Error)) {
            return Err(BotError::Fatal(format!("invalid time format `{spec}` in the file name template")));
        }
        let mut out = String::new();
        std::fmt::Write::write_fmt(&mut out, format_args!("{}", dt.format_with_items(items.into_iter())))
            .map_err(|_| BotError::Fatal(format!("invalid time format `{spec}` in the file name template")))?;
        return Ok(out);
    }
    if !spec.is_empty() {
        return Err(BotError::Fatal(format!(
            "format spec `{spec}` in the file name template is only supported for time.source and time.observation"
        )));
    }
    Ok(match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        other => other.to_string(),
    })
}

/// Decodes bytes as UTF-8, dropping invalid sequences (Python `errors='ignore'`).
fn decode_ignoring_errors(bytes: &[u8]) -> String {
    bytes.utf8_chunks().map(|chunk| chunk.valid()).collect()
}

/// Appends events as lines to a file, exactly once.
pub struct FileOutputBot {
    params: FileOutputParams,
    template: Option<Vec<Segment>>,
}

impl BuildBot for FileOutputBot {
    type Params = FileOutputParams;

    fn build(params: FileOutputParams) -> Result<Self, ParamError> {
        if params.file.is_empty() {
            return Err(ParamError::new("file", "no file given"));
        }
        let template = if params.format_filename {
            Some(parse_template(&params.file).map_err(|reason| ParamError::new("file", reason))?)
        } else {
            None
        };
        Ok(FileOutputBot { params, template })
    }
}

impl FileOutputBot {
    /// The file an event goes to (before resolving against the root).
    fn file_name(&self, event: &Message) -> Result<String, BotError> {
        let Some(template) = &self.template else {
            return Ok(self.params.file.clone());
        };
        let mut name = String::new();
        for segment in template {
            match segment {
                Segment::Text(text) => name.push_str(text),
                Segment::Field { key, spec } => name.push_str(&render_field(event, key, spec)?),
            }
        }
        Ok(name)
    }

    /// IntelMQ `OutputBot.export_event(event, return_type=str)`.
    fn export(&self, event: &Message) -> Result<String, BotError> {
        if let Some(key) = &self.params.single_key {
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
            hierarchical: self.params.hierarchical_output,
            with_type: self.params.message_with_type,
            jsondict_as_string: self.params.message_jsondict_as_string,
        };
        let skip = (!self.params.keep_raw_field).then_some("raw");
        Ok(event.to_export_json_without(opts, skip))
    }
}

/// Appends `data` to `path` after cutting off bytes past the committed length; returns the new
/// length.
fn append(path: &Path, data: &[u8], committed: Option<u64>, ctx: &mut Context<'_>) -> Result<u64, BotError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| BotError::Fatal(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    let io_err = |e: std::io::Error| BotError::Transient(format!("cannot write file {}: {e}", path.display()));
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let base = match committed {
        Some(committed) if len > committed => {
            file.set_len(committed).map_err(io_err)?;
            ctx.log.log(
                Level::Warning,
                &format!(
                    "Removed {} bytes from {:?} that were written after the last commit.",
                    len - committed,
                    path.display().to_string()
                ),
            );
            committed
        }
        _ => len,
    };
    file.write_all(data).map_err(io_err)?;
    file.flush().map_err(io_err)?;
    Ok(base + data.len() as u64)
}

impl OutputBot for FileOutputBot {
    /// Records the length the file starts with, so that lines of a first write that never
    /// committed are cut off after a crash like any later ones.
    fn start(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        if self.params.format_filename {
            return Ok(());
        }
        let path = ctx.resolve(&self.params.file);
        let key = path.to_string_lossy().into_owned();
        if ctx.state.get(key.as_bytes()).is_none() {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            ctx.state.put(key.as_bytes(), len.to_string().as_bytes(), None);
        }
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        // The lines of each file, files in the order they first appear.
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        let mut index: HashMap<PathBuf, usize> = HashMap::new();
        for event in events {
            let path = ctx.resolve(&self.file_name(event)?);
            let line = self.export(event)?;
            let i = *index.entry(path.clone()).or_insert_with(|| {
                files.push((path, String::new()));
                files.len() - 1
            });
            files[i].1.push_str(&line);
            files[i].1.push('\n');
        }
        let mut lengths = Vec::with_capacity(files.len());
        for (path, data) in &files {
            let key = path.to_string_lossy().into_owned();
            let committed = ctx
                .state
                .get(key.as_bytes())
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok());
            let new_len = append(path, data.as_bytes(), committed, ctx)?;
            lengths.push((key, new_len));
        }
        for (key, len) in lengths {
            ctx.state.put(key.as_bytes(), len.to_string().as_bytes(), None);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::Harmonization;

    fn build(params: Value) -> FileOutputBot {
        FileOutputBot::build(serde_json::from_value(params).unwrap()).unwrap()
    }

    fn write(
        bot: &mut FileOutputBot,
        root: &Path,
        h: &Arc<Harmonization>,
        state: &mut MemoryState,
        events: &[Message],
    ) -> MemoryLog {
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "file-output",
            harmonization: h,
            root,
            state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        bot.write(events, &mut ctx).unwrap();
        log
    }

    #[test]
    fn appends_one_line_per_event_and_creates_directories() {
        let dir = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut bot = build(json!({"file": "var/lib/bots/file-output/events.txt"}));
        let events =
            [event(&h, json!({"source.ip": "192.0.2.1", "raw": "YQ=="})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        write(&mut bot, dir.path(), &h, &mut state, &events);
        let path = dir.path().join("var/lib/bots/file-output/events.txt");
        let content = fs::read_to_string(&path).unwrap();
        assert_eq!(content, "{\"source.ip\": \"192.0.2.1\"}\n{\"source.ip\": \"192.0.2.2\"}\n");
        let key = path.to_string_lossy().into_owned();
        assert_eq!(state.entries[key.as_bytes()], content.len().to_string().into_bytes());
    }

    #[test]
    fn uncommitted_lines_are_cut_off_on_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut committed = MemoryState::default();
        let mut bot = build(json!({"file": "out.txt"}));
        let first = [event(&h, json!({"source.ip": "192.0.2.1"}))];
        write(&mut bot, dir.path(), &h, &mut committed, &first);

        // A write whose state never commits (the node crashed before the ack).
        let second = [event(&h, json!({"source.ip": "192.0.2.2"}))];
        let mut lost = MemoryState { entries: committed.entries.clone() };
        write(&mut bot, dir.path(), &h, &mut lost, &second);
        let path = dir.path().join("out.txt");
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);

        // After the restart the same event comes again, with the committed state.
        let mut restarted = build(json!({"file": "out.txt"}));
        let log = write(&mut restarted, dir.path(), &h, &mut committed, &second);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"source.ip\": \"192.0.2.1\"}\n{\"source.ip\": \"192.0.2.2\"}\n"
        );
        assert!(log.lines.iter().any(|(l, m)| *l == Level::Warning && m.contains("Removed 27 bytes")), "{log:?}");
    }

    #[test]
    fn existing_content_without_a_record_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, "old\n").unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut bot = build(json!({"file": path.to_str().unwrap(), "hierarchical_output": true}));
        write(&mut bot, dir.path(), &h, &mut state, &[event(&h, json!({}))]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n{}\n");
    }

    #[test]
    fn single_key_raw_writes_the_decoded_text() {
        let dir = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut bot = build(json!({"file": "out.txt", "single_key": "raw"}));
        write(&mut bot, dir.path(), &h, &mut state, &[event(&h, json!({"raw": "aGVsbG8gd29ybGQ="}))]);
        assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), "hello world\n");
    }

    #[test]
    fn single_key_output_writes_a_json_string_unquoted_and_other_json_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut bot = build(json!({"file": "out.txt", "single_key": "output"}));
        let events = [event(&h, json!({"output": "\"text\""})), event(&h, json!({"output": "{\"a\": 1}"}))];
        write(&mut bot, dir.path(), &h, &mut state, &events);
        assert_eq!(fs::read_to_string(dir.path().join("out.txt")).unwrap(), "text\n{\"a\": 1}\n");
    }

    #[test]
    fn format_filename_splits_events_by_field_and_date() {
        let dir = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut state = MemoryState::default();
        let mut bot = build(json!({
            "file": "out/{event[feed.name]}-{event[time.source]:%Y-%m-%d}.txt", "format_filename": true
        }));
        let events = [
            event(&h, json!({"feed.name": "a", "time.source": "2020-01-02T03:04:05+00:00"})),
            event(&h, json!({"feed.name": "b", "time.source": "2020-01-03T03:04:05+00:00"})),
            event(&h, json!({"feed.name": "a", "time.source": "2020-01-02T23:04:05+00:00"})),
        ];
        write(&mut bot, dir.path(), &h, &mut state, &events);
        assert_eq!(fs::read_to_string(dir.path().join("out/a-2020-01-02.txt")).unwrap().lines().count(), 2);
        assert_eq!(fs::read_to_string(dir.path().join("out/b-2020-01-03.txt")).unwrap().lines().count(), 1);
    }

    #[test]
    fn template_errors_are_parameter_errors() {
        let params = FileOutputParams { file: "{source.ip}".into(), format_filename: true, ..Default::default() };
        assert_eq!(FileOutputBot::build(params).err().unwrap().key, "file");
        assert_eq!(
            parse_template("a{{b}}{event[x]}").unwrap(),
            vec![Segment::Text("a{b}".into()), Segment::Field { key: "x".into(), spec: String::new() }]
        );
    }

    #[test]
    fn defaults_are_intelmqs() {
        let defaults = serde_json::to_value(FileOutputParams::default()).unwrap();
        assert_eq!(defaults["file"], json!("/opt/intelmq/var/lib/bots/file-output/events.txt"));
        assert_eq!(defaults["single_key"], json!(false));
        assert_eq!(defaults["encoding_errors_mode"], json!("strict"));
    }
}
