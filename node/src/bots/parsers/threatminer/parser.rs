//! The Threatminer parser (`intelmq.bots.parsers.threatminer.parser`): the domains listed between
//! the "Recent domains" and "Recent hosts" headings of the Threatminer start page.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::html_table::pyhtml::{py_splitlines, py_strip, PyHtmlParser, Token};
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// The Threatminer parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatminerParserParams {}

/// The Threatminer parser.
#[derive(Debug)]
pub struct ThreatminerParserBot;

impl BuildBot for ThreatminerParserBot {
    type Params = ThreatminerParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(ThreatminerParserBot)
    }
}

impl ParserBot for ThreatminerParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let lines: Vec<&str> = py_splitlines(&text).into_iter().map(py_strip).collect();
        let line_at = |i: usize| {
            lines.get(i).copied().ok_or_else(|| BotError::Invalid("unexpected end of the report".to_string()))
        };
        let mut index = 0;
        let mut line = line_at(index)?;
        while line != "Recent domains" {
            index += 1;
            line = line_at(index)?;
        }
        // Every data chunk the tokenizer reports, and the line that produced new ones.
        let mut parser = PyHtmlParser::new(true);
        let mut data: Vec<String> = Vec::new();
        let mut raw_lines: Vec<String> = Vec::new();
        while line != "Recent hosts" {
            index += 1;
            line = line_at(index)?;
            let before = data.len();
            parser.feed(line);
            for token in parser.tokens.drain(..) {
                if let Token::Data(d) = token {
                    data.push(d);
                }
            }
            if data.len() != before {
                raw_lines.push(line.to_string());
            }
        }
        // The last two chunks are a blank between tags and the "Recent hosts" heading.
        data.truncate(data.len().saturating_sub(2));
        raw_lines.truncate(raw_lines.len().saturating_sub(2));
        for (i, domain) in data.iter().enumerate() {
            let mut event = out.new_event();
            event.add("source.fqdn", domain.as_str())?;
            event.add("classification.type", "blacklist")?;
            let raw = raw_lines.get(i).ok_or_else(|| BotError::Invalid(format!("no source line for {domain:?}")))?;
            event.add("raw", raw.as_str())?;
            out.event(event);
        }
        Ok(())
    }
}
