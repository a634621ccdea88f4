//! The HIBP callback parser (`intelmq.bots.parsers.hibp.parser_callback`): a "Have I Been Pwned"
//! enterprise callback (a breach or a paste) for a domain; one event per affected e-mail address.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message};

/// The HIBP callback parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HibpCallbackParserParams {}

/// The HIBP callback parser.
#[derive(Debug)]
pub struct HibpCallbackParserBot;

impl BuildBot for HibpCallbackParserBot {
    type Params = HibpCallbackParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(HibpCallbackParserBot)
    }
}

fn set(event: &mut Message, key: &str, value: Value) -> Result<(), BotError> {
    event.add_with(key, value, AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
    Ok(())
}

fn parse_request(request: &Value, out: &mut ParserOutput<'_>) -> Result<Vec<Message>, BotError> {
    let get = |key: &str| request.get(key).ok_or_else(|| BotError::Invalid(format!("callback has no `{key}`")));
    let mut event = out.new_event();
    set(&mut event, "raw", Value::String(wire::dumps_sorted(request)))?;
    set(&mut event, "source.fqdn", get("Domain")?.clone())?;
    let domain_emails = get("DomainEmails")?.clone();
    set(&mut event, "extra.domain_emails", domain_emails.clone())?;
    if let Some(breach) = request.get("Breach") {
        set(&mut event, "extra.breach", breach.clone())?;
        set(&mut event, "classification.identifier", "breach".into())?;
        if let Value::Object(b) = breach {
            let added = b.get("AddedDate").ok_or_else(|| BotError::Invalid("breach has no `AddedDate`".to_string()))?;
            set(&mut event, "time.source", added.clone())?;
        }
    }
    if let Some(paste) = request.get("Paste") {
        set(&mut event, "extra.paste", paste.clone())?;
        set(&mut event, "classification.identifier", "paste".into())?;
    }
    set(&mut event, "classification.taxonomy", "information-content-security".into())?;
    set(&mut event, "classification.type", "data-leak".into())?;
    let mut emails: Vec<String> = Vec::new();
    if let Some(Value::String(e)) = request.get("Email") {
        emails.push(e.clone());
    }
    match &domain_emails {
        Value::Array(list) => {
            for e in list {
                if let Value::String(e) = e {
                    emails.push(e.clone());
                }
            }
        }
        _ => return Err(BotError::Invalid("`DomainEmails` is not a list".to_string())),
    }
    emails.retain(|e| !e.is_empty());
    emails.sort();
    emails.dedup();
    let mut events = Vec::new();
    for email in emails {
        set(&mut event, "source.account", Value::String(email))?;
        events.push(event.clone());
    }
    Ok(events)
}

impl ParserBot for HibpCallbackParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let request: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        match parse_request(&request, out) {
            Ok(events) => events.into_iter().for_each(|e| out.event(e)),
            Err(e) => out.fail(wire::dumps_sorted(&request), e),
        }
        Ok(())
    }
}
