//! The generic CSV parser (`intelmq.bots.parsers.generic.parser_csv`): maps the columns of any
//! CSV feed onto harmonization fields, with IntelMQ's parameters, defaults and quirks.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::{detect_line_ending, recover_line_csv, report_text, CsvDialect, CsvRecords};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::datetime::TimeFormat;
use crate::message::{AddOptions, FieldError, Message};

/// Lines that are comments: `#` after optional blanks (IntelMQ removes them before reading CSV).
static COMMENT_LINES: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(?m)^[ \t]*#.*\n?").unwrap()
});

/// Blank lines and leading blanks of every line.
static BLANK_PREFIXES: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(?m)^[ \t]*\n?").unwrap()
});

/// A list given as a JSON list or as a comma-separated string (IntelMQ configs use both).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListOrString<T> {
    List(Vec<T>),
    String(String),
}

/// A flag given as a bool, `"true"`/`"false"` or `0`/`1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Int(i64),
    String(String),
}

impl Flag {
    fn to_bool(&self) -> Option<bool> {
        match self {
            Flag::Bool(b) => Some(*b),
            Flag::Int(i) => Some(*i != 0),
            Flag::String(s) => parse_bool(s),
        }
    }
}

/// `skip_header`: a bool (one line) or a number of lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SkipHeader {
    Bool(bool),
    Lines(u64),
    String(String),
}

/// A string-to-string mapping given as a JSON object or as a string holding one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MapOrJson {
    Map(serde_json::Map<String, Value>),
    Json(String),
}

/// Parameters of the generic CSV parser (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenericCsvParserParams {
    /// Default: none (required). One target field per column, as a list or a comma-separated
    /// string; `__IGNORE__` or `""` skips a column; `a|b` tries `a`, then `b`.
    pub columns: Option<ListOrString<String>>,
    /// Default: none (every column required). Per column: whether a value that fits none of its
    /// fields fails the line.
    pub columns_required: Option<ListOrString<Flag>>,
    /// Default: none. `{field: regex}`: the value becomes the regex's first match.
    pub column_regex_search: Option<MapOrJson>,
    /// Default: none. `{field: "format {0} {1}"}`: fields composed from the row (Python format).
    pub compose_fields: Option<MapOrJson>,
    /// Default: none. `{field: "json"}`: the value is decoded as JSON first.
    pub data_type: Option<MapOrJson>,
    /// Default: `"http://"`. Prefixed to `*.url` values without `://`.
    pub default_url_protocol: Option<String>,
    /// Default: `","`. The column separator (one character).
    pub delimiter: String,
    /// Default: none. A substring of the line (columns joined by the delimiter) to filter on.
    pub filter_text: Option<String>,
    /// Default: none. `whitelist` keeps lines with `filter_text`, `blacklist` drops them.
    pub filter_type: Option<String>,
    /// Default: `false`. Header lines to skip: `true` = 1, or a number.
    pub skip_header: SkipHeader,
    /// Default: none (fuzzy). How `time.source`/`time.destination` are read (IntelMQ TimeFormat).
    pub time_format: Option<String>,
    /// Default: none. Deprecated: `classification.type` of events that have none.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Default: none. `{feed value: classification.type}` applied to a `classification.type` column.
    pub type_translation: Option<MapOrJson>,
}

impl Default for GenericCsvParserParams {
    fn default() -> Self {
        GenericCsvParserParams {
            columns: None,
            columns_required: None,
            column_regex_search: None,
            compose_fields: None,
            data_type: None,
            default_url_protocol: Some("http://".to_string()),
            delimiter: ",".to_string(),
            filter_text: None,
            filter_type: None,
            skip_header: SkipHeader::Bool(false),
            time_format: None,
            type_: None,
            type_translation: None,
        }
    }
}

/// One column: its alternative target fields and whether it is required.
#[derive(Clone, Debug)]
struct Column {
    keys: Vec<String>,
    required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterType {
    Whitelist,
    Blacklist,
}

/// A piece of a `compose_fields` template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Column(usize),
}

/// The generic CSV parser.
pub struct GenericCsvParserBot {
    columns: Vec<Column>,
    column_regex_search: HashMap<String, Regex>,
    compose_fields: Vec<(String, Vec<Piece>)>,
    json_fields: Vec<String>,
    default_url_protocol: String,
    delimiter: char,
    filter: Option<(String, FilterType)>,
    skip_header: usize,
    time_format: TimeFormat,
    type_: Option<String>,
    type_translation: HashMap<String, String>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" | "" => Some(false),
        _ => None,
    }
}

