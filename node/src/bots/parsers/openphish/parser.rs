//! The OpenPhish parser (`intelmq.bots.parsers.openphish.parser`): one phishing URL per line. As
//! in IntelMQ (a plain `Bot`), a bad line fails the whole report.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::Message;

/// The OpenPhish parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenPhishParserParams {}

/// The OpenPhish parser.
#[derive(Debug, Default)]
pub struct OpenPhishParserBot;

impl BuildBot for OpenPhishParserBot {
    type Params = OpenPhishParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(OpenPhishParserBot)
    }
}

impl ParserBot for OpenPhishParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in py_splitlines(&text) {
            let row = py_strip(row);
            if row.is_empty() {
                continue;
            }
            let mut event = out.new_event();
            event.add("classification.type", "phishing")?;
            event.add("source.url", row)?;
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
    fn each_url_is_a_phishing_event() {
        let parsed = run(&mut OpenPhishParserBot, &[], " http://example.com/phish \n\nhttp://example.org/x\n").unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.url"), json!("http://example.com/phish"));
        assert_eq!(field(&parsed.events[0], "classification.type"), json!("phishing"));
    }

    #[test]
    fn a_line_that_is_no_url_fails_the_report() {
        assert!(run(&mut OpenPhishParserBot, &[], "http://example.com/\nnot a url\n").is_err());
    }
}
