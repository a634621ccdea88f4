//! `intelmq.bots.experts.csv_converter.expert`: writes one CSV row of the `fieldnames` values
//! (absent fields are empty) into `output`, as Python's `csv.writer` with minimal quoting does,
//! without the line end.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::py_strip;
use crate::message::wire::python_str;
use crate::message::Message;

/// Parameters of the CSV converter (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvConverterExpertParams {
    /// The fields of the row (comma-separated string or list); default
    /// "time.source,classification.type,source.ip".
    pub fieldnames: Value,
    /// The column delimiter (one character); default ",".
    pub delimiter: String,
}

impl Default for CsvConverterExpertParams {
    fn default() -> Self {
        CsvConverterExpertParams {
            fieldnames: Value::String("time.source,classification.type,source.ip".to_string()),
            delimiter: ",".to_string(),
        }
    }
}

/// Renders events as CSV rows.
pub struct CsvConverterExpertBot {
    fieldnames: Vec<String>,
    delimiter: char,
}

impl BuildBot for CsvConverterExpertBot {
    type Params = CsvConverterExpertParams;

    fn build(params: CsvConverterExpertParams) -> Result<Self, ParamError> {
        let fieldnames = match &params.fieldnames {
            Value::String(s) => s.split(',').map(|f| f.trim().to_string()).collect(),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| ParamError::new("fieldnames", format!("expected field names, got {i}")))
                })
                .collect::<Result<_, _>>()?,
            other => return Err(ParamError::new("fieldnames", format!("expected field names, got {other}"))),
        };
        let mut chars = params.delimiter.chars();
        let (Some(delimiter), None) = (chars.next(), chars.next()) else {
            return Err(ParamError::new("delimiter", format!("`{}` is not one character", params.delimiter)));
        };
        Ok(CsvConverterExpertBot { fieldnames, delimiter })
    }
}

/// One row as Python's `csv.writer(delimiter=d).writerow(values)` writes it, stripped.
pub fn csv_row(values: &[Option<String>], delimiter: char) -> String {
    let mut row = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            row.push(delimiter);
        }
        let text = value.as_deref().unwrap_or("");
        let quote = text.contains([delimiter, '"', '\r', '\n']) || (values.len() == 1 && text.is_empty());
        if quote {
            row.push('"');
            row.push_str(&text.replace('"', "\"\""));
            row.push('"');
        } else {
            row.push_str(text);
        }
    }
    py_strip(&row).to_string()
}

impl ExpertBot for CsvConverterExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let values: Vec<Option<String>> = self
            .fieldnames
            .iter()
            .map(|f| event.get(f).cloned().or_else(|| event.get_jsondict(f)).map(|v| python_str(&v)))
            .collect();
        let row = csv_row(&values, self.delimiter);
        event.add("output", Value::String(row))?;
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn row_quotes_like_python() {
        let row = csv_row(&[Some("a,b".into()), None, Some("say \"hi\"".into()), Some("x".into())], ',');
        assert_eq!(row, "\"a,b\",,\"say \"\"hi\"\"\",x");
        assert_eq!(csv_row(&[None], ','), "\"\"");
    }

    #[test]
    fn output_holds_the_row_as_json_text() {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "csv",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let params = json!({"fieldnames": "time.observation,source.ip,source.port", "delimiter": ";"});
        let mut bot = CsvConverterExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        let e = event(&h, json!({"source.ip": "93.184.216.34", "time.observation": "2015-01-01T00:00:00+00:00"}));
        bot.process(e, &mut ctx, &mut out).unwrap();
        let msg = out.sent.pop().unwrap().1;
        assert_eq!(msg.get_str("output"), Some("\"2015-01-01T00:00:00+00:00;93.184.216.34;\""));
    }
}
