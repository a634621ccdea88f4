//! `intelmq.bots.experts.cymru_whois.expert`: Team Cymru's IP-to-ASN service over DNS. For
//! `source.ip` / `destination.ip`: TXT `<reversed ip>.origin.asn.cymru.com` (IPv6:
//! `<reversed nibbles>.origin6.asn.cymru.com`) gives asn, network, country, registry and allocation
//! date (with several answers the most specific network wins), then TXT `AS<asn>.asn.cymru.com` the
//! AS name. They go to `<dir>.asn`, `.network`, `.geolocation.cc`, `.registry` (not when "other"),
//! `.allocated` and `.as_name`; existing values are kept unless `overwrite`.
//!
//! Results are cached in the bot's state under `<ip version>_<ip>` as IntelMQ's JSON (`null` for
//! "no data"), for `redis_cache_ttl` seconds; the other `redis_cache_*` parameters are accepted and
//! ignored (one warning when they are not the defaults). DNS goes to `resolver` (default: the first
//! nameserver of /etc/resolv.conf) with the hand-written client in [`super::dns`]. Deviation: a
//! timeout or server failure is logged and the address skipped without caching (IntelMQ caches
//! such a failure as "no data" for a day).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::dns::{parse_server, system_nameserver, DnsError, TxtClient};
use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the Cymru whois expert (IntelMQ's names and defaults, plus the resolver).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CymruWhoisExpertParams {
    /// Replace existing fields; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Ignored (the cache lives in the node's store); default "127.0.0.1".
    pub redis_cache_host: String,
    /// Ignored; default 6379.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_port: u64,
    /// Ignored; default 5.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_db: u64,
    /// Ignored; default null.
    pub redis_cache_password: Option<String>,
    /// Seconds a result stays cached, 0 = forever; default 86400.
    #[serde(deserialize_with = "lenient::u64")]
    pub redis_cache_ttl: u64,
    /// Not in IntelMQ: the DNS server (`ip` or `ip:port`); default null (first nameserver of
    /// /etc/resolv.conf).
    pub resolver: Option<String>,
    /// Not in IntelMQ: seconds to wait for a DNS answer; default 5.
    #[serde(deserialize_with = "lenient::seconds")]
    pub resolver_timeout: f64,
}

impl Default for CymruWhoisExpertParams {
    fn default() -> Self {
        CymruWhoisExpertParams {
            overwrite: false,
            redis_cache_host: "127.0.0.1".to_string(),
            redis_cache_port: 6379,
            redis_cache_db: 5,
            redis_cache_password: None,
            redis_cache_ttl: 86400,
            resolver: None,
            resolver_timeout: 5.0,
        }
    }
}

/// The query name of an address in Cymru's origin zones.
pub fn origin_query(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.origin.asn.cymru.com", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let nibbles: Vec<String> =
                a.octets().iter().rev().flat_map(|b| [b & 0x0f, b >> 4]).map(|n| format!("{n:x}")).collect();
            format!("{}.origin6.asn.cymru.com", nibbles.join("."))
        }
    }
}

/// Splits a Cymru answer at `|`: quotes removed, stripped, "NA" and "" become `None`.
fn split_answer(text: &str) -> Vec<Option<String>> {
    text.split('|')
        .map(|item| {
            let item = item.replace('"', "");
            let item = item.trim();
            (!item.is_empty() && item != "NA").then(|| item.to_string())
        })
        .collect()
}

/// Parses an origin answer (`"1930 | 193.136.0.0/15 | PT | ripencc | 2009-02-05"`).
pub fn parse_origin(text: &str) -> Map<String, Value> {
    let items = split_answer(text);
    let item = |i: usize| items.get(i).cloned().flatten();
    let mut result = Map::new();
    if let Some(asn) = item(0).and_then(|a| a.split(' ').next().map(str::to_string)) {
        if asn.parse::<i64>().is_ok() {
            result.insert("asn".into(), Value::String(asn));
        }
    }
    if let Some(network) = item(1) {
        result.insert("network".into(), Value::String(network));
    }
    if let Some(cc) = item(2) {
        result.insert("geolocation.cc".into(), Value::String(cc));
    }
    if let Some(registry) = item(3) {
        result.insert("registry".into(), Value::String(registry));
    }
    if let Some(date) = item(4) {
        result.insert("allocated".into(), Value::String(format!("{date}T00:00:00+00:00")));
    }
    result
}

