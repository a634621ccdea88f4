//! The OpenPhish commercial parser (`intelmq.bots.parsers.openphish.parser_commercial`): one JSON
//! object per line; `raw` of each event is the record re-serialised as a one-element JSON list.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::is_falsy;
use crate::message::{datetime, wire, AddOptions, Message};

/// The OpenPhish commercial parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenPhishCommercialParserParams {}

/// The OpenPhish commercial parser.
#[derive(Debug, Default)]
pub struct OpenPhishCommercialParserBot;

impl BuildBot for OpenPhishCommercialParserBot {
    type Params = OpenPhishCommercialParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(OpenPhishCommercialParserBot)
    }
}

/// `add(.., raise_failure=False)`.
const LENIENT: AddOptions = AddOptions { sanitize: true, overwrite: None, raise_failure: false };

/// Record fields copied as they are: (record key, event key, raise on an invalid value).
const FIELDS: &[(&str, &str, bool)] = &[
    ("asn_name", "source.as_name", true),
    ("brand", "extra.brand", true),
    ("country_code", "source.geolocation.cc", false),
    ("country_name", "source.geolocation.country", false),
    ("emails", "extra.emails", true),
    ("family_id", "extra.family_id", true),
    ("host", "source.fqdn", false),
    ("ip", "source.ip", true),
    ("page_language", "extra.page_language", true),
    ("phishing_kit", "extra.phishing_kit", true),
    ("screenshot", "screenshot_url", false),
    ("sector", "extra.sector", true),
    ("ssl_cert_issued_by", "extra.ssl_cert_issued_by", true),
    ("ssl_cert_issued_to", "extra.ssl_cert_issued_to", true),
    ("ssl_cert_serial", "extra.ssl_cert_serial", true),
    ("tld", "extra.tld", true),
    ("url", "source.url", true),
];

fn truthy<'v>(line: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    line.get(key).filter(|v| !is_falsy(v))
}

/// A time value read like `str(dateutil.parser.parse(value))`; `None` when it cannot be read.
fn time_of(value: &Value) -> Option<String> {
    value.as_str().and_then(datetime::parse_fuzzy)
}

fn parse_record(line: &Map<String, Value>, mut event: Message) -> Result<Message, BotError> {
    if let Some(asn) = truthy(line, "asn") {
        // It comes as `AS12345`.
        let number = asn.as_str().and_then(|s| s.get(2..)).and_then(|s| s.trim().parse::<i64>().ok());
        if let Some(number) = number {
            event.add_with("source.asn", Value::from(number), LENIENT)?;
        }
    }
    if let Some(isotime) = truthy(line, "isotime") {
        if let Some(time) = time_of(isotime) {
            event.add_with("time.source", Value::String(time), LENIENT)?;
        }
    } else if let Some(discover_time) = truthy(line, "discover_time") {
        if let Some(time) = time_of(discover_time) {
            event.add_with("time.source", Value::String(time), LENIENT)?;
        }
    }
    event.add("classification.type", "phishing")?;
    for (record_key, event_key, raise) in FIELDS {
        let value = line.get(*record_key).cloned().unwrap_or(Value::Null);
        if *raise {
            event.add(event_key, value)?;
        } else {
            event.add_with(event_key, value, LENIENT)?;
        }
    }
    // IntelMQ `recover_line_json`: the record as a one-element JSON list.
    event.add("raw", wire::dumps(&Value::Array(vec![Value::Object(line.clone())])))?;
    Ok(event)
}

impl ParserBot for OpenPhishCommercialParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in py_splitlines(&text) {
            if row.trim().is_empty() {
                continue;
            }
            // A line that is no JSON fails the report (IntelMQ's `parse_json_stream` raises).
            let record: Value = serde_json::from_str(row)
                .map_err(|e| BotError::Invalid(format!("line is not valid JSON ({e}): `{row}`")))?;
            let raw = wire::dumps(&Value::Array(vec![record.clone()]));
            let Value::Object(record) = record else {
                out.fail(raw, "the JSON line is not an object");
                continue;
            };
            match parse_record(&record, out.new_event()) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(raw, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, raw_text, run};
    use serde_json::json;

    #[test]
    fn records_map_onto_fields_and_raw_is_a_json_list() {
        let raw = r#"{"url": "http://192.0.2.1/x", "ip": "192.0.2.1", "host": "192.0.2.1", "asn": "AS64496", "isotime": "2022-03-22T05:06:25Z", "emails": [], "tld": "", "page_language": null, "brand": "Br\u00e4nd"}"#;
        let parsed = run(&mut OpenPhishCommercialParserBot, &[], raw).unwrap();
        assert_eq!(parsed.failed.len(), 0);
        let event = &parsed.events[0];
        assert_eq!(field(event, "source.asn"), json!(64496));
        assert_eq!(field(event, "time.source"), json!("2022-03-22T05:06:25+00:00"));
        assert_eq!(field(event, "extra.emails"), json!([]));
        assert!(event.get("source.fqdn").is_none(), "an IP is no FQDN");
        assert!(event.get("extra.tld").is_none());
        assert!(event.get("extra.page_language").is_none());
        assert!(raw_text(event).starts_with("[{\"url\": \"http://192.0.2.1/x\", "));
        assert!(raw_text(event).ends_with("\"brand\": \"Br\\u00e4nd\"}]"));
    }

    #[test]
    fn discover_time_is_used_without_isotime() {
        let raw = r#"{"url": "http://example.com/", "ip": "192.0.2.1", "discover_time": "22-03-2022 05:06:25 UTC"}"#;
        let parsed = run(&mut OpenPhishCommercialParserBot, &[], raw).unwrap();
        assert_eq!(field(&parsed.events[0], "time.source"), json!("2022-03-22T05:06:25+00:00"));
    }

    #[test]
    fn a_bad_record_fails_alone_and_bad_json_fails_the_report() {
        let raw = "{\"url\": \"http://example.com/\", \"ip\": \"nope\"}\n{\"url\": \"http://example.org/\"}\n";
        let parsed = run(&mut OpenPhishCommercialParserBot, &[], raw).unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.failed.len(), 1);
        assert!(run(&mut OpenPhishCommercialParserBot, &[], "{not json\n").is_err());
    }
}
