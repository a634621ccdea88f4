//! The CERT-EU CSV parser (`intelmq.bots.parsers.cert_eu.parser_csv`): a CSV report with a header
//! line (format version 1.5), one event per row.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::text_lines::{CsvDictReport, DictRow};
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{datetime, AddOptions, Message};

/// The feed's `type` column -> `classification.type`; anything else is `other`.
const ABUSE_TO_INTELMQ: &[(&str, &str)] = &[
    ("backdoor", "system-compromise"),
    ("blacklist", "blacklist"),
    ("botnet drone", "infected-system"),
    ("brute-force", "brute-force"),
    ("c2server", "c2-server"),
    ("compromised server", "system-compromise"),
    ("ddos infrastructure", "ddos"),
    ("ddos target", "ddos"),
    ("defacement", "unauthorised-information-modification"),
    ("dropzone", "other"),
    ("exploit url", "exploit"),
    ("ids alert", "ids-alert"),
    ("malware-configuration", "malware-configuration"),
    ("malware url", "malware-distribution"),
    ("phishing", "phishing"),
    ("ransomware", "infected-system"),
    ("scanner", "scanner"),
    ("spam infrastructure", "spam"),
    ("test", "test"),
    ("vulnerable service", "vulnerable-system"),
];

/// Columns the parser does not know how to map: a row with a value in one of them fails.
const UNKNOWN_FIELDS: &[&str] = &["threat type", "ns1", "ns2", "response", "recent"];

/// The CERT-EU CSV parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertEUCSVParserParams {}

/// The CERT-EU CSV parser.
#[derive(Debug, Default)]
pub struct CertEUCSVParserBot;

impl BuildBot for CertEUCSVParserBot {
    type Params = CertEUCSVParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(CertEUCSVParserBot)
    }
}

fn classification_type(feed_type: &str) -> &'static str {
    ABUSE_TO_INTELMQ.iter().find(|(k, _)| *k == feed_type).map(|(_, v)| *v).unwrap_or("other")
}

/// IntelMQ `event[key] = value`: add with overwrite.
fn set(event: &mut Message, key: &str, value: &str) -> Result<(), BotError> {
    event.add_with(
        key,
        Value::String(value.to_string()),
        AddOptions { overwrite: Some(true), ..AddOptions::default() },
    )?;
    Ok(())
}

fn parse_row(csv: &CsvDictReport, row: &DictRow, mut event: Message) -> Result<Message, BotError> {
    let names = &csv.fieldnames;
    let get = |name: &str| row.text(names, name);
    let version = get("version")?;
    if version != "1.5" && !version.is_empty() {
        return Err(BotError::Invalid(format!("unknown version `{version}`, please report this with an example")));
    }
    for unknown in UNKNOWN_FIELDS {
        if !get(unknown)?.is_empty() {
            return Err(BotError::Invalid(format!(
                "unable to parse field `{unknown}`, please report this with an example"
            )));
        }
    }

    set(&mut event, "extra.datasource", get("feed code")?)?;
    event.add("source.ip", get("source ip")?)?;
    event.add("source.network", get("source bgp prefix")?)?;
    let observation = get("observation time")?;
    if !observation.is_empty() {
        let sanitized = datetime::sanitize(observation)
            .ok_or_else(|| BotError::Invalid(format!("cannot read observation time `{observation}`")))?;
        event.add("extra.cert_eu_time_observation", sanitized)?;
    }
    event.add("tlp", get("tlp")?)?;
    event.add("event_description.text", get("description")?)?;
    event.add("classification.type", classification_type(get("type")?))?;
    let count = get("count")?;
    if !count.is_empty() {
        let count: i64 =
            count.trim().parse().map_err(|_| BotError::Invalid(format!("count `{count}` is not an integer")))?;
        event.add_with(
            "extra.count",
            Value::from(count),
            AddOptions { overwrite: Some(true), ..AddOptions::default() },
        )?;
    }
    event.add("time.source", get("source time")?)?;
    event.add("source.geolocation.country", get("source country")?)?;
    event.add("protocol.application", get("protocol")?)?;
    event.add("destination.port", get("destination port")?)?;
    event.add("source.geolocation.latitude", get("source latitude")?)?;
    event.add("source.geolocation.city", get("source city")?)?;
    event.add("source.geolocation.geoip_cc", get("source cc")?)?;
    event.add("source.geolocation.longitude", get("source longitude")?)?;
    event.add("extra.source.geolocation.geohash", get("source geohash")?)?;
    set(&mut event, "extra.first_seen", get("first seen")?)?;
    let confidence = get("confidence level")?;
    let confidence: i64 = confidence
        .trim()
        .parse()
        .map_err(|_| BotError::Invalid(format!("confidence level `{confidence}` is not an integer")))?;
    let accuracy = event.get("feed.accuracy").and_then(Value::as_f64).unwrap_or(100.0);
    event.add_with(
        "feed.accuracy",
        Value::from(accuracy * confidence as f64 / 100.0),
        AddOptions { overwrite: Some(true), ..AddOptions::default() },
    )?;
    set(&mut event, "extra.last_seen", get("last seen")?)?;
    set(&mut event, "extra.expiration_date", get("expiration date")?)?;
    let status = get("status")?;
    if !status.is_empty() {
        set(&mut event, "status", status)?;
    }
    event.add("event_description.target", get("target")?)?;
    event.add("source.url", get("url")?)?;
    event.add("source.abuse_contact", get("abuse contact")?)?;
    event.add("source.asn", get("source asn")?)?;
    event.add("source.as_name", get("source as name")?)?;
    event.add("source.fqdn", get("domain name")?)?;
    event.add("raw", csv.recover_line_csv_dict(row))?;
    Ok(event)
}

