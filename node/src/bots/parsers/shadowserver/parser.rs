//! The Shadowserver parser (`intelmq.bots.parsers.shadowserver.parser`): maps the CSV reports of
//! Shadowserver onto events, driven by a schema file in IntelMQ's schema format (see
//! [`super::schema`]).
//!
//! The report type comes from the report's `extra.file_name`
//! (`^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$`, group 1 = the schema's `file_name`) or is fixed
//! by the `feedname` parameter (the schema's `feed_name`). The schema is read from `schema_file`,
//! else `etc/shadowserver-schema.json` (`etc/shadowserver-schema.test.json` with `test_mode`),
//! relative to the root; a missing default file falls back to the copy built into the binary. It
//! is compiled once and read again only when the file's modification time changes (IntelMQ
//! reloads on mtime, too). IntelMQ's `auto_update` downloads the schema; bots here do no network
//! I/O, so the parameter is accepted and a warning says to update the file by other means.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::{Conversion, FieldMapping, ReportType, Row, Schema, Target};
use crate::bots::parsers::{CsvDialect, CsvText};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{AddOptions, FieldError, Message};

/// The schema shipped in `etc/`, used when the default schema file is missing.
const BUILTIN_SCHEMA: &str = include_str!("../../../../../etc/shadowserver-schema.json");
/// IntelMQ's test schema (`schema.json.test`), used with `test_mode` when its file is missing.
const BUILTIN_TEST_SCHEMA: &str = include_str!("../../../../../etc/shadowserver-schema.test.json");

/// The default schema file, relative to the root.
pub const DEFAULT_SCHEMA_FILE: &str = "etc/shadowserver-schema.json";
/// The schema file of `test_mode`, relative to the root.
pub const TEST_SCHEMA_FILE: &str = "etc/shadowserver-schema.test.json";

/// A report's `extra.file_name`: group 1 is the schema's `file_name`.
static FILE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$").unwrap()
});

/// A flag given as a bool, `"true"`/`"false"` or `0`/`1` (IntelMQ configs write all of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoolParam {
    Bool(bool),
    Int(i64),
    String(String),
}

impl BoolParam {
    fn to_bool(&self, key: &str) -> Result<bool, ParamError> {
        match self {
            BoolParam::Bool(b) => Ok(*b),
            BoolParam::Int(i) => Ok(*i != 0),
            BoolParam::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(ParamError::new(key, format!("expected a bool, got `{s}`"))),
            },
        }
    }
}

/// Parameters of the Shadowserver parser (IntelMQ's names and defaults, plus `schema_file`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowserverParserParams {
    /// Default: none (the report type is detected from `extra.file_name`). A schema `feed_name`
    /// that fixes the report type.
    pub feedname: Option<String>,
    /// Default: `false`. Replace the report's `feed.name` (and `feed.documentation`) with the
    /// schema's values.
    pub overwrite: BoolParam,
    /// Default: `false`. IntelMQ downloads the schema; accepted here with a warning (no download).
    pub auto_update: BoolParam,
    /// Default: `false`. Use the test schema `etc/shadowserver-schema.test.json`.
    pub test_mode: BoolParam,
    /// Default: none (`etc/shadowserver-schema.json`, or the test schema with `test_mode`). A
    /// schema file, relative to the root; it overrides `test_mode`.
    pub schema_file: Option<String>,
}

impl Default for ShadowserverParserParams {
    fn default() -> Self {
        ShadowserverParserParams {
            feedname: None,
            overwrite: BoolParam::Bool(false),
            auto_update: BoolParam::Bool(false),
            test_mode: BoolParam::Bool(false),
            schema_file: None,
        }
    }
}

/// Which schema file the bot reads.
#[derive(Clone, Debug, PartialEq)]
enum SchemaSource {
    /// A file the operator named: it must exist.
    Configured(String),
    /// A default file: when missing, the built-in copy is used.
    Default { path: &'static str, builtin: &'static str },
}

/// The compiled schema and where it came from.
struct LoadedSchema {
    schema: Arc<Schema>,
    path: PathBuf,
    /// The file's modification time; `None` for the built-in copy.
    mtime: Option<SystemTime>,
}

/// The Shadowserver parser.
pub struct ShadowserverParserBot {
    feedname: Option<String>,
    overwrite: bool,
    auto_update: bool,
    source: SchemaSource,
    loaded: Option<LoadedSchema>,
    warned_auto_update: bool,
}

