//! The MISP parser (`intelmq.bots.parsers.misp.parser`): one MISP event (from the MISP collector);
//! every attribute of a supported category and type becomes an event, classified by the event's
//! ecsirt tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message};

/// ecsirt taxonomy tags and the classification type they give.
const TAXONOMY_MAPPING: &[(&str, &str)] = &[
    ("ecsirt:fraud=\"phishing\"", "phishing"),
    ("ecsirt:availability=\"ddos\"", "ddos"),
    ("ecsirt:abusive-content=\"spam\"", "spam"),
    ("ecsirt:information-gathering=\"scanner\"", "scanner"),
    ("ecsirt:information-content-security=\"dropzone\"", "dropzone"),
    ("ecsirt:malicious-code=\"malware\"", "malware"),
    ("ecsirt:malicious-code=\"botnet-drone\"", "infected-system"),
    ("ecsirt:malicious-code=\"ransomware\"", "ransomware"),
    ("ecsirt:malicious-code=\"malware-configuration\"", "malware-configuration"),
    ("ecsirt:malicious-code=\"c2server\"", "c2server"),
    ("ecsirt:intrusion-attempts=\"exploit\"", "exploit"),
    ("ecsirt:intrusion-attempts=\"brute-force\"", "brute-force"),
    ("ecsirt:intrusion-attempts=\"ids-alert\"", "ids-alert"),
    ("ecsirt:intrusions=\"defacement\"", "defacement"),
    ("ecsirt:intrusions=\"compromised\"", "compromised"),
    ("ecsirt:intrusions=\"backdoor\"", "backdoor"),
    ("ecsirt:vulnerable=\"vulnerable-service\"", "vulnerable service"),
    ("ecsirt:other=\"blacklist\"", "blacklist"),
    ("ecsirt:other=\"unknown\"", "unknown"),
    ("ecsirt:test=\"test\"", "test"),
];

/// The attribute categories that become events.
const SUPPORTED_CATEGORIES: &[&str] =
    &["Payload delivery", "Artifacts dropped", "Payload installation", "Network activity"];

/// MISP attribute types and their fields.
const TYPE_MAPPING: &[(&str, &str)] = &[
    ("domain", "source.fqdn"),
    ("hostname", "source.fqdn"),
    ("md5", "malware.hash.md5"),
    ("sha1", "malware.hash.sha1"),
    ("ip-src", "source.ip"),
    ("ip-dst", "source.ip"),
    ("email-src", "source.account"),
    ("url", "source.url"),
];

/// The MISP parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MispParserParams {}

/// The MISP parser.
#[derive(Debug)]
pub struct MispParserBot;

impl BuildBot for MispParserBot {
    type Params = MispParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(MispParserBot)
    }
}

fn field<'v>(value: &'v Value, key: &str) -> Result<&'v Value, BotError> {
    value.get(key).ok_or_else(|| BotError::Invalid(format!("misp data has no `{key}`")))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => wire::python_str(other),
    }
}

/// Python's `urljoin(base, relative)` for a relative path without a leading slash.
fn urljoin(base: &str, path: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(path)) {
        Ok(u) => u.to_string(),
        Err(_) => match base.rfind('/') {
            Some(p) => format!("{}{}", &base[..=p], path),
            None => path.to_string(),
        },
    }
}

impl ParserBot for MispParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let misp: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let mut classifier: Option<&str> = None;
        if let Some(Value::Array(tags)) = misp.get("Tag") {
            for tag in tags {
                let name = tag.get("name").and_then(Value::as_str).unwrap_or("");
                if let Some((_, t)) = TAXONOMY_MAPPING.iter().find(|(k, _)| *k == name) {
                    classifier = Some(t);
                    break;
                }
            }
        }
        let mut attributes: Vec<Value> = match field(&misp, "Attribute")? {
            Value::Array(a) => a.clone(),
            _ => return Err(BotError::Invalid("misp `Attribute` is not a list".to_string())),
        };
        if let Some(Value::Array(objects)) = misp.get("Object") {
            for object in objects {
                if let Some(Value::Array(a)) = object.get("Attribute") {
                    attributes.extend(a.iter().cloned());
                }
            }
        }
        let mut malware_variant: Option<String> = None;
        for attribute in &attributes {
            if field(attribute, "category")?.as_str() == Some("Payload type") {
                malware_variant = Some(text(field(attribute, "value")?).to_lowercase());
            }
        }
        let event_url =
            urljoin(report.get_str("feed.url").unwrap_or(""), &format!("events/view/{}", text(field(&misp, "id")?)));
        for attribute in &attributes {
            let value = field(attribute, "value")?;
            let uuid = field(attribute, "uuid")?;
            let comment = field(attribute, "comment")?;
            let timestamp = field(attribute, "timestamp")?;
            let category = text(field(attribute, "category")?);
            let type_ = text(field(attribute, "type")?);
            let Some((_, key)) = TYPE_MAPPING.iter().find(|(k, _)| *k == type_) else { continue };
            if !SUPPORTED_CATEGORIES.contains(&category.as_str()) {
                continue;
            }
            let mut event = out.new_event();
            event.add("raw", wire::dumps_sorted(attribute))?;
            event.add(key, value.clone())?;
            event.add("misp.event_uuid", field(&misp, "uuid")?.clone())?;
            event.add("misp.attribute_uuid", uuid.clone())?;
            event.add("comment", comment.clone())?;
            event.add("event_description.text", category.as_str())?;
            event.add("event_description.url", event_url.as_str())?;
            let quiet = AddOptions { raise_failure: false, ..AddOptions::default() };
            event.add_with("malware.name", malware_variant.clone().map_or(Value::Null, Value::String), quiet)?;
            event.add("classification.type", classifier.map_or(Value::Null, |c| Value::String(c.to_string())))?;
            let seconds: f64 = crate::message::types::parse_py_float(text(timestamp).trim())
                .ok_or_else(|| BotError::Invalid(format!("invalid timestamp {timestamp}")))?;
            let micros = (seconds * 1e6).round() as i64;
            let dt = chrono::DateTime::from_timestamp(
                micros.div_euclid(1_000_000),
                (micros.rem_euclid(1_000_000) * 1000) as u32,
            )
            .ok_or_else(|| BotError::Invalid(format!("timestamp {timestamp} out of range")))?;
            event.add("time.source", crate::message::datetime::format_utc(dt.naive_utc()))?;
            out.event(event);
        }
        Ok(())
    }
}
