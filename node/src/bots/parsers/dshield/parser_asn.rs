//! The DShield AS parser (`intelmq.bots.parsers.dshield.parser_asn`): tab-separated lines
//! `source IP (zero-padded) | reports | targets | first seen | last seen | updated`; the AS number
//! comes from `?as=` in `feed.url`. As in IntelMQ (a plain `Bot`), a bad line fails the report.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::{feed_url, py_splitlines};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The DShield AS parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DShieldASNParserParams {}

/// The DShield AS parser.
#[derive(Debug, Default)]
pub struct DShieldASNParserBot;

impl BuildBot for DShieldASNParserBot {
    type Params = DShieldASNParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(DShieldASNParserBot)
    }
}

fn int(text: &str, what: &str) -> Result<i64, BotError> {
    text.trim().parse().map_err(|_| BotError::Invalid(format!("{what} `{text}` is not an integer")))
}

/// `109.230.155.061` -> `109.230.155.61`.
fn unpad_ip(text: &str) -> Result<String, BotError> {
    let parts: Result<Vec<String>, BotError> =
        text.split('.').map(|p| int(p, "address part").map(|n| n.to_string())).collect();
    Ok(parts?.join("."))
}

/// The AS number after the last `?as=` of the URL.
fn asn_of(url: &str) -> Result<i64, BotError> {
    // Python: `url[url.rfind('?as=') + 4:]`; without `?as=` that is `url[3:]`.
    let rest = match url.rfind("?as=") {
        Some(i) => &url[i + 4..],
        None => url.get(3..).unwrap_or(""),
    };
    int(rest, "the AS number in feed.url")
}

impl ParserBot for DShieldASNParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in py_splitlines(&text) {
            if row.starts_with('#') {
                continue;
            }
            let values: Vec<&str> = row.split('\t').collect();
            if values.len() < 6 {
                continue;
            }
            let source_ip = unpad_ip(values[0])?;
            let reports = int(values[1], "reports")?;
            let targets = int(values[2], "targets")?;
            let last_seen = values[4];
            let updated = values[5];
            let asn = asn_of(feed_url(report)?)?;

            let mut event = out.new_event();
            event.add("source.ip", source_ip)?;
            event.add("source.asn", asn)?;
            event.add("classification.type", "brute-force")?;
            event.add("time.source", format!("{updated}+0"))?;
            event.add("raw", row)?;
            event.add("extra", json!({"reports": reports, "targets": targets, "last_seen": last_seen}))?;
            out.event(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};

    #[test]
    fn rows_give_unpadded_addresses_and_the_asn_of_the_url() {
        let raw = "# header\n109.230.155.061\t1\t1\t\t2015-12-10\t2015-12-14 12:40:59\nshort\tline\n";
        let url = "https://dshield.org/asdetailsascii.html?as=64496";
        let parsed = run(&mut DShieldASNParserBot, &[("feed.url", url)], raw).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let event = &parsed.events[0];
        assert_eq!(field(event, "source.ip"), json!("109.230.155.61"));
        assert_eq!(field(event, "source.asn"), json!(64496));
        assert_eq!(field(event, "time.source"), json!("2015-12-14T12:40:59+00:00"));
        assert_eq!(field(event, "extra.reports"), json!(1));
        assert_eq!(field(event, "extra.last_seen"), json!("2015-12-10"));
    }

    #[test]
    fn a_url_without_asn_fails_the_report() {
        let raw = "192.0.2.1\t1\t1\t\t2015-12-10\t2015-12-14 12:40:59\n";
        assert!(run(&mut DShieldASNParserBot, &[("feed.url", "https://dshield.org/x")], raw).is_err());
    }
}
