//! The HTML table parser (`intelmq.bots.parsers.html_table.parser`): maps the cells of one table
//! of an HTML page onto harmonization fields, one event per row. The page is read the way
//! BeautifulSoup's `html.parser` builder reads it (see [`super::pyhtml`]), so `raw` is the row as
//! BeautifulSoup prints it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pyhtml::Soup;
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{AddOptions, TimeFormat};

/// A list given as a JSON list or as a comma-separated string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListOrString {
    List(Vec<String>),
    String(String),
}

impl ListOrString {
    fn items(&self) -> Vec<String> {
        match self {
            ListOrString::List(items) => items.clone(),
            ListOrString::String(s) => s.split(',').map(|c| c.trim().to_string()).collect(),
        }
    }
}

/// A number given as a number or a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(i64),
    String(String),
}

impl NumberOrString {
    fn value(&self, key: &str) -> Result<i64, ParamError> {
        match self {
            NumberOrString::Number(n) => Ok(*n),
            NumberOrString::String(s) => {
                s.trim().parse().map_err(|_| ParamError::new(key, format!("expected an integer, got `{s}`")))
            }
        }
    }
}

/// A flag given as a bool or a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlagOrString {
    Bool(bool),
    String(String),
}

impl FlagOrString {
    fn value(&self, key: &str) -> Result<bool, ParamError> {
        match self {
            FlagOrString::Bool(b) => Ok(*b),
            FlagOrString::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(ParamError::new(key, format!("expected a boolean, got `{s}`"))),
            },
        }
    }
}

/// Parameters of the HTML table parser (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HtmlTableParserParams {
    /// Default: `""`. With `attribute_value`: only tables whose attribute has that value count.
    pub attribute_name: String,
    /// Default: `""`. The value `attribute_name` must have.
    pub attribute_value: String,
    /// Default: `["", "source.fqdn"]`. One target per cell (list or comma-separated string);
    /// `""`/`__IGNORE__` skips a cell, `a|b` tries `a`, then `b`.
    pub columns: ListOrString,
    /// Default: `"http://"`. Prefixed to `*.url` values without `://`.
    pub default_url_protocol: String,
    /// Default: none (no value ignored). Per column, a cell value that is skipped.
    pub ignore_values: Option<ListOrString>,
    /// Default: `true`. Skip the table's first row.
    pub skip_table_head: FlagOrString,
    /// Default: `""`. The column (target field) whose value is split.
    pub split_column: String,
    /// Default: `0`. Which part of the split value is used.
    pub split_index: NumberOrString,
    /// Default: none (whitespace). The separator of `split_column`.
    pub split_separator: Option<String>,
    /// Default: `0`. Which of the matching tables is read.
    pub table_index: NumberOrString,
    /// Default: none (fuzzy). How `time.source`/`time.destination` are read.
    pub time_format: Option<String>,
    /// Default: `"c2-server"`. `classification.type` of rows that set none.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Default: none. Documented by IntelMQ but not read: the parser is always `html.parser`.
    pub html_parser: Option<Value>,
    /// Default: none. Not an IntelMQ parameter (old configs and tests carry it); ignored.
    pub skip_head: Option<Value>,
}

impl Default for HtmlTableParserParams {
    fn default() -> Self {
        HtmlTableParserParams {
            attribute_name: String::new(),
            attribute_value: String::new(),
            columns: ListOrString::List(vec![String::new(), "source.fqdn".to_string()]),
            default_url_protocol: "http://".to_string(),
            ignore_values: None,
            skip_table_head: FlagOrString::Bool(true),
            split_column: String::new(),
            split_index: NumberOrString::Number(0),
            split_separator: None,
            table_index: NumberOrString::Number(0),
            time_format: None,
            type_: Some("c2-server".to_string()),
            html_parser: None,
            skip_head: None,
        }
    }
}

/// The HTML table parser.
#[derive(Debug)]
pub struct HtmlTableParserBot {
    attribute: Option<(String, String)>,
    columns: Vec<String>,
    default_url_protocol: String,
    ignore_values: Vec<String>,
    skip_rows: usize,
    split_column: String,
    split_index: i64,
    split_separator: Option<String>,
    table_index: i64,
    time_format: TimeFormat,
    type_: Option<String>,
}

impl BuildBot for HtmlTableParserBot {
    type Params = HtmlTableParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let columns = params.columns.items();
        let ignore_values = match &params.ignore_values {
            None => vec![String::new(); columns.len()],
            Some(values) => values.items(),
        };
        if columns.len() != ignore_values.len() {
            return Err(ParamError::new(
                "ignore_values",
                format!(
                    "length of `columns` ({}) and `ignore_values` ({}) must be equal",
                    columns.len(),
                    ignore_values.len()
                ),
            ));
        }
        let time_format = TimeFormat::parse(params.time_format.as_deref().filter(|s| !s.is_empty()))
            .map_err(|e| ParamError::new("time_format", e))?;
        Ok(HtmlTableParserBot {
            attribute: (!params.attribute_name.is_empty()).then(|| (params.attribute_name, params.attribute_value)),
            columns,
            default_url_protocol: params.default_url_protocol,
            ignore_values,
            skip_rows: usize::from(params.skip_table_head.value("skip_table_head")?),
            split_column: params.split_column,
            split_index: params.split_index.value("split_index")?,
            split_separator: params.split_separator,
            table_index: params.table_index.value("table_index")?,
            time_format,
            type_: params.type_,
        })
    }
}

