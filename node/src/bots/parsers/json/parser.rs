//! The IntelMQ-JSON parser (`intelmq.bots.parsers.json.parser`): each JSON message in the report
//! (the whole report, one per line with `splitlines`, or the elements of a JSON list with
//! `multiple_events`) becomes an event merged over the report's feed fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{is_truthy, kind_name, splitlines, BoolParam};
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message, MessageKind};

/// Parameters of the JSON parser (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonParserParams {
    /// Default: `false`. Each line of the report is one JSON message.
    pub splitlines: BoolParam,
    /// Default: `false`. The report is a JSON list of messages (wins over `splitlines`).
    pub multiple_events: BoolParam,
}

impl Default for JsonParserParams {
    fn default() -> Self {
        JsonParserParams { splitlines: BoolParam::Bool(false), multiple_events: BoolParam::Bool(false) }
    }
}

/// The JSON parser.
#[derive(Debug)]
pub struct JsonParserBot {
    splitlines: bool,
    multiple_events: bool,
}

impl BuildBot for JsonParserBot {
    type Params = JsonParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        Ok(JsonParserBot {
            splitlines: params.splitlines.get("splitlines")?,
            multiple_events: params.multiple_events.get("multiple_events")?,
        })
    }
}

/// IntelMQ `Message.update`: every field of `other` replaces the event's, added as it is when
/// valid, else sanitized.
fn update(event: &mut Message, other: &Message) -> Result<(), BotError> {
    for (key, value) in other.iter() {
        let as_is = AddOptions { sanitize: false, overwrite: Some(true), raise_failure: false };
        if !event.add_with(key, value.clone(), as_is)? {
            event.add_with(key, value.clone(), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
        }
    }
    Ok(())
}

/// One message (already decoded) merged over a new event; `raw` is the message text when the
/// message has none.
fn merge(out: &ParserOutput<'_>, message: &Message, line: &str) -> Result<Message, BotError> {
    let mut event = out.new_event();
    update(&mut event, message)?;
    if !event.contains("raw") {
        event.add("raw", line)?;
    }
    Ok(event)
}

impl ParserBot for JsonParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let harmonization = report.harmonization().clone();
        if self.multiple_events {
            let items = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(items)) => items,
                Ok(other) => {
                    return Err(BotError::Invalid(format!(
                        "report raw: expected a JSON list of messages, got {}",
                        kind_name(&other)
                    )))
                }
                Err(e) => return Err(BotError::Invalid(format!("report raw is not valid JSON: {e}"))),
            };
            for item in items.into_iter().filter(is_truthy) {
                let line = wire::dumps(&item);
                let result = match item {
                    Value::Object(map) => Message::from_map(harmonization.clone(), map, Some(MessageKind::Event))
                        .map_err(BotError::from)
                        .and_then(|message| merge(out, &message, &line)),
                    other => Err(BotError::Invalid(format!("expected a JSON object, got {}", kind_name(&other)))),
                };
                match result {
                    Ok(event) => out.event(event),
                    Err(e) => out.fail(line, e),
                }
            }
            return Ok(());
        }
        let lines = if self.splitlines { splitlines(&text) } else { vec![text.as_str()] };
        for line in lines.into_iter().filter(|l| !l.is_empty()) {
            let result = Message::from_wire(harmonization.clone(), line.as_bytes(), Some(MessageKind::Event))
                .map_err(BotError::from)
                .and_then(|message| merge(out, &message, line));
            match result {
                Ok(event) => out.event(event),
                Err(e) => out.fail(line, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::Harmonization;

    fn run(bot: &mut JsonParserBot, raw: &str) -> (Vec<Message>, usize) {
        let harmonization = Harmonization::builtin();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        report.add("feed.name", "Test feed").unwrap();
        report.add("time.observation", "2016-10-10T00:00:00+00:00").unwrap();
        report.add("raw", raw).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "json-parser",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let copy = Vec::new();
        let mut out = ParserOutput::new(&report, &copy);
        bot.parse(&report, &mut ctx, &mut out).unwrap();
        (out.events, out.failed.len())
    }

    fn bot(splitlines: bool, multiple_events: bool) -> JsonParserBot {
        JsonParserBot { splitlines, multiple_events }
    }

    #[test]
    fn a_whole_report_is_one_message_whose_fields_win() {
        let raw = r#"{"__type": "Event", "feed.name": "Other", "classification.type": "unknown", "time.observation": "2015-01-01T00:00:00+00:00"}"#;
        let (events, failed) = run(&mut bot(false, false), raw);
        assert_eq!(failed, 0);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].get_str("feed.name"), Some("Other"));
        assert_eq!(events[0].get_str("classification.type"), Some("undetermined"));
        assert_eq!(events[0].get_str("time.observation"), Some("2015-01-01T00:00:00+00:00"));
        assert_eq!(events[0].raw_bytes().unwrap(), raw.as_bytes());
    }

    #[test]
    fn splitlines_makes_one_event_per_line_and_bad_lines_fail_alone() {
        let raw = "{\"source.ip\": \"192.0.2.1\"}\n\nnot json\n{\"source.ip\": \"192.0.2.2\"}\n";
        let (events, failed) = run(&mut bot(true, false), raw);
        assert_eq!(events.len(), 2);
        assert_eq!(failed, 1);
        assert_eq!(events[1].get_str("source.ip"), Some("192.0.2.2"));
        assert_eq!(events[0].raw_bytes().unwrap(), b"{\"source.ip\": \"192.0.2.1\"}");
    }

    #[test]
    fn multiple_events_reads_a_json_list() {
        let raw = r#"[{"source.ip": "192.0.2.1"}, {}, {"source.fqdn": "example.com"}]"#;
        let (events, failed) = run(&mut bot(false, true), raw);
        assert_eq!((events.len(), failed), (2, 0));
        assert_eq!(events[1].get_str("source.fqdn"), Some("example.com"));
        assert_eq!(events[1].raw_bytes().unwrap(), b"{\"source.fqdn\": \"example.com\"}");
    }

    #[test]
    fn flags_may_be_strings() {
        let params: JsonParserParams = serde_json::from_value(serde_json::json!({"splitlines": "true"})).unwrap();
        let bot = JsonParserBot::build(params).unwrap();
        assert!(bot.splitlines && !bot.multiple_events);
    }
}
