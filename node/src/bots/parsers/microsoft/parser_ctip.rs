//! The Microsoft CTIP parser (`intelmq.bots.parsers.microsoft.parser_ctip`): CTIP data either as
//! a JSON list (Interflow, version 1.5) or as JSON lines (Azure). One `infected-system` event per
//! record; the Azure `Payload` (base64 JSON, plain JSON or text) is unpacked into `extra.payload.*`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::html_table::pyhtml::py_splitlines;
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{types, wire, AddOptions, Message, TimeFormat};

/// Interflow keys and their fields.
const INTERFLOW: &[(&str, &str)] = &[
    ("additionalmetadata", "extra.additionalmetadata"),
    ("description", "event_description.text"),
    ("externalid", "malware.name"),
    ("tlplevel", "tlp"),
    ("firstreporteddatetime", "time.source"),
    ("networksourceipv4", "source.ip"),
    ("networksourceport", "source.port"),
    ("networkdestinationipv4", "destination.ip"),
    ("networkdestinationport", "destination.port"),
    ("isproductlicensed", "extra.isproductlicensed"),
    ("ispartnershareable", "extra.ispartnershareable"),
    ("networksourceasn", "source.asn"),
    ("hostname", "destination.fqdn"),
    ("useragent", "extra.user_agent"),
    ("severity", "extra.severity"),
    ("tags", "extra.tags"),
];