/// Parses an AS answer (`"23028 | US | arin | 2002-01-04 | TEAM-CYMRU - Team Cymru Inc., US"`):
/// the AS name.
pub fn parse_as_name(text: &str) -> Option<String> {
    split_answer(text).get(4).cloned().flatten()
}

/// TXT bytes as text: UTF-8, else Latin-1.
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// The prefix length of a network text, for "the most specific wins".
fn prefix_len(network: &Value) -> Option<u8> {
    network.as_str()?.split_once('/')?.1.parse().ok()
}

/// The more specific of several origin answers (IntelMQ's choice: answers with a network beat
/// answers without, then the smallest network).
fn most_specific(answers: Vec<Map<String, Value>>) -> Option<Map<String, Value>> {
    let mut best: Option<Map<String, Value>> = None;
    for answer in answers {
        best = match best {
            None => Some(answer),
            Some(current) => match (answer.get("network"), current.get("network")) {
                (None, _) => Some(current),
                (Some(_), None) => Some(answer),
                (Some(a), Some(c)) => {
                    if prefix_len(a).unwrap_or(0) > prefix_len(c).unwrap_or(0) {
                        Some(answer)
                    } else {
                        Some(current)
                    }
                }
            },
        };
    }
    best.filter(|b| !b.is_empty())
}

/// Asks Cymru about `ip`: `Ok(None)` when it knows nothing.
pub fn cymru_query(client: &TxtClient, ip: IpAddr) -> Result<Option<Map<String, Value>>, DnsError> {
    let answers = client.query_txt(&origin_query(ip))?.unwrap_or_default();
    let Some(mut result) = most_specific(answers.iter().map(|a| parse_origin(&decode(a))).collect()) else {
        return Ok(None);
    };
    if let Some(asn) = result.get("asn").and_then(Value::as_str).map(str::to_string) {
        let as_answers = client.query_txt(&format!("AS{asn}.asn.cymru.com"))?.unwrap_or_default();
        if let Some(name) = as_answers.first().and_then(|a| parse_as_name(&decode(a))) {
            result.insert("as_name".into(), Value::String(name));
        }
    }
    Ok(Some(result))
}

/// Adds Team Cymru's whois data.
pub struct CymruWhoisExpertBot {
    overwrite: bool,
    ttl: Option<Duration>,
    resolver: Option<SocketAddr>,
    timeout: Duration,
    client: Option<TxtClient>,
    pending_warning: Option<String>,
}

impl BuildBot for CymruWhoisExpertBot {
    type Params = CymruWhoisExpertParams;

    fn build(params: CymruWhoisExpertParams) -> Result<Self, ParamError> {
        let resolver = match params.resolver.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(text) => Some(
                parse_server(text)
                    .ok_or_else(|| ParamError::new("resolver", format!("`{text}` is not an `ip` or `ip:port`")))?,
            ),
            None => None,
        };
        if params.resolver_timeout <= 0.0 {
            return Err(ParamError::new("resolver_timeout", "must be more than 0 seconds"));
        }
        let changed = lenient::changed_redis_params(
            &params.redis_cache_host,
            params.redis_cache_port,
            params.redis_cache_db,
            5,
            params.redis_cache_password.as_deref(),
        );
        Ok(CymruWhoisExpertBot {
            overwrite: params.overwrite,
            ttl: (params.redis_cache_ttl > 0).then(|| Duration::from_secs(params.redis_cache_ttl)),
            resolver,
            timeout: Duration::from_secs_f64(params.resolver_timeout),
            client: None,
            pending_warning: lenient::redis_warning(&changed),
        })
    }
}

