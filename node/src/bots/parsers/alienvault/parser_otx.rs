//! The AlienVault OTX parser (`intelmq.bots.parsers.alienvault.parser_otx`): a JSON list of
//! pulses; every supported indicator of a pulse becomes an event carrying the pulse's details.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{add_soft, as_object, field, is_truthy, json_items, recover_line_json, str_field};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::urlsplit;
use crate::message::{wire, Message};

/// Indicator types holding file hashes, and their fields.
const HASHES: [(&str, &str); 3] = [
    ("FileHash-SHA256", "malware.hash.sha256"),
    ("FileHash-SHA1", "malware.hash.sha1"),
    ("FileHash-MD5", "malware.hash.md5"),
];

/// The OTX parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlienvaultOtxParserParams {}

/// The AlienVault OTX parser.
#[derive(Debug)]
pub struct AlienvaultOtxParserBot;

impl BuildBot for AlienvaultOtxParserBot {
    type Params = AlienvaultOtxParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(AlienvaultOtxParserBot)
    }
}

/// Prefixes `http://` unless the text already names a scheme.
fn with_scheme(resource: &str) -> String {
    if resource.contains("://") {
        resource.to_string()
    } else {
        format!("http://{resource}")
    }
}

/// Python's `s[:-n]` on characters.
fn cut_end(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    match s.char_indices().nth(count.saturating_sub(n)) {
        Some((i, _)) if count > n => &s[..i],
        _ => "",
    }
}

/// The pulse details every indicator's event carries in `extra`, besides the indicator's own.
fn pulse_extra(pulse: &Map<String, Value>) -> Result<Map<String, Value>, BotError> {
    let mut extra = Map::new();
    extra.insert("author".into(), field(pulse, "author_name")?.clone());
    extra.insert("pulse".into(), field(pulse, "name")?.clone());
    Ok(extra)
}

