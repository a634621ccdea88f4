//! The SURBL parser (`intelmq.bots.parsers.surbl.parser`): an rbldnsd zone file. A `:` line names
//! the lists (`[mw]` malware, `[ph]` phishing, anything else a blacklist) for the `.domain` lines
//! after it. As in IntelMQ, the first 9 and the last 2 lines are the zone's header and footer, and
//! a problem fails the whole report.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// Lines at the start of the zone that hold no data.
const HEADER_LINES: usize = 9;
/// Lines at the end of the zone that hold no data.
const FOOTER_LINES: usize = 2;

/// The SURBL parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurblParserParams {}

/// The SURBL parser.
#[derive(Debug, Default)]
pub struct SurblParserBot;

impl BuildBot for SurblParserBot {
    type Params = SurblParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(SurblParserBot)
    }
}

/// The classification of a `:127.0.0.128:Blocked, $ on lists [mw][ph], See: <url>` line.
fn classification_of(line: &str) -> Result<&'static str, BotError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let lists = words
        .len()
        .checked_sub(3)
        .and_then(|i| words.get(i))
        .ok_or_else(|| BotError::Invalid(format!("no lists in line `{line}`")))?;
    // `[mw][ph],` -> `mw][ph` -> [mw, ph]
    let inner = lists.get(1..lists.len().saturating_sub(2).max(1)).unwrap_or("");
    let attributes: Vec<&str> = inner.split("][").collect();
    Ok(if attributes.contains(&"mw") {
        "malware-distribution"
    } else if attributes.contains(&"ph") {
        "phishing"
    } else {
        "blacklist"
    })
}

impl ParserBot for SurblParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let lines = py_splitlines(&text);
        let end = lines.len().saturating_sub(FOOTER_LINES);
        let mut classification: Option<&'static str> = None;
        for line in lines.get(HEADER_LINES..end).unwrap_or(&[]) {
            if line.starts_with(':') {
                classification = Some(classification_of(line)?);
            } else if let Some(domain) = line.strip_prefix('.') {
                let type_ = classification
                    .ok_or_else(|| BotError::Invalid(format!("domain line `{line}` before any list line")))?;
                let mut event = out.new_event();
                event.add("source.fqdn", domain)?;
                event.add("classification.type", type_)?;
                event.add("raw", *line)?;
                out.event(event);
            }
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
    fn list_names_give_the_classification() {
        assert_eq!(classification_of(":127.0.0.128:Blocked, $ on lists [cr], See: x").unwrap(), "blacklist");
        assert_eq!(classification_of(":1:Blocked, $ on lists [ph][mw], See: x").unwrap(), "malware-distribution");
        assert_eq!(classification_of(":1:Blocked, $ on lists [ph], See: x").unwrap(), "phishing");
    }

    #[test]
    fn domains_between_header_and_footer_become_events() {
        let header = "#\n".repeat(9);
        let raw = format!(
            "{header}:127.0.0.128:Blocked, $ on lists [mw], See: x\n.example.com\n0.0.0.0\n.example.net\n\n#end\n"
        );
        let parsed = run(&mut SurblParserBot, &[], &raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.fqdn"), json!("example.com"));
        assert_eq!(field(&parsed.events[1], "classification.type"), json!("malware-distribution"));
    }
}