/// Azure keys (nested keys joined with `.`) and their fields.
const AZURE: &[(&str, &str)] = &[
    ("DataFeed", "feed.name"),
    ("SourcedFrom", "event_description.text"),
    ("DateTimeReceivedUtc", "time.source"),
    ("DateTimeReceivedUtcTxt", "__IGNORE__"),
    ("Malware", "extra.malware"),
    ("ThreatCode", "malware.name"),
    ("ThreatConfidence", "feed.accuracy"),
    ("TotalEncounters", "extra.total_encounters"),
    ("TLP", "tlp"),
    ("SourceIp", "source.ip"),
    ("SourcePort", "source.port"),
    ("DestinationIp", "destination.ip"),
    ("DestinationIpInfo.DestinationIpAsnNumber", "destination.asn"),
    ("DestinationIpInfo.DestinationIpAsnOrgName", "destination.as_name"),
    ("DestinationIpInfo.DestinationIpCountryCode", "destination.geolocation.cc"),
    ("DestinationIpInfo.DestinationIpRegion", "destination.geolocation.region"),
    ("DestinationIpInfo.DestinationIpCity", "destination.geolocation.city"),
    ("DestinationIpInfo.DestinationIpPostalCode", "extra.destination.geolocation.postal_code"),
    ("DestinationIpInfo.DestinationIpLatitude", "destination.geolocation.latitude"),
    ("DestinationIpInfo.DestinationIpLongitude", "destination.geolocation.longitude"),
    ("DestinationIpInfo.DestinationIpMetroCode", "extra.destination.geolocation.metro_code"),
    ("DestinationIpInfo.DestinationIpAreaCode", "extra.destination.geolocation.area_code"),
    ("DestinationIpInfo.DestinationIpConnectionType", "extra.destination.connection_type"),
    ("DestinationIpInfo.DestinationIpv4Int", "__IGNORE__"),
    ("DestinationPort", "destination.port"),
    ("TargetIp", "__IGNORE__"),
    ("TargetPort", "__IGNORE__"),
    ("Signatures.Sha256", "extra.signatures.sha256"),
    ("SourceIpInfo.SourceIpAsnNumber", "source.asn"),
    ("SourceIpInfo.SourceIpAsnOrgName", "source.as_name"),
    ("SourceIpInfo.SourceIpCountryCode", "source.geolocation.cc"),
    ("SourceIpInfo.SourceIpRegion", "source.geolocation.region"),
    ("SourceIpInfo.SourceIpCity", "source.geolocation.city"),
    ("SourceIpInfo.SourceIpPostalCode", "extra.source.geolocation.postal_code"),
    ("SourceIpInfo.SourceIpLatitude", "source.geolocation.latitude"),
    ("SourceIpInfo.SourceIpLongitude", "source.geolocation.longitude"),
    ("SourceIpInfo.SourceIpMetroCode", "extra.source.geolocation.metro_code"),
    ("SourceIpInfo.SourceIpAreaCode", "extra.source.geolocation.area_code"),
    ("SourceIpInfo.SourceIpConnectionType", "extra.source.connection_type"),
    ("SourceIpInfo.SourceIpv4Int", "__IGNORE__"),
    ("HttpInfo.HttpHost", "extra.http.host"),
    ("HttpInfo.HttpRequest", "extra.http.request"),
    ("HttpInfo.HttpMethod", "extra.http.method"),
    ("HttpInfo.HttpReferrer", "extra.http.referrer"),
    ("HttpInfo.HttpUserAgent", "extra.user_agent"),
    ("HttpInfo.HttpVersion", "extra.http.version"),
    ("CustomInfo.CustomField1", "extra.custom_field1"),
    ("CustomInfo.CustomField2", "extra.custom_field2"),
    ("CustomInfo.CustomField3", "extra.custom_field3"),
    ("CustomInfo.CustomField4", "extra.custom_field4"),
    ("CustomInfo.CustomField5", "extra.custom_field5"),
    ("Payload.ts", "extra.payload.timestamp"),
    ("Payload.ip", "extra.payload.ip"),
    ("Payload.port", "extra.payload.port"),
    ("Payload.serverIp", "extra.payload.server.ip"),
    ("Payload.serverPort", "extra.payload.server.port"),
    ("Payload.domain", "destination.fqdn"),
    ("Payload.family", "extra.payload.family"),
    ("Payload.malware", "extra.payload.malware"),
    ("Payload.response", "extra.payload.response"),
    ("Payload.handler", "extra.payload.handler"),
    ("Payload.type", "protocol.application"),
    ("Payload", "extra.payload.text"),
    ("Payload.Time", "extra.payload.time"),
    ("Payload.SourceIP", "extra.payload.source.ip"),
    ("Payload.DestIP", "extra.payload.destination.ip"),
    ("Payload.RemotePort", "extra.payload.remote.port"),
    ("Payload.RemoteHost", "extra.payload.remote.host"),
    ("Payload.ServerPort", "extra.payload.server.port"),
    ("Payload.BCode", "extra.payload.b_code"),
    ("Payload.Protocol", "extra.payload.protocol"),
    ("Payload.Length", "extra.payload.length"),
    ("Payload.URI", "destination.urlpath"),
    ("Payload.Referer", "extra.http_referer"),
    ("Payload.UserAgent", "extra.user_agent"),
    ("Payload.RequestMethod", "extra.http.method"),
    ("Payload.HTTPHost", "extra.http.host"),
    ("Payload.http_host", "extra.payload.http_host"),
    ("Payload.Custom1", "extra.payload.custom_field1"),
    ("Payload.Custom2", "extra.payload.custom_field2"),
    ("Payload.Custom3", "extra.payload.custom_field3"),
    ("Payload.Custom4", "extra.payload.custom_field4"),
    ("Payload.Custom5", "extra.payload.custom_field5"),
    ("Payload.timestamp", "extra.payload.timestamp"),
    ("Payload.timestamp_utc", "extra.payload.timestamp_utc"),
    ("Payload.source_ip", "extra.payload.source.ip"),
    ("Payload.source_port", "extra.payload.source.port"),
    ("Payload.src_port", "extra.payload.source.port"),
    ("Payload.destination_ip", "extra.payload.destination.ip"),
    ("Payload.dst_ip", "extra.payload.destination.ip"),
    ("Payload.destination_port", "extra.payload.destination.port"),
    ("Payload.dst_port", "extra.payload.destination.port"),
    ("Payload.computer_name", "extra.payload.computer_name"),
    ("Payload.bot_id", "extra.payload.bot_id"),
    ("Payload.asn", "extra.payload.source.asn"),
    ("Payload.dst_asn", "extra.payload.destination.asn"),
    ("Payload.geo", "extra.payload.source.geolocation.cc"),
    ("Payload.dst_geo", "extra.payload.destination.geolocation.cc"),
    ("Payload.url", "extra.request_raw"),
    ("Payload.http_agent", "extra.http_agent"),
    ("Payload.p0f_genre", "extra.os.name"),
    ("Payload.p0f_detail", "extra.os.version"),
    ("Payload.http_post", "extra.payload.http_post"),
    ("Payload.naics", "extra.naics"),
    ("Payload.sector", "extra.sector"),
    ("Payload.ssl_cipher", "extra.ssl_cipher"),
];

