//! The McAfee ATD parser (`intelmq.bots.parsers.mcafee.parser_atd`): a sandbox report of McAfee
//! Advanced Threat Defense. Reports at or above `verdict_severity` give one event for the sample,
//! one per dropped file, one per contacted IP address and one per contacted host name.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::Message;

/// Report keys and their fields.
const ATD_TYPE_MAPPING: &[(&str, &str)] = &[
    ("domain", "source.fqdn"),
    ("hostname", "source.fqdn"),
    ("Name", "malware.name"),
    ("Md5", "malware.hash.md5"),
    ("Sha1", "malware.hash.sha1"),
    ("Sha256", "malware.hash.sha256"),
    ("Ipv4", "destination.ip"),
    ("Port", "destination.port"),
    ("Url", "destination.fqdn"),
];

/// A number given as a number or a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(i64),
    String(String),
}

/// Parameters of the McAfee ATD parser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McafeeAtdParserParams {
    /// Default: `4`. The minimum verdict severity (1-5) of reports that are parsed.
    pub verdict_severity: NumberOrString,
}

impl Default for McafeeAtdParserParams {
    fn default() -> Self {
        McafeeAtdParserParams { verdict_severity: NumberOrString::Number(4) }
    }
}

/// The McAfee ATD parser.
#[derive(Debug)]
pub struct McafeeAtdParserBot {
    verdict_severity: i64,
}

impl BuildBot for McafeeAtdParserBot {
    type Params = McafeeAtdParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let verdict_severity = match params.verdict_severity {
            NumberOrString::Number(n) => n,
            NumberOrString::String(s) => s
                .trim()
                .parse()
                .map_err(|_| ParamError::new("verdict_severity", format!("expected an integer, got `{s}`")))?,
        };
        Ok(McafeeAtdParserBot { verdict_severity })
    }
}

fn get<'v>(value: &'v Value, path: &[&str]) -> Result<&'v Value, BotError> {
    let mut v = value;
    for key in path {
        v = v.get(key).ok_or_else(|| BotError::Invalid(format!("report has no `{}`", path.join("."))))?;
    }
    Ok(v)
}

/// Python `int(x)` of a JSON string or number.
fn py_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ParserBot for McafeeAtdParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let atd: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let subject = [
            ("malware.name", get(&atd, &["Summary", "Subject", "Name"])?.clone()),
            ("malware.hash.md5", get(&atd, &["Summary", "Subject", "md5"])?.clone()),
            ("malware.hash.sha1", get(&atd, &["Summary", "Subject", "sha-1"])?.clone()),
            ("malware.hash.sha256", get(&atd, &["Summary", "Subject", "sha-256"])?.clone()),
        ];
        let severity = py_int(get(&atd, &["Summary", "Verdict", "Severity"])?)
            .ok_or_else(|| BotError::Invalid("verdict severity is not an integer".to_string()))?;
        if severity < self.verdict_severity {
            return Ok(());
        }
        let base = |out: &ParserOutput<'_>| -> Result<Message, BotError> {
            let mut event = out.new_event();
            event.add("classification.taxonomy", "malicious code")?;
            event.add("classification.type", "infected system")?;
            event.add("raw", raw.as_str())?;
            Ok(event)
        };
        let mut event = base(out)?;
        for (key, value) in &subject {
            event.add(key, value.clone())?;
        }
        out.event(event);
        for (list, with_subject) in [("Files", false), ("Ips", true), ("Urls", true)] {
            let Some(Value::Array(entries)) = atd.get("Summary").and_then(|s| s.get(list)) else { continue };
            for entry in entries {
                let mut event = base(out)?;
                if with_subject {
                    for (key, value) in &subject {
                        event.add(key, value.clone())?;
                    }
                }
                if let Value::Object(entry) = entry {
                    for (key, value) in entry {
                        if let Some((_, field)) = ATD_TYPE_MAPPING.iter().find(|(k, _)| k == key) {
                            event.add(field, value.clone())?;
                        }
                    }
                }
                out.event(event);
            }
        }
        Ok(())
    }
}
