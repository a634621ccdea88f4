//! `intelmq.bots.experts.url.expert`: from `source.url` and `destination.url`, the host (as
//! `<dir>.ip` or `<dir>.fqdn`), the port (explicit, else the scheme's default), the path
//! (`<dir>.urlpath`), the user name (`<dir>.account`) and, from the first URL that gives them,
//! `protocol.application` and `protocol.transport` (by the scheme table). Fields in `skip_fields`
//! are not set; existing fields are kept unless `overwrite`.
//!
//! The URL is split as Python's `urllib.parse.urlparse` does (the path without `;params` for the
//! schemes that have them). A port that is not a number in 0..65535 fails the message, as in
//! IntelMQ.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::urlsplit;
use crate::message::{AddOptions, Message};

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// Parameters of the URL expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlExpertParams {
    /// Replace fields that are already set; default false.
    #[serde(deserialize_with = "lenient_bool")]
    pub overwrite: bool,
    /// Fields never set (list or comma-separated string); default null.
    pub skip_fields: Option<Value>,
}

/// Scheme → (default port, transport protocol, application protocol if not the scheme).
const URLSCHEMES: [(&str, u16, Option<&str>, Option<&str>); 8] = [
    ("ftp", 21, Some("tcp"), None),
    ("http", 80, Some("tcp"), None),
    ("https", 443, None, Some("http")),
    ("sftp", 22, Some("tcp"), None),
    ("ssh", 22, Some("tcp"), None),
    ("tftp", 69, Some("udp"), None),
    ("ws", 80, Some("tcp"), None),
    ("wss", 443, Some("tcp"), None),
];

/// Schemes whose paths carry `;params` (Python's `uses_params`).
const USES_PARAMS: [&str; 15] = [
    "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip", "sips", "mms", "sftp",
    "tel",
];

/// The parts of a URL the expert uses, as `urlparse` gives them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedUrl {
    pub scheme: String,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: String,
    pub username: Option<String>,
}

/// Python's `urlparse(url)`: scheme, hostname, port, path and username; `Err` where Python raises.
pub fn urlparse(url: &str) -> Result<ParsedUrl, String> {
    let split = urlsplit(url).ok_or_else(|| format!("invalid url `{url}`"))?;
    let mut path = split.path.clone();
    if USES_PARAMS.contains(&split.scheme.as_str()) && path.contains(';') {
        let from = path.rfind('/').unwrap_or(0);
        let cut = match path[from..].find(';') {
            Some(i) => Some(from + i),
            None if path.contains('/') => None,
            None => path.find(';'),
        };
        if let Some(i) = cut {
            path.truncate(i);
        }
    }
    let netloc = split.netloc.as_str();
    let (userinfo, hostinfo) = match netloc.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, netloc),
    };
    let (host, port) = match hostinfo.split_once('[') {
        Some((_, bracketed)) => {
            let (host, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (host, rest.split_once(':').map(|(_, p)| p))
        }
        None => match hostinfo.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostinfo, None),
        },
    };
    let hostname = (!host.is_empty()).then(|| match host.split_once('%') {
        Some((addr, zone)) => format!("{}%{zone}", addr.to_lowercase()),
        None => host.to_lowercase(),
    });
    let port = match port.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = p.trim_start_matches('0');
            let n: u32 = if digits.is_empty() {
                0
            } else if digits.len() > 5 {
                u32::MAX
            } else {
                digits.parse().unwrap_or(u32::MAX)
            };
            Some(u16::try_from(n).map_err(|_| format!("port of `{url}` is out of range 0-65535"))?)
        }
        Some(p) => return Err(format!("port `{p}` of `{url}` is not an integer")),
    };
    let username = userinfo.map(|u| u.split_once(':').map_or(u, |(name, _)| name).to_string());
    Ok(ParsedUrl { scheme: split.scheme, hostname, port, path, username })
}

/// Splits URLs into their parts.
pub struct UrlExpertBot {
    overwrite: bool,
    skip_fields: Vec<String>,
}

impl BuildBot for UrlExpertBot {
    type Params = UrlExpertParams;

    fn build(params: UrlExpertParams) -> Result<Self, ParamError> {
        let skip_fields = match &params.skip_fields {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| ParamError::new("skip_fields", format!("expected field names, got {i}")))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(ParamError::new("skip_fields", format!("expected field names, got {other}"))),
        };
        Ok(UrlExpertBot { overwrite: params.overwrite, skip_fields })
    }
}

impl UrlExpertBot {
    fn skips(&self, key: &str) -> bool {
        self.skip_fields.iter().any(|f| f == key)
    }
}