/// `ThreatConfidence` -> accuracy in percent.
const CONFIDENCE: &[(&str, f64)] = &[("High", 100.0), ("Medium", 50.0), ("Low", 20.0), ("Informational", 10.0)];

/// A flag given as a bool or a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlagOrString {
    Bool(bool),
    String(String),
}

/// Parameters of the CTIP parser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicrosoftCtipParserParams {
    /// Default: `true` (IntelMQ's code; its docs say false). Azure values overwrite fields the
    /// event already has (the feed's `DataFeed` replaces `feed.name`).
    pub overwrite: FlagOrString,
}

impl Default for MicrosoftCtipParserParams {
    fn default() -> Self {
        MicrosoftCtipParserParams { overwrite: FlagOrString::Bool(true) }
    }
}

/// The CTIP parser.
#[derive(Debug)]
pub struct MicrosoftCtipParserBot {
    overwrite: bool,
}

impl BuildBot for MicrosoftCtipParserBot {
    type Params = MicrosoftCtipParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        let overwrite = match params.overwrite {
            FlagOrString::Bool(b) => b,
            FlagOrString::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" | "" => false,
                _ => return Err(ParamError::new("overwrite", format!("expected a boolean, got `{s}`"))),
            },
        };
        Ok(MicrosoftCtipParserBot { overwrite })
    }
}

fn set(event: &mut Message, key: &str, value: Value) -> Result<(), BotError> {
    event.add_with(key, value, AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
    Ok(())
}

/// `event.get('feed.accuracy', 100)`.
fn accuracy(event: &Message) -> f64 {
    event.get("feed.accuracy").and_then(Value::as_f64).unwrap_or(100.0)
}

fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Python's `value[:value.find('/')]` (no `/`: all but the last character).
fn before_slash(value: &str) -> &str {
    match value.find('/') {
        Some(p) => &value[..p],
        None => {
            let cut = value.char_indices().last().map_or(0, |(i, _)| i);
            &value[..cut]
        }
    }
}

/// The text Python's `str()` gives for a JSON scalar.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => wire::python_str(other),
    }
}

/// IntelMQ `DateTime.from_windows_nt`: `1601-01-01 + timedelta(seconds=int(value) * 10 ** -7)`,
/// with CPython's `timedelta` arithmetic (integer part exact, the fraction's microseconds rounded
/// half-even from what is left after truncation).
fn from_windows_nt(text: &str) -> Option<String> {
    let ticks: i128 = text.trim().parse().ok()?;
    let seconds = ticks as f64 * 1e-7;
    if !seconds.is_finite() || seconds.abs() > 1e15 {
        return None;
    }
    let whole_seconds = seconds.trunc();
    let micros_f = (seconds - whole_seconds) * 1e6;
    let micros_whole = micros_f.trunc();
    let leftover = micros_f - micros_whole;
    let mut rounded = leftover.round();
    if (rounded - leftover).abs() == 0.5 {
        // Exactly halfway: round half to even on the total.
        let total = whole_seconds as i128 * 1_000_000 + micros_whole as i128;
        rounded = if (total + rounded as i128) % 2 == 0 { rounded } else { leftover.floor() };
    }
    let total_micros = whole_seconds as i128 * 1_000_000 + micros_whole as i128 + rounded as i128;
    let epoch = chrono::NaiveDate::from_ymd_opt(1601, 1, 1)?.and_hms_opt(0, 0, 0)?;
    let dt = epoch.checked_add_signed(chrono::Duration::microseconds(i64::try_from(total_micros).ok()?))?;
    Some(crate::message::datetime::format_utc(dt))
}

