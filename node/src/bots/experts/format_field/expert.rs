//! `intelmq.bots.experts.format_field.expert`: string surgery on fields, in this order: strip
//! the `strip_columns` of `strip_chars`, replace `old_value` by `new_value` (at most
//! `replace_count` times; negative = all) in `replace_column`, split `split_column` at
//! `split_separator` into a list. Fields that are absent or not strings are left alone.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::Message;

/// An integer given as a number or a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
        other => Err(serde::de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// Parameters of the format field expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatFieldExpertParams {
    /// Fields to strip (list or comma-separated string); default "".
    pub strip_columns: Value,
    /// The characters stripped from both ends; default " ".
    pub strip_chars: String,
    /// The field to replace in; default "".
    pub replace_column: String,
    /// The text replaced; default "".
    pub old_value: String,
    /// The replacement; default "".
    pub new_value: String,
    /// How many occurrences are replaced (negative = all); default 1.
    #[serde(deserialize_with = "lenient_i64")]
    pub replace_count: i64,
    /// The field split into a list; default null.
    pub split_column: Option<String>,
    /// The separator of the split; default ",".
    pub split_separator: String,
}

impl Default for FormatFieldExpertParams {
    fn default() -> Self {
        FormatFieldExpertParams {
            strip_columns: Value::String(String::new()),
            strip_chars: " ".to_string(),
            replace_column: String::new(),
            old_value: String::new(),
            new_value: String::new(),
            replace_count: 1,
            split_column: None,
            split_separator: ",".to_string(),
        }
    }
}

/// Strips, replaces and splits field values.
pub struct FormatFieldExpertBot {
    strip_columns: Vec<String>,
    strip_chars: Vec<char>,
    replace_column: String,
    old_value: String,
    new_value: String,
    replace_count: i64,
    split_column: Option<String>,
    split_separator: String,
}

impl BuildBot for FormatFieldExpertBot {
    type Params = FormatFieldExpertParams;

    fn build(params: FormatFieldExpertParams) -> Result<Self, ParamError> {
        let strip_columns = match &params.strip_columns {
            Value::Null => Vec::new(),
            Value::String(s) => s.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| ParamError::new("strip_columns", format!("expected field names, got {i}")))
                })
                .collect::<Result<_, _>>()?,
            other => return Err(ParamError::new("strip_columns", format!("expected field names, got {other}"))),
        };
        if params.split_column.as_deref().is_some_and(|c| !c.is_empty()) && params.split_separator.is_empty() {
            return Err(ParamError::new("split_separator", "the separator is empty"));
        }
        Ok(FormatFieldExpertBot {
            strip_columns,
            strip_chars: params.strip_chars.chars().collect(),
            replace_column: params.replace_column,
            old_value: params.old_value,
            new_value: params.new_value,
            replace_count: params.replace_count,
            split_column: params.split_column.filter(|c| !c.is_empty()),
            split_separator: params.split_separator,
        })
    }
}

/// Python's `str.replace(old, new, count)`; a negative count replaces all.
fn py_replace(s: &str, old: &str, new: &str, count: i64) -> String {
    if old.is_empty() {
        // Python inserts `new` between every character (and at both ends), up to `count` times.
        let mut out = String::new();
        let mut left = count;
        let mut chars = s.chars();
        loop {
            if left != 0 {
                out.push_str(new);
                left -= 1;
            }
            match chars.next() {
                Some(c) => out.push(c),
                None => break,
            }
        }
        return out;
    }
    if count < 0 {
        s.replace(old, new)
    } else {
        s.replacen(old, new, usize::try_from(count).unwrap_or(usize::MAX))
    }
}

impl ExpertBot for FormatFieldExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        for column in &self.strip_columns {
            if let Some(value) = event.get_str(column) {
                let stripped = value.trim_matches(|c| self.strip_chars.contains(&c)).to_string();
                event.change(column, stripped)?;
            }
        }
        if !self.replace_column.is_empty() {
            if let Some(value) = event.get_str(&self.replace_column) {
                let replaced = py_replace(value, &self.old_value, &self.new_value, self.replace_count);
                event.change(&self.replace_column, replaced)?;
            }
        }
        if let Some(column) = &self.split_column {
            if let Some(value) = event.get_str(column) {
                let parts: Vec<Value> =
                    value.split(self.split_separator.as_str()).map(|p| Value::String(p.to_string())).collect();
                event.change(column, Value::Array(parts))?;
            }
        }
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

    fn run(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "format-field",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = FormatFieldExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn strip_replace_split_in_order() {
        let msg = run(
            json!({"strip_columns": "extra.tags,feed.name", "strip_chars": " -", "replace_column": "extra.tags",
                   "old_value": ";", "new_value": ",", "replace_count": "-1", "split_column": "extra.tags"}),
            json!({"extra.tags": " -a;b;c- ", "feed.name": "- feed -"}),
        );
        assert_eq!(msg.get("extra.tags"), Some(&json!(["a", "b", "c"])));
        assert_eq!(msg.get_str("feed.name"), Some("feed"));
    }

    #[test]
    fn replace_count_limits_replacements() {
        let msg = run(
            json!({"replace_column": "feed.url", "old_value": "localhost", "new_value": "127.0.0.1"}),
            json!({"feed.url": "http://localhost/localhost"}),
        );
        assert_eq!(msg.get_str("feed.url"), Some("http://127.0.0.1/localhost"));
    }

    #[test]
    fn python_replace_with_empty_old_value() {
        assert_eq!(py_replace("ab", "", "-", -1), "-a-b-");
        assert_eq!(py_replace("ab", "", "-", 1), "-ab");
    }
}
