//! The Dataplane parser (`intelmq.bots.parsers.dataplane.parser`): `|`-separated lines
//! `ASN | AS name | IP | [first seen |] last seen | category`; the category (the last column)
//! decides the classification, the protocol and the description.

use serde::{Deserialize, Serialize};

use crate::bots::parsers::text_lines::parse_lines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// Per category: `classification.type`, `protocol.application`, `event_description.text`.
const CATEGORY: &[(&str, &str, &str, &str)] = &[
    (
        "dnsrd",
        "scanner",
        "dns",
        "Address has been seen performing a DNS recursion desired query to a remote host. The source report lists \
         hosts that are suspicious of more than just port scanning. The host may be DNS server cataloging or \
         searching for hosts to use for DNS-based DDoS amplification.",
    ),
    (
        "dnsrdany",
        "scanner",
        "dns",
        "Address has been seen performing a DNS recursion desired IN ANY query to a remote host. The source report \
         lists hosts that are suspicious of more than just port scanning. The host may be DNS server cataloging or \
         searching for hosts to use for DNS-based DDoS amplification.",
    ),
    (
        "dnsversion",
        "scanner",
        "dns",
        "Address has been seen initiating a DNS CH TXT version.bind operation to a remote host. The source report \
         lists hosts that are suspicious of more than just port scanning. The host may be DNS server cataloging or \
         searching for vulnerable DNS servers.",
    ),
    (
        "proto41",
        "proxy",
        "6to4",
        "Address has been detected to offer open IPv6 over IPv4 tunneling. This could allow for the host to be used \
         a public proxy against IPv6 hosts.",
    ),
    (
        "sipquery",
        "brute-force",
        "sip",
        "Address has been seen initiating a SIP OPTIONS query to a remote host. The source report lists hosts that \
         are suspicious of more than just port scanning. The host may be SIP server cataloging or conducting various \
         forms of telephony abuse.",
    ),
    (
        "sipinvitation",
        "brute-force",
        "sip",
        "Address has been seen initiating a SIP INVITE operation to a remote host. The source report lists hosts \
         that are suspicious of more than just port scanning. The host may be SIP client cataloging or conducting \
         various forms of telephony abuse.",
    ),
    (
        "sipregistration",
        "brute-force",
        "sip",
        "Address has been seen initiating a SIP REGISTER operation to a remote host. The source report lists hosts \
         that are suspicious of more than just port scanning. The host may be SIP client cataloging or conducting \
         various forms of telephony abuse.",
    ),
    (
        "smtpdata",
        "scanner",
        "smtp",
        "Address has been seen initiating a SMTP DATA operation to a remote host. The source report lists hosts that \
         are suspicious of more than just port scanning. The host may be SMTP server cataloging or conducting various \
         forms of email abuse.",
    ),
    (
        "smtpgreet",
        "scanner",
        "smtp",
        "Address has been seen initiating a SMTP HELO/EHLO operation to a remote host. The source report lists hosts \
         that are suspicious of more than just port scanning. The host may be SMTP server cataloging or conducting \
         various forms of email abuse.",
    ),
    (
        "sshclient",
        "scanner",
        "ssh",
        "Address has been seen initiating an SSH connection to a remote host. The source report lists hosts that are \
         suspicious of more than just port scanning. The host may be SSH server cataloging or conducting \
         authentication attack attempts.",
    ),
    (
        "sshpwauth",
        "brute-force",
        "ssh",
        "Address has been seen attempting to remotely login to a host using SSH password authentication. The source \
         report lists hosts that are highly suspicious and are likely conducting malicious SSH password \
         authentication attacks.",
    ),
    (
        "telnetlogin",
        "brute-force",
        "telnet",
        "Address has been seen initiating a telnet connection to a remote host. The source report lists hosts that \
         are suspicious of more than just port scanning. The host may be telnet server cataloging or conducting \
         authentication attack attempts.",
    ),
    (
        "vncrfb",
        "scanner",
        "vnc",
        "Address has been seen initiating a VNC remote buffer session to a remote host. The source report lists \
         hosts that are suspicious of more than just port scanning. The host may be VNC/RFB server cataloging or \
         conducting authentication attack attempts.",
    ),
];

/// The Dataplane parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneParserParams {}

/// The Dataplane parser.
#[derive(Debug, Default)]
pub struct DataplaneParserBot;

impl BuildBot for DataplaneParserBot {
    type Params = DataplaneParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(DataplaneParserBot)
    }
}

/// `2021-09-03 10:03:03` -> `2021-09-03T10:03:03+00:00`.
fn convert_datetime(s: &str) -> String {
    format!("{}+00:00", s.replacen(' ', "T", 1))
}