impl ExpertBot for UrlExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let opts = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
        let mut protocols_added = 0;
        for base in ["source", "destination"] {
            let url_key = format!("{base}.url");
            let Some(url) = event.get_str(&url_key).filter(|u| !u.is_empty()) else {
                continue;
            };
            let url = urlparse(url).map_err(BotError::Invalid)?;
            let (ip_key, fqdn_key) = (format!("{base}.ip"), format!("{base}.fqdn"));
            let (port_key, urlpath_key, account_key) =
                (format!("{base}.port"), format!("{base}.urlpath"), format!("{base}.account"));
            let overwrite_protocols = protocols_added == 0;
            let scheme = URLSCHEMES.iter().find(|s| s.0 == url.scheme);

            if let Some(host) = &url.hostname {
                let value = Value::String(host.clone());
                if !self.skips(&ip_key) && event.is_valid(&ip_key, &value, true)? {
                    event.add_with(&ip_key, value, opts)?;
                } else if !self.skips(&fqdn_key) && event.is_valid(&fqdn_key, &value, true)? {
                    event.add_with(&fqdn_key, value, opts)?;
                }
            }
            if !self.skips(&port_key) {
                if let Some(port) = url.port.filter(|p| *p != 0) {
                    event.add_with(&port_key, Value::String(port.to_string()), opts)?;
                } else if let Some(&(_, default_port, _, _)) = scheme {
                    event.add_with(&port_key, Value::String(default_port.to_string()), opts)?;
                }
            }
            if !url.path.is_empty() && !self.skips(&urlpath_key) {
                event.add_with(&urlpath_key, Value::String(url.path.clone()), opts)?;
            }
            if let Some(user) = url.username.as_ref().filter(|u| !u.is_empty()) {
                if !self.skips(&account_key) {
                    event.add_with(
                        &account_key,
                        Value::String(user.clone()),
                        AddOptions { raise_failure: false, ..opts },
                    )?;
                }
            }
            if overwrite_protocols && !url.scheme.is_empty() && !self.skips("protocol.application") {
                let application = scheme.and_then(|s| s.3).unwrap_or(url.scheme.as_str());
                event.add_with("protocol.application", Value::String(application.to_string()), opts)?;
                protocols_added += 1;
            }
            if overwrite_protocols && !url.scheme.is_empty() && !self.skips("protocol.transport") {
                if let Some(transport) = scheme.and_then(|s| s.2) {
                    event.add_with("protocol.transport", Value::String(transport.to_string()), opts)?;
                    protocols_added += 1;
                }
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

    fn run(params: Value, fields: Value) -> Message {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "url",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = UrlExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn urlparse_is_pythons() {
        let u = urlparse("https://Admin:pw@WWW.Example.com:8443/a/b;p?q#f").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.hostname.as_deref(), Some("www.example.com"));
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.username.as_deref(), Some("Admin"));
        assert!(urlparse("http://host:99999/").is_err());
        assert!(urlparse("http://host:8x/").is_err());
        assert_eq!(urlparse("http://[2001:db8::1]:80/").unwrap().hostname.as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn source_url_fills_fields_and_protocols() {
        let msg = run(json!({}), json!({"source.url": "https://admin@www.example.com:8443/index.html"}));
        assert_eq!(msg.get_str("source.fqdn"), Some("www.example.com"));
        assert_eq!(msg.get("source.port"), Some(&json!(8443)));
        assert_eq!(msg.get_str("source.urlpath"), Some("/index.html"));
        assert_eq!(msg.get_str("source.account"), Some("admin"));
        assert_eq!(msg.get_str("protocol.application"), Some("http"));
        assert!(!msg.contains("protocol.transport"));
    }

    #[test]
    fn protocols_come_from_the_first_url() {
        let msg = run(
            json!({}),
            json!({"source.url": "http://5.5.5.5/index.html", "destination.url": "ftp://www.example.com/x"}),
        );
        assert_eq!(msg.get_str("source.ip"), Some("5.5.5.5"));
        assert_eq!(msg.get("source.port"), Some(&json!(80)));
        assert_eq!(msg.get("destination.port"), Some(&json!(21)));
        assert_eq!(msg.get_str("protocol.application"), Some("http"));
        assert_eq!(msg.get_str("protocol.transport"), Some("tcp"));
    }

    #[test]
    fn skip_fields_and_overwrite() {
        let msg =
            run(json!({"skip_fields": "source.port,source.fqdn"}), json!({"source.url": "http://example.com:81/"}));
        assert!(!msg.contains("source.port") && !msg.contains("source.fqdn"));
        let kept = run(json!({}), json!({"source.url": "http://example.com:81/", "source.port": 80}));
        assert_eq!(kept.get("source.port"), Some(&json!(80)));
        let replaced =
            run(json!({"overwrite": true}), json!({"source.url": "http://example.com:81/", "source.port": 80}));
        assert_eq!(replaced.get("source.port"), Some(&json!(81)));
    }
}