/// Adds the indicator itself to the event; `Ok(false)` for an indicator type that is skipped.
fn add_indicator(
    event: &mut Message,
    kind: &str,
    value: &str,
    extra: &mut Map<String, Value>,
) -> Result<bool, BotError> {
    if let Some((_, key)) = HASHES.iter().find(|(k, _)| *k == kind) {
        event.add(key, value)?;
        return Ok(true);
    }
    match kind {
        "hostname" | "domain" => {
            // Some "domains" are URLs: with a path they go to `source.url`.
            let resource = with_scheme(value);
            let has_path = urlsplit(&resource).is_some_and(|u| !u.path.is_empty());
            if has_path {
                event.add("source.url", resource)?;
            } else {
                event.add("source.fqdn", value)?;
            }
        }
        "IPv4" | "IPv6" => {
            event.add("source.ip", value)?;
        }
        "email" => {
            event.add("source.account", value)?;
        }
        "URL" | "URI" => {
            if !add_soft(event, "source.url", with_scheme(value))? {
                if kind == "URI" {
                    event.add("source.urlpath", value)?;
                } else {
                    return Err(BotError::Invalid(format!("invalid value `{value}` for the URL type")));
                }
            }
        }
        "CIDR" => {
            event.add("source.network", value)?;
        }
        "CVE" => {
            extra.insert("cve".into(), Value::String(value.to_string()));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// One pulse to its events (all or none).
fn parse_pulse(out: &ParserOutput<'_>, record: &Value) -> Result<Vec<Message>, BotError> {
    let pulse = as_object(record, "otx pulse")?;
    let base_extra = pulse_extra(pulse)?;
    let indicators = field(pulse, "indicators")?
        .as_array()
        .ok_or_else(|| BotError::Invalid("pulse field `indicators` is not a list".to_string()))?;

    let mut events = Vec::new();
    for indicator_value in indicators {
        let indicator = as_object(indicator_value, "otx indicator")?;
        let kind = str_field(indicator, "type")?;
        let value = str_field(indicator, "indicator")?;
        let mut event = out.new_event();
        let mut extra = base_extra.clone();
        if !add_indicator(&mut event, kind, value, &mut extra)? {
            continue;
        }

        // The indicator's pulse_key wins over the pulse's id (as AlienVault does it).
        let pulse_key = match indicator.get("pulse_key") {
            Some(key) => key.clone(),
            None => field(pulse, "id")?.clone(),
        };
        extra.insert("pulse_key".into(), pulse_key);
        if let Some(tags) = pulse.get("tags") {
            extra.insert("tags".into(), tags.clone());
        }
        if let Some(modified) = pulse.get("modified") {
            let modified =
                modified.as_str().ok_or_else(|| BotError::Invalid("pulse field `modified` is not a string".into()))?;
            let updated = if modified.contains('.') {
                format!("{}+00:00", cut_end(modified, 4))
            } else {
                format!("{modified}.00+00:00")
            };
            extra.insert("time_updated".into(), Value::String(updated));
        }
        for key in ["industries", "adversary"] {
            if let Some(v) = pulse.get(key) {
                extra.insert(key.into(), v.clone());
            }
        }
        if let Some(countries) = pulse.get("targeted_countries").filter(|v| is_truthy(v)) {
            extra.insert("targeted_countries".into(), countries.clone());
        }

        event.add("comment", field(pulse, "description")?.clone())?;
        event.add("extra", Value::Object(extra))?;
        if let Some(tlp) = pulse.get("TLP") {
            event.add("tlp", tlp.clone())?;
        }
        event.add("classification.type", "blacklist")?;
        let created = str_field(indicator, "created")?;
        event.add("time.source", format!("{}+00:00", cut_end(created, 4)))?;
        event.add("raw", wire::dumps_sorted(indicator_value))?;
        events.push(event);
    }
    Ok(events)
}

impl ParserBot for AlienvaultOtxParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        for record in json_items(report)? {
            match parse_pulse(out, &record) {
                Ok(events) => events.into_iter().for_each(|e| out.event(e)),
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
    fn cut_end_is_pythons_negative_slice() {
        assert_eq!(cut_end("2015-09-02T09:21:53.093", 4), "2015-09-02T09:21:53");
        assert_eq!(cut_end("abc", 4), "");
        assert_eq!(cut_end("abcd", 4), "");
    }

    #[test]
    fn indicators_map_to_fields_and_carry_the_pulse() {
        let pulse = json!([{
            "author_name": "AV", "name": "Pulse", "id": "p1", "description": "desc", "TLP": "green",
            "modified": "2016-11-03T20:15:43.264000", "tags": ["a"], "adversary": "", "industries": [],
            "targeted_countries": [],
            "indicators": [
                {"type": "domain", "indicator": "example.com", "created": "2016-11-03T20:15:44.000"},
                {"type": "hostname", "indicator": "example.com/path", "created": "2016-11-03T20:15:44.000"},
                {"type": "URI", "indicator": "/woolen/", "created": "2016-11-03T20:15:44.000", "pulse_key": "k2"},
                {"type": "CVE", "indicator": "CVE-2012-0158", "created": "2016-11-03T20:15:44.000"},
                {"type": "Mutex", "indicator": "x", "created": "2016-11-03T20:15:44.000"}
            ]
        }]);
        let (events, failed, result) = run(&mut AlienvaultOtxParserBot, &report(json!({}), &pulse.to_string()));
        result.unwrap();
        assert!(failed.is_empty());
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].get_str("source.fqdn"), Some("example.com"));
        assert_eq!(events[0].get_str("tlp"), Some("GREEN"));
        assert_eq!(events[0].get_str("extra.pulse_key"), Some("p1"));
        assert_eq!(events[0].get_str("extra.time_updated"), Some("2016-11-03T20:15:43.26+00:00"));
        assert_eq!(events[0].get_str("extra.adversary"), Some(""));
        assert!(events[0].get("extra.targeted_countries").is_none());
        assert_eq!(events[0].get_str("time.source"), Some("2016-11-03T20:15:44+00:00"));
        assert_eq!(events[1].get_str("source.url"), Some("http://example.com/path"));
        assert_eq!(events[2].get_str("source.urlpath"), Some("/woolen/"));
        assert_eq!(events[2].get_str("extra.pulse_key"), Some("k2"));
        assert_eq!(events[3].get_str("extra.cve"), Some("CVE-2012-0158"));
    }

    #[test]
    fn a_bad_url_fails_the_whole_pulse() {
        let pulse = json!([{
            "author_name": "AV", "name": "Pulse", "id": "p1", "description": "d",
            "indicators": [
                {"type": "IPv4", "indicator": "192.0.2.1", "created": "2016-11-03T20:15:44.000"},
                {"type": "URL", "indicator": "http://", "created": "2016-11-03T20:15:44.000"}
            ]
        }]);
        let (events, failed, _) = run(&mut AlienvaultOtxParserBot, &report(json!({}), &pulse.to_string()));
        assert!(events.is_empty());
        assert_eq!(failed.len(), 1);
    }
}
