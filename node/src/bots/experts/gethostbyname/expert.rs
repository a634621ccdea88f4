//! `intelmq.bots.experts.gethostbyname.expert`: resolves `<dir>.fqdn` (or, with `fallback_to_url`,
//! the host of `<dir>.url` when it is a valid FQDN) to an IPv4 address with the system resolver
//! (`getaddrinfo` with `AF_INET`, as Python's `socket.gethostbyname`) and sets `<dir>.ip`. An
//! existing ip is left alone unless `overwrite`.
//!
//! Resolver errors are `getaddrinfo` codes: -2 (EAI_NONAME), -4 (EAI_FAIL), -5 (EAI_NODATA),
//! -8 (EAI_SERVICE), -11 (EAI_SYSTEM) and those in `gaierrors_to_ignore` mean "no address"; any
//! other fails the message (retried), as IntelMQ's re-raised `gaierror` does. No cache.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::experts::url2fqdn::expert::url_hostname;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// The gaierror codes IntelMQ always treats as "the name does not resolve".
pub const ALWAYS_IGNORED: [i32; 5] = [-2, -4, -5, -8, -11];

/// `gaierrors_to_ignore` as IntelMQ configs write it: a list, a comma-separated string or a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GaiErrorList {
    List(Vec<Value>),
    Text(String),
    Number(i64),
}

impl GaiErrorList {
    /// The codes, each parsed as an integer (strings are stripped first).
    pub fn codes(&self) -> Result<Vec<i32>, String> {
        let items: Vec<Value> = match self {
            GaiErrorList::List(items) => items.clone(),
            GaiErrorList::Text(text) if text.trim().is_empty() => vec![],
            GaiErrorList::Text(text) => text.split(',').map(|s| Value::String(s.to_string())).collect(),
            GaiErrorList::Number(n) => vec![Value::from(*n)],
        };
        items
            .iter()
            .map(|item| {
                let parsed = match item {
                    Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                parsed.ok_or_else(|| format!("`{item}` is not an integer gaierror code"))
            })
            .collect()
    }
}

/// Parameters of the gethostbyname expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GethostbynameExpertParams {
    /// Use the host of `<dir>.url` when there is no fqdn; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub fallback_to_url: bool,
    /// More gaierror codes meaning "no address" (list, comma-separated string or number); default [].
    pub gaierrors_to_ignore: Option<GaiErrorList>,
    /// Replace an existing `<dir>.ip`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
}

impl Default for GethostbynameExpertParams {
    fn default() -> Self {
        GethostbynameExpertParams {
            fallback_to_url: true,
            gaierrors_to_ignore: Some(GaiErrorList::List(vec![])),
            overwrite: false,
        }
    }
}

/// A resolver failure: the `getaddrinfo` code and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct GaiError {
    pub code: i32,
    pub text: String,
}

/// Resolves a host name to one IPv4 address.
pub trait HostResolver: Send {
    fn resolve_v4(&self, host: &str) -> Result<Option<IpAddr>, GaiError>;
}

/// The system resolver through `getaddrinfo(host, AF_INET)`.
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve_v4(&self, host: &str) -> Result<Option<IpAddr>, GaiError> {
        let hints = dns_lookup::AddrInfoHints {
            flags: 0,
            address: dns_lookup::AddrFamily::Inet.into(),
            socktype: dns_lookup::SockType::Stream.into(),
            protocol: 0,
        };
        let infos = dns_lookup::getaddrinfo(Some(host), None, Some(hints))
            .map_err(|e| GaiError { code: e.error_num(), text: std::io::Error::from(e).to_string() })?;
        let first = infos.filter_map(Result::ok).map(|info| info.sockaddr.ip()).find(IpAddr::is_ipv4);
        Ok(first)
    }
}

/// Resolves fqdns to ips.
pub struct GethostbynameExpertBot {
    fallback_to_url: bool,
    ignore: Vec<i32>,
    overwrite: bool,
    resolver: Box<dyn HostResolver>,
}

impl BuildBot for GethostbynameExpertBot {
    type Params = GethostbynameExpertParams;

    fn build(params: GethostbynameExpertParams) -> Result<Self, ParamError> {
        let extra = match &params.gaierrors_to_ignore {
            Some(list) => list.codes().map_err(|e| ParamError::new("gaierrors_to_ignore", e))?,
            None => vec![],
        };
        let ignore = ALWAYS_IGNORED.iter().copied().chain(extra).collect();
        Ok(GethostbynameExpertBot {
            fallback_to_url: params.fallback_to_url,
            ignore,
            overwrite: params.overwrite,
            resolver: Box::new(SystemResolver),
        })
    }
}

impl GethostbynameExpertBot {
    /// Uses another resolver (tests).
    pub fn with_resolver(mut self, resolver: Box<dyn HostResolver>) -> Self {
        self.resolver = resolver;
        self
    }
}

