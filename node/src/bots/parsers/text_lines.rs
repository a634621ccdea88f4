//! Line-oriented reading shared by the plain-text feed parsers: Python's `str.splitlines`, and
//! IntelMQ's default `ParserBot.parse`/`process` loop (stripped non-empty lines, header lines kept
//! in `tempdata`, a failing line recovered with the final `tempdata` once the report is done).

use crate::bots::parsers::{recover_line, report_text, CsvDialect, CsvText};
use crate::bots::{BotError, ParserOutput};
use crate::message::types::py_strip;
use crate::message::Message;

/// Python's `str.splitlines()`: splits at `\n`, `\r`, `\r\n`, `\v`, `\f`, `\x1c`-`\x1e`, `\x85`,
/// `\u2028` and `\u2029`; a trailing line break gives no empty last line.
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = chars.peek() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The state IntelMQ's `ParserBot` keeps while it reads one report.
#[derive(Debug, Default)]
pub struct LineState {
    /// IntelMQ `self.tempdata`: header and comment lines, used to recover failed lines.
    pub tempdata: Vec<String>,
}

/// IntelMQ's default `ParserBot` loop over a report: every line of `raw` (Python `splitlines`),
/// stripped; empty lines are skipped; `parse_line` turns a line into events (or none, e.g. for a
/// comment it keeps in `tempdata`). A line whose `parse_line` fails yields no event at all and is
/// recorded as failed with `tempdata` (as it is at the end of the report) and the line as its raw.
pub fn parse_lines<F>(report: &Message, out: &mut ParserOutput<'_>, parse_line: F) -> Result<(), BotError>
where
    F: FnMut(&str, &mut LineState, &ParserOutput<'_>) -> Result<Vec<Message>, BotError>,
{
    let text = report_text(report)?;
    let lines = py_splitlines(&text).into_iter().map(py_strip);
    parse_given_lines(lines, LineState::default(), out, parse_line)
}

/// [`parse_lines`] over lines a parser prepared itself (IntelMQ parsers that override `parse`),
/// starting with `state`. Empty lines are skipped.
pub fn parse_given_lines<'l, I, F>(
    lines: I,
    mut state: LineState,
    out: &mut ParserOutput<'_>,
    mut parse_line: F,
) -> Result<(), BotError>
where
    I: IntoIterator<Item = &'l str>,
    F: FnMut(&str, &mut LineState, &ParserOutput<'_>) -> Result<Vec<Message>, BotError>,
{
    let mut failed: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        match parse_line(line, &mut state, out) {
            Ok(events) => {
                for event in events {
                    out.event(event);
                }
            }
            Err(e) => failed.push((line.to_string(), e.to_string())),
        }
    }
    for (line, error) in failed {
        out.fail(recover_line(&state.tempdata, &line), error);
    }
    Ok(())
}

/// One row of a CSV report with a header line (Python `csv.DictReader`).
#[derive(Clone, Debug)]
pub struct DictRow {
    /// The row's values, in column order.
    pub fields: Vec<String>,
    /// The record's text without its line ending.
    pub line: String,
    /// IntelMQ `_current_line`: the record's last physical line with its line ending.
    pub current_line: String,
}

impl DictRow {
    /// `row[name]`: `Err` when the header has no such column (Python `KeyError`), `Ok(None)` when
    /// the row is shorter than the header (the reader's `restval`).
    pub fn get(&self, fieldnames: &[String], name: &str) -> Result<Option<&str>, BotError> {
        let index = fieldnames
            .iter()
            .position(|f| f == name)
            .ok_or_else(|| BotError::Invalid(format!("the csv header has no column `{name}`")))?;
        Ok(self.fields.get(index).map(String::as_str))
    }

    /// `row[name]` with a missing value read as `""`.
    pub fn text(&self, fieldnames: &[String], name: &str) -> Result<&str, BotError> {
        Ok(self.get(fieldnames, name)?.unwrap_or(""))
    }
}

/// A CSV report read as IntelMQ's `ParserBot.parse_csv_dict` reads it.
#[derive(Clone, Debug)]
pub struct CsvDictReport {
    /// The header's column names (IntelMQ `csv_fieldnames`).
    pub fieldnames: Vec<String>,
    /// The first line read, stripped (IntelMQ `_handle.first_line`).
    pub first_line: String,
    /// The line ending of the report (for `recover_line_csv_dict`).
    pub line_ending: &'static str,
    pub rows: Vec<DictRow>,
}

impl CsvDictReport {
    /// Reads the report: `raw` stripped and without NULs, lines starting with one of
    /// `ignore_prefixes` dropped, the first record is the header.
    pub fn read(report: &Message, ignore_prefixes: &[&str]) -> Result<Self, BotError> {
        let original = CsvText::from_report(report)?;
        let line_ending = original.line_ending();
        let filtered: String = if ignore_prefixes.is_empty() {
            original.text().to_string()
        } else {
            original
                .text()
                .split_inclusive('\n')
                .filter(|l| !ignore_prefixes.iter().any(|p| l.starts_with(p)))
                .collect()
        };
        let first_line = py_strip(filtered.split_inclusive('\n').next().unwrap_or("")).to_string();
        let text = CsvText::new(&filtered);
        let base = text.text().as_ptr() as usize;
        let full = text.text();
        let mut records = text.dict_records(CsvDialect::default())?;
        let fieldnames = records.fieldnames().to_vec();
        let mut rows = Vec::new();
        for record in &mut records {
            let record = record?;
            let start = (record.line.as_ptr() as usize).saturating_sub(base);
            let end = (start + record.line.len()).min(full.len());
            let tail = full.get(end..).unwrap_or("");
            let ending = if tail.starts_with("\r\n") {
                "\r\n"
            } else if tail.starts_with('\n') {
                "\n"
            } else {
                ""
            };
            let last = record.line.rsplit('\n').next().unwrap_or("");
            rows.push(DictRow {
                fields: record.fields,
                line: record.line.to_string(),
                current_line: format!("{last}{ending}"),
            });
        }
        Ok(CsvDictReport { fieldnames, first_line, line_ending, rows })
    }

    /// IntelMQ `recover_line` for a CSV-dict parser: the first line read, then the current line.
    pub fn recover_line(&self, row: &DictRow) -> String {
        format!("{}\n{}", self.first_line, row.current_line)
    }

    /// IntelMQ `recover_line_csv_dict`: the header written as CSV and the row's line, stripped.
    pub fn recover_line_csv_dict(&self, row: &DictRow) -> String {
        crate::bots::parsers::recover_line_csv_dict(&self.fieldnames, &row.current_line, self.line_ending)
    }
}

/// The report's `feed.url`; a report without one fails (IntelMQ `report['feed.url']`).
pub fn feed_url(report: &Message) -> Result<&str, BotError> {
    report.get_str("feed.url").ok_or_else(|| BotError::Invalid("report has no `feed.url` field".to_string()))
}

/// Python's `str.strip(chars)`: removes any of `chars` from both ends.
pub fn strip_chars<'s>(s: &'s str, chars: &str) -> &'s str {
    s.trim_matches(|c| chars.contains(c))
}

