//! The CI Army parser (`intelmq.bots.parsers.ci_army.parser`): one IP address per line, each a
//! blacklist event. As in IntelMQ (a plain `Bot`), a bad line fails the whole report.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::report_text;
use crate::bots::parsers::text_lines::py_splitlines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The CI Army parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CIArmyParserParams {}

/// The CI Army parser.
#[derive(Debug, Default)]
pub struct CIArmyParserBot;

impl BuildBot for CIArmyParserBot {
    type Params = CIArmyParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CIArmyParserBot)
    }
}

impl ParserBot for CIArmyParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        for row in py_splitlines(&text) {
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            let mut event = out.new_event();
            event.add("source.ip", row)?;
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
    use crate::bots::parsers::text_lines::testing::{field, run};
    use serde_json::json;

    #[test]
    fn each_address_is_a_blacklist_event() {
        let parsed = run(&mut CIArmyParserBot, &[], "# list\n192.0.2.1\n\n192.0.2.2\n").unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[1], "source.ip"), json!("192.0.2.2"));
        assert_eq!(field(&parsed.events[1], "classification.type"), json!("blacklist"));
    }

    #[test]
    fn a_bad_address_fails_the_report() {
        assert!(run(&mut CIArmyParserBot, &[], "192.0.2.1\nnope\n").is_err());
    }
}