impl BuildBot for ShadowserverParserBot {
    type Params = ShadowserverParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let test_mode = params.test_mode.to_bool("test_mode")?;
        let source = match params.schema_file.filter(|s| !s.trim().is_empty()) {
            Some(path) => SchemaSource::Configured(path),
            None if test_mode => SchemaSource::Default { path: TEST_SCHEMA_FILE, builtin: BUILTIN_TEST_SCHEMA },
            None => SchemaSource::Default { path: DEFAULT_SCHEMA_FILE, builtin: BUILTIN_SCHEMA },
        };
        Ok(ShadowserverParserBot {
            feedname: params.feedname.filter(|f| !f.is_empty()),
            overwrite: params.overwrite.to_bool("overwrite")?,
            auto_update: params.auto_update.to_bool("auto_update")?,
            source,
            loaded: None,
            warned_auto_update: false,
        })
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ShadowserverParserBot {
    /// The compiled schema: loaded on the first report, read again when its file changes.
    fn schema(&mut self, ctx: &mut Context<'_>) -> Result<Arc<Schema>, BotError> {
        if self.auto_update && !self.warned_auto_update {
            self.warned_auto_update = true;
            ctx.log.log(
                Level::Warning,
                "Parameter 'auto_update' is not supported: bots do not download the schema. Update the schema file by other means.",
            );
        }
        let (path_param, builtin) = match &self.source {
            SchemaSource::Configured(path) => (path.as_str(), None),
            SchemaSource::Default { path, builtin } => (*path, Some(*builtin)),
        };
        let path = ctx.resolve(path_param);
        if let Some(loaded) = &self.loaded {
            let mtime = modified(&path);
            if loaded.path == path && (mtime.is_none() || mtime == loaded.mtime) {
                return Ok(loaded.schema.clone());
            }
        }

        let loaded = match modified(&path) {
            Some(mtime) => {
                let schema = Schema::load(&path).map_err(|e| BotError::Fatal(e.to_string()))?;
                ctx.log.log(
                    Level::Info,
                    &format!("Loaded the schema {} with {} report types.", path.display(), schema.reports().len()),
                );
                LoadedSchema { schema: Arc::new(schema), path, mtime: Some(mtime) }
            }
            None => match builtin {
                Some(text) => {
                    let schema = Schema::from_json(text, &format!("built-in copy of {path_param}"))
                        .map_err(|e| BotError::Fatal(e.to_string()))?;
                    ctx.log.log(
                        Level::Info,
                        &format!(
                            "Schema file {} not found, using the built-in copy of {path_param} with {} report types.",
                            path.display(),
                            schema.reports().len()
                        ),
                    );
                    LoadedSchema { schema: Arc::new(schema), path, mtime: None }
                }
                None => {
                    return Err(BotError::Fatal(format!(
                        "shadowserver schema file {} (parameter `schema_file`) not found",
                        path.display()
                    )))
                }
            },
        };
        let schema = loaded.schema.clone();
        self.loaded = Some(loaded);
        if let Some(name) = &self.feedname {
            if schema.by_feed_name(name).is_some() {
                ctx.log.log(Level::Info, &format!("Using fixed feed name '{name}' for parsing reports."));
            } else {
                ctx.log.log(
                    Level::Info,
                    &format!(
                        "Could not determine the feed by the feed name '{name}' given by parameter. Will determine the feed from the file names."
                    ),
                );
            }
        }
        Ok(schema)
    }

    /// The report type of a report: fixed by `feedname`, else from `extra.file_name`.
    fn report_type<'s>(
        &self,
        schema: &'s Schema,
        report: &Message,
        ctx: &mut Context<'_>,
    ) -> Result<&'s ReportType, BotError> {
        if let Some(fixed) = self.feedname.as_deref().and_then(|name| schema.by_feed_name(name)) {
            return Ok(fixed);
        }
        let file_name = report.get_str("extra.file_name").filter(|f| !f.is_empty()).ok_or_else(|| {
            BotError::Invalid(
                "no `feedname` parameter given and the report has no `extra.file_name`: at least one is needed"
                    .to_string(),
            )
        })?;
        let name = FILE_NAME
            .captures(file_name)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str())
            .ok_or_else(|| BotError::Invalid(format!("report's `extra.file_name` `{file_name}` is not valid")))?;
        ctx.log.log(Level::Debug, &format!("Detected report's file name: '{name}'."));
        schema.by_file_name(name).ok_or_else(|| {
            BotError::Invalid(format!("no report type for file name `{name}` in the shadowserver schema"))
        })
    }
}

