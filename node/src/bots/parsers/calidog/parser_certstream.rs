//! The Calidog CertStream parser (`intelmq.bots.parsers.calidog.parser_certstream`): one
//! certificate update per report; every domain of the leaf certificate becomes an event whose
//! `raw` is the whole update.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::json::{add_soft, as_object, field, py_int};
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{Message, TimeFormat};

/// The CertStream parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalidogCertstreamParserParams {}

/// The Calidog CertStream parser.
#[derive(Debug)]
pub struct CalidogCertstreamParserBot;

impl BuildBot for CalidogCertstreamParserBot {
    type Params = CalidogCertstreamParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CalidogCertstreamParserBot)
    }
}

/// One domain of the certificate to its event.
fn parse_domain(
    mut event: Message,
    domain: &Value,
    data: &serde_json::Map<String, Value>,
    raw: &str,
) -> Result<Message, BotError> {
    let seen = field(data, "seen")?;
    let seconds = py_int(seen).ok_or_else(|| BotError::Invalid(format!("field `seen` is no timestamp: {seen}")))?;
    let time = TimeFormat::EpochMillis
        .convert(&seconds.to_string())
        .ok_or_else(|| BotError::Invalid(format!("field `seen` is no epoch time: {seen}")))?;
    event.add("time.source", time)?;
    event.add("classification.type", "other")?;
    event.add("raw", raw)?;
    if !add_soft(&mut event, "source.fqdn", domain.clone())? {
        event.add("source.ip", domain.clone())?;
    }
    Ok(event)
}

impl ParserBot for CalidogCertstreamParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let update: Value =
            serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("report raw is not valid JSON: {e}")))?;
        let data = as_object(field(as_object(&update, "certstream message")?, "data")?, "certstream data")?;
        let Some(leaf) = data.get("leaf_cert") else {
            return Ok(());
        };
        let Some(domains) = as_object(leaf, "leaf_cert")?.get("all_domains") else {
            return Ok(());
        };
        let domains =
            domains.as_array().ok_or_else(|| BotError::Invalid("`leaf_cert.all_domains` is not a list".into()))?;
        for domain in domains {
            match parse_domain(out.new_event(), domain, data, &raw) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(raw.clone(), e),
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
    fn each_domain_is_an_event_with_the_whole_update_as_raw() {
        let raw = json!({"message_type": "certificate_update", "data": {
            "seen": 1529079021.461669,
            "leaf_cert": {"all_domains": ["example.com", "www.example.com", "192.0.2.1"]}
        }})
        .to_string();
        let (events, failed, result) = run(&mut CalidogCertstreamParserBot, &report(json!({}), &raw));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].get_str("time.source"), Some("2018-06-15T16:10:21+00:00"));
        assert_eq!(events[1].get_str("source.fqdn"), Some("www.example.com"));
        assert_eq!(events[2].get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(events[2].raw_bytes().unwrap(), raw.as_bytes());
    }

    #[test]
    fn an_update_without_leaf_domains_gives_nothing() {
        let raw = json!({"data": {"seen": 1}}).to_string();
        let (events, failed, result) = run(&mut CalidogCertstreamParserBot, &report(json!({}), &raw));
        result.unwrap();
        assert!(events.is_empty() && failed.is_empty());
    }
}