fn parse_line(line: &str, mut event: Message) -> Result<Message, BotError> {
    let mut columns: Vec<&str> = line.split('|').collect();
    let category = columns.last().map(|c| c.trim()).unwrap_or("");
    // Columns after the AS name: IP, [first seen,] last seen, category.
    let tail = if category == "proto41" { 4 } else { 3 };
    let expected = tail + 2;
    let incorrect =
        || BotError::Invalid(format!("Incorrect format for feed {}, found line: \"{line}\"", event_url(&event)));
    if columns.len() < expected {
        return Err(incorrect());
    }
    // An AS name may itself contain `|`: everything between the ASN and the fixed tail is the name.
    let name_end = columns.len() - tail;
    let name = columns[1..name_end].join("|");
    let mut merged = vec![columns[0], name.as_str()];
    merged.extend(columns.drain(name_end..));
    let Some(&(_, type_, application, text)) = CATEGORY.iter().find(|(c, ..)| *c == category) else {
        return Err(BotError::Invalid(format!("unknown data feed `{category}`")));
    };
    event.add("classification.type", type_)?;
    event.add("protocol.application", application)?;
    event.add("event_description.text", text)?;

    let asn = merged[0].trim();
    if asn != "NA" {
        event.add("source.asn", asn)?;
    }
    let as_name = merged[1].trim();
    if as_name != "NA" {
        if let Some(first) = as_name.split_whitespace().next() {
            event.add("source.as_name", first)?;
        } else {
            return Err(BotError::Invalid(format!("empty AS name in line `{line}`")));
        }
    }
    event.add("source.ip", merged[2].trim())?;
    if category == "proto41" {
        event.add("extra.first_seen", convert_datetime(merged[3].trim()))?;
        event.add("time.source", convert_datetime(merged[4].trim()))?;
    } else {
        event.add("time.source", convert_datetime(merged[3].trim()))?;
    }
    event.add("raw", line)?;
    Ok(event)
}

fn event_url(event: &Message) -> String {
    event.get_str("feed.url").unwrap_or("None").to_string()
}

impl ParserBot for DataplaneParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        parse_lines(report, out, |line, state, out| {
            if line.starts_with('#') {
                state.tempdata.push(line.to_string());
                return Ok(Vec::new());
            }
            Ok(vec![parse_line(line, out.new_event())?])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, run};
    use serde_json::json;

    #[test]
    fn the_category_sets_type_and_the_first_word_is_the_as_name() {
        let raw = "# comment\n8560  |  ONEANDONE-AS Brauerstrasse 48,  |   192.0.2.8  |  2016-12-04 23:14:01  |  sipregistration\n";
        let parsed =
            run(&mut DataplaneParserBot, &[("feed.url", "https://dataplane.org/sipregistration.txt")], raw).unwrap();
        let event = &parsed.events[0];
        assert_eq!(field(event, "classification.type"), json!("brute-force"));
        assert_eq!(field(event, "source.as_name"), json!("ONEANDONE-AS"));
        assert_eq!(field(event, "source.asn"), json!(8560));
        assert_eq!(field(event, "time.source"), json!("2016-12-04T23:14:01+00:00"));
    }

    #[test]
    fn pipes_in_the_as_name_and_short_lines() {
        let raw = "1 | TEST-AS company | With | pipe | 192.0.2.4 | 2024-04-02 12:00:00 | sshpwauth\n14080 | Telmex |\nNA | NA | 192.0.2.5 | 2016-12-01 04:26:48 | sshpwauth\n";
        let parsed = run(&mut DataplaneParserBot, &[("feed.url", "https://dataplane.org/sshpwauth.txt")], raw).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(field(&parsed.events[0], "source.as_name"), json!("TEST-AS"));
        assert_eq!(field(&parsed.events[0], "source.ip"), json!("192.0.2.4"));
        assert!(parsed.events[1].get("source.asn").is_none());
        assert_eq!(parsed.failed.len(), 1);
        assert!(parsed.failed[0].1.contains("Incorrect format for feed https://dataplane.org/sshpwauth.txt"));
    }

    #[test]
    fn proto41_has_a_first_seen_column() {
        let raw = "1 | LVLT-1 | 192.0.2.1 | 2021-08-28 05:00:18 | 2021-08-29 05:00:18 | proto41\n";
        let parsed = run(&mut DataplaneParserBot, &[], raw).unwrap();
        assert_eq!(field(&parsed.events[0], "extra.first_seen"), json!("2021-08-28T05:00:18+00:00"));
        assert_eq!(field(&parsed.events[0], "time.source"), json!("2021-08-29T05:00:18+00:00"));
    }
}