/// IntelMQ `recover_line_csv_dict` with the `unix` dialect: the header with every name quoted,
/// `\n`, the line's text; stripped.
fn recover_line(header: &str, line: &str) -> String {
    py_strip(&format!("{header}\n{line}")).to_string()
}

/// The header as the `unix` dialect writes it: every name quoted.
fn unix_header(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{}\"", n.replace('"', "\"\""))).collect::<Vec<_>>().join(",")
}

/// One row's mapping state: the event, `extra`, and the columns not consumed yet.
struct LineMapper<'a> {
    report_type: &'a ReportType,
    row: Row<'a>,
    /// Columns not consumed yet (IntelMQ's `fields`); a column used twice is appended again.
    fields: Vec<&'a str>,
    extra: Map<String, Value>,
    event: Message,
}

impl<'a> LineMapper<'a> {
    /// Makes `column` available for a mapping; `false` when the header lacks it.
    fn take_column(&mut self, column: &'a str) -> bool {
        if self.fields.contains(&column) {
            return true;
        }
        if !self.row.has(column) {
            return false;
        }
        self.fields.push(column);
        true
    }

    fn consume(&mut self, column: &str) {
        if let Some(i) = self.fields.iter().position(|f| *f == column) {
            self.fields.remove(i);
        }
    }

    /// The converted value of an entry; `optional` entries skip unknown conversions.
    fn value(&self, mapping: &FieldMapping, optional: bool) -> Result<Option<Value>, BotError> {
        let Some(raw) = self.row.get(&mapping.column) else {
            return Ok(None);
        };
        match &mapping.conversion {
            None => Ok(Some(Value::String(raw.to_string()))),
            Some(Conversion::Unknown(_)) if optional => Ok(Some(Value::String(raw.to_string()))),
            Some(conversion) => conversion.apply(raw, &self.row).map_err(|e| {
                BotError::Invalid(format!(
                    "could not convert column `{}` in feed `{}`, value {raw:?}, with `{}`: {e}",
                    mapping.column,
                    self.report_type.feed_name,
                    conversion.name()
                ))
            }),
        }
    }

    fn required(&mut self, mapping: &'a FieldMapping, log: &mut Vec<(Level, String)>) -> Result<(), BotError> {
        if !self.take_column(&mapping.column) {
            return Err(BotError::Invalid(format!(
                "required column `{}` not found in feed `{}`: possible change in data format or misconfiguration",
                mapping.column, self.report_type.feed_name
            )));
        }
        let Some(value) = self.value(mapping, false)? else {
            return Ok(());
        };
        match &mapping.target {
            Target::Field(key) => match self.event.add(key, value) {
                Ok(_) => {}
                Err(FieldError::InvalidKey { .. }) => log.push((
                    Level::Warning,
                    format!(
                        "Key not found in IDF: '{key}' (column '{}') in feed '{}'.",
                        mapping.column, self.report_type.feed_name
                    ),
                )),
                Err(e) => return Err(e.into()),
            },
            Target::ExtraColumn => {
                self.extra.insert(mapping.column.clone(), value);
            }
            Target::Extra(name) => {
                self.extra.insert(name.clone(), value);
            }
            Target::Ignore => {}
        }
        self.consume(&mapping.column);
        Ok(())
    }

    fn optional(&mut self, mapping: &'a FieldMapping, log: &mut Vec<(Level, String)>) -> Result<(), BotError> {
        if !self.take_column(&mapping.column) {
            log.push((
                Level::Warning,
                format!(
                    "Optional key '{}' not found in feed '{}'. Possible change in data format or misconfiguration.",
                    mapping.column, self.report_type.feed_name
                ),
            ));
            return Ok(());
        }
        let Some(value) = self.value(mapping, true)? else {
            self.consume(&mapping.column);
            return Ok(());
        };
        match &mapping.target {
            Target::ExtraColumn => {
                self.extra.insert(mapping.column.clone(), value);
            }
            Target::Extra(name) => {
                self.extra.insert(name.clone(), value);
            }
            Target::Ignore => {}
            Target::Field(key) => match self.event.add(key, value.clone()) {
                Ok(_) => {}
                Err(FieldError::InvalidValue { .. }) => {
                    // The column stays unconsumed and ends up in `extra` under its own name.
                    log.push((
                        Level::Debug,
                        format!(
                            "Could not add key '{}' in feed '{}', adding it to extras.",
                            mapping.column, self.report_type.feed_name
                        ),
                    ));
                    return Ok(());
                }
                Err(FieldError::InvalidKey { .. }) => {
                    self.extra.insert(key.clone(), value);
                }
                Err(e) => return Err(e.into()),
            },
        }
        self.consume(&mapping.column);
        Ok(())
    }
}

