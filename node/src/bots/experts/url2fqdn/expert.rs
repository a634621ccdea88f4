//! `intelmq.bots.experts.url2fqdn.expert` (deprecated in IntelMQ in favour of the URL expert): for
//! `source` and `destination`, the host of `<dir>.url` becomes `<dir>.fqdn`, or `<dir>.ip` when it
//! is not a valid FQDN (an IP address). An existing fqdn is kept unless `overwrite`.
//!
//! The host is taken as Python's `urlsplit(url).hostname` does: the netloc after `//`, without
//! user info, port and IPv6 brackets, lowercased.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the url2fqdn expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Url2fqdnExpertParams {
    /// Replace an existing fqdn (or ip); default false.
    pub overwrite: bool,
}

/// Derives fqdn or ip from the url of source and destination.
pub struct Url2fqdnExpertBot {
    overwrite: bool,
}

impl BuildBot for Url2fqdnExpertBot {
    type Params = Url2fqdnExpertParams;

    fn build(params: Url2fqdnExpertParams) -> Result<Self, ParamError> {
        Ok(Url2fqdnExpertBot { overwrite: params.overwrite })
    }
}

/// Python's `urlsplit(url).hostname`: `None` when the URL has no netloc or an empty host.
pub fn url_hostname(url: &str) -> Option<String> {
    // urlsplit removes tabs and newlines anywhere and leading C0 controls and spaces.
    let url: std::borrow::Cow<'_, str> = if url.contains(['\t', '\r', '\n']) {
        url.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect::<String>().into()
    } else {
        url.into()
    };
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let rest = match url.find(':') {
        Some(i)
            if i > 0
                && url.as_bytes()[0].is_ascii_alphabetic()
                && url[..i].bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            &url[i + 1..]
        }
        _ => url,
    };
    let after = rest.strip_prefix("//")?;
    let netloc = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    let hostinfo = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = match hostinfo.split_once('[') {
        Some((_, bracketed)) => bracketed.split_once(']').map_or(bracketed, |(h, _)| h),
        None => hostinfo.split_once(':').map_or(hostinfo, |(h, _)| h),
    };
    if host.is_empty() {
        return None;
    }
    // A zone id after `%` keeps its case; the address part is lowercased.
    Some(match host.split_once('%') {
        Some((addr, zone)) => format!("{}%{zone}", addr.to_lowercase()),
        None => host.to_lowercase(),
    })
}

impl ExpertBot for Url2fqdnExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let opts = AddOptions { sanitize: true, overwrite: Some(self.overwrite), raise_failure: false };
        for dir in ["source", "destination"] {
            let (key_url, key_fqdn, key_ip) = (format!("{dir}.url"), format!("{dir}.fqdn"), format!("{dir}.ip"));
            let Some(url) = event.get_str(&key_url) else {
                continue;
            };
            if event.contains(&key_fqdn) && !self.overwrite {
                continue;
            }
            let Some(host) = url_hostname(url) else {
                continue;
            };
            if !event.add_with(&key_fqdn, Value::String(host.clone()), opts)? {
                event.add_with(&key_ip, Value::String(host), opts)?;
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn process(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "url2fqdn-expert",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = Url2fqdnExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn hostname_is_pythons() {
        assert_eq!(url_hostname("http://user:pw@Example.COM:8080/x?y#z").as_deref(), Some("example.com"));
        assert_eq!(url_hostname("http://[2001:DB8::123]:80/x").as_deref(), Some("2001:db8::123"));
        assert_eq!(url_hostname("example.com/path"), None);
        assert_eq!(url_hostname("http:///path"), None);
    }

    #[test]
    fn host_becomes_fqdn_or_ip() {
        let msg = process(
            json!({}),
            json!({"source.url": "http://example.com/index.php", "destination.url": "http://[2001:db8::123]/x"}),
        );
        assert_eq!(msg.get_str("source.fqdn"), Some("example.com"));
        assert_eq!(msg.get_str("destination.ip"), Some("2001:db8::123"));
        assert!(!msg.contains("destination.fqdn"));
    }

    #[test]
    fn existing_fqdn_is_kept_unless_overwrite() {
        let fields = json!({"source.url": "http://example.com/", "source.fqdn": "example.org"});
        let kept = process(json!({}), fields.clone());
        assert_eq!(kept.get_str("source.fqdn"), Some("example.org"));
        let replaced = process(json!({"overwrite": true}), fields);
        assert_eq!(replaced.get_str("source.fqdn"), Some("example.com"));
    }
}
