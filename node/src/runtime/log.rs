//! Per-bot log files at `<root>/var/log/<bot-id>.log` in IntelMQ's line format
//! (`<date> - <bot-id> - <LEVEL> - <message>`), which `intelmqctl log` and IntelMQ's tools parse.

use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::{Path, PathBuf};

use crate::bots::{BotLog, Level};

/// Writes one bot's log file.
pub struct BotLogger {
    bot_id: String,
    min: Level,
    path: PathBuf,
    file: Option<LineWriter<File>>,
    /// Lines kept in memory as well (the bot debugger shows them).
    captured: Option<Vec<String>>,
}

impl BotLogger {
    /// Opens (appends to) `<log_dir>/<bot_id>.log`; lines below `min` are dropped.
    pub fn open(log_dir: &Path, bot_id: &str, min: Level) -> std::io::Result<BotLogger> {
        std::fs::create_dir_all(log_dir)?;
        let path = log_dir.join(format!("{bot_id}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(BotLogger { bot_id: bot_id.to_string(), min, path, file: Some(LineWriter::new(file)), captured: None })
    }

    /// A logger that keeps its lines in memory only (from `min` up).
    pub fn capture(bot_id: &str, min: Level) -> BotLogger {
        BotLogger { bot_id: bot_id.to_string(), min, path: PathBuf::new(), file: None, captured: Some(Vec::new()) }
    }

    /// The lines kept in memory.
    pub fn take_captured(&mut self) -> Vec<String> {
        self.captured.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// IntelMQ's `asctime`: `2024-01-01 12:00:00,123` in local time.
pub fn asctime() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f").to_string()
}

/// One log line in IntelMQ's format, without the newline.
pub fn format_line(bot_id: &str, level: Level, message: &str) -> String {
    format!("{} - {} - {} - {}", asctime(), bot_id, level.as_str(), message)
}

impl BotLog for BotLogger {
    fn log(&mut self, level: Level, message: &str) {
        if level < self.min {
            return;
        }
        let line = format_line(&self.bot_id, level, message);
        if let Some(c) = self.captured.as_mut() {
            c.push(line);
            return;
        }
        let failed = match self.file.as_mut() {
            Some(f) => writeln!(f, "{line}").is_err(),
            None => true,
        };
        if failed {
            // The log file is gone or full: keep the line on stderr rather than losing it.
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_intelmq_format_and_level_filter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = BotLogger::open(dir.path(), "my-bot", Level::Info).expect("open");
        log.log(Level::Debug, "Hidden.");
        log.log(Level::Info, "Bot is starting.");
        log.log(Level::Error, "Failed to parse line.");
        drop(log);
        let text = std::fs::read_to_string(dir.path().join("my-bot.log")).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let re = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - my-bot - INFO - Bot is starting\.$")
            .expect("regex");
        assert!(re.is_match(lines[0]), "{}", lines[0]);
        assert!(lines[1].contains(" - ERROR - Failed to parse line."));
    }
}
