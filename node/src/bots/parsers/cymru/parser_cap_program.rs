//! The Team Cymru CAP program parser (`intelmq.bots.parsers.cymru.parser_cap_program`): `|`-separated
//! lines in the old format (`# Data file written at ...` header; `report|ip|asn|timestamp|comments|
//! asn_name`) or the new one (`# ... generated on ...` header; `category|ip|asn|timestamp|notes|
//! asninfo`, notes as `key: value;` pairs). The header line decides the format; it stays in force
//! for later reports until another header says otherwise, as in IntelMQ. A line of an unknown
//! category fails with an error.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::py_splitlines;
use crate::bots::parsers::{recover_line, report_text};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::{AddOptions, Message};

/// `hostname: <host>port: <n>` with the separator missing (seen in real files).
static BOGUS_HOSTNAME_PORT: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"hostname: ([^:]+)port: ([0-9]+)").unwrap()
});

/// The ` (total_count:N)` suffix of `destination_port_numbers`.
static PORT_TOTAL: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r" \(total_count:\d+\)$").unwrap()
});

/// Fields set from each category of the new format.
fn static_mapping(category: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match category {
        "bot" => &[("classification.type", "infected-system")],
        "bruteforce" => &[("classification.type", "brute-force")],
        "controller" => &[("classification.type", "c2-server")],
        "darknet" => &[("classification.type", "scanner"), ("classification.identifier", "darknet")],
        "phishing" => &[("classification.type", "phishing"), ("classification.identifier", "phishing")],
        "proxy" => &[("classification.type", "proxy"), ("classification.identifier", "openproxy")],
        "honeypot" => &[("classification.type", "scanner")],
        "openresolvers" | "openresolver" => &[
            ("classification.type", "vulnerable-system"),
            ("classification.identifier", "dns-open-resolver"),
            ("protocol.application", "dns"),
        ],
        "scanner" => &[("classification.type", "scanner"), ("classification.identifier", "scanner")],
        "spam" => &[("classification.type", "spam"), ("classification.identifier", "spam")],
        "conficker" => &[
            ("classification.type", "infected-system"),
            ("classification.identifier", "conficker"),
            ("malware.name", "conficker"),
        ],
        _ => return None,
    })
}

/// Categories of the new format whose whole comment goes into fields.
fn comment_mapping(category: &str) -> Option<&'static [&'static str]> {
    match category {
        "bruteforce" => Some(&["classification.identifier", "protocol.application"]),
        "phishing" => Some(&["source.url"]),
        _ => None,
    }
}

/// IP protocol numbers of the `protocol` note.
fn protocol_name(number: &str) -> Option<&'static str> {
    Some(match number {
        "1" => "icmp",
        "6" => "tcp",
        "11" => "nvp-ii",
        "17" => "udp",
        "47" => "gre",
        "59" => "ipv6-nonxt",
        _ => return None,
    })
}

/// The CAP parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CymruCapProgramParserParams {}

/// Which line format the last header announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Old,
    New,
}

/// The CAP program parser.
pub struct CymruCapProgramParserBot {
    format: Option<Format>,
}

impl BuildBot for CymruCapProgramParserBot {
    type Params = CymruCapProgramParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CymruCapProgramParserBot { format: None })
    }
}

fn invalid(message: String) -> BotError {
    BotError::Invalid(message)
}

