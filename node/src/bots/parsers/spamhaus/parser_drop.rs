//! The Spamhaus DROP parser (`intelmq.bots.parsers.spamhaus.parser_drop`): the network lists
//! (DROP, EDROP, DROPv6: `network ; SBL id`) and ASN-DROP (`ASnnn ; cc | name`), told apart by
//! `feed.url`; `;` lines are comments and `Last-Modified:` gives the time.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bots::parsers::text_lines::{feed_url, parse_lines, strip_chars};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{datetime, Message};

/// Feeds of networks.
const NETWORK_DROP_URLS: &[&str] = &[
    "https://www.spamhaus.org/drop/edrop.txt",
    "https://www.spamhaus.org/drop/dropv6.txt",
    "https://www.spamhaus.org/drop/drop.txt",
    "https://www.spamhaus.org/drop/drop.lasso",
];

/// Feeds of autonomous systems.
const ASN_DROP_URLS: &[&str] = &["https://www.spamhaus.org/drop/asndrop.txt"];

/// The Spamhaus DROP parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpamhausDropParserParams {}

/// The Spamhaus DROP parser.
#[derive(Debug, Default)]
pub struct SpamhausDropParserBot;

impl BuildBot for SpamhausDropParserBot {
    type Params = SpamhausDropParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(SpamhausDropParserBot)
    }
}

fn column<'a>(values: &[&'a str], i: usize, line: &str) -> Result<&'a str, BotError> {
    values.get(i).copied().ok_or_else(|| BotError::Invalid(format!("line `{line}` has no column {}", i + 1)))
}

fn parse_line(line: &str, url: &str, last_generated: Option<&str>, mut event: Message) -> Result<Message, BotError> {
    if let Some(time) = last_generated {
        event.add("time.source", time)?;
    }
    event.add("classification.type", "spam")?;
    event.add("raw", line)?;
    if NETWORK_DROP_URLS.contains(&url) {
        let values: Vec<&str> = py_strip(line).split(';').collect();
        event.add("source.network", py_strip(column(&values, 0, line)?))?;
        event.add("extra", json!({"blocklist": py_strip(column(&values, 1, line)?)}))?;
    } else if ASN_DROP_URLS.contains(&url) {
        let replaced = line.replace('|', ";");
        let values: Vec<&str> = replaced.split(';').collect();
        event.add("source.asn", py_strip(strip_chars(column(&values, 0, line)?, "AS")))?;
        event.add("source.as_name", py_strip(column(&values, 2, line)?))?;
        let cc = column(&values, 1, line)?;
        if !cc.is_empty() {
            event.add("source.geolocation.cc", py_strip(cc))?;
        }
    } else {
        return Err(BotError::Invalid(format!("unknown data feed `{url}`")));
    }
    Ok(event)
}

impl ParserBot for SpamhausDropParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let mut last_generated: Option<String> = None;
        parse_lines(report, out, |line, state, out| {
            if line.starts_with(';') {
                state.tempdata.push(line.to_string());
                if line.contains("Last-Modified:") {
                    let value = strip_chars(line, "; ").get(15..).unwrap_or("");
                    let time = datetime::parse_fuzzy(value)
                        .ok_or_else(|| BotError::Invalid(format!("cannot read Last-Modified `{value}`")))?;
                    last_generated = Some(time);
                }
                return Ok(Vec::new());
            }
            let url = feed_url(report)?;
            Ok(vec![parse_line(line, url, last_generated.as_deref(), out.new_event())?])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};

    const HEADER: &str = "; Spamhaus DROP List 2015/09/14 - (c) 2015 The Spamhaus Project\n; Last-Modified: Mon, 14 Sep 2015 04:39:22 GMT\n";

    #[test]
    fn network_lists_give_networks_with_their_sbl_id() {
        let raw = format!("{HEADER}1.4.0.0/17 ; SBL256893\n2a06:e480::/29 ; SBL301771\n");
        let parsed =
            run(&mut SpamhausDropParserBot, &[("feed.url", "https://www.spamhaus.org/drop/drop.txt")], &raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.network"), json!("1.4.0.0/17"));
        assert_eq!(field(&parsed.events[0], "extra.blocklist"), json!("SBL256893"));
        assert_eq!(field(&parsed.events[1], "time.source"), json!("2015-09-14T04:39:22+00:00"));
    }

    #[test]
    fn asn_list_gives_asn_name_and_country() {
        let raw = format!("{HEADER}AS260 ; AE | XCONNECT24 - Xconnect24 Inc., US\nAS10516 ; | Orb-bit Design Group\n");
        let parsed =
            run(&mut SpamhausDropParserBot, &[("feed.url", "https://www.spamhaus.org/drop/asndrop.txt")], &raw)
                .unwrap();
        assert_eq!(field(&parsed.events[0], "source.asn"), json!(260));
        assert_eq!(field(&parsed.events[0], "source.geolocation.cc"), json!("AE"));
        assert_eq!(field(&parsed.events[1], "source.as_name"), json!("Orb-bit Design Group"));
        assert!(parsed.events[1].get("source.geolocation.cc").is_none());
    }

    #[test]
    fn an_unknown_url_fails_every_data_line() {
        let raw = format!("{HEADER}1.4.0.0/17 ; SBL256893\n");
        let parsed = run(&mut SpamhausDropParserBot, &[("feed.url", "https://example.com/drop.txt")], &raw).unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.failed.len(), 1);
    }
}
