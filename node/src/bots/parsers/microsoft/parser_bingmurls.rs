//! The Bing malicious URLs parser (`intelmq.bots.parsers.microsoft.parser_bingmurls`): the JSON
//! list of Microsoft's BingMURLs feed (Interflow); one `blacklist` event per URL.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message};

/// Feed keys and their fields.
const MAPPING: &[(&str, &str)] = &[
    ("Attributable", "extra.attributable"),
    ("Description", "event_description.text"),
    ("IndicatorThreatType", "classification.identifier"),
    ("TLPLevel", "tlp"),
    ("FirstReportedDateTime", "time.source"),
    ("NetworkDestinationAsn", "source.asn"),
    ("NetworkDestinationIPv4", "source.ip"),
    ("NetworkDestinationPort", "source.port"),
    ("IsProductLicensed", "extra.isproductlicensed"),
    ("IsPartnerShareable", "extra.ispartnershareable"),
    ("Url", "source.url"),
    ("IndicatorProvider", "extra.indicator_provider"),
    ("IndicatorExpirationDateTime", "extra.indicator_expiration_date_time"),
    ("ThreatDetectionProduct", "extra.threat_detection_product"),
    ("Tags", "extra.tags"),
];

/// The BingMURLs parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftBingMurlsParserParams {}

/// The BingMURLs parser.
#[derive(Debug)]
pub struct MicrosoftBingMurlsParserBot;

impl BuildBot for MicrosoftBingMurlsParserBot {
    type Params = MicrosoftBingMurlsParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(MicrosoftBingMurlsParserBot)
    }
}

fn parse_line(
    line: &Value,
    raw: String,
    out: &mut ParserOutput<'_>,
    ctx: &mut Context<'_>,
) -> Result<Message, BotError> {
    let Value::Object(record) = line else {
        return Err(BotError::Invalid("entry is not a json object".to_string()));
    };
    let get = |key: &str| record.get(key).ok_or_else(|| BotError::Invalid(format!("entry has no `{key}`")));
    if get("Version")?.as_f64() != Some(1.5) {
        return Err(BotError::Invalid(format!(
            "data is in unknown format {}, only version 1.5 is supported",
            get("Version")?
        )));
    }
    if get("IndicatorThreatType")?.as_str() != Some("MaliciousUrl") {
        return Err(BotError::Invalid("unknown indicatorthreattype, only MaliciousUrl is supported".to_string()));
    }
    let mut event = out.new_event();
    for (key, value) in record {
        if key == "LastReportedDateTime" {
            if Some(value) != record.get("FirstReportedDateTime") {
                return Err(BotError::Invalid(
                    "unexpectedly seen different values in 'FirstReportedDateTime' and 'LastReportedDateTime'"
                        .to_string(),
                ));
            }
            continue;
        }
        if key == "Version" {
            continue;
        }
        if key == "NetworkDestinationIPv4" && matches!(value.as_str(), Some("0.0.0.0" | "255.255.255.255")) {
            continue;
        }
        if key == "NetworkDestinationAsn" && value.as_f64() == Some(0.0) {
            continue;
        }
        let field = MAPPING
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| *f)
            .ok_or_else(|| BotError::Invalid(format!("unknown key `{key}`")))?;
        if key == "Tags" {
            if let Value::Array(tags) = value {
                if tags.len() == 1 {
                    if tags[0].as_str() != Some("??") {
                        event.add("source.geolocation.cc", tags[0].clone())?;
                    }
                    continue;
                }
                ctx.log.log(
                    Level::Warning,
                    &format!(
                        "Field 'Tags' does not have expected length 1, but {}. Saving as '{field}', but please report this as bug with samples.",
                        tags.len()
                    ),
                );
            }
        }
        event.add_with(field, value.clone(), AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
    }
    event.add("classification.type", "blacklist")?;
    event.add("raw", raw)?;
    Ok(event)
}

impl ParserBot for MicrosoftBingMurlsParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let items: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let Value::Array(items) = items else {
            return Err(BotError::Invalid("the report is not a json list".to_string()));
        };
        for line in &items {
            let recovered = wire::dumps_sorted(&Value::Array(vec![line.clone()]));
            match parse_line(line, recovered.clone(), out, ctx) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(recovered, e),
            }
        }
        Ok(())
    }
}
