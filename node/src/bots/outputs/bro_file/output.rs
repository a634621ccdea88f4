//! `intelmq.bots.outputs.bro_file.output`: appends Zeek (Bro) intel lines to `file`, one per
//! indicator of the event, in the order `source.ip` (`Intel::ADDR`), `source.fqdn`
//! (`Intel::DOMAIN`), `source.url` (`Intel::URL`): indicator, type, `meta.desc` (`apt` when
//! `extra.tags` holds "apt", else `classification.type`), `meta.cif_confidence` (`feed.accuracy`
//! as an integer) and `meta.source` (`extra.orgc`, else `feed.provider`, else empty), tab-separated.
//! The header line `#fields\tindicator\t...` is written when the bot starts unless it is already the
//! file's first line. An event without any indicator writes nothing (logged at debug level, as
//! IntelMQ).
//!
//! Exactly-once as the file output: the bot state holds the length the file had after the last
//! committed write; a write first cuts off bytes written by a step that never committed. The file
//! output flags (`hierarchical_output`, `single_key`, ...) are accepted as in IntelMQ and have no
//! effect; `format_filename` is not supported (refused when true).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::outputs::tcp::support::{append_committed, cut_uncommitted, de, ensure_parent, record_len};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, OutputBot, ParamError};
use crate::message::wire::python_str;
use crate::message::Message;

/// The header line of a Zeek intel file.
pub const BRO_HEADER: &str = "#fields\tindicator\tindicator_type\tmeta.desc\tmeta.cif_confidence\tmeta.source\n";

/// The indicator fields and their Zeek types, in IntelMQ's order.
const INDICATORS: [(&str, &str); 3] =
    [("source.ip", "Intel::ADDR"), ("source.fqdn", "Intel::DOMAIN"), ("source.url", "Intel::URL")];

/// Parameters of the Bro file output (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroFileOutputParams {
    /// The file to append to (relative paths resolve against the node root); default
    /// "/opt/intelmq/var/lib/bots/file-output/bro".
    #[serde(deserialize_with = "de::string")]
    pub file: String,
    /// Not supported (must be false); default false.
    #[serde(deserialize_with = "de::bool")]
    pub format_filename: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub hierarchical_output: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub keep_raw_field: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_jsondict_as_string: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::bool")]
    pub message_with_type: bool,
    /// Accepted without effect; default false.
    #[serde(deserialize_with = "de::single_key", serialize_with = "de::ser_single_key")]
    pub single_key: Option<String>,
    /// Accepted without effect (text is always valid UTF-8); default "strict".
    #[serde(deserialize_with = "de::string")]
    pub encoding_errors_mode: String,
}

impl Default for BroFileOutputParams {
    fn default() -> Self {
        BroFileOutputParams {
            file: "/opt/intelmq/var/lib/bots/file-output/bro".to_string(),
            format_filename: false,
            hierarchical_output: false,
            keep_raw_field: false,
            message_jsondict_as_string: false,
            message_with_type: false,
            single_key: None,
            encoding_errors_mode: "strict".to_string(),
        }
    }
}

/// Writes Zeek intel files.
pub struct BroFileOutputBot {
    file: String,
}

impl BuildBot for BroFileOutputBot {
    type Params = BroFileOutputParams;

    fn build(params: BroFileOutputParams) -> Result<Self, ParamError> {
        if params.file.is_empty() {
            return Err(ParamError::new("file", "no file given"));
        }
        if params.format_filename {
            return Err(ParamError::new("format_filename", "not supported by this bot"));
        }
        Ok(BroFileOutputBot { file: params.file })
    }
}

/// Whether `extra.tags` holds "apt" (an element of a list, or a substring of a text, as Python's
/// `in`).
fn tagged_apt(event: &Message) -> bool {
    match event.get("extra.tags") {
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some("apt")),
        Some(Value::String(s)) => s.contains("apt"),
        Some(Value::Object(o)) => o.contains_key("apt"),
        _ => false,
    }
}

