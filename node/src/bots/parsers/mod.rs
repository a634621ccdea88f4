//! The parsers (Report -> Events) and the machinery they share: IntelMQ's `ParserBot.process`
//! ([`run_parser`]: default fields, failed lines, the summary log line) and the helpers of IntelMQ's
//! `ParserBot` for reading CSV and recovering a failed line's text. Pure code: depends on
//! `message` and the bot traits only.

pub mod abusech;
pub mod alienvault;
pub mod anubisnetworks;
pub mod blueliv;
pub mod calidog;
pub mod cznic;
pub mod eset;
pub mod fraunhofer;
pub mod generic;
pub mod json;
pub mod key_value;
// mods:parsers-json
pub mod cymru;
pub mod shadowserver;
// mods:parsers-shadowserver
pub mod bambenek;
pub mod blocklistde;
pub mod cert_eu;
pub mod ci_army;
pub mod danger_rulez;
pub mod dataplane;
pub mod dshield;
pub mod r#dyn;
pub mod malwarepatrol;
pub mod openphish;
pub mod spamhaus;
pub mod surbl;
pub mod text_lines;
pub mod turris;
pub mod vxvault;
pub mod zoneh;
// mods:parsers-text
pub mod cleanmx;
pub mod fireeye;
pub mod github_feed;
pub mod hibp;
pub mod html_table;
pub mod malwareurl;
pub mod mcafee;
pub mod microsoft;
pub mod misp;
pub mod n6;
pub mod phishtank;
pub mod shodan;
pub mod threatminer;
pub mod twitter;
// mods:parsers-markup

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::bots::{BotError, Context, EventSink, Level, ParamError, Params, ParserBot, ParserOutput};
use crate::message::{AddOptions, Harmonization, Message, MessageKind};

/// The parameters every parser has (IntelMQ `ParserBot`), split off the bot's own parameters.
#[derive(Clone, Debug, Default)]
pub struct ParserCommon {
    /// Fields added to every event unless the event already holds them (`overwrite=False`).
    pub default_fields: Map<String, Value>,
    /// Report fields copied into every event besides the feed fields (e.g. `extra.file_name`).
    pub copy_collector_provided_fields: Vec<String>,
}

/// The parameter keys that belong to [`ParserCommon`].
pub const COMMON_PARAMETERS: &[&str] = &["default_fields", "copy_collector_provided_fields"];

impl ParserCommon {
    /// Takes the common parser parameters out of a parser's parameter map, leaving the bot's own
    /// keys. `copy_collector_provided_fields` may be a list or a comma-separated string; `null`
    /// keeps the default.
    pub fn take_from(params: &mut Params) -> Result<ParserCommon, ParamError> {
        let mut common = ParserCommon::default();
        match params.remove("default_fields") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => common.default_fields = map,
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(map)) => common.default_fields = map,
                _ => return Err(ParamError::new("default_fields", format!("expected a JSON object, got `{s}`"))),
            },
            Some(other) => return Err(ParamError::new("default_fields", format!("expected an object, got {other}"))),
        }
        match params.remove("copy_collector_provided_fields") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                common.copy_collector_provided_fields =
                    s.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_string).collect();
            }
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => common.copy_collector_provided_fields.push(s),
                        other => {
                            return Err(ParamError::new(
                                "copy_collector_provided_fields",
                                format!("expected a list of field names, got {other}"),
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(ParamError::new(
                    "copy_collector_provided_fields",
                    format!("expected a list of field names, got {other}"),
                ))
            }
        }
        Ok(common)
    }

    /// IntelMQ checks `default_fields` when a parser starts: every key and value must be valid for
    /// an event.
    pub fn validate(&self, harmonization: &Arc<Harmonization>) -> Result<(), ParamError> {
        let mut dummy = Message::new(MessageKind::Event, harmonization.clone());
        for (key, value) in &self.default_fields {
            dummy
                .add_with(key, value.clone(), AddOptions { overwrite: Some(true), ..AddOptions::default() })
                .map_err(|e| ParamError::new("default_fields", e.to_string()))?;
        }
        Ok(())
    }
}

