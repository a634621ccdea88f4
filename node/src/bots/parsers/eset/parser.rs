//! The ESET ETI parser (`intelmq.bots.parsers.eset.parser`): the JSON lists of the TAXII feeds
//! `ei.domains v2 (json)` and `ei.urls (json)`, chosen by the report's `extra.eset_feed`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{add_soft, as_object, field, json_items, recover_line_json, str_field};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, Message};

/// The feed's reasons and their classification types.
const REASONS: [(&str, &str); 5] = [
    ("Host actively distributes high-severity threat in the form of executable code.", "malware-distribution"),
    ("Host is known to be distributing low-risk and potentially unwanted content.", "malware-distribution"),
    ("Host is known source of phishing or other fraudulent content.", "phishing"),
    ("Host is known to be actively distributing adware or other medium-risk software.", "other"),
    ("Host is known source of active fraudulent content.", "other"),
];

/// The ESET parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsetParserParams {}

/// The ESET ETI parser.
#[derive(Debug)]
pub struct EsetParserBot;

impl BuildBot for EsetParserBot {
    type Params = EsetParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(EsetParserBot)
    }
}

/// The classification type of a reason text.
fn classification(reason: &str) -> &'static str {
    if let Some((_, class)) = REASONS.iter().find(|(r, _)| *r == reason) {
        class
    } else if reason.starts_with("Host is used as command and control server") {
        "c2-server"
    } else {
        "other"
    }
}

fn parse_entry(mut event: Message, record: &Value, feed: Option<&Value>) -> Result<Message, BotError> {
    let entry: &Map<String, Value> = as_object(record, "eset entry")?;
    let reason = str_field(entry, "reason")?;
    event.add("raw", wire::dumps_sorted(record))?;
    event.add("event_description.text", reason)?;
    event.add("classification.type", classification(reason))?;
    // IP addresses may come in `domain`.
    add_soft(&mut event, "source.fqdn", field(entry, "domain")?.clone())?;
    match field(entry, "ip")? {
        Value::Null => {}
        Value::String(ip) if ip.is_empty() || ip.ends_with("_NXDOMAIN") => {}
        Value::String(ip) => {
            event.add("source.ip", ip.as_str())?;
        }
        other => return Err(BotError::Invalid(format!("field `ip` is not a string: {other}"))),
    }

    let feed = feed.ok_or_else(|| BotError::Invalid("report has no `extra.eset_feed`".to_string()))?;
    event.add("extra.eset_feed", feed.clone())?;
    match feed.as_str() {
        Some("ei.domains v2 (json)") => {
            event.add("time.source", field(entry, "last_seen")?.clone())?;
        }
        Some("ei.urls (json)") => {
            event.add("time.source", field(entry, "domain_last_seen")?.clone())?;
            event.add("source.url", field(entry, "url")?.clone())?;
        }
        _ => return Err(BotError::Invalid(format!("unsupported feed {feed}"))),
    }
    Ok(event)
}

impl ParserBot for EsetParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let feed = report.get("extra.eset_feed").cloned();
        for record in json_items(report)? {
            match parse_entry(out.new_event(), &record, feed.as_ref()) {
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

    const REASON: &str = "Host actively distributes high-severity threat in the form of executable code.";

    #[test]
    fn domains_use_last_seen_and_skip_nxdomain_ips() {
        let raw = json!([
            {"domain": "example.com", "ip": "@ipv4_NXDOMAIN", "last_seen": "2020-06-20 09:00:00 UTC", "reason": REASON},
            {"domain": "192.0.2.1", "ip": "192.0.2.1", "last_seen": "2020-06-20 09:00:00 UTC",
             "reason": "Host is used as command and control server of Foo"}
        ])
        .to_string();
        let r = report(json!({"extra.eset_feed": "ei.domains v2 (json)"}), &raw);
        let (events, failed, result) = run(&mut EsetParserBot, &r);
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events[0].get_str("source.fqdn"), Some("example.com"));
        assert!(events[0].get("source.ip").is_none());
        assert_eq!(events[0].get_str("time.source"), Some("2020-06-20T09:00:00+00:00"));
        assert_eq!(events[0].get_str("classification.type"), Some("malware-distribution"));
        assert_eq!(events[0].get_str("extra.eset_feed"), Some("ei.domains v2 (json)"));
        assert_eq!(events[1].get_str("classification.type"), Some("c2-server"));
        assert!(events[1].get("source.fqdn").is_none());
        assert_eq!(events[1].get_str("source.ip"), Some("192.0.2.1"));
    }

    #[test]
    fn urls_carry_the_url_and_unknown_feeds_fail() {
        let raw = json!([{"domain": "example.com", "ip": null, "domain_last_seen": "2020-06-20 09:00:00 UTC",
                          "url": "http://example.com/x", "reason": "anything"}])
        .to_string();
        let (events, _, _) = run(&mut EsetParserBot, &report(json!({"extra.eset_feed": "ei.urls (json)"}), &raw));
        assert_eq!(events[0].get_str("source.url"), Some("http://example.com/x"));
        assert_eq!(events[0].get_str("classification.type"), Some("other"));
        let (events, failed, _) = run(&mut EsetParserBot, &report(json!({"extra.eset_feed": "ei.other"}), &raw));
        assert!(events.is_empty());
        assert_eq!(failed.len(), 1);
    }
}
