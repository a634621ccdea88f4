//! The Team Cymru Full Bogons parser (`intelmq.bots.parsers.cymru.parser_full_bogons`): one
//! `blacklist` event per prefix of the IPv4 or IPv6 list, `time.source` from the
//! `# last updated <epoch> (<date>)` header line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::py_splitlines;
use crate::bots::parsers::{recover_line, report_text};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{datetime, AddOptions};

/// The Full Bogons parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CymruFullBogonsParserParams {}

/// The Full Bogons parser.
pub struct CymruFullBogonsParserBot;

impl BuildBot for CymruFullBogonsParserBot {
    type Params = CymruFullBogonsParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CymruFullBogonsParserBot)
    }
}

/// `text` without its last character (Python `text[:-1]`).
fn drop_last_char(text: &str) -> &str {
    match text.char_indices().last() {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// The header line and the date between its parentheses, with IntelMQ's slicing: a text without
/// a line break loses its last character, a missing `(` starts at 0, a missing `)` ends before
/// the last character.
fn header_and_date(text: &str) -> (&str, &str) {
    let first_row = match text.find('\n') {
        Some(i) => &text[..i],
        None => drop_last_char(text),
    };
    let open = first_row.find('(').map_or(0, |i| i + 1);
    let close = first_row.find(')').unwrap_or_else(|| drop_last_char(first_row).len());
    let date = if close > open { &first_row[open..close] } else { "" };
    (first_row, date)
}

impl ParserBot for CymruFullBogonsParserBot {
    fn parse(
        &mut self,
        report: &crate::message::Message,
        _ctx: &mut Context<'_>,
        out: &mut ParserOutput<'_>,
    ) -> Result<(), BotError> {
        let text = report_text(report)?;
        let text = py_strip(&text);
        if text.is_empty() {
            return Ok(());
        }
        let (first_row, date) = header_and_date(text);
        let last_updated = datetime::sanitize(date).ok_or_else(|| {
            BotError::Invalid(format!("cannot read the date {date:?} of the header line {first_row:?}"))
        })?;
        let tempdata = [first_row.to_string()];

        for line in py_splitlines(text) {
            let line = py_strip(line);
            if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let raw = recover_line(&tempdata, line);
            let mut event = out.new_event();
            let result = (|| -> Result<(), BotError> {
                let lenient = AddOptions { raise_failure: false, ..AddOptions::default() };
                if !event.add_with("source.ip", Value::String(line.to_string()), lenient)? {
                    event.add("source.network", line)?;
                }
                event.add("time.source", last_updated.as_str())?;
                event.add("classification.type", "blacklist")?;
                event.add("raw", raw.as_str())?;
                Ok(())
            })();
            match result {
                Ok(()) => out.event(event),
                Err(e) => out.fail(raw, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::{run_parser, ParserCommon};
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::{Harmonization, Message, MessageKind};

    fn parse(raw: &str) -> Result<crate::bots::parsers::ParsedReport, BotError> {
        let harmonization = Harmonization::builtin();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        report.add("raw", raw).unwrap();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "bogons",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        run_parser(&mut CymruFullBogonsParserBot, &report, &ParserCommon::default(), &mut ctx)
    }

    #[test]
    fn prefixes_become_blacklist_events_dated_by_the_header() {
        let parsed =
            parse("# last updated 1450193702 (Tue Dec 15 15:35:02 2015 GMT)\n0.0.0.0/8\n\n192.0.2.1\n").unwrap();
        assert_eq!(parsed.events.len(), 2);
        let first = &parsed.events[0];
        assert_eq!(first.get_str("source.network"), Some("0.0.0.0/8"));
        assert_eq!(first.get_str("time.source"), Some("2015-12-15T15:35:02+00:00"));
        assert_eq!(first.get_str("classification.type"), Some("blacklist"));
        assert_eq!(
            String::from_utf8(first.raw_bytes().unwrap()).unwrap(),
            "# last updated 1450193702 (Tue Dec 15 15:35:02 2015 GMT)\n0.0.0.0/8"
        );
        assert_eq!(parsed.events[1].get_str("source.ip"), Some("192.0.2.1"));
    }

    #[test]
    fn an_empty_report_gives_nothing_and_a_bad_header_fails_the_report() {
        assert!(parse("  \n").unwrap().events.is_empty());
        assert!(parse("# no date here\n0.0.0.0/8").is_err());
    }

    #[test]
    fn a_bad_prefix_fails_only_its_line() {
        let parsed = parse("# last updated 1 (Tue Dec 15 15:35:02 2015 GMT)\nnot-a-prefix\n10.0.0.0/8").unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.failed.len(), 1);
    }

    #[test]
    fn header_slicing_follows_python() {
        assert_eq!(header_and_date("# x (date) y\nrest"), ("# x (date) y", "date"));
        // No line break: the row loses its last character, and without `)` so does the date.
        assert_eq!(header_and_date("# x (date)"), ("# x (date", "dat"));
    }
}
