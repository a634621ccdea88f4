//! The Spamhaus CERT parser (`intelmq.bots.parsers.spamhaus.parser_cert`): comma-separated lines
//! `ip, asn, country, lastseen, botname, domain, remote_ip, remote_port, local_port, protocol`
//! (`;` lines are comments); the bot name decides the classification. The `key=` part is cut
//! from `feed.url`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::recover_line;
use crate::bots::parsers::text_lines::parse_lines;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{AddOptions, Message, TimeFormat};

/// `add(.., raise_failure=False)`.
const LENIENT: AddOptions = AddOptions { sanitize: true, overwrite: None, raise_failure: false };

/// The documentation of the CBL botnet spam listings.
const ABUSEAT_LOOKUP: &str = "https://www.abuseat.org/lookup.cgi";

/// The Spamhaus CERT parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpamhausCERTParserParams {}

/// The Spamhaus CERT parser.
#[derive(Debug, Default)]
pub struct SpamhausCERTParserBot;

impl BuildBot for SpamhausCERTParserBot {
    type Params = SpamhausCERTParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(SpamhausCERTParserBot)
    }
}

fn parse_line(line: &str, tempdata: &[String], mut event: Message) -> Result<Message, BotError> {
    let row: Vec<&str> = py_strip(line).split(',').map(py_strip).collect();
    let col = |i: usize| {
        row.get(i).copied().ok_or_else(|| BotError::Invalid(format!("line `{line}` has no column {}", i + 1)))
    };

    if let Some(url) = event.get_str("feed.url").map(str::to_string) {
        let cut = url.split("key=").next().unwrap_or("").to_string();
        event.change("feed.url", cut)?;
    } else {
        return Err(BotError::Invalid("report has no `feed.url` field".to_string()));
    }

    event.add("source.ip", col(0)?)?;
    let asn = col(1)?.replace("AS", "");
    if asn != "?" {
        event.add("source.asn", asn)?;
    }
    event.add("source.geolocation.cc", col(2)?)?;
    let lastseen = col(3)?;
    let seconds: i64 =
        lastseen.parse().map_err(|_| BotError::Invalid(format!("lastseen `{lastseen}` is not an integer")))?;
    let time = TimeFormat::Timestamp
        .convert(&seconds.to_string())
        .ok_or_else(|| BotError::Invalid(format!("lastseen `{lastseen}` is out of range")))?;
    event.add("time.source", time)?;

    let mut malware = col(4)?.to_lowercase();
    match malware.as_str() {
        "openrelay" => {
            event.add("classification.type", "vulnerable-system")?;
            event.add("classification.identifier", "openrelay")?;
            event.add("protocol.application", "smtp")?;
        }
        "sshauth" | "telnetauth" | "smtpauth" => {
            let protocol = malware.trim_end_matches("auth").to_string();
            event.add("classification.type", "brute-force")?;
            event.add("classification.identifier", protocol.as_str())?;
            event.add("protocol.application", protocol)?;
        }
        "iotscan" | "iotuser" => {
            event.add("classification.type", "scanner")?;
            event.add(
                "event_description.text",
                "The possibly infected IoT device scanned for other vulnerable IoT devices.",
            )?;
            if matches!(col(7)?, "23" | "2323") {
                event.add("protocol.application", "telnet")?;
                event.add("classification.identifier", "telnet")?;
            } else {
                event.add("classification.identifier", "scanner-generic")?;
            }
        }
        "wpscanner" => {
            event.add("classification.type", "scanner")?;
            event.add("classification.identifier", "wordpress-vulnerabilities")?;
            event.add("event_description.text", "scanning for wordpress vulnerabilities")?;
            event.add("protocol.application", "http")?;
        }
        "w_wplogin" => {
            event.add("classification.type", "scanner")?;
            event.add("classification.identifier", "wordpress-login")?;
            event.add("event_description.text", "scanning for wordpress login pages")?;
            event.add("protocol.application", "http")?;
        }
        "l_spamlink" => {
            event.add("classification.type", "spam")?;
            event.add("classification.identifier", "spamlink")?;
            event.add("event_description.text", "The URL appeared in a spam email sent by extra.spam_ip.")?;
            let parts: Vec<&str> = col(8)?.split(':').collect();
            let [ip, malware_version, malware_name] = parts[..] else {
                return Err(BotError::Invalid(format!("local port column `{}` is not ip:version:name", col(8)?)));
            };
            event.add("malware.name", malware_name)?;
            event.add("malware.version", malware_version)?;
            event.add("source.url", col(6)?)?;
            event.add("extra.spam_ip", ip)?;
        }
        "pop" | "imap" => {
            event.add("classification.type", "brute-force")?;
            event.add("classification.identifier", malware.as_str())?;
            event.add("protocol.application", malware.as_str())?;
        }
        "smb" | "rdp" | "iotrdp" | "iotmicrosoftds" => {
            if let Some(rest) = malware.strip_prefix("iot") {
                malware = rest.to_string();
            }
            event.add("classification.type", "scanner")?;
            event.add("classification.identifier", malware.as_str())?;
            event.add("protocol.application", malware.as_str())?;
        }
        "proxyget" => {
            event.add("classification.type", "other")?;
            event.add("classification.identifier", malware.as_str())?;
            event.add("event_description.text", "The malicious client used a honeypot as proxy.")?;
        }
        "iotlogin" => {
            event.add("classification.type", "system-compromise")?;
            event.add("classification.identifier", "iot")?;
            event.add("event_description.text", "The infected iot device logged in to a honeypot.")?;
        }
        "iotcmd" => {
            event.add("classification.type", "system-compromise")?;
            event.add("classification.identifier", "iot")?;
            event.add(
                "event_description.text",
                "The infected iot device logged in to a honeypot and issued malicious commands.",
            )?;
        }
        "iotmirai" => {
            event.add("classification.type", "infected-system")?;
            event.add("classification.identifier", "mirai")?;
            event.add("malware.name", "mirai")?;
        }
        "ioturl" => {
            event.add("classification.type", "c2-server")?;
            event.add("classification.identifier", "malware-generic")?;
        }
        "automatedtest" => {
            event.add("classification.type", "brute-force")?;
            event.add("classification.identifier", "lookup-captcha")?;
            event.add("event_description.text", "The device automatically brute-forced the Spamhaus CBL lookup.")?;
        }
        "authspoofbadehlo" => {
            event.add("classification.type", "brute-force")?;
            event.add("classification.identifier", "authentication-spoof")?;
            event.add("protocol.application", "smtp")?;
            event.add("event_description.text", "The device spoofed SMTP authentication with a bad EHLO.")?;
        }
        "extortion" => {
            event.add("classification.type", "spam")?;
            event.add("classification.identifier", "extortion")?;
            event.add("protocol.application", "smtp")?;
            event.add("event_description.text", "This device sent extortion mails.")?;
        }
        "misc" => {
            event.add("classification.type", "spam")?;
            event.add("classification.identifier", "spam")?;
            event.add("protocol.application", "smtp")?;
            event.add(
                "event_description.text",
                "This device is sending spam as part of a botnet. See abuseat.org for more details.",
            )?;
            event.add("event_description.url", ABUSEAT_LOOKUP)?;
            event.add_with(
                "feed.documentation",
                Value::String(ABUSEAT_LOOKUP.to_string()),
                AddOptions { overwrite: Some(true), ..AddOptions::default() },
            )?;
        }
        _ => {
            if malware == "auto" {
                malware = "s_other".to_string();
            }
            event.add("malware.name", malware.as_str())?;
            event.add("classification.type", "infected-system")?;
            event.add_with("source.url", Value::String(col(5)?.to_string()), LENIENT)?;
        }
    }

    // The domain column holds the same IP (or an IP and port) in some rows; iotscan rows have
    // wrong data there according to the provider.
    if !(malware == "iotscan" || col(5)?.contains(':')) {
        event.add_with("destination.fqdn", Value::String(col(5)?.to_string()), LENIENT)?;
    }
    event.add_with("destination.ip", Value::String(col(6)?.to_string()), LENIENT)?;
    event.add_with("destination.port", Value::String(col(7)?.to_string()), LENIENT)?;
    let local_port = col(8)?;
    if !local_port.is_empty() && local_port != "-" && local_port != "?" && malware != "l_spamlink" {
        let port: i64 = local_port
            .parse()
            .map_err(|_| BotError::Invalid(format!("local port `{local_port}` is not an integer")))?;
        event.add("extra.source.local_port", port)?;
    }
    event.add_with("protocol.transport", Value::String(col(9)?.to_string()), LENIENT)?;
    event.add("raw", recover_line(tempdata, line))?;
    Ok(event)
}