/// What one report turned into.
#[derive(Debug, Default)]
pub struct ParsedReport {
    /// The events, in the order the parser produced them.
    pub events: Vec<Message>,
    /// One entry per failed line: a copy of the report whose `raw` is the recovered line, and the
    /// error text. The runtime dumps these (and sends them to `_on_error` when configured).
    pub failed: Vec<(Message, String)>,
}

/// IntelMQ's `ParserBot.process` for one report: a report without `raw` logs a warning and yields
/// nothing; otherwise the bot parses it, `default_fields` are added to each event without
/// overwriting, every failed line becomes a mini-report, and the summary is logged.
pub fn run_parser(
    bot: &mut dyn ParserBot,
    report: &Message,
    common: &ParserCommon,
    ctx: &mut Context<'_>,
) -> Result<ParsedReport, BotError> {
    run_parser_chunked(bot, report, common, ctx, None)
}

/// [`run_parser`] handing the events to `sink` in chunks of `chunk` as the parser goes (default
/// fields applied); the returned report holds the last, incomplete chunk and the failed lines.
pub fn run_parser_chunked(
    bot: &mut dyn ParserBot,
    report: &Message,
    common: &ParserCommon,
    ctx: &mut Context<'_>,
    sink: Option<(&mut dyn EventSink, usize)>,
) -> Result<ParsedReport, BotError> {
    if report.get("raw").is_none() {
        ctx.log.log(
            Level::Warning,
            "Report without raw field received. Possible bug or misconfiguration in previous bots.",
        );
        return Ok(ParsedReport::default());
    }

    let mut defaults = WithDefaults { inner: None, defaults: &common.default_fields, failed: Vec::new(), sent: 0 };
    let (parsed, failed_lines) = match sink {
        Some((inner, chunk)) => {
            defaults.inner = Some(inner);
            let mut out = ParserOutput::chunked(report, &common.copy_collector_provided_fields, &mut defaults, chunk);
            bot.parse(report, ctx, &mut out)?;
            out.finish()?
        }
        None => {
            let mut out = ParserOutput::new(report, &common.copy_collector_provided_fields);
            bot.parse(report, ctx, &mut out)?;
            out.finish()?
        }
    };
    let mut events = defaults.apply(parsed);
    let sent = defaults.sent + events.len();
    let mut failed_raw = std::mem::take(&mut defaults.failed);
    failed_raw.extend(failed_lines.into_iter().map(|f| (f.raw, f.error)));

    let mut failed = Vec::with_capacity(failed_raw.len());
    for (raw, error) in failed_raw {
        ctx.log.log(Level::Error, &format!("Failed to parse line. {error}"));
        let mut dump = report.to_report();
        dump.add_with("raw", Value::String(raw), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
        failed.push((dump, error));
    }

    if !failed.is_empty() {
        ctx.log.log(Level::Info, &format!("Sent {} events and found {} problem(s).", sent, failed.len()));
    }
    events.shrink_to_fit();
    Ok(ParsedReport { events, failed })
}

/// Adds the default fields to each event on its way to the sink; an event they fail on becomes
/// a failed line, as in IntelMQ, where they are added inside the per-line `try`.
struct WithDefaults<'a> {
    inner: Option<&'a mut dyn EventSink>,
    defaults: &'a Map<String, Value>,
    failed: Vec<(String, String)>,
    /// Events handed to the inner sink.
    sent: usize,
}

impl WithDefaults<'_> {
    fn apply(&mut self, parsed: Vec<Message>) -> Vec<Message> {
        if self.defaults.is_empty() {
            return parsed;
        }
        let mut events = Vec::with_capacity(parsed.len());
        for mut event in parsed {
            match apply_default_fields(&mut event, self.defaults) {
                Ok(()) => events.push(event),
                Err(e) => {
                    let raw = event.raw_bytes().map(|b| decode_utf8_ignore(&b)).unwrap_or_default();
                    self.failed.push((raw, e.to_string()));
                }
            }
        }
        events
    }
}

