//! The Danger Rulez Bruteforce Blocker parser (`intelmq.bots.parsers.danger_rulez.parser`):
//! `IP <tabs> # date time <tabs> count <tab> id` lines, each a brute-force event. As in IntelMQ (a
//! plain `Bot`), a line without address or timestamp fails the whole report.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The address: everything up to the first blank.
static REGEX_IP: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^[^ \t]+").unwrap()
});

/// The timestamp after `# `: a date and a time.
static REGEX_TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"# ([^ \t]+ [^ \t]+)").unwrap()
});

/// The Danger Rulez parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BruteForceBlockerParserParams {}

/// The Danger Rulez Bruteforce Blocker parser.
#[derive(Debug, Default)]
pub struct BruteForceBlockerParserBot;

impl BuildBot for BruteForceBlockerParserBot {
    type Params = BruteForceBlockerParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(BruteForceBlockerParserBot)
    }
}

impl ParserBot for BruteForceBlockerParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in py_splitlines(&text) {
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            let timestamp = REGEX_TIMESTAMP
                .captures(row)
                .and_then(|c| c.get(1))
                .ok_or_else(|| BotError::Invalid(format!("no timestamp found in line `{row}`")))?;
            let ip = REGEX_IP.find(row).ok_or_else(|| BotError::Invalid(format!("no ip found in line `{row}`")))?;
            let mut event = out.new_event();
            event.add("time.source", format!("{} UTC", timestamp.as_str()))?;
            event.add("source.ip", ip.as_str())?;
            event.add("classification.type", "brute-force")?;
            event.add("raw", row)?;
            out.event(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};
    use serde_json::json;

    #[test]
    fn address_and_timestamp_are_read() {
        let raw = "# IP\t\t\t# Last Reported\t\t\tCount\tID\n192.0.2.48\t\t# 2016-11-10 09:11:03\t\t56\t1101973\n";
        let parsed = run(&mut BruteForceBlockerParserBot, &[], raw).unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(field(&parsed.events[0], "source.ip"), json!("192.0.2.48"));
        assert_eq!(field(&parsed.events[0], "time.source"), json!("2016-11-10T09:11:03+00:00"));
        assert_eq!(field(&parsed.events[0], "classification.type"), json!("brute-force"));
    }

    #[test]
    fn a_line_without_timestamp_fails_the_report() {
        let err = run(&mut BruteForceBlockerParserBot, &[], "192.0.2.48\t\t56\n").unwrap_err();
        assert!(err.contains("no timestamp"), "{err}");
    }
}
