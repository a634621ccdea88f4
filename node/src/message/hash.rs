//! IntelMQ's message hash (`Message.hash`): SHA-256 over the sorted fields with Python reprs,
//! used by the deduplicator, threshold and aggregate experts.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::wire::write_field_repr;
use super::Message;

/// How `filter_keys` is applied: drop those keys, or keep only them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FilterType {
    /// Hash every key except the filter keys (IntelMQ's default).
    #[default]
    Blacklist,
    /// Hash only the filter keys.
    Whitelist,
}

impl FilterType {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterType::Blacklist => "blacklist",
            FilterType::Whitelist => "whitelist",
        }
    }
}

impl fmt::Display for FilterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FilterType {
    type Err = String;

    /// `"blacklist"` or `"whitelist"` (exact, as IntelMQ compares them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blacklist" => Ok(FilterType::Blacklist),
            "whitelist" => Ok(FilterType::Whitelist),
            other => Err(format!("invalid filter type `{other}`: expected `blacklist` or `whitelist`")),
        }
    }
}

/// The lowercase hex SHA-256 of the message: for each field in key order, except
/// `time.observation` and as filtered, `key + 0xC0 + repr(value) + 0xC0`.
pub fn message_hash<S: std::hash::BuildHasher>(
    msg: &Message,
    filter_keys: &HashSet<String, S>,
    filter_type: FilterType,
) -> String {
    let mut items = msg.field_refs();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    let mut repr = String::with_capacity(256);
    for (key, value) in items {
        if key == "time.observation" {
            continue;
        }
        let listed = filter_keys.contains(key);
        let keep = match filter_type {
            FilterType::Blacklist => !listed,
            FilterType::Whitelist => listed,
        };
        if !keep {
            continue;
        }
        hasher.update(key.as_bytes());
        hasher.update([0xc0u8]);
        repr.clear();
        write_field_repr(&mut repr, value);
        hasher.update(repr.as_bytes());
        hasher.update([0xc0u8]);
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Harmonization, MessageKind};

    fn event() -> Message {
        let mut m = Message::new(MessageKind::Event, Harmonization::builtin());
        m.add("source.ip", "192.0.2.1").expect("add ip");
        m.add("source.port", 80).expect("add port");
        m.add("time.observation", "2015-01-01T00:00:00+00:00").expect("add time");
        m.add("feed.accuracy", 100.0).expect("add accuracy");
        m
    }

    /// The reference digest was computed with Python: `hashlib.sha256()` fed with
    /// `k.encode() + b'\xc0' + repr(v).encode() + b'\xc0'` for `sorted(items)`.
    #[test]
    fn matches_python_digest() {
        let mut m = event();
        m.add("extra.x", serde_json::json!({"a": [1, "b", null]})).expect("add extra");
        assert_eq!(
            m.hash(&HashSet::new(), FilterType::Blacklist),
            "9eec4e0e8388deec8134869ba870bccff41d93ba4c26516221d3b7cd42e18e36"
        );
    }

    fn python_digest(items: &[(&str, &str)]) -> String {
        let mut h = Sha256::new();
        for (k, r) in items {
            h.update(k.as_bytes());
            h.update([0xc0u8]);
            h.update(r.as_bytes());
            h.update([0xc0u8]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn time_observation_is_always_skipped() {
        let a = event();
        let mut b = event();
        b.change("time.observation", "2020-01-01T00:00:00+00:00").expect("change");
        assert_eq!(a.hash(&HashSet::new(), FilterType::Blacklist), b.hash(&HashSet::new(), FilterType::Blacklist));
        let only_time: HashSet<String> = ["time.observation".to_string()].into();
        assert_eq!(a.hash(&only_time, FilterType::Whitelist), python_digest(&[]));
    }

    #[test]
    fn whitelist_keeps_and_blacklist_drops() {
        let m = event();
        let keys: HashSet<String> = ["source.ip".to_string()].into();
        assert_eq!(m.hash(&keys, FilterType::Whitelist), python_digest(&[("source.ip", "'192.0.2.1'")]));
        assert_eq!(
            m.hash(&keys, FilterType::Blacklist),
            python_digest(&[("feed.accuracy", "100.0"), ("source.port", "80")])
        );
    }

    #[test]
    fn filter_type_parses_only_the_two_names() {
        assert_eq!("blacklist".parse::<FilterType>(), Ok(FilterType::Blacklist));
        assert_eq!("whitelist".parse::<FilterType>(), Ok(FilterType::Whitelist));
        let err = "Whitelist".parse::<FilterType>().expect_err("case matters");
        assert!(err.contains("Whitelist"));
        assert!("".parse::<FilterType>().is_err());
    }
}