impl ParserBot for SpamhausCERTParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        parse_lines(report, out, |line, state, out| {
            if line.starts_with(';') {
                state.tempdata.push(line.to_string());
                return Ok(Vec::new());
            }
            Ok(vec![parse_line(line, &state.tempdata, out.new_event())?])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::parsers::text_lines::testing::{field, raw_text, run};
    use serde_json::json;

    const URL: &str = "https://portal.spamhaus.org/cert/api.php?cert=<CERTNAME>&key=<APIKEY>";
    const HEADER: &str =
        "; ip, asn, country, lastseen, botname, domain, remote_ip, remote_port, local_port, protocol\n";

    fn parse(rows: &str) -> crate::bots::parsers::ParsedReport {
        run(&mut SpamhausCERTParserBot, &[("feed.url", URL)], &format!("{HEADER}{rows}")).unwrap()
    }

    #[test]
    fn unknown_bot_names_are_infected_systems_and_the_key_is_cut() {
        let parsed = parse("192.0.2.19,AS6830,AT,1441008351,patcher,dxxt.sinkhole.dk,198.51.100.19,80,1036,tcp\n");
        let event = &parsed.events[0];
        assert_eq!(field(event, "feed.url"), json!("https://portal.spamhaus.org/cert/api.php?cert=<CERTNAME>&"));
        assert_eq!(field(event, "classification.type"), json!("infected-system"));
        assert_eq!(field(event, "malware.name"), json!("patcher"));
        assert_eq!(field(event, "destination.fqdn"), json!("dxxt.sinkhole.dk"));
        assert_eq!(field(event, "extra.source.local_port"), json!(1036));
        assert_eq!(field(event, "time.source"), json!("2015-08-31T08:05:51+00:00"));
        assert!(event.get("source.url").is_none());
        assert!(raw_text(event).starts_with("; ip, asn"));
    }

    #[test]
    fn known_bot_names_set_type_and_identifier() {
        let parsed = parse(
            "192.0.2.1,AS64496,AT,1521552552,sshauth,,198.51.100.15,22,,tcp\n\
             192.0.2.2,AS64496,AT,1520084496,iotrdp,192.168.0.6,,3389,,tcp\n\
             192.0.2.3,AS64496,AT,1506696497,iotscan,-,198.18.159.123,2323,57090,tcp\n\
             192.0.2.4,AS64496,AT,1523192708,l_spamlink,http://example.com/,http://example.com/,,192.0.2.4:1660:darkmailer2,tcp\n",
        );
        let types: Vec<_> = parsed.events.iter().map(|e| field(e, "classification.identifier")).collect();
        assert_eq!(types, vec![json!("ssh"), json!("rdp"), json!("telnet"), json!("spamlink")]);
        assert_eq!(field(&parsed.events[3], "malware.version"), json!("1660"));
        assert_eq!(field(&parsed.events[3], "extra.spam_ip"), json!("192.0.2.4"));
        assert!(parsed.events[3].get("extra.source.local_port").is_none());
    }

    #[test]
    fn a_bad_row_fails_alone() {
        let parsed =
            parse("192.0.2.1,AS64496,AT,notatime,sshauth,,,22,,tcp\n192.0.2.1,AS64496,AT,1521552552,misc,,,25,,tcp\n");
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(field(&parsed.events[0], "feed.documentation"), json!("https://www.abuseat.org/lookup.cgi"));
        assert_eq!(parsed.failed.len(), 1);
    }
}
