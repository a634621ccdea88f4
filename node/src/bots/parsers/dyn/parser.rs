//! The Dyn parser (`intelmq.bots.parsers.dyn.parser`): Ponmocup lines
//! `malware-IP malware-domain malware-URL infected-domain`, each giving two events (the
//! malware-distribution host and the compromised web server); the time comes from the
//! `# last updated:` header (US Pacific time zones understood). As in IntelMQ (a plain `Bot`), a bad
//! line fails the report.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{datetime, Message};

/// Time zone names the feed uses, with their offset from UTC in hours.
const TZ_OFFSETS: &[(&str, i64)] = &[("PST", -8), ("PDT", -7)];

/// The Dyn parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynParserParams {}

/// The Dyn parser.
#[derive(Debug, Default)]
pub struct DynParserBot;

impl BuildBot for DynParserBot {
    type Params = DynParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(DynParserBot)
    }
}

/// Reads `Tue Mar 15 00:47:49 PDT 2016` into UTC.
fn parse_updated(text: &str) -> Option<String> {
    let mut offset = 0;
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        match TZ_OFFSETS.iter().find(|(name, _)| *name == word) {
            Some((_, hours)) => offset = *hours,
            None => words.push(word),
        }
    }
    let naive = datetime::parse_fuzzy(&words.join(" "))?;
    let dt = NaiveDateTime::parse_from_str(naive.get(..19)?, "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(datetime::format_utc(dt - Duration::hours(offset)))
}

impl ParserBot for DynParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let mut source_time: Option<String> = None;
        for row in py_splitlines(&text) {
            if let Some(rest) = row.strip_prefix("# last updated:") {
                let parsed = parse_updated(rest)
                    .ok_or_else(|| BotError::Invalid(format!("cannot read the time `{}`", rest.trim())))?;
                source_time = Some(parsed);
                continue;
            }
            if row.starts_with('#') || row.trim().is_empty() {
                continue;
            }
            let split: Vec<&str> = row.split_whitespace().collect();
            if split.len() < 4 {
                return Err(BotError::Invalid(format!("line `{row}` has fewer than 4 columns")));
            }

            let mut infected = out.new_event();
            if let Some(time) = &source_time {
                infected.add("time.source", time.as_str())?;
            }
            infected.add("classification.type", "malware-distribution")?;
            if split[0] != "/" {
                infected.add("source.ip", split[0])?;
            }
            infected.add("source.fqdn", split[1])?;
            infected.add("source.url", split[2])?;
            infected.add("destination.fqdn", split[3])?;
            infected.add("event_description.text", "has malicious code redirecting to malicious host")?;
            infected.add("raw", row)?;

            let mut compromised = out.new_event();
            if let Some(time) = &source_time {
                compromised.add("time.source", time.as_str())?;
            }
            compromised.add("classification.type", "system-compromise")?;
            if split[0] != "/" {
                compromised.add("destination.ip", split[0])?;
            }
            compromised.add("destination.fqdn", split[1])?;
            compromised.add("destination.url", split[2])?;
            compromised.add("source.fqdn", split[3])?;
            compromised
                .add("event_description.text", "host has been compromised and has malicious code infecting users")?;
            compromised.add("raw", row)?;

            out.event(infected);
            out.event(compromised);
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
    fn pacific_time_is_converted_to_utc() {
        assert_eq!(parse_updated(" Tue Mar 15 00:47:49 PDT 2016").as_deref(), Some("2016-03-15T07:47:49+00:00"));
        assert_eq!(parse_updated(" Tue Jan 12 00:47:49 PST 2016").as_deref(), Some("2016-01-12T08:47:49+00:00"));
    }

    #[test]
    fn each_line_gives_a_distribution_and_a_compromise_event() {
        let raw = "# last updated: Tue Mar 15 00:47:49 PDT 2016\n192.0.2.1 a.example.com http://a.example.com/x b.example.net\n";
        let parsed = run(&mut DynParserBot, &[], raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.ip"), json!("192.0.2.1"));
        assert_eq!(field(&parsed.events[0], "destination.fqdn"), json!("b.example.net"));
        assert_eq!(field(&parsed.events[1], "classification.type"), json!("system-compromise"));
        assert_eq!(field(&parsed.events[1], "destination.ip"), json!("192.0.2.1"));
        assert_eq!(field(&parsed.events[1], "time.source"), json!("2016-03-15T07:47:49+00:00"));
    }
}