/// A string map parameter: a JSON object, or a string holding one (`""` = empty).
fn string_map(key: &str, value: Option<MapOrJson>) -> Result<Vec<(String, String)>, ParamError> {
    let map = match value {
        None => return Ok(Vec::new()),
        Some(MapOrJson::Map(map)) => map,
        Some(MapOrJson::Json(text)) if text.trim().is_empty() => return Ok(Vec::new()),
        Some(MapOrJson::Json(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => return Ok(Vec::new()),
            Ok(_) => return Err(ParamError::new(key, format!("expected a JSON object, got `{text}`"))),
            Err(e) => return Err(ParamError::new(key, format!("invalid JSON `{text}`: {e}"))),
        },
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(ParamError::new(key, format!("value of `{k}` must be a string, got {other}"))),
        })
        .collect()
}

/// Parses a Python `str.format` template that refers to row columns by position.
fn parse_template(key: &str, field: &str, template: &str) -> Result<Vec<Piece>, ParamError> {
    let bad = |reason: &str| ParamError::new(key, format!("field `{field}`: template `{template}` {reason}"));
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut auto = 0usize;
    let (mut used_auto, mut used_manual) = (false, false);
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
            '}' => return Err(bad("has a single `}`")),
            '{' => {
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => return Err(bad("has an unclosed `{`")),
                    }
                }
                let name = spec.strip_suffix("!s").unwrap_or(&spec);
                let index = if name.is_empty() {
                    used_auto = true;
                    auto += 1;
                    auto - 1
                } else {
                    used_manual = true;
                    name.parse::<usize>().map_err(|_| bad("may only hold `{}` or `{N}` replacement fields"))?
                };
                if used_auto && used_manual {
                    return Err(bad("mixes automatic and manual field numbering"));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Column(index));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Fills a template with the row's columns.
fn fill_template(pieces: &[Piece], row: &[String]) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Column(i) => match row.get(*i) {
                Some(v) => out.push_str(v),
                None => return Err(format!("compose_fields: the row has no column {i}")),
            },
        }
    }
    Ok(out)
}

/// IntelMQ's ignored values: `add` stores nothing and reports no failure.
fn is_ignored(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == "-" || s == "N/A",
        _ => false,
    }
}

