//! The GitHub feed parser (`intelmq.bots.parsers.github_feed.parser`): IoC files fetched from
//! GitHub by the GitHub API collector. Only StrangerealIntel's DailyIOC is known: every indicator
//! (hash, domain, IP address or URL) becomes an event.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, Level, ParamError, ParserBot, ParserOutput};
use crate::message::{wire, AddOptions, Message};

/// `validators.domain` (labels of letters, digits, `-`, `_`; the top level ends in a letter).
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(?i)^(?:[a-z0-9](?:[a-z0-9\-_]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9\-_]{0,61}[a-z]$").unwrap()
});

/// A simplified `validators.url`: scheme, host (name, IPv4 or [IPv6]), optional port and path.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(
        r"(?i)^[a-z][a-z0-9+.\-]*://(?:[^\s:@/]+(?::[^\s@/]*)?@)?(?:localhost|\[[0-9a-f:.]+\]|(?:\d{1,3}\.){3}\d{1,3}|(?:[a-z0-9\x{80}-\x{10FFFF}](?:[a-z0-9\-_\x{80}-\x{10FFFF}]{0,61}[a-z0-9\x{80}-\x{10FFFF}])?\.)+[a-z\x{80}-\x{10FFFF}][a-z0-9\-\x{80}-\x{10FFFF}]*)(?::\d{1,5})?(?:[/?#]\S*)?$",
    )
    .unwrap()
});

/// The GitHub feed parser has no parameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubFeedParserParams {}

/// The GitHub feed parser.
#[derive(Debug)]
pub struct GithubFeedParserBot;

impl BuildBot for GithubFeedParserBot {
    type Params = GithubFeedParserParams;

    fn build(_params: Self::Params) -> Result<Self, ParamError> {
        Ok(GithubFeedParserBot)
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_domain(s: &str) -> bool {
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    match idna::domain_to_ascii(s) {
        Ok(ascii) => DOMAIN.is_match(&ascii),
        Err(_) => false,
    }
}

/// One DailyIOC indicator as an event, or `None` when it fits no known kind.
fn indicator_event(ioc: &Value, base: &Message, ctx: &mut Context<'_>) -> Result<Option<Message>, BotError> {
    let mut event = base.clone();
    event.add("raw", wire::python_repr(ioc))?;
    event.add("classification.type", "malware")?;
    event.add("classification.taxonomy", "other")?;
    let description =
        ioc.get("Description").ok_or_else(|| BotError::Invalid("ioc has no `Description`".to_string()))?;
    event.add("event_description.text", description.clone())?;
    let indicator = ioc
        .get("Indicator")
        .and_then(Value::as_str)
        .ok_or_else(|| BotError::Invalid("ioc has no string `Indicator`".to_string()))?;
    let overwrite = AddOptions { overwrite: Some(true), ..AddOptions::default() };
    for (hash_type, len) in [("sha1", 40), ("sha256", 64), ("md5", 32)] {
        if is_hex(indicator, len) {
            event.add(&format!("malware.hash.{hash_type}"), indicator)?;
            event.add_with("classification.taxonomy", "other".into(), overwrite)?;
            event.add_with("classification.type", "malware".into(), overwrite)?;
            return Ok(Some(event));
        }
    }
    if is_domain(indicator) {
        event.add("source.fqdn", indicator)?;
        return Ok(Some(event));
    }
    if indicator.parse::<std::net::IpAddr>().is_ok() {
        event.add("source.ip", indicator)?;
        return Ok(Some(event));
    }
    if URL.is_match(indicator) {
        event.add("source.url", indicator)?;
        return Ok(Some(event));
    }
    ctx.log.log(Level::Warning, &format!("IOC '{}' not in expected format.", indicator.replace('.', "[.]")));
    Ok(None)
}

impl ParserBot for GithubFeedParserBot {
    fn parse(&mut self, report: &Message, ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?.replace('\'', "\"");
        let content: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                ctx.log.log(Level::Error, &format!("Invalid report['raw']: {e}"));
                return Ok(());
            }
        };
        let mut base = out.new_event();
        if let Some(Value::Object(metadata)) = report.get("extra.file_metadata") {
            for (k, v) in metadata {
                base.add(&format!("extra.file_metadata.{k}"), v.clone())?;
            }
        }
        let url = report.get_str("feed.url").unwrap_or("");
        if !url.contains("StrangerealIntel/DailyIOC") {
            return Err(BotError::Invalid(format!("Unknown feed '{url}'.")));
        }
        let Value::Array(iocs) = content else {
            return Err(BotError::Invalid("the DailyIOC file is not a json list".to_string()));
        };
        for ioc in &iocs {
            if let Some(event) = indicator_event(ioc, &base, ctx)? {
                out.event(event);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_urls_are_told_apart() {
        assert!(is_domain("hack.mds.dom"));
        assert!(!is_domain("10.0.0.1"));
        assert!(!is_domain("https://10.2.2.1/malicious.docm"));
        assert!(URL.is_match("https://10.2.2.1/malicious.docm"));
        assert!(URL.is_match("http://example.com"));
        assert!(!URL.is_match("not a url"));
    }
}