impl MicrosoftCtipParserBot {
    fn parse_interflow(&self, mut line: Map<String, Value>, out: &mut ParserOutput<'_>) -> Result<Message, BotError> {
        let raw = wire::dumps(&Value::Array(vec![Value::Object(line.clone())]));
        let get = |line: &Map<String, Value>, key: &str| {
            line.get(key).cloned().ok_or_else(|| BotError::Invalid(format!("record has no `{key}`")))
        };
        if get(&line, "indicatorthreattype")?.as_str() != Some("Botnet") {
            return Err(BotError::Invalid(format!(
                "unknown indicatorthreattype {}, only Botnet is supported",
                get(&line, "indicatorthreattype")?
            )));
        }
        if let Some(Value::Array(meta)) = line.get("additionalmetadata") {
            let empty = meta.is_empty()
                || (meta.len() == 1 && matches!(&meta[0], Value::Null))
                || (meta.len() == 1 && matches!(meta[0].as_str(), Some("" | "null")));
            if empty {
                line.shift_remove("additionalmetadata");
            }
        }
        let mut event = out.new_event();
        for (key, value) in &line {
            if matches!(key.as_str(), "version" | "indicatorthreattype" | "confidence" | "indicatorexpirationdatetime")
            {
                continue;
            }
            let mut value = value.clone();
            if key == "firstreporteddatetime" {
                value = Value::String(format!("{} UTC", text_of(&value)));
            }
            if key == "hostname" {
                if Some(&value) == line.get("networkdestinationipv4") {
                    continue;
                }
                if !event.is_valid("source.fqdn", &value, true)? {
                    continue;
                }
            }
            if key == "networkdestinationipv4" {
                if value.as_str() == Some("0.0.0.0") {
                    continue;
                }
                if let Some(s) = value.as_str() {
                    if let Some(p) = s.find(',') {
                        value = Value::String(s[..p].to_string());
                    }
                }
            }
            let field = INTERFLOW
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, f)| *f)
                .ok_or_else(|| BotError::Invalid(format!("unknown key `{key}`")))?;
            set(&mut event, field, value)?;
        }
        let confidence = get(&line, "confidence")?
            .as_f64()
            .ok_or_else(|| BotError::Invalid("`confidence` is not a number".to_string()))?;
        let new_accuracy = float_value(accuracy(&event) * confidence / 100.0);
        set(&mut event, "feed.accuracy", new_accuracy)?;
        event.add("classification.type", "infected-system")?;
        event.add("raw", raw)?;
        Ok(event)
    }

    fn parse_azure(
        &self,
        line: Map<String, Value>,
        raw: &str,
        out: &mut ParserOutput<'_>,
    ) -> Result<Message, BotError> {
        let mut event = out.new_event();
        // First pass: unpack the payload and flatten nested objects (flattened keys go last).
        let mut entries: Vec<(String, Value)> = line.into_iter().collect();
        let original: Vec<(String, Value)> = entries.clone();
        for (key, value) in original {
            let mut value = value;
            if key == "Payload" {
                let text = value.as_str().unwrap_or_default().to_string();
                if text == "AA==" {
                    entries.retain(|(k, _)| k != &key);
                    continue;
                }
                if text.starts_with('{') {
                    let decoded: Value = serde_json::from_str(&text)
                        .map_err(|e| BotError::Invalid(format!("invalid payload json: {e}")))?;
                    if let Value::Object(map) = decoded {
                        for (pk, pv) in map {
                            set(&mut event, &format!("extra.payload.{pk}"), pv)?;
                        }
                    }
                    entries.retain(|(k, _)| k != &key);
                } else {
                    let bytes = types::base64_decode(&text)
                        .ok_or_else(|| BotError::Invalid("payload is not valid base64".to_string()))?;
                    let decoded = crate::bots::parsers::decode_utf8_ignore(&bytes);
                    match serde_json::from_str::<Value>(&decoded) {
                        Ok(v) => value = v,
                        Err(_) => {
                            if let Some(slot) = entries.iter_mut().find(|(k, _)| k == &key) {
                                slot.1 = Value::String(decoded);
                            }
                        }
                    }
                }
            } else if key == "TLP" && value.as_str().is_some_and(|s| s.to_lowercase() == "unknown") {
                entries.retain(|(k, _)| k != &key);
            }
            if let Value::Object(map) = value {
                for (sk, sv) in map {
                    let flat = format!("{key}.{sk}");
                    match entries.iter_mut().find(|(k, _)| *k == flat) {
                        Some(slot) => slot.1 = sv,
                        None => entries.push((flat, sv)),
                    }
                }
                entries.retain(|(k, _)| k != &key);
            }
        }
        let lookup = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        for (key, value) in &entries {
            let mut value = value.clone();
            match key.as_str() {
                "ThreatConfidence" => {
                    if value.as_str() == Some("None") {
                        continue;
                    }
                    let name = text_of(&value);
                    let (_, pct) = CONFIDENCE
                        .iter()
                        .find(|(k, _)| *k == name)
                        .ok_or_else(|| BotError::Invalid(format!("unknown ThreatConfidence {name:?}")))?;
                    value = float_value(accuracy(&event) * pct / 100.0);
                }
                "DateTimeReceivedUtc" => {
                    let text = text_of(&value);
                    value = from_windows_nt(&text)
                        .map(Value::String)
                        .ok_or_else(|| BotError::Invalid(format!("invalid DateTimeReceivedUtc {text:?}")))?;
                }
                "Payload.ts" => {
                    let text = text_of(&value);
                    value = TimeFormat::Timestamp
                        .convert(&text)
                        .map(Value::String)
                        .ok_or_else(|| BotError::Invalid(format!("invalid Payload.ts {text:?}")))?;
                }
                "Payload.Protocol" => {
                    let text = text_of(&value);
                    let protocol = before_slash(&text);
                    if !protocol.is_empty() {
                        set(&mut event, "protocol.application", Value::String(protocol.to_string()))?;
                    }
                }
                "Payload.domain" => {
                    let text = text_of(&value);
                    if !event.is_valid("destination.fqdn", &value, false)?
                        && lookup("Payload.serverIp") == Some(Value::String(text))
                    {
                        continue;
                    }
                }
                _ => {
                    if types::is_falsy(&value) {
                        continue;
                    }
                }
            }
            let field = AZURE
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, f)| *f)
                .ok_or_else(|| BotError::Invalid(format!("unknown key `{key}`")))?;
            if field != "__IGNORE__" {
                let overwrite = self.overwrite || field == "feed.accuracy";
                event.add_with(field, value, AddOptions { overwrite: Some(overwrite), ..AddOptions::default() })?;
            }
        }
        event.add("classification.type", "infected-system")?;
        event.add("raw", raw)?;
        Ok(event)
    }
}

