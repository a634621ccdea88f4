//! The n6 parser (`intelmq.bots.parsers.n6.parser_n6stomp`): one n6 JSON record of CERT.PL's
//! stream. The record's category gives the classification; a record with addresses gives one
//! event per address and then the record's own event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::{datetime, AddOptions, FieldError, Message};

/// n6 category -> (taxonomy, type, identifier).
const MAPPING: &[(&str, (&str, &str, &str))] = &[
    ("amplifier", ("vulnerable", "vulnerable-system", "amplifier")),
    ("bots", ("malicious-code", "infected-system", "malware-generic")),
    ("backdoor", ("intrusions", "system-compromise", "hacked server")),
    ("cnc", ("malicious-code", "c2-server", "c&c server")),
    ("dns-query", ("other", "other", "dns-query")),
    ("dos-attacker", ("availability", "ddos", "dos-attacker")),
    ("dos-victim", ("availability", "ddos", "dos-victim")),
    ("flow", ("other", "other", "flow")),
    ("flow-anomaly", ("other", "other", "flow-anomaly")),
    ("fraud", ("fraud", "account numbers", "fraud")),
    ("leak", ("information-content-security", "data-leak", "leak")),
    ("malurl", ("malicious-code", "exploit", "malurl")),
    ("malware-action", ("malicious-code", "malware-configuration", "malware-configuration")),
    ("phish", ("fraud", "phishing", "phishing")),
    ("proxy", ("other", "proxy", "openproxy")),
    ("sandbox-url", ("malicious-code", "infected-system", "sandboxurl")),
    ("scanning", ("information-gathering", "scanner", "scanning")),
    ("server-exploit", ("malicious-code", "exploit", "server-exploit")),
    ("spam", ("abusive-content", "spam", "spam")),
    ("spam-url", ("abusive-content", "spam", "spam-url")),
    ("tor", ("other", "tor", "tor exit node")),
    ("webinject", ("malicious-code", "malware-distribution", "malware")),
    ("vulnerable", ("vulnerable", "other", "vulnerable")),
    ("other", ("other", "other", "other")),
];

/// The n6 parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct N6StompParserParams {}

/// The n6 parser.
#[derive(Debug)]
pub struct N6StompParserBot;

impl BuildBot for N6StompParserBot {
    type Params = N6StompParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(N6StompParserBot)
    }
}

fn overwrite(event: &mut Message, key: &str, value: &str) -> Result<(), FieldError> {
    event.add_with(
        key,
        Value::String(value.to_string()),
        AddOptions { overwrite: Some(true), ..AddOptions::default() },
    )?;
    Ok(())
}

impl ParserBot for N6StompParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let peek = report_text(report)?;
        if peek.contains("TEST MESSAGE") {
            ctx.log.log(Level::Debug, "Ignoring test message/event.");
            return Ok(());
        }
        let mut event = out.new_event();
        let record: Value = serde_json::from_str(&peek).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let get = |key: &str| record.get(key);
        event.add_with(
            "raw",
            report.get("raw").cloned().unwrap_or(Value::Null),
            AddOptions { sanitize: false, ..AddOptions::default() },
        )?;
        for (key, field) in [
            ("time", "time.source"),
            ("dip", "destination.ip"),
            ("dport", "destination.port"),
            ("md5", "malware.hash.md5"),
            ("sha1", "malware.hash.sha1"),
        ] {
            if let Some(v) = get(key) {
                event.add(field, v.clone())?;
            }
        }
        if let Some(fqdn) = get("fqdn") {
            if fqdn.as_str() != Some("unknown") {
                event.add("source.fqdn", fqdn.clone())?;
            }
        }
        for (key, field) in [("id", "extra.feed_id"), ("adip", "extra.adip")] {
            if let Some(v) = get(key) {
                event.add_with(field, v.clone(), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
            }
        }
        for (key, field) in [
            ("proto", "protocol.transport"),
            ("sport", "source.port"),
            ("url", "source.url"),
            ("confidence", "extra.confidence"),
        ] {
            if let Some(v) = get(key) {
                event.add(field, v.clone())?;
            }
        }
        if let Some(expires) = get("expires") {
            let text = expires.as_str().unwrap_or_default();
            let value = datetime::sanitize(text).map_or(Value::Null, Value::String);
            event.add("extra.expires", value)?;
        }
        if let Some(v) = get("source") {
            event.add("extra.feed_source", v.clone())?;
        }
        let mut bots_identifier = "malware-generic".to_string();
        if let Some(name) = get("name") {
            let name_text = name.as_str().map(str::to_string).unwrap_or_else(|| name.to_string());
            bots_identifier = name_text.clone();
            match event.add("malware.name", name.clone()) {
                Ok(_) => {}
                Err(FieldError::InvalidValue { .. }) => {
                    let cleaned: String = name_text.chars().filter(|c| (' '..='~').contains(c)).collect();
                    event.add("malware.name", cleaned)?;
                    event.add("event_description.text", name.clone())?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let type_ = get("type").ok_or_else(|| BotError::Invalid("record has no `type`".to_string()))?;
        if type_.as_str() == Some("bl-update") {
            event.add("classification.taxonomy", "other")?;
            event.add("classification.type", "blacklist")?;
        } else {
            let category = get("category").ok_or_else(|| BotError::Invalid("record has no `category`".to_string()))?;
            if let Some(category) = category.as_str() {
                let (_, (taxonomy, ctype, identifier)) = MAPPING
                    .iter()
                    .find(|(k, _)| *k == category)
                    .ok_or_else(|| BotError::Invalid(format!("unknown category `{category}`")))?;
                let identifier = if category == "bots" { bots_identifier.as_str() } else { identifier };
                overwrite(&mut event, "classification.taxonomy", taxonomy)?;
                overwrite(&mut event, "classification.type", ctype)?;
                overwrite(&mut event, "classification.identifier", identifier)?;
            } else if !category.is_null() {
                return Err(BotError::Invalid(format!("invalid category {category}")));
            }
        }
        if let Some(Value::Array(addresses)) = get("address") {
            for addr in addresses {
                let mut ev = event.clone();
                ev.add(
                    "source.ip",
                    addr.get("ip").cloned().ok_or_else(|| BotError::Invalid("address has no `ip`".to_string()))?,
                )?;
                for (key, field) in
                    [("asn", "source.asn"), ("rdns", "source.reverse_dns"), ("cc", "source.geolocation.cc")]
                {
                    if let Some(v) = addr.get(key) {
                        ev.add(field, v.clone())?;
                    }
                }
                out.event(ev);
            }
        }
        // IntelMQ's `for ... else`: the record's own event is always sent too.
        out.event(event);
        Ok(())
    }
}