impl ShadowserverParserBot {
    /// One row to one event (IntelMQ `parse_line`). Log lines are collected in `log`.
    fn parse_row(
        &self,
        report_type: &ReportType,
        feed_name: &str,
        row: Row<'_>,
        raw: String,
        mut event: Message,
        log: &mut Vec<(Level, String)>,
    ) -> Result<Message, BotError> {
        let overwrite = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
        event.add_with("feed.name", Value::String(feed_name.to_string()), overwrite)?;
        if let Some(url) = &report_type.url {
            event.add_with("feed.documentation", Value::String(url.clone()), overwrite)?;
        }
        let mut mapper = LineMapper {
            report_type,
            row,
            fields: row.names.iter().map(String::as_str).collect(),
            extra: Map::new(),
            event,
        };
        for mapping in &report_type.required_fields {
            mapper.required(mapping, log)?;
        }
        for mapping in &report_type.optional_fields {
            mapper.optional(mapping, log)?;
        }
        let LineMapper { fields, mut extra, mut event, .. } = mapper;

        let replace = AddOptions { overwrite: Some(true), ..AddOptions::default() };
        for (key, value) in &report_type.constant_fields {
            event.add_with(key, value.clone(), replace)?;
        }
        event.add("raw", raw)?;

        for column in fields {
            // Cells missing from a short row are left out.
            if let Some(value) = row.get(column).filter(|v| !v.is_empty()) {
                extra.insert(column.to_string(), Value::String(value.to_string()));
            }
        }
        if !extra.is_empty() {
            event.add("extra", Value::Object(extra))?;
        }
        Ok(event)
    }
}