/// The intel lines of one event.
pub fn bro_lines(event: &Message) -> Result<String, BotError> {
    let mut out = String::new();
    for (field, kind) in INDICATORS {
        let Some(value) = event.get(field).filter(|v| !matches!(v, Value::Null)) else {
            continue;
        };
        let desc = if tagged_apt(event) {
            "apt".to_string()
        } else {
            event
                .get("classification.type")
                .map(python_str)
                .ok_or_else(|| BotError::Invalid("field `classification.type` is missing".to_string()))?
        };
        let accuracy = event
            .get("feed.accuracy")
            .and_then(Value::as_f64)
            .ok_or_else(|| BotError::Invalid("field `feed.accuracy` is missing".to_string()))?;
        let source = event.get("extra.orgc").or_else(|| event.get("feed.provider")).map(python_str).unwrap_or_default();
        out.push_str(&format!("{}\t{kind}\t{desc}\t{}\t{source}\n", python_str(value), accuracy.trunc() as i64));
    }
    Ok(out)
}

impl OutputBot for BroFileOutputBot {
    /// Cuts off uncommitted lines, writes the header unless it is the first line, and records the
    /// length (committed before the first step).
    fn start(&mut self, ctx: &mut Context<'_>) -> Result<(), BotError> {
        let path = ctx.resolve(&self.file);
        ensure_parent(&path)?;
        let len = cut_uncommitted(&path, ctx)?;
        record_len(ctx, &path, len);
        let first_line = std::fs::read(&path)
            .ok()
            .map(|b| {
                let end = b.iter().position(|c| *c == b'\n').map(|i| i + 1).unwrap_or(b.len());
                String::from_utf8_lossy(&b[..end]).into_owned()
            })
            .unwrap_or_default();
        if first_line != BRO_HEADER {
            append_committed(&path, BRO_HEADER.as_bytes(), ctx)?;
        }
        Ok(())
    }

    fn write(&mut self, events: &[Message], ctx: &mut Context<'_>) -> Result<(), BotError> {
        let mut data = String::new();
        for event in events {
            let lines = bro_lines(event)?;
            if lines.is_empty() {
                ctx.log.log(Level::Debug, "Event did not have Bro indicator types.");
            }
            data.push_str(&lines);
        }
        if data.is_empty() {
            return Ok(());
        }
        let path = ctx.resolve(&self.file);
        append_committed(&path, data.as_bytes(), ctx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::outputs::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    #[test]
    fn header_once_and_one_line_per_indicator() {
        let root = tempfile::tempdir().unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context::new("b", &h, root.path(), &mut state, &mut log);
        let mut bot =
            BroFileOutputBot::build(BroFileOutputParams { file: "out/bro".into(), ..Default::default() }).unwrap();
        bot.start(&mut ctx).unwrap();
        let ev = event(
            &h,
            json!({"classification.type": "infected-system", "feed.accuracy": 80.0, "source.ip": "192.0.2.1",
            "source.url": "http://192.0.2.1", "feed.provider": "P"}),
        );
        let apt = event(
            &h,
            json!({"classification.type": "c2-server", "feed.accuracy": 50.5, "source.fqdn": "example.com",
            "extra.tags": ["apt"], "extra.orgc": "O"}),
        );
        bot.write(&[ev, apt, event(&h, json!({"feed.accuracy": 1.0}))], &mut ctx).unwrap();
        let mut again =
            BroFileOutputBot::build(BroFileOutputParams { file: "out/bro".into(), ..Default::default() }).unwrap();
        again.start(&mut ctx).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("out/bro")).unwrap(),
            format!("{BRO_HEADER}192.0.2.1\tIntel::ADDR\tinfected-system\t80\tP\nhttp://192.0.2.1\tIntel::URL\tinfected-system\t80\tP\nexample.com\tIntel::DOMAIN\tapt\t50\tO\n")
        );
    }

    #[test]
    fn a_missing_classification_is_invalid() {
        let h = harmonization();
        assert!(matches!(
            bro_lines(&event(&h, json!({"source.ip": "192.0.2.1", "feed.accuracy": 1.0}))),
            Err(BotError::Invalid(_))
        ));
    }
}