/// `event[key] = value`: add with overwrite.
fn set(event: &mut Message, key: &str, value: impl Into<Value>) -> Result<(), BotError> {
    event.add_with(key, value.into(), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
    Ok(())
}

/// Python `int(text)` of a decimal number.
fn py_int(text: &str) -> Result<i64, BotError> {
    py_strip(text).parse::<i64>().map_err(|_| invalid(format!("invalid integer {text:?}")))
}

/// The six `|`-separated fields of a line.
fn six_fields(line: &str) -> Result<[&str; 6], BotError> {
    let parts: Vec<&str> = line.split('|').collect();
    <[&str; 6]>::try_from(parts.as_slice())
        .map_err(|_| invalid(format!("expected 6 fields separated by `|`, got {}", parts.len())))
}

/// The old `bots` comment: `[srcport <PORT>] [mwtype <TYPE>] [destaddr <IP>] [comment]`.
fn parse_bot_comment(parts: &[&str], event: &mut Message) -> Result<(), BotError> {
    const KEYS: [&str; 4] = ["srcport", "mwtype", "destaddr", "dstaddr"];
    let mut results: Vec<(&str, String)> = Vec::new();
    let mut key: Option<&str> = None;
    let mut value: Vec<&str> = Vec::new();
    let mut event_comment: Vec<&str> = Vec::new();
    for part in parts.iter().copied().map(Some).chain(std::iter::once(None)) {
        match part {
            None => {}
            Some(p) if KEYS.contains(&p) => {}
            Some(p) => {
                if key == Some("destaddr") && value.len() == 1 {
                    // A free comment after the address (`... destaddr 192.0.2.1 Some Botnet`).
                    event_comment.push(p);
                } else {
                    value.push(p);
                }
                continue;
            }
        }
        if let Some(k) = key {
            if !value.is_empty() {
                let joined = value.join(" ");
                match results.iter_mut().find(|(existing, _)| *existing == k) {
                    Some(slot) => slot.1 = joined,
                    None => results.push((k, joined)),
                }
            }
        }
        key = part;
        value.clear();
    }
    for (kind, value) in results {
        match kind {
            "srcport" => set(event, "extra.source_port", py_int(&value)?)?,
            "mwtype" => {
                let name = value.to_lowercase();
                set(event, "classification.identifier", name.as_str())?;
                set(event, "malware.name", name)?;
            }
            _ => set(event, "destination.ip", value)?,
        }
    }
    if !event_comment.is_empty() {
        event.add("event_description.text", event_comment.join(" "))?;
    }
    Ok(())
}

/// One line of the old format.
fn parse_line_old(line: &str, raw: &str, mut event: Message) -> Result<Vec<Message>, BotError> {
    let [report_type, ip, asn, timestamp, comments, asn_name] = six_fields(line)?;
    let comment_split: Vec<&str> = comments.split(' ').collect();
    event.add("source.ip", ip)?;
    if asn != "0" {
        event.add("source.asn", asn)?;
    }
    event.add("time.source", format!("{timestamp} GMT"))?;
    event.add("source.as_name", asn_name)?;
    event.add("raw", raw)?;
    let not_implemented = |what: &str| Err(invalid(format!("cannot parse report {report_type:?}: {what}")));
    match report_type {
        "beagle" => {
            event.add("classification.type", "malware")?;
            event.add("classification.identifier", "beagle")?;
            event.add("malware.name", "beagle")?;
            if !comments.is_empty() {
                return not_implemented("the format of its comment is unknown");
            }
        }
        "blaster" | "dameware" | "dipnet" | "mydoom" | "nachi" | "phatbot" | "sinit" | "slammer" => {
            event.add("classification.type", "malware")?;
            event.add("classification.identifier", report_type)?;
            event.add("malware.name", report_type)?;
        }
        "bots" => {
            event.add("classification.type", "infected-system")?;
            parse_bot_comment(&comment_split, &mut event)?;
        }
        "bruteforce" => {
            event.add("classification.type", "brute-force")?;
            event.add("classification.identifier", comments)?;
            event.add("protocol.application", comments)?;
        }
        "ddosreport" => return not_implemented("the format is unknown"),
        "defacement" => {
            set(&mut event, "classification.type", "compromised")?;
            set(&mut event, "classification.identifier", report_type)?;
            set(&mut event, "source.url", comment_split[0])?;
            let zone_h =
                comment_split.get(1).ok_or_else(|| invalid("defacement comment has no zone-h id".to_string()))?;
            set(&mut event, "extra.zoneh.id", *zone_h)?;
        }
        "fastflux" => {
            set(&mut event, "classification.type", "compromised")?;
            set(&mut event, "classification.identifier", report_type)?;
            if !comments.is_empty() {
                set(&mut event, "source.reverse_dns", comments)?;
            }
        }
        "malwareurl" => {
            set(&mut event, "source.url", comment_split[0])?;
            event.add("classification.type", "malware")?;
            event.add("classification.identifier", "malwareurl")?;
        }
        "openresolvers" => {
            set(&mut event, "classification.type", "vulnerable-system")?;
            set(&mut event, "classification.identifier", "dns-open-resolver")?;
            set(&mut event, "protocol.application", "dns")?;
        }
        "phishing" => {
            set(&mut event, "classification.type", "phishing")?;
            set(&mut event, "classification.identifier", "phishing")?;
            set(&mut event, "source.url", comments)?;
        }
        "proxy" => {
            // The comment is not a port but e.g. `HTTP CONNECT (8080)`.
            set(&mut event, "classification.type", "proxy")?;
            set(&mut event, "classification.identifier", "openproxy")?;
            set(&mut event, "extra.request", comments)?;
        }
        "routers" => {
            set(&mut event, "classification.type", "compromised")?;
            if !comments.is_empty() {
                set(&mut event, "classification.identifier", comments)?;
            }
        }
        "scanners" => {
            set(&mut event, "classification.type", "scanner")?;
            set(&mut event, "classification.identifier", "scanner")?;
            let Ok(port) = py_int(comments) else {
                return not_implemented("the format for multiple ports is unknown");
            };
            set(&mut event, "source.port", port)?;
        }
        "spam" => {
            set(&mut event, "classification.type", "spam")?;
            set(&mut event, "classification.identifier", "spam")?;
            if !comments.is_empty() {
                return not_implemented("the format of its comment is unknown");
            }
        }
        "spreaders" => {
            // `<URL> [<MD5>]`. (IntelMQ's check of the MD5 part is broken and fails every line;
            // this is what it means to do.)
            event.add("source.url", comment_split[0])?;
            if let [_, md5] = comment_split.as_slice() {
                event.add("malware.hash.md5", *md5)?;
            }
            event.add("classification.type", "malware")?;
            event.add("classification.identifier", "spreader")?;
        }
        "stormworm" => {
            // `confidence:<N> [legacy|crypto] [srcport <PORT>]`
            if !event.contains("feed.accuracy") {
                set(&mut event, "feed.accuracy", 100)?;
            }
            for (i, part) in comment_split.iter().enumerate() {
                if part.starts_with("confidence:") {
                    let confidence = py_int(part.trim_start_matches(|c| "confidence:".contains(c)))?;
                    let accuracy = event.get("feed.accuracy").and_then(Value::as_f64).unwrap_or(100.0);
                    set(&mut event, "feed.accuracy", accuracy * (confidence as f64 / 5.0))?;
                } else if *part == "legacy" || *part == "crypto" {
                    set(&mut event, "malware.version", *part)?;
                } else if *part == "srcport" {
                    let port = comment_split.get(i + 1).ok_or_else(|| invalid("srcport without a port".to_string()))?;
                    set(&mut event, "extra.source_port", py_int(port)?)?;
                    break;
                }
            }
        }
        "toxbot" => {
            event.add("classification.type", "infected-system")?;
            event.add("classification.identifier", report_type)?;
            event.add("malware.name", report_type)?;
            let port = comment_split.get(1).ok_or_else(|| invalid("toxbot comment has no port".to_string()))?;
            set(&mut event, "extra.source_port", py_int(port)?)?;
        }
        other => return Err(invalid(format!("unknown report {other:?}"))),
    }
    Ok(vec![event])
}

/// One line of the new format; one event per destination port.
fn parse_line_new(line: &str, raw: &str, mut event: Message) -> Result<Vec<Message>, BotError> {
    let [category, ip, asn, timestamp, notes, asninfo] = six_fields(line)?;
    let notes = match BOGUS_HOSTNAME_PORT.captures(notes) {
        Some(c) => {
            let (Some(all), Some(host), Some(port)) = (c.get(0), c.get(1), c.get(2)) else {
                return Err(invalid("regex without its groups".to_string()));
            };
            format!(
                "{}hostname: {}; port: {}{}",
                &notes[..all.start()],
                host.as_str(),
                port.as_str(),
                &notes[all.end()..]
            )
        }
        None => notes.to_string(),
    };
    let comment_split: Vec<&str> = notes.split(';').filter(|c| !c.is_empty()).collect();
    let asninfo_split: Vec<&str> = asninfo.split(", ").collect();

    event.add("raw", raw)?;
    event.add("source.ip", ip)?;
    if asn != "0" {
        event.add("source.asn", asn)?;
    }
    event.add("time.source", format!("{timestamp} GMT"))?;
    let (cc, as_name) = asninfo_split.split_last().map_or(("", &[][..]), |(cc, rest)| (*cc, rest));
    event.add("source.as_name", as_name.join(", "))?;
    event.add("source.geolocation.cc", cc)?;
    let by_comment = comment_mapping(category);
    if let (Some(fields), Some(first)) = (by_comment, comment_split.first()) {
        for field in fields {
            event.add(field, *first)?;
        }
    }
    let statics = static_mapping(category).ok_or_else(|| invalid(format!("unknown category {category:?}")))?;
    for (key, value) in statics {
        event.add(key, *value)?;
    }

    let mut destination_ports: Vec<String> = Vec::new();
    for comment in &comment_split {
        if by_comment.is_some() {
            break;
        }
        let mut comment = comment.to_string();
        if !comment.contains(": ") {
            if category == "proxy" {
                comment = format!("proxy_type: {comment}");
            } else {
                if category == "bot" {
                    let parts: Vec<&str> = notes.split(' ').collect();
                    if parse_bot_comment(&parts, &mut event).is_ok() {
                        break;
                    }
                }
                return Err(invalid(format!("unable to parse comment {comment:?} of category {category:?}")));
            }
        }
        let pair: Vec<&str> = comment.split(": ").collect();
        let [key, value] = <[&str; 2]>::try_from(pair.as_slice())
            .map_err(|_| invalid(format!("unable to parse comment {comment:?} of category {category:?}")))?;
        let (key, value) = (py_strip(key), py_strip(value));
        match key {
            "family" => {
                let name = value.to_lowercase();
                set(&mut event, "classification.identifier", name.as_str())?;
                set(&mut event, "malware.name", name)?;
            }
            "dest_addr" | "destaddr" => set(&mut event, "destination.ip", value)?,
            "dest_port" | "ports_scanned" | "honeypot_port" | "darknet_port" | "destination_port_numbers" => {
                let value = PORT_TOTAL.replace(value, "");
                destination_ports.extend(value.split(',').map(|p| py_strip(p).to_string()));
            }
            "protocol" => match protocol_name(value) {
                Some(name) => {
                    event.add("protocol.transport", name)?;
                }
                None => {
                    let number = py_int(value)?;
                    if number >= 143 {
                        // Unassigned, experimental, testing, reserved.
                        event.add("extra.protocol.transport", number)?;
                    } else {
                        return Err(invalid(format!("unknown protocol {value:?}")));
                    }
                }
            },
            "hostname" => set(&mut event, "source.fqdn", value)?,
            "proxy_type" => {
                if value.contains('-') {
                    let parts: Vec<&str> = value.split('-').collect();
                    let [protocol, port] = <[&str; 2]>::try_from(parts.as_slice())
                        .map_err(|_| invalid(format!("unable to parse proxy type {value:?}")))?;
                    set(&mut event, "protocol.application", protocol)?;
                    set(&mut event, "source.port", port)?;
                } else {
                    set(&mut event, "protocol.application", value)?;
                }
            }
            "port" | "srcport" => set(&mut event, "source.port", value)?,
            "username" => set(&mut event, "source.account", value)?,
            "additional_asns" => {
                let first = event
                    .get("source.asn")
                    .cloned()
                    .ok_or_else(|| invalid("additional_asns without source.asn".to_string()))?;
                let mut asns = vec![first];
                for asn in value.split(',') {
                    asns.push(Value::from(py_int(asn)?));
                }
                set(&mut event, "extra.source.asns", Value::Array(asns))?;
            }
            other => return Err(invalid(format!("unknown key {other:?} in comment of category {category:?}"))),
        }
    }
    if destination_ports.is_empty() {
        return Ok(vec![event]);
    }
    destination_ports
        .into_iter()
        .map(|port| {
            let mut copy = event.clone();
            set(&mut copy, "destination.port", port)?;
            Ok(copy)
        })
        .collect()
}

impl ParserBot for CymruCapProgramParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let mut tempdata: Vec<String> = Vec::new();
        for line in py_splitlines(&text) {
            let line = py_strip(line);
            if line.starts_with('#') {
                tempdata.push(line.to_string());
                if line.contains("generated on") {
                    self.format = Some(Format::New);
                } else if line.contains("Data file written at") {
                    self.format = Some(Format::Old);
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let raw = recover_line(&tempdata, line);
            let result = match self.format {
                Some(Format::Old) => parse_line_old(line, &raw, out.new_event()),
                Some(Format::New) => parse_line_new(line, &raw, out.new_event()),
                None => Err(invalid(
                    "unknown file format: no `Data file written at` or `generated on` header line".to_string(),
                )),
            };
            match result {
                Ok(events) => events.into_iter().for_each(|e| out.event(e)),
                Err(e) => out.fail(raw, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::parsers::{run_parser, ParsedReport, ParserCommon};
    use crate::bots::{MemoryLog, MemoryState};
    use crate::message::{Harmonization, MessageKind};

    fn parse(bot: &mut CymruCapProgramParserBot, raw: &str) -> ParsedReport {
        let harmonization = Harmonization::builtin();
        let mut report = Message::new(MessageKind::Report, harmonization.clone());
        report.add("raw", raw).unwrap();
        let mut state = MemoryState::default();
        let mut log = MemoryLog::default();
        let root = std::path::PathBuf::from("/");
        let mut ctx = Context {
            bot_id: "cap",
            harmonization: &harmonization,
            root: &root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        run_parser(bot, &report, &ParserCommon::default(), &mut ctx).unwrap()
    }

    const OLD_HEADER: &str = "# Data file written at Fri Oct 31 13:37:42 2017 GMT\n";
    const NEW_HEADER: &str = "# Report generated on 2019-01-01 GMT\n";

    #[test]
    fn old_bots_lines_carry_port_family_address_and_comment() {
        let mut bot = CymruCapProgramParserBot { format: None };
        let raw = format!(
            "{OLD_HEADER}bots|172.16.0.21|0|2017-10-31 10:00:05|srcport 1337 mwtype Some Bot destaddr 172.16.0.22 Avalanche Botnet|AS\n"
        );
        let parsed = parse(&mut bot, &raw);
        assert_eq!(parsed.events.len(), 1);
        let e = &parsed.events[0];
        assert_eq!(e.get("extra.source_port"), Some(&json!(1337)));
        assert_eq!(e.get_str("malware.name"), Some("some bot"));
        assert_eq!(e.get_str("destination.ip"), Some("172.16.0.22"));
        assert_eq!(e.get_str("event_description.text"), Some("Avalanche Botnet"));
        assert!(e.get("source.asn").is_none());
        assert_eq!(e.get_str("time.source"), Some("2017-10-31T10:00:05+00:00"));
    }

    #[test]
    fn old_unknown_reports_fail_their_line() {
        let mut bot = CymruCapProgramParserBot { format: None };
        let parsed = parse(&mut bot, &format!("{OLD_HEADER}nonsense|192.0.2.1|1|2017-10-31 10:00:05||AS\n"));
        assert_eq!(parsed.failed.len(), 1);
        let parsed = parse(&mut bot, &format!("{OLD_HEADER}too|few|fields\n"));
        assert_eq!(parsed.failed.len(), 1);
    }

    #[test]
    fn new_format_splits_destination_ports_into_events() {
        let mut bot = CymruCapProgramParserBot { format: None };
        let raw = format!(
            "{NEW_HEADER}darknet|192.0.2.1|64496|2019-01-01 10:00:00|protocol: 6; dest_port: 23,2323 (total_count:2)|EXAMPLE, AT\n"
        );
        let parsed = parse(&mut bot, &raw);
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].get("destination.port"), Some(&json!(23)));
        assert_eq!(parsed.events[1].get("destination.port"), Some(&json!(2323)));
        let e = &parsed.events[0];
        assert_eq!(e.get_str("protocol.transport"), Some("tcp"));
        assert_eq!(e.get_str("source.geolocation.cc"), Some("AT"));
        assert_eq!(e.get_str("source.as_name"), Some("EXAMPLE"));
        assert_eq!(e.get_str("classification.identifier"), Some("darknet"));
    }

    #[test]
    fn new_format_repairs_hostname_port_notes_and_reads_proxies() {
        let mut bot = CymruCapProgramParserBot { format: None };
        let raw = format!(
            "{NEW_HEADER}proxy|192.0.2.1|64496|2019-01-01 10:00:00|http-8080;hostname: proxy.example.comport: 80|EX, AT\n"
        );
        let parsed = parse(&mut bot, &raw);
        assert_eq!(parsed.failed.len(), 0, "{:?}", parsed.failed);
        let e = &parsed.events[0];
        assert_eq!(e.get_str("protocol.application"), Some("http"));
        assert_eq!(e.get("source.port"), Some(&json!(80)));
        assert_eq!(e.get_str("source.fqdn"), Some("proxy.example.com"));
    }

    #[test]
    fn the_format_persists_across_reports_and_is_required() {
        let mut bot = CymruCapProgramParserBot { format: None };
        let line = "spam|192.0.2.1|64496|2017-10-31 10:00:04||AS\n";
        assert_eq!(parse(&mut bot, line).failed.len(), 1);
        parse(&mut bot, OLD_HEADER);
        assert_eq!(parse(&mut bot, line).events.len(), 1);
    }
}