/// Python truthiness of a JSON value.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl BuildBot for GenericCsvParserBot {
    type Params = GenericCsvParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let names: Vec<String> = match params.columns {
            None => return Err(ParamError::new("columns", "is required")),
            Some(ListOrString::List(list)) => list.into_iter().map(|c| c.trim().to_string()).collect(),
            Some(ListOrString::String(s)) => s.split(',').map(|c| c.trim().to_string()).collect(),
        };
        let required: Vec<bool> = match params.columns_required {
            None => vec![true; names.len()],
            Some(ListOrString::List(flags)) => flags
                .iter()
                .map(|f| f.to_bool().ok_or_else(|| ParamError::new("columns_required", format!("not a bool: {f:?}"))))
                .collect::<Result<_, _>>()?,
            Some(ListOrString::String(s)) => s
                .split(',')
                .map(|f| parse_bool(f).ok_or_else(|| ParamError::new("columns_required", format!("not a bool: `{f}`"))))
                .collect::<Result<_, _>>()?,
        };
        if names.len() != required.len() {
            return Err(ParamError::new(
                "columns_required",
                format!(
                    "length of `columns` ({}) and `columns_required` ({}) must be equal",
                    names.len(),
                    required.len()
                ),
            ));
        }
        let columns = names
            .into_iter()
            .zip(required)
            .map(|(name, required)| Column { keys: name.split('|').map(str::to_string).collect(), required })
            .collect();

        let column_regex_search = string_map("column_regex_search", params.column_regex_search)?
            .into_iter()
            .map(|(field, pattern)| {
                Regex::new(&pattern)
                    .map(|re| (field.clone(), re))
                    .map_err(|e| ParamError::new("column_regex_search", format!("field `{field}`: {e}")))
            })
            .collect::<Result<_, _>>()?;

        let compose_fields = string_map("compose_fields", params.compose_fields)?
            .into_iter()
            .map(|(field, template)| {
                let pieces = parse_template("compose_fields", &field, &template)?;
                Ok((field, pieces))
            })
            .collect::<Result<_, ParamError>>()?;

        let mut json_fields = Vec::new();
        for (field, kind) in string_map("data_type", params.data_type)? {
            if kind != "json" {
                return Err(ParamError::new(
                    "data_type",
                    format!("field `{field}`: unknown data type `{kind}` (known: json)"),
                ));
            }
            json_fields.push(field);
        }

        let mut delimiter_chars = params.delimiter.chars();
        let delimiter = match (delimiter_chars.next(), delimiter_chars.next()) {
            (Some(c), None) if c.is_ascii() => c,
            _ => {
                return Err(ParamError::new(
                    "delimiter",
                    format!("must be a single ASCII character, got `{}`", params.delimiter),
                ))
            }
        };

        let filter_type = match params.filter_type.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("whitelist") => Some(FilterType::Whitelist),
            Some("blacklist") => Some(FilterType::Blacklist),
            Some(other) => {
                return Err(ParamError::new(
                    "filter_type",
                    format!("unknown filter type `{other}` (known: whitelist, blacklist)"),
                ))
            }
        };
        let filter = match (params.filter_text.filter(|t| !t.is_empty()), filter_type) {
            (Some(text), Some(kind)) => Some((text, kind)),
            _ => None,
        };

        let skip_header = match params.skip_header {
            SkipHeader::Bool(b) => usize::from(b),
            SkipHeader::Lines(n) => usize::try_from(n).map_err(|_| ParamError::new("skip_header", "too large"))?,
            SkipHeader::String(s) => match (parse_bool(&s), s.trim().parse::<usize>()) {
                (_, Ok(n)) => n,
                (Some(b), _) => usize::from(b),
                _ => return Err(ParamError::new("skip_header", format!("expected a bool or a number, got `{s}`"))),
            },
        };

        let time_format = TimeFormat::parse(params.time_format.as_deref().filter(|s| !s.is_empty()))
            .map_err(|e| ParamError::new("time_format", e))?;

        let type_translation = string_map("type_translation", params.type_translation)?.into_iter().collect();

        Ok(GenericCsvParserBot {
            columns,
            column_regex_search,
            compose_fields,
            json_fields,
            default_url_protocol: params.default_url_protocol.unwrap_or_default(),
            delimiter,
            filter,
            skip_header,
            time_format,
            type_: params.type_.filter(|t| !t.is_empty()),
            type_translation,
        })
    }
}

impl GenericCsvParserBot {
    /// Whether a row passes `filter_text`/`filter_type`.
    fn keeps(&self, row: &[String]) -> bool {
        let Some((text, kind)) = &self.filter else {
            return true;
        };
        let mut delimiter = [0u8; 4];
        let joined = row.join(self.delimiter.encode_utf8(&mut delimiter));
        let found = joined.contains(text.as_str());
        match kind {
            FilterType::Whitelist => found,
            FilterType::Blacklist => !found,
        }
    }

    /// One row to one event (IntelMQ `parse_line`); the error is the reason the line failed.
    fn parse_row(&self, mut event: Message, row: &[String], raw: String) -> Result<Message, BotError> {
        for (column, cell) in self.columns.iter().zip(row) {
            let mut value = Value::String(cell.clone());
            let mut done = false;
            let mut last_key = "";
            for key in &column.keys {
                last_key = key;
                if value.as_str() == Some("") {
                    // An empty cell is never an error.
                    done = true;
                    break;
                }
                if let Some(re) = self.column_regex_search.get(key) {
                    let text = value.as_str().ok_or_else(|| {
                        BotError::Invalid(format!("column_regex_search for `{key}`: value {value} is not a string"))
                    })?;
                    value = re.find(text).map_or(Value::Null, |m| Value::String(m.as_str().to_string()));
                }
                if key == "__IGNORE__" || key.is_empty() {
                    done = true;
                    break;
                }
                if self.json_fields.iter().any(|f| f == key) {
                    let text = value.as_str().ok_or_else(|| {
                        BotError::Invalid(format!("data_type json for `{key}`: value {value} is not a string"))
                    })?;
                    value = serde_json::from_str(text).map_err(|e| {
                        BotError::Invalid(format!("data_type json for `{key}`: invalid JSON `{text}`: {e}"))
                    })?;
                }
                if key == "time.source" || key == "time.destination" {
                    let text = value
                        .as_str()
                        .ok_or_else(|| BotError::Invalid(format!("time value {value} for `{key}` is not a string")))?;
                    let parsed = self.time_format.convert(text).ok_or_else(|| {
                        BotError::Invalid(format!(
                            "cannot read time `{text}` for `{key}` with time_format `{}`",
                            self.time_format.as_param()
                        ))
                    })?;
                    value = Value::String(parsed);
                } else if key.ends_with(".url") {
                    if !is_truthy(&value) {
                        continue;
                    }
                    if let Value::String(s) = &value {
                        if !s.contains("://") {
                            value = Value::String(format!("{}{}", self.default_url_protocol, s));
                        }
                    }
                } else if key == "classification.type" && !self.type_translation.is_empty() {
                    match value.as_str().and_then(|v| self.type_translation.get(v)) {
                        Some(translated) => value = Value::String(translated.clone()),
                        None if self.type_.is_none() => continue,
                        None => {}
                    }
                }
                let ignored = is_ignored(&value);
                let opts = AddOptions { raise_failure: false, ..AddOptions::default() };
                if event.add_with(key, value.clone(), opts)? || ignored {
                    done = true;
                    break;
                }
            }
            if !done && column.required {
                return Err(BotError::Field(FieldError::InvalidValue {
                    key: last_key.to_string(),
                    value: value.to_string(),
                    reason: "the value fits none of the column's fields".to_string(),
                }));
            }
        }

        for (field, pieces) in &self.compose_fields {
            let composed = fill_template(pieces, row).map_err(BotError::Invalid)?;
            event.add(field, composed)?;
        }

        if let Some(type_) = &self.type_ {
            if !event.contains("classification.type") {
                event.add("classification.type", type_.as_str())?;
            }
        }
        event.add("raw", raw)?;
        Ok(event)
    }
}