/// Python's `list[index]` with negative indices.
fn py_index<T: Clone>(items: &[T], index: i64) -> Option<T> {
    let len = items.len() as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then(|| items[i as usize].clone())
}

/// Python's `str.split(sep)` (`None`: runs of whitespace).
fn py_split(s: &str, sep: Option<&str>) -> Vec<String> {
    match sep {
        Some(sep) if !sep.is_empty() => s.split(sep).map(str::to_string).collect(),
        _ => s.split_whitespace().map(str::to_string).collect(),
    }
}

impl ParserBot for HtmlTableParserBot {
    fn parse(
        &mut self,
        report: &crate::message::Message,
        _ctx: &mut Context<'_>,
        out: &mut ParserOutput<'_>,
    ) -> Result<(), BotError> {
        let text = report_text(report)?;
        let soup = Soup::parse(&text);
        let tables: Vec<usize> = soup
            .find_all(0, "table")
            .into_iter()
            .filter(|t| match &self.attribute {
                None => true,
                Some((name, value)) => soup.attr(*t, name).is_some_and(|v| v.matches(value)),
            })
            .collect();
        let table = py_index(&tables, self.table_index).ok_or_else(|| {
            BotError::Invalid(format!("table index {} out of range ({} tables)", self.table_index, tables.len()))
        })?;
        let rows = soup.find_all(table, "tr");
        for row in rows.into_iter().skip(self.skip_rows) {
            let mut event = out.new_event();
            let cells: Vec<String> = soup.find_all(row, "td").into_iter().map(|td| soup.text(td)).collect();
            let mut data_added = false;
            for ((column, cell), ignore_value) in self.columns.iter().zip(&cells).zip(&self.ignore_values) {
                let mut data = cell.trim().to_string();
                if &data == ignore_value {
                    continue;
                }
                let keys: Vec<&str> = column.split('|').collect();
                let mut done = false;
                for key in &keys {
                    if data.is_empty() || *key == "__IGNORE__" || key.is_empty() {
                        done = true;
                        break;
                    }
                    if !self.split_column.is_empty() && *key == self.split_column {
                        let parts = py_split(&data, self.split_separator.as_deref());
                        data = py_index(&parts, self.split_index)
                            .ok_or_else(|| {
                                BotError::Invalid(format!("split index {} out of range for {data:?}", self.split_index))
                            })?
                            .trim()
                            .to_string();
                    }
                    if *key == "time.source" || *key == "time.destination" {
                        data = self
                            .time_format
                            .convert(&data)
                            .ok_or_else(|| BotError::Invalid(format!("cannot parse time {data:?} of `{key}`")))?;
                    } else if key.ends_with(".url") && !data.contains("://") {
                        data = format!("{}{}", self.default_url_protocol, data);
                    }
                    let quiet = AddOptions { raise_failure: false, ..AddOptions::default() };
                    if event.add_with(key, Value::String(data.clone()), quiet)? {
                        data_added = true;
                        done = true;
                        break;
                    }
                }
                if !done {
                    return Err(BotError::Invalid(format!("could not add value {data:?} to {keys:?}, all invalid")));
                }
            }
            if !data_added {
                continue;
            }
            if let Some(type_) = &self.type_ {
                if !event.contains("classification.type") {
                    event.add("classification.type", type_.as_str())?;
                }
            }
            event.add("raw", soup.outer_html(row))?;
            out.event(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::registry::parse_params;

    #[test]
    fn string_parameters_are_accepted() {
        let params = serde_json::json!({"columns": "time.source, source.url", "split_index": "1", "skip_head": true});
        let params: HtmlTableParserParams = parse_params(params.as_object().unwrap()).unwrap();
        let bot = HtmlTableParserBot::build(params).unwrap();
        assert_eq!(bot.columns, vec!["time.source", "source.url"]);
        assert_eq!(bot.split_index, 1);
        assert_eq!(bot.ignore_values, vec!["", ""]);
    }

    #[test]
    fn ignore_values_must_match_columns() {
        let params = HtmlTableParserParams {
            ignore_values: Some(ListOrString::List(vec!["a".into()])),
            ..HtmlTableParserParams::default()
        };
        assert_eq!(HtmlTableParserBot::build(params).unwrap_err().key, "ignore_values");
    }

    #[test]
    fn python_split_and_index() {
        assert_eq!(py_split("a [D] b", Some("[D]")), vec!["a ", " b"]);
        assert_eq!(py_split(" a  b ", None), vec!["a", "b"]);
        assert_eq!(py_index(&[1, 2, 3], -1), Some(3));
        assert_eq!(py_index(&[1, 2, 3], 3), None);
    }
}
