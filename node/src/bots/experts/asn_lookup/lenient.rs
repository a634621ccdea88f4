//! Parameter helpers shared by the lookup experts (asn_lookup, maxmind_geoip, tor_nodes,
//! recordedfuture_iprisk, generic_db_lookup, gethostbyname, reverse_dns, cymru_whois): values as
//! IntelMQ configs write them (`"true"`, `"86400"`), and the warning about ignored `redis_cache_*`
//! parameters. Candidates for a shared `bots/params.rs`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A boolean given as JSON bool, a string (`"true"`, `"False"`, `"1"`, `"no"`) or 0/1.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(d)?;
    to_bool(&value).ok_or_else(|| serde::de::Error::custom(format!("{value} is not a boolean")))
}

fn to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A non-negative integer given as a number or a numeric string.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = Value::deserialize(d)?;
    to_u64(&value).ok_or_else(|| serde::de::Error::custom(format!("{value} is not a non-negative integer")))
}

fn to_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A port number given as a number or a numeric string.
pub fn u16<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let value = Value::deserialize(d)?;
    to_u64(&value)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a port number")))
}

/// A number of seconds given as a number or a numeric string (fractions allowed).
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = Value::deserialize(d)?;
    let secs = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    secs.filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a number of seconds")))
}

/// The `redis_cache_*` parameters of a bot whose cache lives in the node's store: the names of
/// those set to something other than IntelMQ's defaults (host "127.0.0.1", port 6379, no password,
/// the bot's own db).
pub fn changed_redis_params(
    host: &str,
    port: u64,
    db: u64,
    default_db: u64,
    password: Option<&str>,
) -> Vec<&'static str> {
    [
        ("redis_cache_host", host != "127.0.0.1"),
        ("redis_cache_port", port != 6379),
        ("redis_cache_db", db != default_db),
        ("redis_cache_password", password.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}

/// The warning logged once when [`changed_redis_params`] found any.
pub fn redis_warning(changed: &[&str]) -> Option<String> {
    (!changed.is_empty())
        .then(|| format!("Parameters {} are ignored: the cache lives in the node's store.", changed.join(", ")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_and_numbers_count_as_booleans() {
        assert_eq!(to_bool(&json!("True")), Some(true));
        assert_eq!(to_bool(&json!("false")), Some(false));
        assert_eq!(to_bool(&json!(1)), Some(true));
        assert_eq!(to_bool(&json!("maybe")), None);
    }

    #[test]
    fn numeric_strings_count_as_integers() {
        assert_eq!(to_u64(&json!("86400")), Some(86400));
        assert_eq!(to_u64(&json!(60.0)), Some(60));
        assert_eq!(to_u64(&json!(-1)), None);
    }

    #[test]
    fn only_changed_redis_parameters_are_named() {
        assert!(changed_redis_params("127.0.0.1", 6379, 5, 5, None).is_empty());
        assert_eq!(changed_redis_params("10.0.0.1", 6379, 4, 5, None), vec!["redis_cache_host", "redis_cache_db"]);
        assert!(redis_warning(&["redis_cache_db"]).is_some_and(|w| w.contains("redis_cache_db")));
    }
}
