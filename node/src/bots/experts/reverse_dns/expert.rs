//! `intelmq.bots.experts.reverse_dns.expert`: the PTR name of `source.ip` / `destination.ip`
//! (system resolver, `getnameinfo` with `NI_NAMEREQD`) becomes `<dir>.reverse_dns` when it is a
//! valid FQDN. An existing value is left alone unless `overwrite`.
//!
//! Results are cached in the bot's state (IntelMQ: Redis db 7): a name for `redis_cache_ttl`
//! seconds (the system resolver does not report the record's TTL), a failed lookup as
//! `__dns-exception` (no name: `redis_cache_ttl`; other failures and invalid names:
//! `cache_ttl_invalid_response`), during which the address is skipped. Deviation: the cache key is
//! the address itself; IntelMQ keys on the first 24 (IPv4) bits of the address's binary form, so
//! neighbours share (and get) one cached name. The other `redis_cache_*` parameters are accepted
//! and ignored (one warning when they are not the defaults).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// The cached marker of a failed lookup (IntelMQ's value).
pub const DNS_EXCEPTION_VALUE: &str = "__dns-exception";

/// Parameters of the reverse DNS expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReverseDnsExpertParams {
    /// Seconds a failed or invalid answer stays cached; default 60.
    #[serde(deserialize_with = "lenient::u64")]
    pub cache_ttl_invalid_response: u64,
    /// Replace an existing `<dir>.reverse_dns`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Ignored (the cache lives in the node's store); default "127.0.0.1".
    pub redis_cache_host: String,
    /// Ignored; default 6379.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_port: u64,
    /// Ignored; default 7.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_db: u64,
    /// Ignored; default null.
    pub redis_cache_password: Option<String>,
    /// Seconds a name (or a "no such name" answer) stays cached, 0 = forever; default 86400.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_ttl: u64,
}

impl Default for ReverseDnsExpertParams {
    fn default() -> Self {
        ReverseDnsExpertParams {
            cache_ttl_invalid_response: 60,
            overwrite: false,
            redis_cache_host: "127.0.0.1".to_string(),
            redis_cache_port: 6379,
            redis_cache_db: 7,
            redis_cache_password: None,
            redis_cache_ttl: 86400,
        }
    }
}

/// Why a PTR lookup gave no name.
#[derive(Debug, Clone, PartialEq)]
pub enum PtrError {
    /// The address has no name (NXDOMAIN).
    NoName,
    /// Anything else (timeout, server failure).
    Failed(String),
}

/// Looks up the name of an address.
pub trait PtrResolver: Send {
    fn ptr(&self, ip: IpAddr) -> Result<String, PtrError>;
}

/// The system resolver (`/etc/hosts`, then DNS, as configured).
pub struct SystemPtrResolver;

impl PtrResolver for SystemPtrResolver {
    fn ptr(&self, ip: IpAddr) -> Result<String, PtrError> {
        match dns_lookup::getnameinfo(&SocketAddr::new(ip, 0), libc::NI_NAMEREQD) {
            Ok((name, _)) => Ok(name),
            Err(e) if e.error_num() == libc::EAI_NONAME => Err(PtrError::NoName),
            Err(e) => Err(PtrError::Failed(std::io::Error::from(e).to_string())),
        }
    }
}

/// Adds reverse DNS names.
pub struct ReverseDnsExpertBot {
    overwrite: bool,
    ttl: Option<Duration>,
    ttl_invalid: Option<Duration>,
    resolver: Box<dyn PtrResolver>,
    pending_warning: Option<String>,
}