impl ParserBot for ShadowserverParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let schema = self.schema(ctx)?;
        let report_type = self.report_type(&schema, report, ctx)?;
        let feed_name = match self.feedname.as_deref() {
            Some(name) if schema.by_feed_name(name).is_some() => name,
            _ => report_type.feed_name.as_str(),
        };

        let text = CsvText::from_report(report)?;
        let records = text.dict_records(CsvDialect::default())?;
        let names = records.fieldnames().to_vec();
        let header = unix_header(&names);
        let mut log = Vec::new();
        for record in records {
            let record = record?;
            if record.fields.is_empty() {
                continue;
            }
            let raw = recover_line(&header, record.line);
            let row = Row { names: &names, cells: &record.fields };
            let result = self.parse_row(report_type, feed_name, row, raw.clone(), out.new_event(), &mut log);
            for (level, line) in log.drain(..) {
                ctx.log.log(level, &line);
            }
            match result {
                Ok(event) => out.event(event),
                Err(e) => out.fail(raw, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::parsers::{run_parser, ParserCommon};
    use crate::bots::registry::parse_params;
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::{Harmonization, MessageKind};

    fn build(params: Value) -> ShadowserverParserBot {
        let Value::Object(map) = params else { panic!("params must be an object") };
        ShadowserverParserBot::build(parse_params(&map).unwrap()).unwrap()
    }

    fn report(raw: &str, file_name: Option<&str>, feed_name: Option<&str>) -> Message {
        let mut report = Message::new(MessageKind::Report, Harmonization::builtin());
        report.add("raw", raw).unwrap();
        if let Some(f) = file_name {
            report.add("extra.file_name", f).unwrap();
        }
        if let Some(f) = feed_name {
            report.add("feed.name", f).unwrap();
        }
        report
    }

    fn run(
        bot: &mut ShadowserverParserBot,
        root: &std::path::Path,
        report: &Message,
    ) -> (Result<crate::bots::parsers::ParsedReport, BotError>, Vec<(Level, String)>) {
        let harmonization = Harmonization::builtin();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let mut ctx = Context {
            bot_id: "shadowserver-parser",
            harmonization: &harmonization,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let result = run_parser(bot, report, &ParserCommon::default(), &mut ctx);
        (result, log.lines)
    }

    const SMB: &str = "\"timestamp\",\"ip\",\"port\",\"hostname\",\"tag\",\"asn\",\"geo\",\"region\",\"city\",\"naics\",\"sic\",\"smb_implant\",\"arch\",\"key\",\"smbv1_support\",\"smb_major_number\",\"smb_minor_number\",\"smb_revision\",\"smb_version_string\"\n\"2010-02-10 00:00:00\",192.168.0.1,445,node01.example.com,smb,64512,ZZ,Region,City,0,0,N,,,N,2,1,0,\"SMB 2.1\"\n";

    #[test]
    fn test_mode_maps_a_report_with_the_builtin_test_schema() {
        let mut bot = build(json!({"test_mode": true}));
        let root = tempfile::tempdir().unwrap();
        let (result, _) = run(&mut bot, root.path(), &report(SMB, Some("2019-01-01-test_smb-test-geo.csv"), None));
        let parsed = result.unwrap();
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!(event.get_str("feed.name"), Some("Test-Accessible-SMB"));
        assert_eq!(event.get_str("time.source"), Some("2010-02-10T00:00:00+00:00"));
        assert_eq!(event.get("source.port"), Some(&json!(445)));
        assert_eq!(event.get("extra.smb_implant"), Some(&json!(false)));
        assert_eq!(event.get_str("extra.smbv1_support"), Some("N"));
        assert!(event.get("extra.naics").is_none(), "zero is dropped by invalidate_zero");
        let raw = String::from_utf8(event.raw_bytes().unwrap()).unwrap();
        assert!(raw.starts_with("\"timestamp\",\"ip\""));
        assert!(raw.ends_with("\"SMB 2.1\""));
    }

    #[test]
    fn report_feed_name_is_kept_unless_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let input = report(SMB, Some("2019-01-01-test_smb-test-geo.csv"), Some("mine"));
        let mut bot = build(json!({"test_mode": "true"}));
        let (result, _) = run(&mut bot, root.path(), &input);
        assert_eq!(result.unwrap().events[0].get_str("feed.name"), Some("mine"));
        let mut bot = build(json!({"test_mode": true, "overwrite": true}));
        let (result, _) = run(&mut bot, root.path(), &input);
        assert_eq!(result.unwrap().events[0].get_str("feed.name"), Some("Test-Accessible-SMB"));
    }

    #[test]
    fn feedname_fixes_the_report_type_without_a_file_name() {
        let root = tempfile::tempdir().unwrap();
        let mut bot = build(json!({"test_mode": true, "feedname": "Test-Accessible-SMB"}));
        let (result, _) = run(&mut bot, root.path(), &report(SMB, None, None));
        assert_eq!(result.unwrap().events.len(), 1);
    }

    #[test]
    fn unknown_or_missing_file_names_fail_the_report() {
        let root = tempfile::tempdir().unwrap();
        let mut bot = build(json!({"test_mode": true}));
        let (result, _) = run(&mut bot, root.path(), &report(SMB, None, None));
        assert!(result.unwrap_err().to_string().contains("extra.file_name"));
        let (result, _) = run(&mut bot, root.path(), &report(SMB, Some("2019-01-01-nothing-x.csv"), None));
        assert!(result.unwrap_err().to_string().contains("`nothing`"));
        let (result, _) = run(&mut bot, root.path(), &report(SMB, Some("not a csv name"), None));
        assert!(result.unwrap_err().to_string().contains("not valid"));
    }

    #[test]
    fn a_bad_required_value_fails_only_its_line() {
        let root = tempfile::tempdir().unwrap();
        let mut bot = build(json!({"test_mode": true}));
        let raw = "timestamp,ip,port\n2020-01-01 00:00:00,192.0.2.1,x\n2020-01-01 00:00:00,192.0.2.2,80\n";
        let (result, _) = run(&mut bot, root.path(), &report(raw, Some("test_smb.csv"), None));
        let parsed = result.unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.failed.len(), 1);
        let dumped = String::from_utf8(parsed.failed[0].0.raw_bytes().unwrap()).unwrap();
        assert_eq!(dumped, "\"timestamp\",\"ip\",\"port\"\n2020-01-01 00:00:00,192.0.2.1,x");
    }

    #[test]
    fn missing_required_column_fails_the_line_and_missing_optional_ones_warn() {
        let root = tempfile::tempdir().unwrap();
        let mut bot = build(json!({"test_mode": true}));
        let (result, _) =
            run(&mut bot, root.path(), &report("timestamp,ip\n2020-01-01,192.0.2.1\n", Some("test_smb.csv"), None));
        assert_eq!(result.unwrap().failed.len(), 1);
        let (result, log) = run(
            &mut bot,
            root.path(),
            &report("timestamp,ip,port\n2020-01-01,192.0.2.1,1\n", Some("test_telnet.csv"), None),
        );
        assert_eq!(result.unwrap().events.len(), 1);
        assert!(log.iter().any(|(l, m)| *l == Level::Warning && m == "Optional key 'banner' not found in feed 'Test-Accessible-Telnet'. Possible change in data format or misconfiguration."));
    }

    #[test]
    fn a_schema_file_is_read_and_reloaded_when_it_changes() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("schema.json");
        let schema = |identifier: &str| {
            json!({"x": {"feed_name": "X", "file_name": "x", "url": "https://example.com/x",
                "constant_fields": {"classification.type": "scanner", "classification.identifier": identifier},
                "required_fields": [["source.ip", "ip", "validate_ip"]],
                "optional_fields": [["extra.", "tag", "validate_to_none"], ["user_agent", "agent"], ["source.port", "port"]]}})
            .to_string()
        };
        std::fs::write(&path, schema("one")).unwrap();
        let mut bot = build(json!({"schema_file": "schema.json"}));
        let input = report("ip,tag,agent,port,other\n192.0.2.1,t,curl,notaport,o\n", Some("2020-01-01-x.csv"), None);
        let (result, _) = run(&mut bot, root.path(), &input);
        let event = result.unwrap().events.remove(0);
        assert_eq!(event.get_str("classification.identifier"), Some("one"));
        assert_eq!(event.get_str("feed.documentation"), Some("https://example.com/x"));
        assert_eq!(event.get_str("extra.tag"), Some("t"));
        assert_eq!(event.get_str("extra.user_agent"), Some("curl"), "an unknown key goes to extra");
        assert_eq!(event.get_str("extra.port"), Some("notaport"), "an invalid value stays under its column");
        assert_eq!(event.get_str("extra.other"), Some("o"), "unmapped columns go to extra");

        std::fs::write(&path, schema("two")).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        let (result, _) = run(&mut bot, root.path(), &input);
        assert_eq!(result.unwrap().events[0].get_str("classification.identifier"), Some("two"));
    }

    #[test]
    fn a_configured_schema_file_must_exist() {
        let root = tempfile::tempdir().unwrap();
        let mut bot = build(json!({"schema_file": "missing.json"}));
        let (result, _) = run(&mut bot, root.path(), &report(SMB, Some("test_smb.csv"), None));
        assert!(matches!(result, Err(BotError::Fatal(m)) if m.contains("missing.json")));
    }

    #[test]
    fn the_shipped_schemas_compile() {
        let schema = Schema::from_json(BUILTIN_SCHEMA, "etc").unwrap();
        assert!(schema.by_file_name("scan_http").is_some());
        assert!(schema.by_file_name("test_smb").is_some());
        assert_eq!(schema.by_file_name("event4_sinkhole").unwrap().feed_name, "Sinkhole-Events");
        assert!(Schema::from_json(BUILTIN_TEST_SCHEMA, "test").unwrap().by_file_name("test_afs").is_some());
    }

    #[test]
    fn bool_parameters_accept_intelmq_spellings() {
        let params: ShadowserverParserParams =
            parse_params(json!({"overwrite": "yes", "test_mode": 1}).as_object().unwrap()).unwrap();
        let bot = ShadowserverParserBot::build(params).unwrap();
        assert!(bot.overwrite);
        assert_eq!(bot.source, SchemaSource::Default { path: TEST_SCHEMA_FILE, builtin: BUILTIN_TEST_SCHEMA });
        let params: ShadowserverParserParams =
            parse_params(json!({"overwrite": "maybe"}).as_object().unwrap()).unwrap();
        assert_eq!(ShadowserverParserBot::build(params).err().unwrap().key, "overwrite");
    }
}