impl EventSink for WithDefaults<'_> {
    fn chunk(&mut self, events: Vec<Message>) -> Result<(), BotError> {
        let events = self.apply(events);
        self.sent += events.len();
        match self.inner.as_mut() {
            Some(inner) => inner.chunk(events),
            None => Ok(()),
        }
    }
}

/// Adds each default field that the event does not hold yet (IntelMQ `add(.., overwrite=False)`).
fn apply_default_fields(event: &mut Message, defaults: &Map<String, Value>) -> Result<(), BotError> {
    for (key, value) in defaults {
        event.add_with(key, value.clone(), AddOptions { overwrite: Some(false), ..AddOptions::default() })?;
    }
    Ok(())
}

/// Decodes bytes as UTF-8, dropping invalid sequences (IntelMQ `utils.decode(.., force=True)`).
pub fn decode_utf8_ignore(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut s = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                s.push_str(chunk.valid());
            }
            s
        }
    }
}

/// The report's `raw`, base64-decoded into text (IntelMQ `utils.base64_decode(report["raw"])`).
pub fn report_text(report: &Message) -> Result<String, BotError> {
    if report.get("raw").is_none() {
        return Err(BotError::Invalid("report has no `raw` field".to_string()));
    }
    let bytes =
        report.raw_bytes().ok_or_else(|| BotError::Invalid("report field `raw` is not valid base64".to_string()))?;
    Ok(decode_utf8_ignore(&bytes))
}

/// The line ending of `text` as Python's `StringIO(text, newline="").newlines` sees it: the one kind
/// of `\r\n`, `\n`, `\r` that occurs; none or a mix gives the csv module's default `\r\n`.
pub fn detect_line_ending(text: &str) -> &'static str {
    let (mut crlf, mut lf, mut cr) = (false, false, false);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                crlf = true;
                i += 1;
            }
            b'\r' => cr = true,
            b'\n' => lf = true,
            _ => {}
        }
        i += 1;
    }
    match (crlf, lf, cr) {
        (false, true, false) => "\n",
        (false, false, true) => "\r",
        _ => "\r\n",
    }
}

/// IntelMQ `recover_line`: the saved header lines and the line, joined with `\n`.
pub fn recover_line(tempdata: &[String], line: &str) -> String {
    let mut out = String::new();
    for saved in tempdata {
        out.push_str(saved);
        out.push('\n');
    }
    out.push_str(line);
    out
}

/// Appends one CSV row the way Python's `csv.writer` (excel dialect: `,`, `"`, minimal quoting)
/// writes it, ended by `line_ending`.
pub fn write_csv_row<S: AsRef<str>>(out: &mut String, fields: &[S], line_ending: &str) {
    if fields.len() == 1 && fields[0].as_ref().is_empty() {
        // A single empty field is quoted so that the row is not an empty line.
        out.push_str("\"\"");
    } else {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let field = field.as_ref();
            if field.contains([',', '"', '\r', '\n']) {
                out.push('"');
                out.push_str(&field.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(field);
            }
        }
    }
    out.push_str(line_ending);
}

/// IntelMQ `recover_line_csv`: the saved header lines and the row re-serialised as CSV, joined and
/// ended with the input's line ending.
pub fn recover_line_csv<S: AsRef<str>>(tempdata: &[String], fields: &[S], line_ending: &str) -> String {
    let mut out = String::new();
    for saved in tempdata {
        out.push_str(saved);
        out.push_str(line_ending);
    }
    write_csv_row(&mut out, fields, line_ending);
    out
}

