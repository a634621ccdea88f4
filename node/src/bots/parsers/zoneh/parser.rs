//! The Zone-H parser (`intelmq.bots.parsers.zoneh.parser`): a CSV defacement report with a header
//! line; every row is a defaced website (`domain` holds its URL).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::text_lines::{CsvDictReport, DictRow};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::urlsplit;
use crate::message::{AddOptions, Message};

/// Parameters of the Zone-H parser.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneHParserParams {
    /// Default: none. Kept for configurations written for older IntelMQ versions; not used.
    pub feedname: Option<String>,
}

/// The Zone-H parser.
#[derive(Debug, Default)]
pub struct ZoneHParserBot;

impl BuildBot for ZoneHParserBot {
    type Params = ZoneHParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(ZoneHParserBot)
    }
}

/// `add(.., raise_failure=False)`.
const LENIENT: AddOptions = AddOptions { sanitize: true, overwrite: None, raise_failure: false };

fn parse_row(csv: &CsvDictReport, row: &DictRow, mut event: Message) -> Result<Message, BotError> {
    let names = &csv.fieldnames;
    let get = |name: &str| row.text(names, name);
    let domain = get("domain")?;
    let url = urlsplit(domain).unwrap_or_default();

    event.add("classification.identifier", "compromised-website")?;
    event.add("classification.type", "unauthorised-information-modification")?;
    event.add("event_description.text", "defacement")?;
    event.add("time.source", format!("{} UTC", get("add_date")?))?;
    event.add("raw", csv.recover_line(row))?;
    event.add_with("source.ip", Value::String(get("ip_address")?.to_string()), LENIENT)?;
    event.add_with("source.fqdn", Value::String(url.netloc.clone()), LENIENT)?;
    event.add_with("source.geolocation.cc", Value::String(get("country_code")?.to_string()), LENIENT)?;
    event.add("protocol.application", url.scheme.as_str())?;
    // Yes, the URL column is called `domain`.
    event.add_with("source.url", Value::String(domain.to_string()), LENIENT)?;
    if names.iter().any(|n| n == "accept_date") {
        let accepted = get("accept_date")?;
        if !accepted.is_empty() {
            event.add("extra.accepted_date", accepted)?;
        }
    }
    event.add("extra.actor", get("attacker")?)?;
    event.add("extra.http_target", get("web_server")?)?;
    event.add("extra.os.name", get("system")?)?;
    event.add("extra.compromise_method", get("hackmode")?)?;
    event.add("extra.zoneh_report_id", get("defacement_id")?)?;
    Ok(event)
}

impl ParserBot for ZoneHParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let csv = CsvDictReport::read(report, &[])?;
        for row in &csv.rows {
            match parse_row(&csv, row, out.new_event()) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(csv.recover_line(row), e),
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

    const HEADER: &str = "\"add_date\",\"attacker\",\"domain\",\"ip_address\",\"system\",\"web_server\",\"reason\",\"hackmode\",\"image\",\"type\",\"redefacement\",\"state\",\"def_grade\",\"defacement_id\",\"country_code\",\"country\"";

    #[test]
    fn rows_are_defacements_with_the_header_in_raw() {
        let raw = format!(
            "{HEADER}\n\"2017-06-13 08:12:48\",\"crew\",\"https://www.example.com/x.html\",\"192.0.2.1\",\"Linux\",\"Apache\",\"r\",\"SQL Injection\",\"./x\",\"regular\",\"no\",\"published\",\"homepage\",\"29715024\",\"au\",\"Australia\"\n\"2017-06-14 08:12:48\",\"crew\",\"http://example.org\",\"nope\",\"Linux\",\"Apache\",\"r\",\"m\",\"./x\",\"regular\",\"no\",\"published\",\"homepage\",\"29715025\",\"zz\",\"Unknown\""
        );
        let parsed = run(&mut ZoneHParserBot, &[], &raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        let first = &parsed.events[0];
        assert_eq!(field(first, "source.fqdn"), json!("www.example.com"));
        assert_eq!(field(first, "protocol.application"), json!("https"));
        assert_eq!(field(first, "source.geolocation.cc"), json!("AU"));
        assert_eq!(field(first, "time.source"), json!("2017-06-13T08:12:48+00:00"));
        assert!(raw_text(first).starts_with(&format!("{HEADER}\n\"2017-06-13")));
        assert!(raw_text(first).ends_with("\"Australia\"\n"));
        assert!(parsed.events[1].get("source.ip").is_none());
        assert!(raw_text(&parsed.events[1]).ends_with("\"Unknown\""));
    }
}