impl ExpertBot for CymruWhoisExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if let Some(warning) = self.pending_warning.take() {
            ctx.log.log(Level::Warning, &warning);
        }
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let server = self
                    .resolver
                    .or_else(|| system_nameserver(Path::new("/etc/resolv.conf")))
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53)));
                let client = TxtClient { server, timeout: self.timeout };
                self.client = Some(client.clone());
                client
            }
        };
        let opts = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
        for dir in ["source", "destination"] {
            let Some(text) = event.get_str(&format!("{dir}.ip")) else {
                continue;
            };
            let ip: IpAddr =
                text.parse().map_err(|_| BotError::Invalid(format!("{dir}.ip `{text}` is not an address")))?;
            let version = if ip.is_ipv4() { 4 } else { 6 };
            let cache_key = format!("{version}_{text}");
            let cached = ctx.state.get(cache_key.as_bytes()).and_then(|v| serde_json::from_slice::<Value>(&v).ok());
            let result = match cached {
                Some(Value::Object(map)) => Some(map),
                Some(_) => None,
                None => match cymru_query(&client, ip) {
                    Ok(result) => {
                        if result.is_none() {
                            ctx.log.log(Level::Info, &format!("Got no result from Cymru for IP address {text:?}."));
                        }
                        let json = result.clone().map_or(Value::Null, Value::Object).to_string();
                        ctx.state.put(cache_key.as_bytes(), json.as_bytes(), self.ttl);
                        result
                    }
                    Err(e) => {
                        ctx.log.log(Level::Warning, &format!("Cymru lookup of {text} failed: {e}."));
                        None
                    }
                },
            };
            for (key, value) in result.into_iter().flatten() {
                if key == "registry" && value == "other" {
                    continue;
                }
                event.add_with(&format!("{dir}.{key}"), value, opts)?;
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
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::super::dns::test_server;
    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn table() -> HashMap<String, Vec<Vec<&'static str>>> {
        HashMap::from([
            (
                "34.216.184.93.origin.asn.cymru.com".to_string(),
                vec![
                    vec!["15133 | 93.184.216.0/22 | EU | ripencc | 2008-06-02"],
                    vec!["15133 4711 | 93.184.216.0/24 | EU | ripencc | 2008-06-02"],
                ],
            ),
            (
                "AS15133.asn.cymru.com".to_lowercase(),
                vec![vec!["15133 | US | arin | 2007-03-19 | EDGECAST - Verizon, US"]],
            ),
            (
                format!("{}.origin6.asn.cymru.com", "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.8.8.0.0.0.0.5.0.1.0.0.2"),
                vec![vec!["16876 | 2001:500:88::/48 | US | other | "]],
            ),
            ("as16876.asn.cymru.com".to_string(), vec![vec!["16876 | US | arin | 2006-01-01 | ICANN-DC, US"]]),
            ("1.2.0.192.origin.asn.cymru.com".to_string(), vec![vec!["NA | 192.0.2.0/24 | ZZ | NA | NA"]]),
        ])
    }

    fn bot(server: SocketAddr, params: Value) -> CymruWhoisExpertBot {
        let mut params: CymruWhoisExpertParams = serde_json::from_value(params).unwrap();
        params.resolver = Some(server.to_string());
        CymruWhoisExpertBot::build(params).unwrap()
    }

    fn run(bot: &mut CymruWhoisExpertBot, state: &mut MemoryState, log: &mut MemoryLog, fields: Value) -> Message {
        let h = harmonization();
        let root = Path::new("/");
        let mut ctx =
            Context { bot_id: "cymru", harmonization: &h, root, state, log, clock: &crate::bots::SystemClock };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn reverse_names_follow_cymrus_zones() {
        assert_eq!(origin_query("192.0.2.1".parse().unwrap()), "1.2.0.192.origin.asn.cymru.com");
        assert!(origin_query("2001:db8::1".parse().unwrap()).starts_with("1.0.0.0.0.0.0.0"));
        assert!(origin_query("2001:db8::1".parse().unwrap()).ends_with("8.b.d.0.1.0.0.2.origin6.asn.cymru.com"));
    }

    #[test]
    fn answers_are_parsed_as_intelmq_does() {
        let r = parse_origin("9395 17431 | 219.234.80.0/20 | CN | apnic   | 2002-04-17");
        assert_eq!(r["asn"], json!("9395"));
        assert_eq!(r["allocated"], json!("2002-04-17T00:00:00+00:00"));
        assert_eq!(Value::Object(parse_origin("\"NA | 10.0.0.0/8 | | NA |\"")), json!({"network": "10.0.0.0/8"}));
        assert_eq!(
            parse_as_name("1930  | EU | ripencc |            | RCCN Rede Ciencia Tecnologia e Sociedade (RCTS),PT")
                .as_deref(),
            Some("RCCN Rede Ciencia Tecnologia e Sociedade (RCTS),PT")
        );
    }

    #[test]
    fn lookup_through_a_local_dns_server_fills_the_fields_and_caches() {
        let server = test_server::start(table(), 20);
        let mut bot = bot(server.addr, json!({"redis_cache_ttl": "60"}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let fields = json!({"source.ip": "93.184.216.34", "destination.ip": "2001:500:88:200::7", "source.asn": 1});
        let msg = run(&mut bot, &mut state, &mut log, fields.clone());
        assert_eq!(msg.get("source.asn"), Some(&json!(1)), "existing value kept without overwrite");
        assert_eq!(msg.get_str("source.network"), Some("93.184.216.0/24"));
        assert_eq!(msg.get_str("source.geolocation.cc"), Some("EU"));
        assert_eq!(msg.get_str("source.registry"), Some("RIPE"));
        assert_eq!(msg.get_str("source.allocated"), Some("2008-06-02T00:00:00+00:00"));
        assert_eq!(msg.get_str("source.as_name"), Some("EDGECAST - Verizon, US"));
        assert_eq!(msg.get("destination.asn"), Some(&json!(16876)));
        assert!(!msg.contains("destination.registry"), "registry `other` is skipped");
        assert!(!msg.contains("destination.allocated"));
        assert_eq!(msg.get_str("destination.as_name"), Some("ICANN-DC, US"));
        let cached: Value = serde_json::from_slice(&state.entries[b"4_93.184.216.34".as_slice()]).unwrap();
        assert_eq!(cached["network"], json!("93.184.216.0/24"));
        let asked = server.queries.load(Ordering::SeqCst);
        assert_eq!(asked, 4);
        let again = run(&mut bot, &mut state, &mut log, fields);
        assert_eq!(again.get_str("source.network"), Some("93.184.216.0/24"));
        assert_eq!(server.queries.load(Ordering::SeqCst), asked, "second run is answered from the cache");
    }

    #[test]
    fn overwrite_replaces_and_unknown_addresses_are_cached_as_null() {
        let server = test_server::start(table(), 20);
        let mut bot = bot(server.addr, json!({"overwrite": true}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let msg = run(
            &mut bot,
            &mut state,
            &mut log,
            json!({"source.ip": "93.184.216.34", "source.asn": 1, "destination.ip": "10.0.0.1"}),
        );
        assert_eq!(msg.get("source.asn"), Some(&json!(15133)));
        assert!(!msg.contains("destination.asn"));
        assert_eq!(state.entries[b"4_10.0.0.1".as_slice()], b"null".to_vec());
        let partial = run(&mut bot, &mut state, &mut log, json!({"source.ip": "192.0.2.1"}));
        assert_eq!(partial.get_str("source.network"), Some("192.0.2.0/24"));
        assert!(!partial.contains("source.asn"));
    }

    #[test]
    fn a_silent_server_skips_the_address_without_caching() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bot = bot(silent.local_addr().unwrap(), json!({"resolver_timeout": 0.2}));
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let msg = run(&mut bot, &mut state, &mut log, json!({"source.ip": "192.0.2.1"}));
        assert!(!msg.contains("source.asn"));
        assert!(state.entries.is_empty());
        assert!(log.lines.iter().any(|(l, m)| *l == Level::Warning && m.contains("192.0.2.1")));
    }

    #[test]
    fn a_bad_resolver_is_refused() {
        let params: CymruWhoisExpertParams = serde_json::from_value(json!({"resolver": "dns.example"})).unwrap();
        assert_eq!(CymruWhoisExpertBot::build(params).err().unwrap().key, "resolver");
    }
}
