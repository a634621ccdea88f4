//! `intelmq.bots.collectors.file.collector_file`: reads the files of a directory whose names end
//! with `postfix` and emits each as a Report (`raw`, `feed.url` = `file://localhost<path>`,
//! `extra.file_name`), optionally in chunks of `chunk_size` bytes cut at line ends with the first
//! line repeated in every chunk (IntelMQ's `generate_reports`).
//!
//! Deliberate difference from IntelMQ, to keep delivery exactly-once across restarts: IntelMQ reads
//! every matching file on every run (and deletes it right away with `delete_file`). This collector
//! records in its bot state, under the file's absolute path, the modification time and size of each
//! file it emitted; the record commits in the same write as the reports. A file whose modification
//! time and size are unchanged is not emitted again. With `delete_file` the files are deleted only
//! in `committed()`, after the reports are safe; a file that was emitted but not deleted before a
//! crash is recognised by its record and deleted on the next run without being emitted twice.
//! Files that another process holds an exclusive lock on are skipped, as in IntelMQ. Empty files
//! produce no report (IntelMQ logs a warning and drops the report without `raw`).

use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, CollectorBot, CollectorOutput, Context, Level, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the file collector (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileCollectorParams {
    /// The directory to read; relative paths resolve against the node root; default "/tmp/".
    pub path: String,
    /// Only files whose name ends with this are read; default ".csv".
    pub postfix: String,
    /// Delete each file once its reports are committed; default false.
    pub delete_file: bool,
    /// Split files into reports of about this many bytes, cut at line ends; default null (whole file).
    pub chunk_size: Option<u64>,
    /// With `chunk_size`, repeat the first line of the file in every chunk; default true.
    pub chunk_replicate_header: bool,
}

impl Default for FileCollectorParams {
    fn default() -> Self {
        FileCollectorParams {
            path: "/tmp/".to_string(),
            postfix: ".csv".to_string(),
            delete_file: false,
            chunk_size: None,
            chunk_replicate_header: true,
        }
    }
}

/// Reads matching files of a directory into Reports.
pub struct FileCollectorBot {
    params: FileCollectorParams,
    /// Files emitted (or found already emitted) in the last run, to delete once committed.
    to_delete: Vec<PathBuf>,
}

impl BuildBot for FileCollectorBot {
    type Params = FileCollectorParams;

    fn build(params: FileCollectorParams) -> Result<Self, ParamError> {
        if params.path.is_empty() {
            return Err(ParamError::new("path", "no path given"));
        }
        if params.postfix.is_empty() && params.delete_file {
            return Err(ParamError::new(
                "postfix",
                "an empty postfix with delete_file would delete every file in the directory",
            ));
        }
        if params.chunk_size == Some(0) {
            return Err(ParamError::new("chunk_size", "must be a positive number of bytes"));
        }
        Ok(FileCollectorBot { params, to_delete: Vec::new() })
    }
}

/// The state record of an emitted file: modification time and size.
fn fingerprint(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()))
        .unwrap_or_default();
    format!("{mtime}:{}", meta.len())
}

