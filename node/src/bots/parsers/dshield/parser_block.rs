//! The DShield Block parser (`intelmq.bots.parsers.dshield.parser_block`): tab-separated lines
//! `start | end | prefix length | attacks | network name | country | e-mail`; the time comes from
//! the `updated:` header. As in IntelMQ (a plain `Bot`), a bad line fails the report.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{datetime, AddOptions, Message};

/// The DShield Block parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DshieldBlockParserParams {}

/// The DShield Block parser.
#[derive(Debug, Default)]
pub struct DshieldBlockParserBot;

impl BuildBot for DshieldBlockParserBot {
    type Params = DshieldBlockParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(DshieldBlockParserBot)
    }
}

/// IntelMQ `event[key] = value`: add with overwrite.
fn set(event: &mut Message, key: &str, value: &str) -> Result<(), BotError> {
    event.add_with(
        key,
        Value::String(value.to_string()),
        AddOptions { overwrite: Some(true), ..AddOptions::default() },
    )?;
    Ok(())
}

impl ParserBot for DshieldBlockParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let mut time: Option<String> = None;
        for row in py_splitlines(&text) {
            let row = py_strip(row);
            if row.starts_with('#') || row.is_empty() || row.starts_with("Start") {
                if row.contains("updated") {
                    let value = row.find(": ").map(|i| &row[i + 2..]).unwrap_or(row);
                    let parsed = datetime::parse_fuzzy(value)
                        .ok_or_else(|| BotError::Invalid(format!("cannot read the updated time `{value}`")))?;
                    time = Some(parsed);
                }
                continue;
            }
            let values: Vec<&str> = row.split('\t').collect();
            if values.len() < 3 {
                continue;
            }
            let network = format!("{}/{}", values[0], values[2]);

            let mut event = out.new_event();
            let mut extra = Map::new();
            if let Some(attacks) = values.get(3) {
                let attacks: i64 = attacks
                    .trim()
                    .parse()
                    .map_err(|_| BotError::Invalid(format!("attacks `{attacks}` is not an integer")))?;
                extra.insert("attacks".to_string(), Value::from(attacks));
            }
            if let Some(name) = values.get(4) {
                extra.insert("network_name".to_string(), Value::String(name.to_string()));
            }
            if let Some(cc) = values.get(5) {
                set(&mut event, "source.geolocation.cc", cc)?;
            }
            if let Some(contact) = values.get(6) {
                set(&mut event, "source.abuse_contact", contact)?;
            }
            if !extra.is_empty() {
                event.add("extra", Value::Object(extra))?;
            }
            if let Some(time) = &time {
                event.add("time.source", time.as_str())?;
            }
            event.add("source.network", network)?;
            event.add("classification.type", "blacklist")?;
            event.add("raw", row)?;
            out.event(event);
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
    fn rows_become_networks_with_the_updated_time() {
        let raw = "#    updated: Tue Dec 15 15:33:38 2015 UTC\nStart\tEnd\tNetblock\n192.0.2.0\t192.0.2.255\t24\t788\tNet\tJP\tabuse@example.com\n198.51.100.0\t198.51.100.255\t24\t585\t\t\t\n";
        let parsed = run(&mut DshieldBlockParserBot, &[], raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        let first = &parsed.events[0];
        assert_eq!(field(first, "source.network"), json!("192.0.2.0/24"));
        assert_eq!(field(first, "time.source"), json!("2015-12-15T15:33:38+00:00"));
        assert_eq!(field(first, "extra.attacks"), json!(788));
        assert_eq!(field(first, "extra.network_name"), json!("Net"));
        assert_eq!(field(first, "source.geolocation.cc"), json!("JP"));
        let second = &parsed.events[1];
        assert!(second.get("extra.network_name").is_none());
        assert_eq!(raw_text(second), "198.51.100.0\t198.51.100.255\t24\t585");
    }
}
