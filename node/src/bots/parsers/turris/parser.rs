//! The Turris Greylist parser (`intelmq.bots.parsers.turris.parser`): CSV with the header
//! `Address,Tags`; one event per known tag (brute-force on ftp/http/smtp/telnet, scanner for
//! port_scan); other tags (the HaaS honeypot ones) give no event.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::text_lines::{CsvDictReport, DictRow};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// Well-known ports of the brute-forced services (smtp uses both 25 and 587, so it has none).
const PORTS: &[(&str, u16)] = &[("ftp", 21), ("telnet", 23), ("http", 80)];

/// The Turris Greylist parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurrisGreylistParserParams {}

/// The Turris Greylist parser.
#[derive(Debug, Default)]
pub struct TurrisGreylistParserBot;

impl BuildBot for TurrisGreylistParserBot {
    type Params = TurrisGreylistParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(TurrisGreylistParserBot)
    }
}

fn parse_row(csv: &CsvDictReport, row: &DictRow, out: &ParserOutput<'_>) -> Result<Vec<Message>, BotError> {
    // Python `line.get(..)`: a column the header lacks reads as nothing.
    let has = |name: &str| csv.fieldnames.iter().any(|f| f == name);
    let tags = if has("Tags") { row.text(&csv.fieldnames, "Tags")? } else { "" };
    let address = if has("Address") { row.get(&csv.fieldnames, "Address")? } else { None };
    let mut events = Vec::new();
    for tag in tags.split(',') {
        let mut event = out.new_event();
        match tag {
            "smtp" | "http" | "ftp" | "telnet" => {
                event.add("protocol.transport", "tcp")?;
                event.add("protocol.application", tag)?;
                event.add("classification.type", "brute-force")?;
                if let Some((_, port)) = PORTS.iter().find(|(t, _)| *t == tag) {
                    event.add("destination.port", *port)?;
                }
            }
            "port_scan" => {
                event.add("classification.type", "scanner")?;
            }
            // `haas`, `haas_logged` ...: the CZ.NIC HaaS feed has these in better detail.
            _ => continue,
        }
        event.add("raw", csv.recover_line_csv_dict(row))?;
        if let Some(address) = address {
            event.add("source.ip", address)?;
        }
        events.push(event);
    }
    Ok(events)
}

impl ParserBot for TurrisGreylistParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let csv = CsvDictReport::read(report, &["#"])?;
        for row in &csv.rows {
            match parse_row(&csv, row, out) {
                Ok(events) => {
                    for event in events {
                        out.event(event);
                    }
                }
                Err(e) => out.fail(csv.recover_line_csv_dict(row), e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, raw_text, run};
    use serde_json::json;

    #[test]
    fn one_event_per_known_tag() {
        let raw = "# terms\nAddress,Tags\n192.0.2.1,\"ftp,http,port_scan,smtp,haas\"\n192.0.2.2,haas\n";
        let parsed = run(&mut TurrisGreylistParserBot, &[], raw).unwrap();
        assert_eq!(parsed.events.len(), 4);
        assert_eq!(field(&parsed.events[0], "destination.port"), json!(21));
        assert_eq!(field(&parsed.events[2], "classification.type"), json!("scanner"));
        assert!(parsed.events[3].get("destination.port").is_none());
        assert_eq!(raw_text(&parsed.events[0]), "Address,Tags\n192.0.2.1,\"ftp,http,port_scan,smtp,haas\"");
    }

    #[test]
    fn a_bad_address_fails_the_row() {
        let parsed = run(&mut TurrisGreylistParserBot, &[], "Address,Tags\nnope,http\n192.0.2.1,http\n").unwrap();
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.failed.len(), 1);
    }
}