impl FileCollectorBot {
    /// The matching regular files of the directory, sorted by name.
    fn matching_files(&self, dir: &std::path::Path) -> Result<Vec<(String, PathBuf)>, BotError> {
        let entries = fs::read_dir(dir)
            .map_err(|e| BotError::Transient(format!("cannot list directory {}: {e}", dir.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| BotError::Transient(format!("cannot list directory {}: {e}", dir.display())))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.ends_with(&self.params.postfix) {
                continue;
            }
            let path = entry.path();
            if path.is_file() {
                files.push((name, path));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Reads one file into reports; `None` when another process holds a lock on it.
    fn read_file(&self, path: &std::path::Path) -> Result<Option<(Vec<u8>, fs::Metadata)>, BotError> {
        let io_err = |e: std::io::Error| BotError::Transient(format!("cannot read file {}: {e}", path.display()));
        let mut file = File::open(path).map_err(io_err)?;
        // File::try_lock is stable since Rust 1.89 (the workspace declares 1.85).
        #[allow(clippy::incompatible_msrv)]
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let meta = file.metadata().map_err(io_err)?;
        let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut data).map_err(io_err)?;
        // The lock is released when the file is closed.
        Ok(Some((data, meta)))
    }
}

/// IntelMQ's `generate_reports` payloads: the whole data, or chunks of about `chunk_size` bytes
/// cut after the last `\n`, each prefixed by the header line when `replicate_header`.
pub fn split_chunks(data: &[u8], chunk_size: Option<u64>, replicate_header: bool) -> Vec<Vec<u8>> {
    let Some(size) = chunk_size else {
        return if data.is_empty() { Vec::new() } else { vec![data.to_vec()] };
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX).max(1);
    let (header, body) = if replicate_header {
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => data.split_at(i + 1),
            None => (data, &data[data.len()..]),
        }
    } else {
        (&data[..0], data)
    };
    let mut chunks = Vec::new();
    let mut leftover: Vec<u8> = Vec::new();
    let mut pos: usize = 0;
    loop {
        let end = pos.saturating_add(size).min(body.len());
        let new_chunk = &body[pos..end];
        pos = end;
        let mut chunk = std::mem::take(&mut leftover);
        chunk.extend_from_slice(new_chunk);
        if new_chunk.is_empty() {
            if !chunk.is_empty() {
                chunks.push([header, &chunk].concat());
            }
            break;
        }
        match chunk.iter().rposition(|b| *b == b'\n') {
            Some(i) => {
                leftover = chunk.split_off(i + 1);
                chunks.push([header, &chunk].concat());
            }
            None => leftover = chunk,
        }
    }
    chunks
}

impl CollectorBot for FileCollectorBot {
    fn collect(&mut self, ctx: &mut Context<'_>, out: &mut CollectorOutput) -> Result<(), BotError> {
        self.to_delete.clear();
        let dir = ctx.resolve(&self.params.path);
        if !dir.is_dir() {
            ctx.log.log(
                Level::Warning,
                &format!("Path {:?} is not a directory, nothing to collect.", dir.display().to_string()),
            );
            return Ok(());
        }
        // Absolute like Python's os.path.abspath (symlinks are not resolved).
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        for (name, path) in self.matching_files(&dir)? {
            let key = path.to_string_lossy().into_owned();
            let recorded = ctx.state.get(key.as_bytes());
            if let Some(recorded) = &recorded {
                // Cheap check first: an unchanged file needs no read.
                if let Ok(meta) = fs::metadata(&path) {
                    if recorded.as_slice() == fingerprint(&meta).as_bytes() {
                        if self.params.delete_file {
                            self.to_delete.push(path);
                        }
                        continue;
                    }
                }
            }
            let Some((data, meta)) = self.read_file(&path)? else {
                ctx.log.log(Level::Info, &format!("File {key:?} is already being used by another process, skipping."));
                continue;
            };
            ctx.log.log(Level::Info, &format!("Processing file {key:?}."));
            let chunks = split_chunks(&data, self.params.chunk_size, self.params.chunk_replicate_header);
            if chunks.is_empty() {
                ctx.log.log(Level::Warning, &format!("Ignoring empty file {key:?}."));
            }
            let feed_url = format!("file://localhost{key}");
            for chunk in chunks {
                let mut report = Message::new_report(ctx.harmonization.clone());
                report.add("feed.url", feed_url.as_str())?;
                report.add("extra.file_name", name.as_str())?;
                let raw = base64::engine::general_purpose::STANDARD.encode(&chunk);
                report.add_with(
                    "raw",
                    Value::String(raw),
                    AddOptions { sanitize: false, overwrite: Some(true), raise_failure: true },
                )?;
                out.send(report);
            }
            ctx.state.put(key.as_bytes(), fingerprint(&meta).as_bytes(), None);
            if self.params.delete_file {
                self.to_delete.push(path);
            }
        }
        Ok(())
    }

    fn committed(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        for path in std::mem::take(&mut self.to_delete) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    ctx.log.log(Level::Debug, &format!("Deleted file: {:?}.", path.display().to_string()));
                    ctx.state.delete(path.to_string_lossy().as_bytes());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    ctx.state.delete(path.to_string_lossy().as_bytes());
                }
                Err(e) => {
                    ctx.log.log(Level::Error, &format!("Could not delete file {:?}.", path.display().to_string()));
                    return Err(BotError::Fatal(format!(
                        "cannot delete file {} (stopping to prevent reading it again): {e}",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bots::collectors::test_support::harmonization;
    use crate::bots::{MemoryLog, MemoryState};

    fn ctx<'a>(
        root: &'a std::path::Path,
        h: &'a Arc<crate::message::Harmonization>,
        state: &'a mut MemoryState,
        log: &'a mut MemoryLog,
    ) -> Context<'a> {
        Context { bot_id: "file-collector", harmonization: h, root, state, log, clock: &crate::bots::SystemClock }
    }

    fn bot(params: serde_json::Value) -> FileCollectorBot {
        let params: FileCollectorParams = serde_json::from_value(params).unwrap();
        FileCollectorBot::build(params).unwrap()
    }

    fn raw_text(report: &Message) -> String {
        String::from_utf8(report.raw_bytes().unwrap()).unwrap()
    }

    #[test]
    fn chunks_cut_at_line_ends_and_repeat_the_header() {
        let data = b"h\na1\na2\na3\n";
        let chunks = split_chunks(data, Some(5), true);
        let texts: Vec<_> = chunks.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        // As IntelMQ: a chunk is the leftover of the last read plus the next `chunk_size` bytes,
        // cut after its last newline, so it may exceed `chunk_size`.
        assert_eq!(texts, vec!["h\na1\n", "h\na2\na3\n"]);
    }

    #[test]
    fn chunks_without_header_keep_an_unterminated_tail() {
        let chunks = split_chunks(b"aaaa\nbb\ncc", Some(6), false);
        let texts: Vec<_> = chunks.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        assert_eq!(texts, vec!["aaaa\n", "bb\n", "cc"]);
        assert_eq!(split_chunks(b"", None, true), Vec::<Vec<u8>>::new());
        assert_eq!(split_chunks(b"only header\n", Some(4), true), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn empty_postfix_with_delete_is_refused() {
        let params = FileCollectorParams { postfix: String::new(), delete_file: true, ..Default::default() };
        let err = FileCollectorBot::build(params).err().unwrap();
        assert_eq!(err.key, "postfix");
    }

    #[test]
    fn emits_matching_files_sorted_with_feed_url_and_file_name() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("in")).unwrap();
        fs::write(dir.path().join("in/b.csv"), "2\n").unwrap();
        fs::write(dir.path().join("in/a.csv"), "1\n").unwrap();
        fs::write(dir.path().join("in/c.txt"), "x\n").unwrap();
        fs::write(dir.path().join("in/empty.csv"), "").unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut bot = bot(serde_json::json!({"path": "in"}));
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert_eq!(out.reports.len(), 2);
        let abs = dir.path().join("in/a.csv");
        assert_eq!(out.reports[0].get_str("extra.file_name"), Some("a.csv"));
        assert_eq!(out.reports[0].get_str("feed.url"), Some(format!("file://localhost{}", abs.display()).as_str()));
        assert_eq!(raw_text(&out.reports[0]), "1\n");
        assert_eq!(out.reports[1].get_str("extra.file_name"), Some("b.csv"));
        assert!(out.reports[0].get("time.observation").is_some());
    }

    #[test]
    fn unchanged_files_are_skipped_and_changed_files_emitted_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.csv");
        fs::write(&file, "a\n").unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut bot = bot(serde_json::json!({"path": dir.path().to_str().unwrap()}));
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert_eq!(out.reports.len(), 1);

        // A restarted bot with the committed state does not emit the file again.
        let mut restarted = self::bot(serde_json::json!({"path": dir.path().to_str().unwrap()}));
        let mut out = CollectorOutput::default();
        restarted.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert!(out.reports.is_empty());

        fs::write(&file, "a\nb\n").unwrap();
        let mut out = CollectorOutput::default();
        restarted.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert_eq!(out.reports.len(), 1);
        assert_eq!(raw_text(&out.reports[0]), "a\nb\n");
    }

    #[test]
    fn delete_file_removes_files_only_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.csv");
        fs::write(&file, "h\n1\n2\n").unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut bot = bot(serde_json::json!({
            "path": dir.path().to_str().unwrap(), "delete_file": true, "chunk_size": 2
        }));
        let mut out = CollectorOutput::default();
        bot.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        let texts: Vec<_> = out.reports.iter().map(raw_text).collect();
        assert_eq!(texts, vec!["h\n1\n", "h\n2\n"]);
        assert!(file.exists(), "not deleted before the commit");
        bot.committed(&mut ctx(dir.path(), &h, &mut state, &mut log)).unwrap();
        assert!(!file.exists());
        assert!(state.entries.is_empty(), "the record of a deleted file is dropped");
    }

    #[test]
    fn file_emitted_before_a_crash_is_deleted_without_emitting_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("feed.csv");
        fs::write(&file, "a\n").unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let params = serde_json::json!({"path": dir.path().to_str().unwrap(), "delete_file": true});
        let mut out = CollectorOutput::default();
        bot(params.clone()).collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert_eq!(out.reports.len(), 1);
        // Crash: committed() never ran. The restarted bot finds the record.
        let mut restarted = bot(params);
        let mut out = CollectorOutput::default();
        restarted.collect(&mut ctx(dir.path(), &h, &mut state, &mut log), &mut out).unwrap();
        assert!(out.reports.is_empty());
        restarted.committed(&mut ctx(dir.path(), &h, &mut state, &mut log)).unwrap();
        assert!(!file.exists());
    }
}