/// IntelMQ `recover_line_csv_dict`: the header row written as CSV followed by the original line
/// text, stripped.
pub fn recover_line_csv_dict<S: AsRef<str>>(fieldnames: &[S], line: &str, line_ending: &str) -> String {
    let mut out = String::new();
    write_csv_row(&mut out, fieldnames, line_ending);
    out.push_str(line);
    out.trim().to_string()
}

/// CSV reading options (Python `csv` dialect parameters the parsers use).
#[derive(Clone, Copy, Debug)]
pub struct CsvDialect {
    pub delimiter: u8,
    pub quote: u8,
    /// `""` inside a quoted field stands for one `"` (Python `doublequote`).
    pub double_quote: bool,
    /// Python `escapechar`.
    pub escape: Option<u8>,
}

impl Default for CsvDialect {
    fn default() -> Self {
        CsvDialect { delimiter: b',', quote: b'"', double_quote: true, escape: None }
    }
}

impl CsvDialect {
    pub fn with_delimiter(delimiter: u8) -> Self {
        CsvDialect { delimiter, ..CsvDialect::default() }
    }
}

/// One CSV record: its fields and the source text it came from (without its line ending).
#[derive(Clone, Debug)]
pub struct CsvRecord<'t> {
    pub fields: Vec<String>,
    /// The original text of the record (IntelMQ `_current_line`).
    pub line: &'t str,
}

/// The records of a CSV text in order; empty lines are skipped.
pub struct CsvRecords<'t> {
    text: &'t str,
    reader: csv::Reader<&'t [u8]>,
    record: csv::StringRecord,
}

impl<'t> CsvRecords<'t> {
    pub fn new(text: &'t str, dialect: CsvDialect) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(dialect.delimiter)
            .quote(dialect.quote)
            .double_quote(dialect.double_quote)
            .escape(dialect.escape)
            .from_reader(text.as_bytes());
        CsvRecords { text, reader, record: csv::StringRecord::new() }
    }
}

impl<'t> Iterator for CsvRecords<'t> {
    type Item = Result<CsvRecord<'t>, BotError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.reader.position().byte() as usize;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let end = self.reader.position().byte() as usize;
                let line = self
                    .text
                    .get(start.min(self.text.len())..end.min(self.text.len()))
                    .unwrap_or("")
                    .trim_matches(['\r', '\n']);
                let fields = self.record.iter().map(str::to_string).collect();
                Some(Ok(CsvRecord { fields, line }))
            }
            Err(e) => Some(Err(BotError::Invalid(format!("cannot read csv: {e}")))),
        }
    }
}

/// A report's text prepared as IntelMQ `parse_csv`/`parse_csv_dict` do: stripped, NULs removed,
/// its line ending noted for [`recover_line_csv`].
#[derive(Clone, Debug)]
pub struct CsvText {
    text: String,
    line_ending: &'static str,
}

impl CsvText {
    /// From the report's `raw`.
    pub fn from_report(report: &Message) -> Result<Self, BotError> {
        Ok(CsvText::new(&report_text(report)?))
    }

    /// From text: strip, drop NULs, detect the line ending.
    pub fn new(text: &str) -> Self {
        let text: String = text.trim().chars().filter(|c| *c != '\0').collect();
        let line_ending = detect_line_ending(&text);
        CsvText { text, line_ending }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn line_ending(&self) -> &'static str {
        self.line_ending
    }

    /// IntelMQ `parse_csv`: the records as lists of fields.
    pub fn records(&self, dialect: CsvDialect) -> CsvRecords<'_> {
        CsvRecords::new(&self.text, dialect)
    }

    /// IntelMQ `parse_csv_dict`: the first record is the header; every later record maps onto it.
    pub fn dict_records(&self, dialect: CsvDialect) -> Result<CsvDictRecords<'_>, BotError> {
        let mut records = self.records(dialect);
        let fieldnames = match records.next() {
            Some(header) => header?.fields,
            None => Vec::new(),
        };
        Ok(CsvDictRecords { fieldnames, records })
    }
}

