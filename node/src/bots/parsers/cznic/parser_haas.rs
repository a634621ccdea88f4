//! The CZ.NIC HaaS parser (`intelmq.bots.parsers.cznic.parser_haas`): SSH honeypot sessions, a
//! JSON list; a successful login is a system compromise, anything else a brute-force attempt.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{as_object, field, is_truthy, json_items, recover_line_json};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::datetime::parse_fuzzy;
use crate::message::Message;

/// The HaaS parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CznicHaasParserParams {}

/// The CZ.NIC HaaS parser.
#[derive(Debug)]
pub struct CznicHaasParserBot;

impl BuildBot for CznicHaasParserBot {
    type Params = CznicHaasParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CznicHaasParserBot)
    }
}

fn parse_session(mut event: Message, record: &Value) -> Result<Message, BotError> {
    let session = as_object(record, "haas session")?;
    event.add("source.ip", field(session, "ip")?.clone())?;
    let time = field(session, "time")?;
    let time = time
        .as_str()
        .and_then(parse_fuzzy)
        .ok_or_else(|| BotError::Invalid(format!("session time {time} cannot be read")))?;
    event.add("time.source", time)?;
    event.add("protocol.transport", "tcp")?;
    event.add("protocol.application", "ssh")?;
    event.add("destination.port", 22)?;
    let extra: Map<String, Value> = session
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "time_closed" | "commands"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !extra.is_empty() {
        event.add("extra", Value::Object(extra))?;
    }
    event.add("raw", recover_line_json(record))?;

    let country = field(session, "country")?;
    if is_truthy(country) {
        event.add("source.geolocation.cc", country.clone())?;
    }
    if is_truthy(field(session, "login_successful")?) {
        event.add("classification.type", "system-compromise")?;
    } else {
        event.add("classification.type", "brute-force")?;
        event.add("extra.count", 1)?;
    }
    Ok(event)
}

impl ParserBot for CznicHaasParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        for record in json_items(report)? {
            match parse_session(out.new_event(), &record) {
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
    fn logins_are_compromises_and_failures_brute_force() {
        let raw = r#"[
            {"time": "2020-06-29T00:00:00.901916+00:00", "ip": "192.0.2.1", "country": "NL", "login_successful": true,
             "commands": ["id"], "time_closed": "2020-06-29T00:00:01+00:00"},
            {"time": "2020-06-29 02:00:01+02:00", "ip": "192.0.2.2", "country": null, "login_successful": false,
             "commands": [], "time_closed": "2020-06-29T00:00:02+00:00"}
        ]"#;
        let (events, failed, result) = run(&mut CznicHaasParserBot, &report(json!({}), raw));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events[0].get_str("classification.type"), Some("system-compromise"));
        assert_eq!(events[0].get("extra.commands"), Some(&json!(["id"])));
        assert_eq!(events[0].get_str("time.source"), Some("2020-06-29T00:00:00.901916+00:00"));
        assert!(events[0].get("extra.count").is_none());
        assert_eq!(events[1].get_str("classification.type"), Some("brute-force"));
        assert_eq!(events[1].get("extra.count"), Some(&json!(1)));
        assert_eq!(events[1].get_str("time.source"), Some("2020-06-29T00:00:01+00:00"));
        assert!(events[1].get("source.geolocation.cc").is_none());
        assert_eq!(events[1].get("destination.port"), Some(&json!(22)));
    }

    #[test]
    fn a_session_without_ip_fails_alone() {
        let raw = r#"[{"time": "2020-06-29T00:00:00+00:00"}, {"time": "2020-06-29T00:00:00+00:00", "ip": "192.0.2.1",
                      "country": "CZ", "login_successful": false}]"#;
        let (events, failed, _) = run(&mut CznicHaasParserBot, &report(json!({}), raw));
        assert_eq!((events.len(), failed.len()), (1, 1));
    }
}
