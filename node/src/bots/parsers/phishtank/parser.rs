//! The PhishTank parser (`intelmq.bots.parsers.phishtank.parser`): the JSON list of online,
//! verified phishing sites; one event per entry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message};

/// The PhishTank parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhishtankParserParams {}

/// The PhishTank parser.
#[derive(Debug)]
pub struct PhishtankParserBot;

impl BuildBot for PhishtankParserBot {
    type Params = PhishtankParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(PhishtankParserBot)
    }
}

fn soft(event: &mut Message, key: &str, value: Option<&Value>) -> Result<(), BotError> {
    let quiet = AddOptions { raise_failure: false, ..AddOptions::default() };
    event.add_with(key, value.cloned().unwrap_or(Value::Null), quiet)?;
    Ok(())
}

fn parse_line(
    line: &Value,
    raw: String,
    out: &mut ParserOutput<'_>,
    ctx: &mut Context<'_>,
) -> Result<Message, BotError> {
    let mut event = out.new_event();
    if let Some(time) = line.get("submission_time").filter(|v| !crate::message::types::is_falsy(v)) {
        let text = match time {
            Value::String(s) => s.clone(),
            other => wire::python_str(other),
        };
        match crate::message::datetime::parse_fuzzy(&text) {
            Some(t) => soft(&mut event, "time.source", Some(&Value::String(t)))?,
            None => ctx.log.log(Level::Warning, &format!("Could not parse submission_time value '{text}'")),
        }
    }
    event.add("classification.type", "phishing")?;
    soft(&mut event, "extra.phishtank.phish_id", line.get("phish_id"))?;
    event.add("source.url", line.get("url").cloned().unwrap_or(Value::Null))?;
    soft(&mut event, "event_description.url", line.get("phish_detail_url"))?;
    soft(&mut event, "event_description.target", line.get("target"))?;
    soft(&mut event, "status", Some(&Value::String("online".to_string())))?;
    soft(&mut event, "extra.phishtank.verified", line.get("verified"))?;
    soft(&mut event, "extra.phishtank.verification_time", line.get("verification_time"))?;
    if let Some(Value::Array(details)) = line.get("details") {
        if let Some(detail) = details.first() {
            soft(&mut event, "source.ip", detail.get("ip_address"))?;
            soft(&mut event, "source.network", detail.get("cidr_block"))?;
            soft(&mut event, "source.asn", detail.get("announcing_network"))?;
            soft(&mut event, "source.geolocation.cc", detail.get("country"))?;
        }
    }
    event.add("raw", raw)?;
    Ok(event)
}

impl ParserBot for PhishtankParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let items: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let Value::Array(items) = items else {
            return Err(BotError::Invalid("the report is not a json list".to_string()));
        };
        for line in &items {
            let recovered = wire::dumps(&Value::Array(vec![line.clone()]));
            match parse_line(line, recovered.clone(), out, ctx) {
                Ok(event) => out.event(event),
                Err(e) => out.fail(recovered, e),
            }
        }
        Ok(())
    }
}
