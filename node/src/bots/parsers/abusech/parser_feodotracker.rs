//! The abuse.ch Feodo Tracker parser (`intelmq.bots.parsers.abusech.parser_feodotracker`): the
//! JSON list of botnet C2 servers, one event per entry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{add_soft, as_object, json_items, recover_line_json};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::{Message, TimeFormat};

/// The Feodo Tracker parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbusechFeodotrackerParserParams {}

/// The Feodo Tracker parser.
#[derive(Debug)]
pub struct AbusechFeodotrackerParserBot {
    first_seen: TimeFormat,
    last_online: TimeFormat,
}

impl BuildBot for AbusechFeodotrackerParserBot {
    type Params = AbusechFeodotrackerParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(AbusechFeodotrackerParserBot {
            first_seen: TimeFormat::FromFormat("%Y-%m-%d %H:%M:%S".to_string()),
            last_online: TimeFormat::FromFormatMidnight("%Y-%m-%d".to_string()),
        })
    }
}

/// A non-empty string value of `key`.
fn truthy_str<'v>(entry: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    entry.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl AbusechFeodotrackerParserBot {
    fn parse_entry(&self, mut event: Message, record: &Value, ctx: &mut Context<'_>) -> Result<Message, BotError> {
        let entry = as_object(record, "feodo tracker entry")?;
        let field = |key: &str| entry.get(key).cloned().unwrap_or(Value::Null);

        let time = if let Some(first_seen) = truthy_str(entry, "first_seen") {
            Some((first_seen, self.first_seen.convert(first_seen)))
        } else {
            truthy_str(entry, "last_online").map(|last_online| (last_online, self.last_online.convert(last_online)))
        };
        match time {
            Some((_, Some(time))) => {
                add_soft(&mut event, "time.source", time)?;
            }
            Some((text, None)) => ctx.log.log(Level::Warning, &format!("Failed to parse '{text}' to DateTime.")),
            None => {}
        }

        event.add("classification.type", "c2-server")?;
        event.add("source.ip", field("ip_address"))?;
        event.add("source.port", field("port"))?;
        add_soft(&mut event, "source.asn", field("as_number"))?;
        add_soft(&mut event, "source.as_name", field("as_name"))?;
        add_soft(&mut event, "source.geolocation.cc", field("country"))?;
        add_soft(&mut event, "source.reverse_dns", field("hostname"))?;
        add_soft(&mut event, "malware.name", field("malware"))?;
        add_soft(&mut event, "extra.last_online", field("last_online"))?;
        add_soft(&mut event, "status", field("status"))?;
        event.add("raw", recover_line_json(record))?;
        Ok(event)
    }
}

impl ParserBot for AbusechFeodotrackerParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        for record in json_items(report)? {
            match self.parse_entry(out.new_event(), &record, ctx) {
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

    fn bot() -> AbusechFeodotrackerParserBot {
        AbusechFeodotrackerParserBot::build(AbusechFeodotrackerParserParams::default()).unwrap()
    }

    #[test]
    fn first_seen_is_the_time_else_last_online_at_midnight() {
        let raw = r#"[
            {"ip_address": "192.0.2.1", "port": 443, "status": "online", "hostname": null, "as_number": 64496,
             "as_name": "Example", "country": "FR", "first_seen": "2021-01-17 07:44:46", "last_online": "2022-11-15",
             "malware": "Dridex"},
            {"ip_address": "192.0.2.2", "port": 8080, "last_online": "2022-11-15", "malware": "QakBot"}
        ]"#;
        let (events, failed, result) = run(&mut bot(), &report(json!({"feed.name": "Feodo"}), raw));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].get_str("time.source"), Some("2021-01-17T07:44:46+00:00"));
        assert_eq!(events[0].get_str("malware.name"), Some("dridex"));
        assert_eq!(events[0].get("source.asn"), Some(&json!(64496)));
        assert!(events[0].get("source.reverse_dns").is_none());
        assert_eq!(events[1].get_str("time.source"), Some("2022-11-15T00:00:00+00:00"));
        assert_eq!(events[1].get_str("classification.type"), Some("c2-server"));
        assert_eq!(
            events[1].raw_bytes().unwrap(),
            br#"[{"ip_address": "192.0.2.2", "port": 8080, "last_online": "2022-11-15", "malware": "QakBot"}]"#
        );
    }

    #[test]
    fn an_entry_without_a_valid_ip_fails_alone() {
        let raw = r#"[{"ip_address": "nope", "port": 1}, {"ip_address": "192.0.2.3", "port": 2}]"#;
        let (events, failed, _) = run(&mut bot(), &report(json!({}), raw));
        assert_eq!(events.len(), 1);
        assert_eq!(failed, vec![r#"[{"ip_address": "nope", "port": 1}]"#.to_string()]);
    }
}