impl ParserBot for CertEUCSVParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let csv = CsvDictReport::read(report, &["#"])?;
        for row in &csv.rows {
            match parse_row(&csv, row, out.new_event()) {
                Ok(event) => out.event(event),
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

    const HEADER: &str = "feed code,source ip,source time,observation time,tlp,description,type,protocol,destination port,first seen,last seen,count,source cc,source country,source city,source longitude,source latitude,city,threat type,source location,source as name,source bgp prefix,source geohash,confidence level,source asn,reported asn,target,url,domain name,version,expiration date,source port,status,source,scanner,abuse contact,ns1,ns2,response,recent,country,as name";

    #[test]
    fn rows_map_onto_fields_and_scale_the_accuracy() {
        let raw = format!(
            "# comment\n{HEADER}\nRI,192.0.2.1,2019-04-01 03:13:20Z,2019-04-01 10:13:23Z,amber,desc,botnet drone,,,,,3,AT,Austria,Linz,14.2,48.3,,,,AS NAME,,,80,65536,,,,,1.5,,,,,,,,,,,,\n"
        );
        let parsed = run(&mut CertEUCSVParserBot, &[("feed.name", "CERT-EU")], &raw).unwrap();
        assert_eq!(parsed.failed.len(), 0, "{:?}", parsed.failed);
        let event = &parsed.events[0];
        assert_eq!(field(event, "classification.type"), json!("infected-system"));
        assert_eq!(field(event, "feed.accuracy"), json!(80.0));
        assert_eq!(field(event, "extra.count"), json!(3));
        assert_eq!(field(event, "tlp"), json!("AMBER"));
        assert_eq!(field(event, "extra.cert_eu_time_observation"), json!("2019-04-01T10:13:23+00:00"));
        assert!(raw_text(event).starts_with("feed code,source ip,"));
        assert!(raw_text(event).ends_with(",,,,"));
    }

    #[test]
    fn unknown_types_are_other_and_unknown_versions_fail() {
        assert_eq!(classification_type("something new"), "other");
        let raw =
            format!("{HEADER}\nRI,192.0.2.1,2019-04-01 03:13:20Z,,green,d,x,,,,,,,,,,,,,,,,,50,,,,,,2.0,,,,,,,,,,,,\n");
        let parsed = run(&mut CertEUCSVParserBot, &[], &raw).unwrap();
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.failed.len(), 1);
        assert!(parsed.failed[0].1.contains("unknown version"));
    }
}
