//! The Blueliv CrimeServer parser (`intelmq.bots.parsers.blueliv.parser_crimeserver`): a JSON
//! list of crime servers, one event each. A bad entry fails the whole report, as in IntelMQ.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{add_soft, as_object, json_document, kind_name};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, Message};

/// The feed's server types and their classification types.
const TYPES: [(&str, &str); 6] = [
    ("PHISHING", "phishing"),
    ("MALWARE", "malware-distribution"),
    ("EXPLOIT_KIT", "exploit"),
    ("BACKDOOR", "system-compromise"),
    ("TOR_IP", "proxy"),
    ("C_AND_C", "c2-server"),
];

/// The CrimeServer parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BluelivCrimeserverParserParams {}

/// The Blueliv CrimeServer parser.
#[derive(Debug)]
pub struct BluelivCrimeserverParserBot;

impl BuildBot for BluelivCrimeserverParserBot {
    type Params = BluelivCrimeserverParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(BluelivCrimeserverParserBot)
    }
}

/// Python's `s[:-4] + "00:00"` (`+0000` -> `+00:00`).
fn fix_offset(time: &str) -> String {
    let chars: Vec<char> = time.chars().collect();
    let kept: String = chars[..chars.len().saturating_sub(4)].iter().collect();
    format!("{kept}00:00")
}

fn parse_item(mut event: Message, item: &Map<String, Value>, record: &Value) -> Result<Message, BotError> {
    let mut tor_node = false;
    if let Some(kind) = item.get("type") {
        let kind_text = kind.as_str().unwrap_or_default();
        let (_, class) = TYPES
            .iter()
            .find(|(name, _)| *name == kind_text)
            .ok_or_else(|| BotError::Invalid(format!("unknown crimeserver type {kind}")))?;
        event.add("classification.type", *class)?;
        if kind_text == "TOR_IP" {
            event.add("source.tor_node", true)?;
            tor_node = true;
        }
    }
    if let Some(url) = item.get("url") {
        // Tor nodes come with their IP address in `url`: no error for those.
        if tor_node {
            add_soft(&mut event, "source.url", url.clone())?;
        } else {
            event.add("source.url", url.clone())?;
        }
    }
    if let Some(ip) = item.get("ip") {
        event.add("source.ip", ip.clone())?;
    }
    if let Some(country) = item.get("country") {
        event.add("source.geolocation.cc", country.clone())?;
    }
    if let Some(last_seen) = item.get("lastSeenAt") {
        let text = last_seen.as_str().ok_or_else(|| BotError::Invalid("field `lastSeenAt` is not a string".into()))?;
        event.add("time.source", fix_offset(text))?;
    }
    let mut extra = Map::new();
    for (key, name) in [
        ("status", "status"),
        ("confidence", "confidence"),
        ("updatedAt", "time_updated"),
        ("firstSeenAt", "time_first_seen"),
    ] {
        if let Some(value) = item.get(key) {
            extra.insert(name.to_string(), value.clone());
        }
    }
    if !extra.is_empty() {
        event.add("extra", Value::Object(extra))?;
    }
    event.add("raw", wire::dumps_sorted(record))?;
    Ok(event)
}

impl ParserBot for BluelivCrimeserverParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let items = match json_document(report)? {
            Value::Array(items) => items,
            other => {
                return Err(BotError::Invalid(format!("report raw: expected a JSON list, got {}", kind_name(&other))))
            }
        };
        let mut events = Vec::with_capacity(items.len());
        for record in &items {
            let item = as_object(record, "crimeserver entry")?;
            events.push(parse_item(out.new_event(), item, record)?);
        }
        events.into_iter().for_each(|e| out.event(e));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::parsers::json::test_support::{report, run};

    #[test]
    fn entries_map_by_type_and_tor_nodes_keep_their_ip() {
        let raw = r#"[
            {"confidence": 4, "country": "US", "firstSeenAt": "2015-10-20T06:14:00+0000", "ip": "192.0.2.1",
             "lastSeenAt": "2015-12-09T04:43:29+0000", "status": "ONLINE", "type": "MALWARE", "url": "http://example.com/a.pdf"},
            {"ip": "10.0.0.1", "lastSeenAt": "2015-12-13T17:26:23+0000", "status": "ONLINE", "type": "TOR_IP", "url": "10.0.0.1"}
        ]"#;
        let (events, failed, result) = run(&mut BluelivCrimeserverParserBot, &report(json!({}), raw));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events[0].get_str("classification.type"), Some("malware-distribution"));
        assert_eq!(events[0].get_str("time.source"), Some("2015-12-09T04:43:29+00:00"));
        assert_eq!(events[0].get("extra.confidence"), Some(&json!(4)));
        assert_eq!(events[0].get_str("extra.time_first_seen"), Some("2015-10-20T06:14:00+0000"));
        assert_eq!(events[1].get_str("classification.type"), Some("proxy"));
        assert_eq!(events[1].get("source.tor_node"), Some(&json!(true)));
        assert!(events[1].get("source.url").is_none());
        assert_eq!(events[1].get_str("source.ip"), Some("10.0.0.1"));
    }

    #[test]
    fn an_unknown_type_fails_the_report() {
        let raw = r#"[{"type": "PHISHING", "url": "http://example.com/"}, {"type": "NEW"}]"#;
        let (events, _, result) = run(&mut BluelivCrimeserverParserBot, &report(json!({}), raw));
        assert!(events.is_empty());
        assert!(result.is_err());
    }
}