impl ExpertBot for GethostbynameExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        for dir in ["source", "destination"] {
            let (key_fqdn, key_url, key_ip) = (format!("{dir}.fqdn"), format!("{dir}.url"), format!("{dir}.ip"));
            if event.contains(&key_ip) && !self.overwrite {
                continue;
            }
            let mut host = event.get_str(&key_fqdn).map(str::to_string);
            if host.is_none() && self.fallback_to_url {
                host = event
                    .get_str(&key_url)
                    .and_then(url_hostname)
                    .filter(|h| event.is_valid(&key_fqdn, &Value::String(h.clone()), false).unwrap_or(false));
            }
            let Some(host) = host.filter(|h| !h.is_empty()) else {
                continue;
            };
            match self.resolver.resolve_v4(&host) {
                Ok(Some(ip)) => {
                    let opts =
                        AddOptions { overwrite: Some(self.overwrite), raise_failure: false, ..AddOptions::default() };
                    event.add_with(&key_ip, Value::String(ip.to_string()), opts)?;
                }
                Ok(None) => {}
                Err(e) if self.ignore.contains(&e.code) => {
                    ctx.log.log(Level::Debug, &format!("Ignored error {} for hostname {host:?}.", e.code));
                }
                Err(e) => {
                    return Err(BotError::Transient(format!("cannot resolve {host}: gaierror {}: {}", e.code, e.text)));
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
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    /// Answers from a table; unknown names fail with the given code.
    struct Table(HashMap<&'static str, &'static str>, i32);

    impl HostResolver for Table {
        fn resolve_v4(&self, host: &str) -> Result<Option<IpAddr>, GaiError> {
            match self.0.get(host) {
                Some(ip) => Ok(Some(ip.parse().unwrap())),
                None => Err(GaiError { code: self.1, text: "failure".into() }),
            }
        }
    }

    fn table(code: i32) -> Box<dyn HostResolver> {
        Box::new(Table(HashMap::from([("example.com", "93.184.216.34"), ("example.org", "93.184.216.35")]), code))
    }

    fn run(bot: &mut GethostbynameExpertBot, fields: Value) -> Result<Message, BotError> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "gethostbyname",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out)?;
        Ok(out.sent.pop().unwrap().1)
    }

    fn bot(params: Value, code: i32) -> GethostbynameExpertBot {
        GethostbynameExpertBot::build(serde_json::from_value(params).unwrap()).unwrap().with_resolver(table(code))
    }

    #[test]
    fn localhost_resolves_with_the_system_resolver() {
        let mut bot = GethostbynameExpertBot::build(GethostbynameExpertParams::default()).unwrap();
        let msg =
            run(&mut bot, json!({"source.fqdn": "localhost", "destination.url": "http://localhost:8080/x"})).unwrap();
        assert_eq!(msg.get_str("source.ip"), Some("127.0.0.1"));
        assert_eq!(msg.get_str("destination.ip"), Some("127.0.0.1"));
    }

    #[test]
    fn fqdns_resolve_for_both_directions() {
        let msg =
            run(&mut bot(json!({}), -2), json!({"source.fqdn": "example.com", "destination.fqdn": "example.org"}))
                .unwrap();
        assert_eq!(msg.get_str("source.ip"), Some("93.184.216.34"));
        assert_eq!(msg.get_str("destination.ip"), Some("93.184.216.35"));
    }

    #[test]
    fn url_is_used_only_with_fallback_to_url() {
        let fields = json!({"source.url": "http://example.com/"});
        assert_eq!(run(&mut bot(json!({}), -2), fields.clone()).unwrap().get_str("source.ip"), Some("93.184.216.34"));
        assert!(!run(&mut bot(json!({"fallback_to_url": false}), -2), fields).unwrap().contains("source.ip"));
    }

    #[test]
    fn existing_ip_is_kept_unless_overwrite() {
        let fields = json!({"source.fqdn": "example.com", "source.ip": "10.0.0.1"});
        assert_eq!(run(&mut bot(json!({}), -2), fields.clone()).unwrap().get_str("source.ip"), Some("10.0.0.1"));
        assert_eq!(
            run(&mut bot(json!({"overwrite": true}), -2), fields).unwrap().get_str("source.ip"),
            Some("93.184.216.34")
        );
    }

    #[test]
    fn ignored_errors_pass_and_others_fail_the_message() {
        let fields = json!({"source.fqdn": "example.invalid"});
        assert!(!run(&mut bot(json!({}), -2), fields.clone()).unwrap().contains("source.ip"));
        assert!(!run(&mut bot(json!({"gaierrors_to_ignore": "-3, -9"}), -3), fields.clone())
            .unwrap()
            .contains("source.ip"));
        let err = run(&mut bot(json!({}), -3), fields).err().unwrap();
        assert!(matches!(err, BotError::Transient(_)), "{err}");
        assert!(err.to_string().contains("example.invalid"));
    }

    #[test]
    fn gaierror_codes_come_in_every_form() {
        let parse = |v: Value| serde_json::from_value::<GaiErrorList>(v).unwrap().codes();
        assert_eq!(parse(json!("-8,-9")).unwrap(), vec![-8, -9]);
        assert_eq!(parse(json!([-3, "-9"])).unwrap(), vec![-3, -9]);
        assert_eq!(parse(json!(-3)).unwrap(), vec![-3]);
        assert_eq!(parse(json!("")).unwrap(), Vec::<i32>::new());
        let params: GethostbynameExpertParams = serde_json::from_value(json!({"gaierrors_to_ignore": "x"})).unwrap();
        assert_eq!(GethostbynameExpertBot::build(params).err().unwrap().key, "gaierrors_to_ignore");
    }
}
