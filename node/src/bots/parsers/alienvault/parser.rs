//! The AlienVault reputation list parser (`intelmq.bots.parsers.alienvault.parser`):
//! `ip#reliability#risk#categories#cc#city#lat,long#...` lines, one event per `;`-separated
//! category.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::json::text_lines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::Message;

/// The feed's categories (lowercased) and their classification types; others are `undetermined`.
const CLASSIFICATION: [(&str, &str); 7] = [
    ("c&c", "c2-server"),
    ("scanning host", "scanner"),
    ("malicious host", "infected-system"),
    ("spamming", "spam"),
    ("malware domain", "malware-distribution"),
    ("malware ip", "malware-distribution"),
    ("malware distribution", "malware-distribution"),
];

/// The AlienVault parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlienvaultParserParams {}

/// The AlienVault reputation list parser.
#[derive(Debug)]
pub struct AlienvaultParserBot;

impl BuildBot for AlienvaultParserBot {
    type Params = AlienvaultParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(AlienvaultParserBot)
    }
}

fn column<'l>(values: &[&'l str], index: usize) -> Result<&'l str, BotError> {
    values.get(index).copied().ok_or_else(|| BotError::Invalid(format!("line has no column {index}")))
}

/// One line to its events (all or none).
fn parse_row(out: &ParserOutput<'_>, row: &str) -> Result<Vec<Message>, BotError> {
    let values: Vec<&str> = row.split('#').collect();
    let categories = column(&values, 3)?;
    let types: Vec<&str> = if py_strip(categories).find(';').is_some_and(|i| i > 0) {
        categories.split(';').collect()
    } else {
        vec![categories]
    };
    let coordinates = py_strip(column(&values, 6)?);
    let geo = match coordinates.split(',').collect::<Vec<_>>()[..] {
        [lat, long] if !coordinates.is_empty() => Some((py_strip(lat), py_strip(long))),
        _ => None,
    };

    let mut events = Vec::with_capacity(types.len());
    for ctype in types {
        let mut event = out.new_event();
        let lower = ctype.to_lowercase();
        let class = CLASSIFICATION.iter().find(|(name, _)| *name == lower).map_or("undetermined", |(_, t)| *t);
        event.add("classification.type", class)?;
        event.add("source.ip", py_strip(column(&values, 0)?))?;
        event.add("source.geolocation.cc", py_strip(column(&values, 4)?))?;
        event.add("source.geolocation.city", py_strip(column(&values, 5)?))?;
        if let Some((lat, long)) = geo {
            event.add("source.geolocation.latitude", lat)?;
            event.add("source.geolocation.longitude", long)?;
        }
        event.add("raw", row)?;
        events.push(event);
    }
    Ok(events)
}

impl ParserBot for AlienvaultParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        for row in text_lines(report)? {
            match parse_row(out, &row) {
                Ok(events) => events.into_iter().for_each(|e| out.event(e)),
                Err(e) => out.fail(row, e),
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
    fn each_category_gives_an_event() {
        let raw =
            "192.0.2.1#4#2#Malicious Host;Spamming#DE##0,1#3\n\n198.51.100.4#3#2#Whatever#GB#London##11\nbroken\n";
        let (events, failed, result) = run(&mut AlienvaultParserBot, &report(json!({}), raw));
        result.unwrap();
        assert_eq!(failed, vec!["broken".to_string()]);
        let types: Vec<_> = events.iter().map(|e| e.get_str("classification.type").unwrap()).collect();
        assert_eq!(types, vec!["infected-system", "spam", "undetermined"]);
        assert_eq!(events[0].get("source.geolocation.latitude"), Some(&json!(0.0)));
        assert_eq!(events[0].get("source.geolocation.longitude"), Some(&json!(1.0)));
        assert!(events[0].get("source.geolocation.city").is_none());
        assert_eq!(events[2].get_str("source.geolocation.city"), Some("London"));
        assert!(events[2].get("source.geolocation.latitude").is_none());
        assert_eq!(events[2].raw_bytes().unwrap(), b"198.51.100.4#3#2#Whatever#GB#London##11");
    }
}