/// Helpers for the unit tests of the parsers that use this module.
#[cfg(test)]
pub mod testing {
    use serde_json::Value;

    use crate::bots::parsers::{run_parser, ParsedReport, ParserCommon};
    use crate::bots::{Context, MemoryLog, MemoryState, ParserBot};
    use crate::message::{Harmonization, Message, MessageKind};

    /// Runs `bot` on a report with `fields` (dotted keys) and `raw`; returns what it parsed, or the
    /// error that failed the whole report.
    pub fn run(bot: &mut dyn ParserBot, fields: &[(&str, &str)], raw: &str) -> Result<ParsedReport, String> {
        let harmonization = Harmonization::builtin();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        for (key, value) in fields {
            report.add(key, *value).map_err(|e| e.to_string())?;
        }
        report.add("raw", raw).map_err(|e| e.to_string())?;
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "test-parser",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        run_parser(bot, &report, &ParserCommon::default(), &mut ctx).map_err(|e| e.to_string())
    }

    /// The text of a message's `raw`.
    pub fn raw_text(message: &Message) -> String {
        String::from_utf8(message.raw_bytes().unwrap_or_default()).unwrap_or_default()
    }

    /// A field of a message, or `Value::Null`.
    pub fn field(message: &Message, key: &str) -> Value {
        message.get(key).cloned().unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_follows_python() {
        assert_eq!(py_splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n\nb\n"), vec!["a", "", "b"]);
        assert_eq!(py_splitlines("a\u{0c}b\u{2028}c"), vec!["a", "b", "c"]);
        assert!(py_splitlines("").is_empty());
        assert_eq!(py_splitlines("\n"), vec![""]);
    }

    #[test]
    fn csv_dict_rows_keep_their_line_ending_and_comments_are_dropped() {
        use crate::message::{Harmonization, MessageKind};

        let mut report = Message::new(MessageKind::Report, Harmonization::builtin());
        report.add("raw", "# note\r\n\"a\",\"b\"\r\n1,\"x,y\"\r\n2\r\n").unwrap();
        let csv = CsvDictReport::read(&report, &["#"]).unwrap();
        assert_eq!(csv.fieldnames, vec!["a", "b"]);
        assert_eq!(csv.first_line, "\"a\",\"b\"");
        assert_eq!(csv.line_ending, "\r\n");
        assert_eq!(csv.rows.len(), 2);
        assert_eq!(csv.rows[0].current_line, "1,\"x,y\"\r\n");
        assert_eq!(csv.rows[0].text(&csv.fieldnames, "b").unwrap(), "x,y");
        assert_eq!(csv.rows[1].current_line, "2");
        assert_eq!(csv.rows[1].get(&csv.fieldnames, "b").unwrap(), None);
        assert!(csv.rows[1].get(&csv.fieldnames, "c").is_err());
        assert_eq!(csv.recover_line(&csv.rows[0]), "\"a\",\"b\"\n1,\"x,y\"\r\n");
        assert_eq!(csv.recover_line_csv_dict(&csv.rows[0]), "a,b\r\n1,\"x,y\"");
    }

    #[test]
    fn strip_chars_removes_any_of_the_set() {
        assert_eq!(strip_chars("AS260 ", "AS"), "260 ");
        assert_eq!(strip_chars("; Last-Modified: x ;", "; "), "Last-Modified: x");
    }
}