impl ParserBot for MicrosoftCtipParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        // (record, text to dump when it fails)
        let mut records: Vec<(Value, Option<String>)> = Vec::new();
        if text.starts_with('[') {
            let items: Value =
                serde_json::from_str(&text).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
            if let Value::Array(items) = items {
                records.extend(items.into_iter().map(|i| (i, None)));
            }
        } else if text.starts_with('{') {
            for line in py_splitlines(&text) {
                let record: Value =
                    serde_json::from_str(line).map_err(|e| BotError::Invalid(format!("invalid json line: {e}")))?;
                records.push((record, Some(line.to_string())));
            }
        } else {
            return Err(BotError::Invalid(
                "can't parse the received message: it is neither a json list nor a json dictionary".to_string(),
            ));
        }
        for (record, line_text) in records {
            let recovered = line_text.clone().unwrap_or_else(|| wire::dumps(&Value::Array(vec![record.clone()])));
            let Value::Object(map) = record else {
                out.fail(recovered, "record is not a json object");
                continue;
            };
            let result = if map.get("version").and_then(Value::as_f64) == Some(1.5) {
                self.parse_interflow(map, out)
            } else {
                self.parse_azure(map, &recovered, out)
            };
            match result {
                Ok(event) => out.event(event),
                Err(e) => out.fail(recovered, e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_nt_times_round_like_cpython_timedelta() {
        assert_eq!(from_windows_nt("132348340630510000").as_deref(), Some("2020-05-24T22:47:43.050999+00:00"));
        assert_eq!(from_windows_nt("132990083418030000").as_deref(), Some("2022-06-06T16:59:01.802999+00:00"));
        assert_eq!(from_windows_nt("132622667720000000").as_deref(), Some("2021-04-07T10:59:32+00:00"));
    }

    #[test]
    fn protocol_is_the_text_before_the_slash() {
        assert_eq!(before_slash("HTTP/1.1"), "HTTP");
        assert_eq!(before_slash("HTTP"), "HTT");
    }
}
