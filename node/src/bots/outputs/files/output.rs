//! `intelmq.bots.outputs.files.output`: one file per event, Maildir-style: the event (IntelMQ's
//! `export_event`: the JSON of the event without `raw` unless `keep_raw_field`, or only
//! `single_key`) is written to a file in `tmp` and then linked into `dir` in one atomic step, so a
//! reader of `dir` never sees a partial file. `tmp` and `dir` are created if missing and must be on
//! the same file system.
//!
//! Deliberate difference from IntelMQ, for exactly-once delivery across crashes: IntelMQ names the
//! files `<host>.<pid>.<time>.<device>.<inode><suffix>`, so a retried event gets a new name and
//! is written twice. Here the name is `<host>.<bot id>.<n><suffix>` with `n` a counter kept in the
//! bot state and committed with the acknowledgement: after a crash the same events get the same
//! names again. The file is linked into `dir` without replacing anything; a file already there with
//! the same content is the one written before the crash (nothing new is written), a file with other
//! content means the counter was reset, and the next free number is taken. (A consumer that already
//! took the file from `dir` before the crash gets it again: at-least-once to the outside.)

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::outputs::tcp::support::{de, hostname};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, OutputBot, ParamError};
use crate::message::{ExportOptions, Message};

/// The state key of the file counter.
const SEQ_KEY: &[u8] = b"files-output:next";

/// Parameters of the files output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesOutputParams {
    /// Where finished files appear; default "/opt/intelmq/var/lib/bots/files-output/incoming".
    #[serde(deserialize_with = "de::string")]
    pub dir: String,
    /// Where files are written first; default "/opt/intelmq/var/lib/bots/files-output/tmp".
    #[serde(deserialize_with = "de::string")]
    pub tmp: String,
    /// Appended to every file name; default ".json".
    #[serde(deserialize_with = "de::string")]
    pub suffix: String,
    /// Nest the dotted keys into objects; default false.
    #[serde(deserialize_with = "de::bool")]
    pub hierarchical_output: bool,
    /// Write only this field; default false.
    #[serde(deserialize_with = "de::single_key", serialize_with = "de::ser_single_key")]
    pub single_key: Option<String>,
    /// Keep the `raw` field; default false.
    #[serde(deserialize_with = "de::bool")]
    pub keep_raw_field: bool,
    /// Include `__type`; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_with_type: bool,
    /// Write JSONDict fields as one JSON string; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_jsondict_as_string: bool,
}

impl Default for FilesOutputParams {
    fn default() -> Self {
        FilesOutputParams {
            dir: "/opt/intelmq/var/lib/bots/files-output/incoming".to_string(),
            tmp: "/opt/intelmq/var/lib/bots/files-output/tmp".to_string(),
            suffix: ".json".to_string(),
            hierarchical_output: false,
            single_key: None,
            keep_raw_field: false,
            message_with_type: false,
            message_jsondict_as_string: false,
        }
    }
}

/// Writes one file per event.
pub struct FilesOutputBot {
    params: FilesOutputParams,
    host: String,
}

impl BuildBot for FilesOutputBot {
    type Params = FilesOutputParams;

    fn build(params: FilesOutputParams) -> Result<Self, ParamError> {
        if params.dir.is_empty() {
            return Err(ParamError::new("dir", "no directory given"));
        }
        if params.tmp.is_empty() {
            return Err(ParamError::new("tmp", "no directory given"));
        }
        if params.suffix.contains('/') {
            return Err(ParamError::new("suffix", "a file name suffix cannot hold `/`"));
        }
        Ok(FilesOutputBot { params, host: hostname().replace('/', "_") })
    }
}

/// IntelMQ's `OutputBot.export_event(event, return_type=str)`.
pub fn export_event(
    event: &Message,
    single_key: Option<&str>,
    keep_raw_field: bool,
    opts: ExportOptions,
) -> Result<String, BotError> {
    if let Some(key) = single_key {
        return match key {
            "raw" => Ok(event.raw_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()),
            "output" => {
                let data = event
                    .get_str("output")
                    .ok_or_else(|| BotError::Invalid("field `output` (single_key) is missing".to_string()))?;
                match serde_json::from_str::<Value>(data) {
                    Ok(Value::String(text)) => Ok(text),
                    _ => Ok(data.to_string()),
                }
            }
            other => match event.get(other) {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(value) => Ok(value.to_string()),
                None => Err(BotError::Invalid(format!("field `{other}` (single_key) is missing"))),
            },
        };
    }
    if keep_raw_field || !event.contains("raw") {
        return Ok(event.to_export_json(opts));
    }
    let mut event = event.clone();
    event.remove("raw");
    Ok(event.to_export_json(opts))
}

fn ensure_dir(path: &Path, key: &str) -> Result<(), BotError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path)
        .map_err(|e| BotError::Fatal(format!("cannot create `{key}` directory {}: {e}", path.display())))?;
    if !path.is_dir() {
        return Err(BotError::Fatal(format!("`{key}` {} is not a directory", path.display())));
    }
    Ok(())
}

impl FilesOutputBot {
    fn dirs(&self, ctx: &Context<'_>) -> (PathBuf, PathBuf) {
        (ctx.resolve(&self.params.dir), ctx.resolve(&self.params.tmp))
    }

