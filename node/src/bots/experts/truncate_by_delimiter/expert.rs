//! `intelmq.bots.experts.truncate_by_delimiter.expert`: while a field (default `source.fqdn`) is
//! longer than `max_length` characters and holds the `delimiter`, its first part up to and
//! including the delimiter is cut off.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::Message;

/// A non-negative integer given as a number or a numeric string.
fn lenient_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a length"))),
        Value::String(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not a length"))),
        other => Err(serde::de::Error::custom(format!("{other} is not a length"))),
    }
}

/// Parameters of the truncate by delimiter expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TruncateByDelimiterExpertParams {
    /// The delimiter; default ".".
    pub delimiter: String,
    /// The length the value is cut down to (at most); default 200.
    #[serde(deserialize_with = "lenient_usize")]
    pub max_length: usize,
    /// The field; default "source.fqdn".
    pub field: String,
}

impl Default for TruncateByDelimiterExpertParams {
    fn default() -> Self {
        TruncateByDelimiterExpertParams {
            delimiter: ".".to_string(),
            max_length: 200,
            field: "source.fqdn".to_string(),
        }
    }
}

/// Cuts leading parts off a long value.
pub struct TruncateByDelimiterExpertBot {
    params: TruncateByDelimiterExpertParams,
}

impl BuildBot for TruncateByDelimiterExpertBot {
    type Params = TruncateByDelimiterExpertParams;

    fn build(params: TruncateByDelimiterExpertParams) -> Result<Self, ParamError> {
        if params.delimiter.is_empty() {
            return Err(ParamError::new("delimiter", "the delimiter is empty"));
        }
        Ok(TruncateByDelimiterExpertBot { params })
    }
}

/// The value with leading parts removed while it is too long.
pub fn truncate(value: &str, delimiter: &str, max_length: usize) -> String {
    let mut cut = value;
    while cut.chars().count() > max_length {
        match cut.split_once(delimiter) {
            Some((_, rest)) => cut = rest,
            None => break,
        }
    }
    cut.to_string()
}

impl ExpertBot for TruncateByDelimiterExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let p = &self.params;
        if let Some(value) = event.get_str(&p.field) {
            let cut = truncate(value, &p.delimiter, p.max_length);
            if cut != value {
                event.change(&p.field, cut)?;
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leading_parts_go_until_short_enough() {
        assert_eq!(truncate("a.bb.ccc.dddd", ".", 8), "ccc.dddd");
        assert_eq!(truncate("a.bb.ccc.dddd", ".", 100), "a.bb.ccc.dddd");
        assert_eq!(truncate("abcdefgh", ".", 3), "abcdefgh");
    }
}
