//! `intelmq.bots.experts.rfc1918.expert`: finds values reserved for documentation and private use
//! and removes the field (`del`) or drops the event (`drop`). `fields` and `policy` are parallel
//! comma-separated lists; the first hit decides. Checked by the field's last part: `.ip` in the
//! reserved networks, `.fqdn` an RFC 2606 name, `.url` its host either way, `.asn` a documentation
//! AS number.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::types::{ip_to_int, ip_version, parse_network, urlsplit};
use crate::message::Message;

/// The reserved networks (private, shared, loopback, link-local, documentation, multicast, ...).
const NETWORKS: [&str; 17] = [
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "fe80::/64",
    "2001:db8::/32",
];

/// Reserved top-level names (RFC 2606/6761) and the example second-level domains.
const TLDS: [&str; 4] = ["test", "example", "invalid", "localhost"];
const DOMAINS: [&str; 3] = ["example.com", "example.net", "example.org"];

/// Documentation AS numbers (RFC 5398).
const ASN_RANGES: [(u64, u64); 2] = [(64496, 64511), (65536, 65551)];

/// Parameters of the RFC 1918 expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rfc1918ExpertParams {
    /// The fields checked, comma-separated; default "destination.ip,source.ip,source.url".
    pub fields: String,
    /// `del` or `drop` for each field, comma-separated; default "del,drop,drop".
    pub policy: String,
}

impl Default for Rfc1918ExpertParams {
    fn default() -> Self {
        Rfc1918ExpertParams {
            fields: "destination.ip,source.ip,source.url".to_string(),
            policy: "del,drop,drop".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Delete,
    Drop,
    /// Any other word: a hit changes nothing.
    Ignore,
}

/// Removes or drops reserved values.
pub struct Rfc1918ExpertBot {
    rules: Vec<(String, Policy)>,
    networks: Vec<(u8, u128, u32)>,
}

impl BuildBot for Rfc1918ExpertBot {
    type Params = Rfc1918ExpertParams;

    fn build(params: Rfc1918ExpertParams) -> Result<Self, ParamError> {
        let fields: Vec<String> = params.fields.to_lowercase().split(',').map(|f| f.trim().to_string()).collect();
        let policies: Vec<String> = params.policy.to_lowercase().split(',').map(|p| p.trim().to_string()).collect();
        if fields.len() != policies.len() {
            return Err(ParamError::new(
                "policy",
                format!("{} policies for {} fields: the lists must have the same length", policies.len(), fields.len()),
            ));
        }
        let rules = fields
            .into_iter()
            .zip(policies)
            .map(|(field, policy)| {
                let policy = match policy.as_str() {
                    "del" => Policy::Delete,
                    "drop" => Policy::Drop,
                    _ => Policy::Ignore,
                };
                (field, policy)
            })
            .collect();
        let mut networks = Vec::new();
        for net in NETWORKS {
            // The constants are valid networks; a failure would only skip one.
            if let Some((addr, plen)) = parse_network(net, true) {
                let canonical = addr.canonical();
                if let (Some(v), Some(n)) = (ip_version(&canonical), ip_to_int(&canonical)) {
                    networks.push((v, n, plen));
                }
            }
        }
        Ok(Rfc1918ExpertBot { rules, networks })
    }
}

impl Rfc1918ExpertBot {
    fn is_in_net(&self, ip: &str) -> bool {
        let (Some(version), Some(n)) = (ip_version(ip), ip_to_int(ip)) else {
            return false;
        };
        let bits = if version == 4 { 32 } else { 128 };
        self.networks.iter().any(|&(v, net, plen)| v == version && (plen == 0 || (n ^ net) >> (bits - plen) == 0))
    }

    fn is_reserved_domain(name: &str) -> bool {
        let name = name.trim_end_matches('.').to_lowercase();
        TLDS.iter().any(|tld| name == *tld || name.ends_with(&format!(".{tld}")))
            || DOMAINS.iter().any(|d| name == *d || name.ends_with(&format!(".{d}")))
    }

    fn is_reserved(&self, field: &str, value: &Value) -> bool {
        let last = field.rsplit('.').next().unwrap_or(field);
        match (last, value) {
            ("ip", Value::String(ip)) => self.is_in_net(ip),
            ("fqdn", Value::String(name)) => Self::is_reserved_domain(name),
            ("url", Value::String(url)) => {
                let Some(split) = urlsplit(url) else {
                    return false;
                };
                let hostinfo = split.netloc.rsplit_once('@').map_or(split.netloc.as_str(), |(_, h)| h);
                let host = match hostinfo.strip_prefix('[') {
                    Some(rest) => rest.split_once(']').map_or(rest, |(h, _)| h),
                    None => hostinfo.split_once(':').map_or(hostinfo, |(h, _)| h),
                };
                let host = host.to_lowercase();
                if host.is_empty() {
                    return false;
                }
                if ip_version(&host).is_some() {
                    self.is_in_net(&host)
                } else {
                    Self::is_reserved_domain(&host)
                }
            }
            ("asn", Value::Number(n)) => {
                n.as_u64().is_some_and(|asn| ASN_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&asn)))
            }
            _ => false,
        }
    }
}