/// The records of a CSV text with a header line (Python `csv.DictReader`).
pub struct CsvDictRecords<'t> {
    fieldnames: Vec<String>,
    records: CsvRecords<'t>,
}

impl<'t> CsvDictRecords<'t> {
    /// The header's field names (IntelMQ `self.csv_fieldnames`).
    pub fn fieldnames(&self) -> &[String] {
        &self.fieldnames
    }
}

impl<'t> Iterator for CsvDictRecords<'t> {
    type Item = Result<CsvRecord<'t>, BotError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.records.next()
    }
}

/// A dict-reader row value: the field under `name` in `record`, given the header `fieldnames`
/// (`None` when the row is shorter than the header, Python's `restval`).
pub fn dict_get<'r>(fieldnames: &[String], record: &'r CsvRecord<'_>, name: &str) -> Option<&'r str> {
    let index = fieldnames.iter().position(|f| f == name)?;
    record.fields.get(index).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ending_is_the_single_kind_present_or_crlf() {
        assert_eq!(detect_line_ending("a\nb\n"), "\n");
        assert_eq!(detect_line_ending("a\r\nb\r\n"), "\r\n");
        assert_eq!(detect_line_ending("a\rb"), "\r");
        assert_eq!(detect_line_ending("a\nb\r\nc"), "\r\n");
        assert_eq!(detect_line_ending("abc"), "\r\n");
    }

    #[test]
    fn csv_rows_are_written_like_pythons_excel_dialect() {
        let mut out = String::new();
        write_csv_row(&mut out, &["a", "b c", "x,y", "q\"q", " lead"], "\n");
        assert_eq!(out, "a,b c,\"x,y\",\"q\"\"q\", lead\n");
        let mut out = String::new();
        write_csv_row(&mut out, &[""], "\r\n");
        assert_eq!(out, "\"\"\r\n");
    }

    #[test]
    fn recover_line_csv_joins_header_lines_with_the_line_ending() {
        let header = vec!["h1, h2".to_string()];
        assert_eq!(recover_line_csv(&header, &["1", "2"], "\r\n"), "h1, h2\r\n1,2\r\n");
        assert_eq!(recover_line_csv(&[], &["1"], "\n"), "1\n");
    }

    #[test]
    fn recover_line_joins_with_newline() {
        assert_eq!(recover_line(&["# head".to_string()], "line"), "# head\nline");
        assert_eq!(recover_line(&[], "line"), "line");
    }

    #[test]
    fn csv_text_is_stripped_and_loses_nuls() {
        let text = CsvText::new("  a,b\0\r\nc,d\r\n\n");
        assert_eq!(text.text(), "a,b\r\nc,d");
        assert_eq!(text.line_ending(), "\r\n");
    }

    #[test]
    fn csv_records_carry_fields_and_original_line() {
        let text = CsvText::new("a,\"b,c\"\n\nd,\"e\"\"f\"\n");
        let records: Vec<_> = text.records(CsvDialect::default()).map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].fields, vec!["a", "b,c"]);
        assert_eq!(records[0].line, "a,\"b,c\"");
        assert_eq!(records[1].fields, vec!["d", "e\"f"]);
        assert_eq!(records[1].line, "d,\"e\"\"f\"");
    }

    #[test]
    fn dict_records_map_rows_onto_the_header() {
        let text = CsvText::new("ip,port\n192.0.2.1,80\n192.0.2.2\n");
        let rows = text.dict_records(CsvDialect::default()).unwrap();
        let names = rows.fieldnames().to_vec();
        let records: Vec<_> = rows.map(|r| r.unwrap()).collect();
        assert_eq!(names, vec!["ip", "port"]);
        assert_eq!(dict_get(&names, &records[0], "port"), Some("80"));
        assert_eq!(dict_get(&names, &records[1], "port"), None);
        assert_eq!(recover_line_csv_dict(&names, records[0].line, "\n"), "ip,port\n192.0.2.1,80");
    }

    /// A parser that makes one event per line holding `source.ip`, failing on `bad`.
    struct LineParser;

    impl ParserBot for LineParser {
        fn parse(
            &mut self,
            report: &Message,
            _ctx: &mut Context<'_>,
            out: &mut ParserOutput<'_>,
        ) -> Result<(), BotError> {
            for line in report_text(report)?.lines() {
                if line == "bad" {
                    out.fail(recover_line(&["# header".to_string()], line), "bad line");
                    continue;
                }
                let mut event = out.new_event();
                event.add("source.ip", line)?;
                event.add("classification.type", "scanner")?;
                event.add("raw", line)?;
                out.event(event);
            }
            Ok(())
        }
    }

    fn run_lines(raw: Option<&str>, common: &ParserCommon) -> (Result<ParsedReport, BotError>, Vec<(Level, String)>) {
        use crate::bots::{MemoryLog, MemoryState};

        let harmonization = Harmonization::builtin();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        report.add("feed.name", "Lines").unwrap();
        if let Some(raw) = raw {
            report.add("raw", raw).unwrap();
        }
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "lines-parser",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let result = run_parser(&mut LineParser, &report, common, &mut ctx);
        (result, log.lines)
    }

    #[test]
    fn a_report_without_raw_gives_a_warning_and_nothing_else() {
        let (result, log) = run_lines(None, &ParserCommon::default());
        let parsed = result.unwrap();
        assert!(parsed.events.is_empty() && parsed.failed.is_empty());
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].0, Level::Warning);
    }

    #[test]
    fn default_fields_never_overwrite_and_failed_lines_become_reports() {
        let mut params = Params::new();
        params.insert(
            "default_fields".to_string(),
            serde_json::json!({"classification.type": "blacklist", "comment": "from defaults"}),
        );
        params.insert("copy_collector_provided_fields".to_string(), Value::String("extra.file_name".to_string()));
        params.insert("columns".to_string(), Value::Null);
        let common = ParserCommon::take_from(&mut params).unwrap();
        assert_eq!(params.len(), 1, "only the bot's own keys stay");
        assert_eq!(common.copy_collector_provided_fields, vec!["extra.file_name"]);
        common.validate(&Harmonization::builtin()).unwrap();

        let (result, log) = run_lines(Some("192.0.2.1\nbad\n192.0.2.2"), &common);
        let parsed = result.unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].get_str("classification.type"), Some("scanner"));
        assert_eq!(parsed.events[0].get_str("comment"), Some("from defaults"));
        assert_eq!(parsed.failed.len(), 1);
        let (dump, error) = &parsed.failed[0];
        assert_eq!(dump.kind(), MessageKind::Report);
        assert_eq!(dump.get_str("feed.name"), Some("Lines"));
        assert_eq!(dump.raw_bytes().unwrap(), b"# header\nbad");
        assert_eq!(error, "bad line");
        assert!(log.contains(&(Level::Error, "Failed to parse line. bad line".to_string())));
        assert!(log.contains(&(Level::Info, "Sent 2 events and found 1 problem(s).".to_string())));
    }

    #[test]
    fn invalid_default_fields_are_a_param_error() {
        let mut params = Params::new();
        params.insert("default_fields".to_string(), serde_json::json!({"source.ip": "not an ip"}));
        let common = ParserCommon::take_from(&mut params).unwrap();
        let err = common.validate(&Harmonization::builtin()).unwrap_err();
        assert_eq!(err.key, "default_fields");
        let mut params = Params::new();
        params.insert("copy_collector_provided_fields".to_string(), serde_json::json!({"a": 1}));
        assert_eq!(ParserCommon::take_from(&mut params).unwrap_err().key, "copy_collector_provided_fields");
    }

    #[test]
    fn invalid_utf8_is_dropped() {
        assert_eq!(decode_utf8_ignore(b"a\xffb"), "ab");
    }
}
