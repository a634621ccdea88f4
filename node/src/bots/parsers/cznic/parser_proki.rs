//! The CZ.NIC Proki parser (`intelmq.bots.parsers.cznic.parser_proki`): records whose keys are
//! already harmonization fields (a list, or an object with the list in `data`); the source's own
//! `feed.name` and `time.observation` are kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::json::{as_object, is_truthy, json_document, kind_name, recover_line_json};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The Proki parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CznicProkiParserParams {}

/// The CZ.NIC Proki parser.
#[derive(Debug)]
pub struct CznicProkiParserBot;

impl BuildBot for CznicProkiParserBot {
    type Params = CznicProkiParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CznicProkiParserBot)
    }
}

fn parse_record(mut event: Message, record: &Value) -> Result<Message, BotError> {
    for (key, value) in as_object(record, "proki record")? {
        let target = match key.as_str() {
            "feed.name" => "extra.original_feed_name",
            "time.observation" => "extra.original_time_observation",
            other => other,
        };
        event.add(target, value.clone())?;
    }
    event.add("raw", recover_line_json(record))?;
    Ok(event)
}

impl ParserBot for CznicProkiParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let records = match json_document(report)? {
            Value::Object(mut map) if map.contains_key("data") => map.remove("data").unwrap_or(Value::Null),
            other => other,
        };
        let records = match records {
            Value::Array(items) => items,
            other => {
                return Err(BotError::Invalid(format!("proki data: expected a JSON list, got {}", kind_name(&other))))
            }
        };
        for record in records.into_iter().filter(is_truthy) {
            match parse_record(out.new_event(), &record) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(recover_line_json(&record), e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::parsers::json::test_support::{report, run};

    #[test]
    fn fields_are_copied_and_the_sources_feed_details_go_to_extra() {
        let raw = json!({"status": "OK", "data": [{
            "source.ip": "192.0.2.1", "classification.type": "infected-system", "feed.name": "spamhaus-cert",
            "time.observation": "2020-08-12T14:42:42+00:00", "classification.taxonomy": "malicious code",
            "source.geolocation.latitude": 0.0
        }]})
        .to_string();
        let (events, failed, result) = run(&mut CznicProkiParserBot, &report(json!({"feed.name": "Proki"}), &raw));
        result.unwrap();
        assert!(failed.is_empty());
        let e = &events[0];
        assert_eq!(e.get_str("feed.name"), Some("Proki"));
        assert_eq!(e.get_str("extra.original_feed_name"), Some("spamhaus-cert"));
        assert_eq!(e.get_str("extra.original_time_observation"), Some("2020-08-12T14:42:42+00:00"));
        assert_eq!(e.get_str("classification.taxonomy"), Some("malicious-code"));
        assert!(String::from_utf8(e.raw_bytes().unwrap()).unwrap().starts_with("[{\"source.ip\": \"192.0.2.1\""));
    }

    #[test]
    fn a_plain_list_works_and_bad_records_fail_alone() {
        let raw = r#"[{"source.ip": "192.0.2.1", "classification.type": "scanner"}, {"no.such.field": 1}]"#;
        let (events, failed, _) = run(&mut CznicProkiParserBot, &report(json!({}), raw));
        assert_eq!((events.len(), failed.len()), (1, 1));
    }
}