impl ExpertBot for Rfc1918ExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        for (field, policy) in &self.rules {
            let Some(value) = event.get(field) else {
                continue;
            };
            if !self.is_reserved(field, value) {
                continue;
            }
            match policy {
                Policy::Delete => {
                    ctx.log.log(Level::Debug, &format!("Deleting field {field}."));
                    event.remove(field);
                }
                Policy::Drop => {
                    ctx.log.log(Level::Debug, &format!("Dropping event because of field {field}."));
                    return Ok(());
                }
                Policy::Ignore => {}
            }
            break;
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

    const ALL: fn() -> Value = || {
        json!({"fields": "destination.ip,source.ip,source.fqdn,destination.fqdn,source.url,source.url,source.asn",
               "policy": "del,drop,drop,del,drop,drop,drop"})
    };

    fn run(params: Value, fields: Value) -> Option<Message> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = std::path::Path::new("/");
        let mut ctx = Context {
            bot_id: "rfc1918",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut bot = Rfc1918ExpertBot::build(serde_json::from_value(params).unwrap()).unwrap();
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().map(|(_, m)| m)
    }

    #[test]
    fn reserved_destination_ip_is_deleted_and_source_ip_drops() {
        let msg = run(ALL(), json!({"source.ip": "93.184.216.34", "destination.ip": "192.0.2.9"})).unwrap();
        assert!(!msg.contains("destination.ip"));
        assert!(run(ALL(), json!({"source.ip": "192.168.0.1"})).is_none());
        assert!(run(ALL(), json!({"source.ip": "2001:db8::1"})).is_none());
    }

    #[test]
    fn domains_urls_and_asns() {
        assert!(!run(ALL(), json!({"destination.fqdn": "sub.example.invalid"})).unwrap().contains("destination.fqdn"));
        assert!(run(ALL(), json!({"destination.fqdn": "fooexample.com"})).unwrap().contains("destination.fqdn"));
        assert!(run(ALL(), json!({"source.url": "http://sub.example.com/foo/bar"})).is_none());
        assert!(run(ALL(), json!({"source.url": "http://10.1.2.3:8080/"})).is_none());
        assert!(run(ALL(), json!({"source.asn": 64496})).is_none());
        assert!(run(ALL(), json!({"source.asn": 64512})).is_some());
    }

    #[test]
    fn empty_lists_change_nothing_and_unequal_lists_are_refused() {
        assert!(run(json!({"fields": "", "policy": ""}), json!({"source.ip": "10.0.0.1"})).is_some());
        let params: Rfc1918ExpertParams = serde_json::from_value(json!({"fields": "a,b", "policy": "del"})).unwrap();
        assert_eq!(Rfc1918ExpertBot::build(params).err().unwrap().key, "policy");
    }
}