fn ttl(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl BuildBot for ReverseDnsExpertBot {
    type Params = ReverseDnsExpertParams;

    fn build(params: ReverseDnsExpertParams) -> Result<Self, ParamError> {
        let changed = lenient::changed_redis_params(
            &params.redis_cache_host,
            params.redis_cache_port,
            params.redis_cache_db,
            7,
            params.redis_cache_password.as_deref(),
        );
        Ok(ReverseDnsExpertBot {
            overwrite: params.overwrite,
            ttl: ttl(params.redis_cache_ttl),
            ttl_invalid: ttl(params.cache_ttl_invalid_response),
            resolver: Box::new(SystemPtrResolver),
            pending_warning: lenient::redis_warning(&changed),
        })
    }
}

impl ReverseDnsExpertBot {
    /// Uses another resolver (tests).
    pub fn with_resolver(mut self, resolver: Box<dyn PtrResolver>) -> Self {
        self.resolver = resolver;
        self
    }
}

impl ExpertBot for ReverseDnsExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(warning) = self.pending_warning.take() {
            ctx.log.log(Level::Warning, &warning);
        }
        for dir in ["source", "destination"] {
            let key = format!("{dir}.reverse_dns");
            let Some(text) = event.get_str(&format!("{dir}.ip")) else {
                continue;
            };
            if event.contains(&key) && !self.overwrite {
                continue;
            }
            let ip: IpAddr =
                text.parse().map_err(|_| BotError::Invalid(format!("{dir}.ip `{text}` is not an address")))?;
            let cache_key = ip.to_string();
            let name = match ctx.state.get(cache_key.as_bytes()) {
                Some(cached) if cached == DNS_EXCEPTION_VALUE.as_bytes() => None,
                Some(cached) => Some(String::from_utf8_lossy(&cached).into_owned()),
                None => {
                    let (value, ttl) = match self.resolver.ptr(ip) {
                        Ok(name) if event.is_valid(&key, &Value::String(name.clone()), true).unwrap_or(false) => {
                            (Some(name), self.ttl)
                        }
                        Ok(_) => (None, self.ttl_invalid),
                        Err(PtrError::NoName) => (None, self.ttl),
                        Err(PtrError::Failed(reason)) => {
                            ctx.log.log(Level::Debug, &format!("Reverse lookup of {ip} failed: {reason}."));
                            (None, self.ttl_invalid)
                        }
                    };
                    let stored = value.as_deref().unwrap_or(DNS_EXCEPTION_VALUE);
                    ctx.state.put(cache_key.as_bytes(), stored.as_bytes(), ttl);
                    value
                }
            };
            if let Some(name) = name {
                event.add_with(
                    &key,
                    Value::String(name),
                    AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() },
                )?;
            }
        }
        out.send(event);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{BotState, MemoryLog, MemoryState};

    /// Answers from a fixed function and counts the lookups.
    struct Fake(fn(IpAddr) -> Result<String, PtrError>, Arc<Mutex<usize>>);

    impl PtrResolver for Fake {
        fn ptr(&self, ip: IpAddr) -> Result<String, PtrError> {
            *self.1.lock().unwrap() += 1;
            (self.0)(ip)
        }
    }

    fn answers(ip: IpAddr) -> Result<String, PtrError> {
        match ip.to_string().as_str() {
            "192.0.2.1" => Ok("Host.Example.COM.".to_string()),
            "192.0.2.2" => Ok("192.0.2.99".to_string()), // an address is no valid name
            "192.0.2.3" => Err(PtrError::NoName),
            _ => Err(PtrError::Failed("timeout".into())),
        }
    }

    /// A state that records the TTL of each put.
    #[derive(Default)]
    struct TtlState {
        inner: MemoryState,
        ttls: Vec<(String, Option<Duration>)>,
    }

    impl BotState for TtlState {
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.inner.get(key)
        }
        fn put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) {
            self.ttls.push((String::from_utf8_lossy(key).into_owned(), ttl));
            self.inner.put(key, value, ttl);
        }
        fn delete(&mut self, key: &[u8]) {
            self.inner.delete(key);
        }
    }

    fn run(bot: &mut ReverseDnsExpertBot, state: &mut dyn BotState, log: &mut MemoryLog, fields: Value) -> Message {
        let h = harmonization();
        let root = std::path::Path::new("/");
        let mut ctx =
            Context { bot_id: "reverse-dns", harmonization: &h, root, state, log, clock: &crate::bots::SystemClock };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    fn fake_bot(params: Value) -> (ReverseDnsExpertBot, Arc<Mutex<usize>>) {
        let count = Arc::new(Mutex::new(0));
        let bot = ReverseDnsExpertBot::build(serde_json::from_value(params).unwrap())
            .unwrap()
            .with_resolver(Box::new(Fake(answers, count.clone())));
        (bot, count)
    }

    #[test]
    fn loopback_resolves_with_the_system_resolver() {
        let mut bot = ReverseDnsExpertBot::build(ReverseDnsExpertParams::default()).unwrap();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let msg = run(&mut bot, &mut state, &mut log, json!({"source.ip": "127.0.0.1"}));
        let name = msg.get_str("source.reverse_dns").unwrap();
        assert!(name.starts_with("localhost"), "{name}");
    }

    #[test]
    fn name_is_sanitized_and_cached_with_the_ttl() {
        let (mut bot, count) = fake_bot(json!({"redis_cache_ttl": "3600"}));
        let (mut state, mut log) = (TtlState::default(), MemoryLog::default());
        let msg = run(&mut bot, &mut state, &mut log, json!({"source.ip": "192.0.2.1"}));
        assert_eq!(msg.get_str("source.reverse_dns"), Some("host.example.com"));
        let again = run(&mut bot, &mut state, &mut log, json!({"destination.ip": "192.0.2.1"}));
        assert_eq!(again.get_str("destination.reverse_dns"), Some("host.example.com"));
        assert_eq!(*count.lock().unwrap(), 1);
        assert_eq!(state.ttls, vec![("192.0.2.1".to_string(), Some(Duration::from_secs(3600)))]);
    }

    #[test]
    fn failures_are_cached_with_their_ttls_and_skipped() {
        let (mut bot, count) = fake_bot(json!({"cache_ttl_invalid_response": 30}));
        let (mut state, mut log) = (TtlState::default(), MemoryLog::default());
        for ip in ["192.0.2.2", "192.0.2.3", "192.0.2.4"] {
            let msg = run(&mut bot, &mut state, &mut log, json!({"source.ip": ip}));
            assert!(!msg.contains("source.reverse_dns"));
            run(&mut bot, &mut state, &mut log, json!({"source.ip": ip}));
        }
        assert_eq!(*count.lock().unwrap(), 3);
        let ttls: Vec<_> = state.ttls.iter().map(|(_, t)| *t).collect();
        let (short, long) = (Some(Duration::from_secs(30)), Some(Duration::from_secs(86400)));
        assert_eq!(ttls, vec![short, long, short]);
        assert_eq!(state.inner.get(b"192.0.2.3").unwrap(), DNS_EXCEPTION_VALUE.as_bytes());
    }

    #[test]
    fn existing_name_is_kept_unless_overwrite() {
        let fields = json!({"source.ip": "192.0.2.1", "source.reverse_dns": "old.example.net"});
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let (mut keep, _) = fake_bot(json!({}));
        assert_eq!(
            run(&mut keep, &mut state, &mut log, fields.clone()).get_str("source.reverse_dns"),
            Some("old.example.net")
        );
        let (mut replace, _) = fake_bot(json!({"overwrite": true}));
        assert_eq!(
            run(&mut replace, &mut state, &mut log, fields).get_str("source.reverse_dns"),
            Some("host.example.com")
        );
    }

    #[test]
    fn non_default_redis_parameters_give_one_warning() {
        let (mut bot, _) = fake_bot(json!({"redis_cache_host": "10.0.0.1"}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        run(&mut bot, &mut state, &mut log, json!({"source.ip": "192.0.2.1"}));
        run(&mut bot, &mut state, &mut log, json!({"source.ip": "192.0.2.1"}));
        assert_eq!(log.lines.iter().filter(|(l, _)| *l == Level::Warning).count(), 1);
    }
}
