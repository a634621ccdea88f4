//! The Fraunhofer DGA Archive parser (`intelmq.bots.parsers.fraunhofer.parser_dga`): a JSON object
//! `{identifier: [domain or IP, ...]}`; the identifier's part before the first `_` is the malware.
//! A value that is neither an IP address nor a domain fails the whole report, as in IntelMQ.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::json::{add_soft, json_document, kind_name};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The DGA parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraunhoferDgaParserParams {}

/// The Fraunhofer DGA Archive parser.
#[derive(Debug)]
pub struct FraunhoferDgaParserBot;

impl BuildBot for FraunhoferDgaParserBot {
    type Params = FraunhoferDgaParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(FraunhoferDgaParserBot)
    }
}

fn parse_row(mut event: Message, malware: &str, row: &Value) -> Result<Message, BotError> {
    event.add("classification.type", "c2-server")?;
    event.add("malware.name", malware)?;
    if !add_soft(&mut event, "source.ip", row.clone())? {
        event.add("source.fqdn", row.clone())?;
    }
    event.add("raw", row.clone())?;
    Ok(event)
}

impl ParserBot for FraunhoferDgaParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let families = match json_document(report)? {
            Value::Object(map) => map,
            other => {
                return Err(BotError::Invalid(format!("report raw: expected a JSON object, got {}", kind_name(&other))))
            }
        };
        let mut events = Vec::new();
        for (identifier, rows) in &families {
            let malware = identifier.split('_').next().unwrap_or_default();
            let rows = rows
                .as_array()
                .ok_or_else(|| BotError::Invalid(format!("the value of `{identifier}` is not a list")))?;
            for row in rows {
                events.push(parse_row(out.new_event(), malware, row)?);
            }
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
    fn rows_become_ip_or_fqdn_events_named_after_the_family() {
        let raw = r#"{"banjori_dga_x": ["andersensinaix.com", "192.0.2.1"], "gozi_y": ["example.org"]}"#;
        let (events, failed, result) = run(&mut FraunhoferDgaParserBot, &report(json!({}), raw));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].get_str("source.fqdn"), Some("andersensinaix.com"));
        assert_eq!(events[0].get_str("malware.name"), Some("banjori"));
        assert_eq!(events[1].get_str("source.ip"), Some("192.0.2.1"));
        assert_eq!(events[1].raw_bytes().unwrap(), b"192.0.2.1");
        assert_eq!(events[2].get_str("malware.name"), Some("gozi"));
        assert_eq!(events[2].get_str("classification.type"), Some("c2-server"));
    }

    #[test]
    fn a_row_that_is_no_host_fails_the_report() {
        let (events, _, result) = run(&mut FraunhoferDgaParserBot, &report(json!({}), r#"{"a_b": ["a..b"]}"#));
        assert!(events.is_empty());
        assert!(result.is_err());
    }
}
