//! The Bambenek parser (`intelmq.bots.parsers.bambenek.parser`): one parser for the C2 IP, C2
//! domain and DGA domain feeds, told apart by the report's `feed.url`.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::text_lines::{feed_url, parse_lines};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The C2 IP master list URLs.
const IPMASTERLIST: &[&str] = &[
    "http://osint.bambenekconsulting.com/feeds/c2-ipmasterlist.txt",
    "https://osint.bambenekconsulting.com/feeds/c2-ipmasterlist.txt",
    "https://faf.bambenekconsulting.com/feeds/dga/c2-ipmasterlist.txt",
];

/// The C2 domain master list URLs.
const DOMMASTERLIST: &[&str] = &[
    "http://osint.bambenekconsulting.com/feeds/c2-dommasterlist.txt",
    "https://osint.bambenekconsulting.com/feeds/c2-dommasterlist.txt",
    "https://faf.bambenekconsulting.com/feeds/dga/c2-dommasterlist.txt",
];

/// The DGA domain feed URLs.
const DGA_FEED: &[&str] = &[
    "http://osint.bambenekconsulting.com/feeds/dga-feed.txt",
    "https://osint.bambenekconsulting.com/feeds/dga-feed.txt",
    "https://faf.bambenekconsulting.com/feeds/dga-feed.txt",
];

/// Malware names in the manual URLs that IntelMQ spells out.
const MALWARE_NAME_MAP: &[(&str, &str)] =
    &[("cl", "cryptolocker"), ("p2pgoz", "p2p goz"), ("ptgoz", "pt goz"), ("volatile", "volatile cedar")];

/// The Bambenek parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BambenekParserParams {}

/// The Bambenek parser.
#[derive(Debug, Default)]
pub struct BambenekParserBot;

impl BuildBot for BambenekParserBot {
    type Params = BambenekParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(BambenekParserBot)
    }
}

/// Which of the three feeds a report comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    IpMasterList,
    DomMasterList,
    Dga,
}

fn feed_of(url: &str) -> Option<Feed> {
    if IPMASTERLIST.contains(&url) {
        Some(Feed::IpMasterList)
    } else if DOMMASTERLIST.contains(&url) {
        Some(Feed::DomMasterList)
    } else if DGA_FEED.contains(&url) {
        Some(Feed::Dga)
    } else {
        None
    }
}

/// The malware name: the file name (without extension) of the last column's URL.
fn malware_name(last_column: &str) -> String {
    let file = last_column.rsplit('/').next().unwrap_or("");
    let name = file.split('.').next().unwrap_or("");
    MALWARE_NAME_MAP.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()).unwrap_or_else(|| name.to_string())
}

fn parse_line(line: &str, report: &Message, mut event: Message) -> Result<Message, BotError> {
    let value: Vec<&str> = line.split(',').collect();
    let column =
        |i: usize| value.get(i).copied().ok_or_else(|| BotError::Invalid(format!("line `{line}` has no column {i}")));
    event.add("event_description.text", column(1)?)?;
    event.add("event_description.url", column(3)?)?;
    event.add("raw", line)?;
    event.add("malware.name", malware_name(value.last().copied().unwrap_or("")))?;

    let url = feed_url(report)?;
    match feed_of(url) {
        Some(Feed::IpMasterList) => {
            event.add("source.ip", column(0)?)?;
            event.add("time.source", format!("{} UTC", column(2)?))?;
            event.add("classification.type", "c2-server")?;
            event.add("status", "online")?;
        }
        Some(Feed::DomMasterList) => {
            event.add("source.fqdn", column(0)?)?;
            event.add("time.source", format!("{} UTC", column(2)?))?;
            event.add("classification.type", "c2-server")?;
            event.add("status", "online")?;
        }
        Some(Feed::Dga) => {
            event.add("source.fqdn", column(0)?)?;
            event.add("time.source", format!("{} 00:00 UTC", column(2)?))?;
            event.add("classification.type", "dga-domain")?;
        }
        None => return Err(BotError::Invalid(format!("unknown data feed `{url}`"))),
    }
    Ok(event)
}

impl ParserBot for BambenekParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        parse_lines(report, out, |line, state, out| {
            if line.starts_with('#') {
                state.tempdata.push(line.to_string());
                return Ok(Vec::new());
            }
            Ok(vec![parse_line(line, report, out.new_event())?])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, raw_text, run};
    use serde_json::json;

    const C2_IPS: &str = "https://osint.bambenekconsulting.com/feeds/c2-ipmasterlist.txt";

    #[test]
    fn ip_master_list_gives_online_c2_servers() {
        let raw = "## header\n192.0.2.1,IP used by banjori C&C,2016-11-12 15:02,http://osint.bambenekconsulting.com/manual/banjori.txt\n";
        let parsed = run(&mut BambenekParserBot, &[("feed.url", C2_IPS)], raw).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!(field(event, "source.ip"), json!("192.0.2.1"));
        assert_eq!(field(event, "classification.type"), json!("c2-server"));
        assert_eq!(field(event, "status"), json!("online"));
        assert_eq!(field(event, "malware.name"), json!("banjori"));
        assert_eq!(field(event, "time.source"), json!("2016-11-12T15:02:00+00:00"));
    }

    #[test]
    fn manual_names_are_mapped_to_malware_names() {
        assert_eq!(malware_name("http://x/manual/cl.txt"), "cryptolocker");
        assert_eq!(malware_name("http://x/manual/volatile.txt"), "volatile cedar");
        assert_eq!(malware_name("http://x/manual/tinba.txt"), "tinba");
    }

    #[test]
    fn unknown_feed_url_fails_each_line_with_the_comments_in_raw() {
        let raw = "# comment\nexample.com,Domain used by x,2016-11-12,http://x/manual/x.txt\n";
        let parsed = run(&mut BambenekParserBot, &[("feed.url", "http://example.com/other.txt")], raw).unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.failed.len(), 1);
        assert!(parsed.failed[0].1.contains("unknown data feed"), "{}", parsed.failed[0].1);
        assert_eq!(
            raw_text(&parsed.failed[0].0),
            "# comment\nexample.com,Domain used by x,2016-11-12,http://x/manual/x.txt"
        );
    }
}