    /// Delivers one file named by `seq` (or the next free number); returns the number used.
    fn deliver(&self, dir: &Path, tmp: &Path, id: &str, mut seq: u64, data: &[u8]) -> Result<u64, BotError> {
        let same_dir = dir == tmp;
        loop {
            let name = format!("{}.{}.{}{}", self.host, id, seq, self.params.suffix);
            let final_path = dir.join(&name);
            let tmp_path = if same_dir { tmp.join(format!(".{name}.tmp")) } else { tmp.join(&name) };
            let io = |what: &str, p: &Path, e: std::io::Error| {
                BotError::Transient(format!("cannot {what} {}: {e}", p.display()))
            };
            let mut f = fs::File::create(&tmp_path).map_err(|e| io("create", &tmp_path, e))?;
            f.write_all(data).map_err(|e| io("write", &tmp_path, e))?;
            f.flush().map_err(|e| io("write", &tmp_path, e))?;
            drop(f);
            match fs::hard_link(&tmp_path, &final_path) {
                Ok(()) => {
                    fs::remove_file(&tmp_path).map_err(|e| io("remove", &tmp_path, e))?;
                    return Ok(seq);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = fs::read(&final_path).map_err(|e| io("read", &final_path, e))?;
                    fs::remove_file(&tmp_path).map_err(|e| io("remove", &tmp_path, e))?;
                    if existing == data {
                        // Written by a step that never committed: it is the same event.
                        return Ok(seq);
                    }
                    seq += 1;
                }
                Err(e) => return Err(io("link into", &final_path, e)),
            }
        }
    }
}

impl OutputBot for FilesOutputBot {
    fn start(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let (dir, tmp) = self.dirs(ctx);
        ensure_dir(&tmp, "tmp")?;
        ensure_dir(&dir, "dir")?;
        let dev = |p: &Path| {
            fs::metadata(p).map(|m| m.dev()).map_err(|e| BotError::Fatal(format!("cannot stat {}: {e}", p.display())))
        };
        if dev(&tmp)? != dev(&dir)? {
            return Err(BotError::Fatal("tmp and dir must reside on the same filesystem".to_string()));
        }
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let (dir, tmp) = self.dirs(ctx);
        if !dir.is_dir() || !tmp.is_dir() {
            self.start(ctx)?;
        }
        let opts = ExportOptions {
            hierarchical: self.params.hierarchical_output,
            with_type: self.params.message_with_type,
            jsondict_as_string: self.params.message_jsondict_as_string,
        };
        let mut seq = ctx
            .state
            .get(SEQ_KEY)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let id = ctx.bot_id.replace('/', "_");
        for event in events {
            let data = export_event(event, self.params.single_key.as_deref(), self.params.keep_raw_field, opts)?;
            seq = self.deliver(&dir, &tmp, &id, seq, data.as_bytes())? + 1;
        }
        ctx.state.put(SEQ_KEY, seq.to_string().as_bytes(), None);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn contents(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| fs::read_to_string(e.unwrap().path()).unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn one_file_per_event_and_a_lost_step_is_not_written_twice() {
        let root = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut bot =
            FilesOutputBot::build(serde_json::from_value(json!({"dir": "in", "tmp": "tmp"})).unwrap()).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let events =
            [event(&h, json!({"source.ip": "192.0.2.1", "raw": "YQ=="})), event(&h, json!({"source.ip": "192.0.2.2"}))];
        {
            let mut ctx = Context::new("files-output", &h, root.path(), &mut state, &mut log);
            bot.start(&mut ctx).unwrap();
            let mut lost = MemoryState {
                entries: ctx.state.get(SEQ_KEY).map(|v| vec![(SEQ_KEY.to_vec(), v)]).into_iter().flatten().collect(),
            };
            let mut lctx = Context::new("files-output", &h, root.path(), &mut lost, ctx.log);
            bot.write(&events, &mut lctx).unwrap();
        }
        // The step never committed: the same events come again with the old state.
        let mut ctx = Context::new("files-output", &h, root.path(), &mut state, &mut log);
        bot.write(&events, &mut ctx).unwrap();
        assert_eq!(
            contents(&root.path().join("in")),
            vec!["{\"source.ip\": \"192.0.2.1\"}", "{\"source.ip\": \"192.0.2.2\"}"]
        );
        assert!(contents(&root.path().join("tmp")).is_empty());
        // New events get new names even when the counter is reset.
        let mut fresh = MemoryState::default();
        let mut ctx = Context::new("files-output", &h, root.path(), &mut fresh, &mut log);
        bot.write(&[event(&h, json!({"source.ip": "192.0.2.3"}))], &mut ctx).unwrap();
        assert_eq!(contents(&root.path().join("in")).len(), 3);
    }

    #[test]
    fn same_dir_and_tmp_and_single_key() {
        let root = tempfile::tempdir().unwrap();
        let h = harmonization();
        let mut bot = FilesOutputBot::build(
            serde_json::from_value(json!({"dir": "d", "tmp": "d", "single_key": "output", "suffix": ""})).unwrap(),
        )
        .unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("f", &h, root.path(), &mut state, &mut log);
        bot.start(&mut ctx).unwrap();
        bot.write(&[event(&h, json!({"output": "{\"asdf\": \"ghjk\"}"}))], &mut ctx).unwrap();
        assert_eq!(contents(&root.path().join("d")), vec!["{\"asdf\": \"ghjk\"}"]);
    }

    #[test]
    fn a_plain_file_in_place_of_dir_fails_at_start() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("d"), "").unwrap();
        let h = harmonization();
        let mut bot = FilesOutputBot::build(serde_json::from_value(json!({"dir": "d", "tmp": "d"})).unwrap()).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("f", &h, root.path(), &mut state, &mut log);
        assert!(matches!(bot.start(&mut ctx), Err(BotError::Fatal(_))));
    }
}