impl ParserBot for GenericCsvParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let text = text.replace('\0', "");
        let text = COMMENT_LINES.replace_all(&text, "");
        let text = BLANK_PREFIXES.replace_all(&text, "");
        let line_ending = detect_line_ending(&text);

        let mut rest: &str = &text;
        let mut header = Vec::with_capacity(self.skip_header);
        for _ in 0..self.skip_header {
            if rest.is_empty() {
                break;
            }
            let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            header.push(line.trim_end_matches('\r').to_string());
            rest = tail;
        }

        // Invariant: the delimiter is checked to be one ASCII character when the bot is built.
        let dialect = CsvDialect::with_delimiter(self.delimiter as u8);
        for record in CsvRecords::new(rest, dialect) {
            let record = record?;
            let row = record.fields;
            if row.is_empty() || !self.keeps(&row) {
                continue;
            }
            let raw = recover_line_csv(&header, &row, line_ending);
            match self.parse_row(out.new_event(), &row, raw.clone()) {
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

    use crate::bots::registry::parse_params;

    fn params(value: Value) -> Result<GenericCsvParserParams, ParamError> {
        let Value::Object(map) = value else { panic!("params must be an object") };
        parse_params(&map)
    }

    fn build(value: Value) -> Result<GenericCsvParserBot, ParamError> {
        GenericCsvParserBot::build(params(value)?)
    }

    #[test]
    fn columns_may_be_a_comma_string_or_a_list() {
        let from_string = build(json!({"columns": "source.ip, __IGNORE__ ,source.url|source.fqdn"})).unwrap();
        let keys: Vec<_> = from_string.columns.iter().map(|c| c.keys.clone()).collect();
        assert_eq!(keys, vec![vec!["source.ip"], vec!["__IGNORE__"], vec!["source.url", "source.fqdn"]]);
        let from_list = build(json!({"columns": ["source.ip", ""]})).unwrap();
        assert_eq!(from_list.columns.len(), 2);
        assert!(from_list.columns.iter().all(|c| c.required));
    }

    #[test]
    fn missing_columns_is_a_param_error() {
        let err = build(json!({})).err().unwrap();
        assert_eq!(err.key, "columns");
    }

    #[test]
    fn columns_required_must_match_columns_in_length() {
        let err = build(json!({"columns": ["a", "b"], "columns_required": [true]})).err().unwrap();
        assert_eq!(err.key, "columns_required");
        let ok = build(json!({"columns": ["a", "b"], "columns_required": ["true", false]})).unwrap();
        assert_eq!(ok.columns.iter().map(|c| c.required).collect::<Vec<_>>(), vec![true, false]);
    }

    #[test]
    fn bad_time_format_is_a_param_error() {
        let err = build(json!({"columns": ["time.source"], "time_format": "no_such_format"})).err().unwrap();
        assert_eq!(err.key, "time_format");
    }

    #[test]
    fn filter_type_must_be_whitelist_or_blacklist() {
        let err = build(json!({"columns": ["a"], "filter_text": "x", "filter_type": "greylist"})).err().unwrap();
        assert_eq!(err.key, "filter_type");
        let empty = build(json!({"columns": ["a"], "filter_text": "x", "filter_type": ""})).unwrap();
        assert!(empty.filter.is_none());
    }

    #[test]
    fn delimiter_must_be_one_character() {
        let err = build(json!({"columns": ["a"], "delimiter": ";;"})).err().unwrap();
        assert_eq!(err.key, "delimiter");
        assert_eq!(build(json!({"columns": ["a"], "delimiter": "\t"})).unwrap().delimiter, '\t');
    }

    #[test]
    fn maps_accept_objects_and_json_strings() {
        let bot = build(json!({
            "columns": ["classification.type"],
            "type_translation": "{\"Testing\": \"malware-distribution\"}",
            "data_type": {"extra.tags": "json"},
            "column_regex_search": "",
        }))
        .unwrap();
        assert_eq!(bot.type_translation.get("Testing").map(String::as_str), Some("malware-distribution"));
        assert_eq!(bot.json_fields, vec!["extra.tags"]);
        assert!(bot.column_regex_search.is_empty());
        let err = build(json!({"columns": ["a"], "type_translation": "{not json"})).err().unwrap();
        assert_eq!(err.key, "type_translation");
        let err = build(json!({"columns": ["a"], "data_type": {"extra.x": "xml"}})).err().unwrap();
        assert_eq!(err.key, "data_type");
        let err = build(json!({"columns": ["a"], "column_regex_search": {"source.asn": "("}})).err().unwrap();
        assert_eq!(err.key, "column_regex_search");
    }

    #[test]
    fn skip_header_accepts_bools_numbers_and_strings() {
        let lines = |v: Value| build(json!({"columns": ["a"], "skip_header": v})).unwrap().skip_header;
        assert_eq!(lines(json!(true)), 1);
        assert_eq!(lines(json!(false)), 0);
        assert_eq!(lines(json!(3)), 3);
        assert_eq!(lines(json!("true")), 1);
        assert_eq!(lines(json!("2")), 2);
        assert!(build(json!({"columns": ["a"], "skip_header": "maybe"})).is_err());
    }

    #[test]
    fn unknown_parameters_are_rejected_by_name() {
        let err = params(json!({"columns": ["a"], "colums": ["b"]})).err().unwrap();
        assert_eq!(err.key, "colums");
    }

    #[test]
    fn type_parameter_is_read_from_the_type_key() {
        let bot = build(json!({"columns": ["a"], "type": "blacklist"})).unwrap();
        assert_eq!(bot.type_.as_deref(), Some("blacklist"));
    }

    #[test]
    fn compose_templates_are_checked_and_filled() {
        let pieces = parse_template("compose_fields", "f", "x {0}-{1} {{y}}").unwrap();
        let row = vec!["a".to_string(), "b".to_string()];
        assert_eq!(fill_template(&pieces, &row).unwrap(), "x a-b {y}");
        let auto = parse_template("compose_fields", "f", "{}{}").unwrap();
        assert_eq!(fill_template(&auto, &row).unwrap(), "ab");
        assert!(fill_template(&parse_template("compose_fields", "f", "{5}").unwrap(), &row).is_err());
        let err = build(json!({"columns": ["a"], "compose_fields": {"extra.x": "{0:>3}"}})).err().unwrap();
        assert_eq!(err.key, "compose_fields");
        assert!(parse_template("compose_fields", "f", "{0}{}").is_err());
        assert!(parse_template("compose_fields", "f", "open {").is_err());
    }

    #[test]
    fn filter_matches_the_row_joined_by_the_delimiter() {
        let bot =
            build(json!({"columns": ["a"], "delimiter": " ", "filter_text": "add x", "filter_type": "whitelist"}))
                .unwrap();
        let row = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(bot.keeps(&row("ipset add x 1")));
        assert!(!bot.keeps(&row("ipset del x 1")));
        let bot = build(json!({"columns": ["a"], "filter_text": "127.0.0.1", "filter_type": "blacklist"})).unwrap();
        assert!(!bot.keeps(&row("127.0.0.1")));
        assert!(bot.keeps(&row("10.0.0.1")));
    }

    /// Runs the bot on `raw` and returns the parsed report and the log.
    fn run(bot_params: Value, raw: &str) -> (crate::bots::parsers::ParsedReport, Vec<String>) {
        use crate::bots::parsers::{run_parser, ParserCommon};
        use crate::bots::{MemoryLog, MemoryState};
        use crate::message::{Harmonization, MessageKind};

        let harmonization = Harmonization::builtin();
        let mut bot = build(bot_params).unwrap();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        report.add("feed.name", "Test Feed").unwrap();
        report.add("raw", raw).unwrap();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "csv-parser",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let parsed = run_parser(&mut bot, &report, &ParserCommon::default(), &mut ctx).unwrap();
        let lines = log.lines.into_iter().map(|(_, l)| l).collect();
        (parsed, lines)
    }

    fn raw_text(message: &Message) -> String {
        String::from_utf8(message.raw_bytes().unwrap()).unwrap()
    }

    #[test]
    fn a_bad_line_fails_alone_and_the_others_go_on() {
        let (parsed, log) =
            run(json!({"columns": ["source.ip"], "type": "blacklist"}), "192.0.2.1\nnot-an-ip\n192.0.2.2\n");
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[1].get_str("source.ip"), Some("192.0.2.2"));
        assert_eq!(parsed.failed.len(), 1);
        let (dump, error) = &parsed.failed[0];
        assert_eq!(raw_text(dump), "not-an-ip\n");
        assert_eq!(dump.get_str("feed.name"), Some("Test Feed"));
        assert!(error.contains("source.ip"), "{error}");
        assert!(log.iter().any(|l| l.starts_with("Failed to parse line.")));
        assert!(log.iter().any(|l| l == "Sent 2 events and found 1 problem(s)."));
    }

    #[test]
    fn optional_columns_and_empty_cells_never_fail() {
        let (parsed, _) = run(
            json!({"columns": "source.ip,source.fqdn", "columns_required": [true, false], "type": "scanner"}),
            "192.0.2.1,x:y\n,example.com\n",
        );
        assert_eq!(parsed.failed.len(), 0);
        assert_eq!(parsed.events.len(), 2);
        assert!(parsed.events[0].get("source.fqdn").is_none());
        assert_eq!(parsed.events[1].get_str("source.fqdn"), Some("example.com"));
    }

    #[test]
    fn alternatives_take_the_first_field_that_accepts_the_value() {
        let (parsed, _) = run(
            json!({"columns": ["source.ip|source.network|source.fqdn"], "type": "blacklist"}),
            "192.0.2.1\n192.0.2.0/24\nexample.com\n",
        );
        assert_eq!(parsed.events[0].get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(parsed.events[1].get_str("source.network"), Some("192.0.2.0/24"));
        assert_eq!(parsed.events[2].get_str("source.fqdn"), Some("example.com"));
    }

    #[test]
    fn header_lines_and_comments_are_kept_out_of_events_but_in_raw() {
        let (parsed, _) = run(
            json!({"columns": ["source.ip", "source.url"], "skip_header": 1, "delimiter": ";", "type": "blacklist"}),
            "# comment\nip;url\n192.0.2.1;example.com/x\n",
        );
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!(event.get_str("source.url"), Some("http://example.com/x"));
        assert_eq!(raw_text(event), "ip;url\n192.0.2.1,example.com/x\n");
    }

    #[test]
    fn type_translation_and_compose_fields_apply_per_row() {
        let (parsed, _) = run(
            json!({
                "columns": ["classification.type", "source.fqdn", "__IGNORE__"],
                "type_translation": {"bad": "malware-distribution"},
                "compose_fields": {"source.url": "http://{1}/{2}"},
            }),
            "bad,example.com,path\nunknown,example.org,x\n",
        );
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!(event.get_str("classification.type"), Some("malware-distribution"));
        assert_eq!(event.get_str("source.url"), Some("http://example.com/path"));
        // Without `type`, a value missing from the translation fails the required column.
        assert_eq!(parsed.failed.len(), 1);
    }

    #[test]
    fn filter_drops_rows_before_parsing() {
        let (parsed, _) = run(
            json!({"columns": ["source.ip"], "type": "blacklist", "filter_text": "192.0.2.1", "filter_type": "blacklist"}),
            "192.0.2.1\n192.0.2.2\n",
        );
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].get_str("source.ip"), Some("192.0.2.2"));
    }

    #[test]
    fn defaults_are_intelmqs() {
        let d = GenericCsvParserParams::default();
        assert_eq!(d.delimiter, ",");
        assert_eq!(d.default_url_protocol.as_deref(), Some("http://"));
        assert_eq!(d.skip_header, SkipHeader::Bool(false));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["type"], Value::Null);
        assert_eq!(v["delimiter"], json!(","));
    }
}
