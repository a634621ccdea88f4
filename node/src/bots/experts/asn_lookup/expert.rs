//! `intelmq.bots.experts.asn_lookup.expert`: looks `source.ip` and `destination.ip` up in a pyasn
//! data file (longest prefix match) and sets `<dir>.asn` and `<dir>.network`, replacing existing
//! values as IntelMQ does.
//!
//! The file is pyasn's text format (`pyasn_util_convert.py` output): lines `<prefix>\t<asn>`,
//! comments starting with `;`. It is read when the first event arrives (a relative path resolves
//! against the node root); a missing or unreadable file stops the bot. The `--update-database`
//! helper (download from routeviews.org and conversion) is not part of this bot.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the ASN lookup expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsnLookupExpertParams {
    /// The pyasn data file (`ipasn.dat`); default null (must be configured).
    pub database: Option<String>,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub autoupdate_cached_database: bool,
}

impl Default for AsnLookupExpertParams {
    fn default() -> Self {
        AsnLookupExpertParams { database: None, autoupdate_cached_database: true }
    }
}

/// Why a pyasn file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AsnDatabaseError {
    #[error("pyasn data file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("pyasn data file {path}, line {line}: cannot parse `{text}`")]
    Line { path: String, line: usize, text: String },
}

/// Prefix -> ASN, one hash map per prefix length, longest first.
#[derive(Debug, Default)]
pub struct AsnDatabase {
    v4: Vec<(u8, HashMap<u32, u32>)>,
    v6: Vec<(u8, HashMap<u128, u32>)>,
}

fn mask_v4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask_v6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len)))
    }
}

impl AsnDatabase {
    /// Reads a pyasn text file.
    pub fn load(path: &Path) -> Result<Self, AsnDatabaseError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| AsnDatabaseError::Io { path: shown.clone(), source })?;
        Self::parse(&text).map_err(|(line, text)| AsnDatabaseError::Line { path: shown, line, text })
    }

    /// Parses pyasn's text format; an error gives the line number and text.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut v4: HashMap<u8, HashMap<u32, u32>> = HashMap::new();
        let mut v6: HashMap<u8, HashMap<u128, u32>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with(';') {
                continue;
            }
            let bad = || (i + 1, line.to_string());
            let mut parts = trimmed.split_whitespace();
            let (Some(prefix), Some(asn)) = (parts.next(), parts.next()) else {
                return Err(bad());
            };
            let (addr, len) = prefix.split_once('/').ok_or_else(bad)?;
            let asn: u32 = asn.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            match addr.parse::<IpAddr>().map_err(|_| bad())? {
                IpAddr::V4(a) if len <= 32 => {
                    v4.entry(len).or_default().insert(mask_v4(u32::from(a), len), asn);
                }
                IpAddr::V6(a) if len <= 128 => {
                    v6.entry(len).or_default().insert(mask_v6(u128::from(a), len), asn);
                }
                _ => return Err(bad()),
            }
        }
        let mut v4: Vec<_> = v4.into_iter().collect();
        let mut v6: Vec<_> = v6.into_iter().collect();
        v4.sort_by(|a, b| b.0.cmp(&a.0));
        v6.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(AsnDatabase { v4, v6 })
    }

    /// The ASN and the most specific prefix (pyasn's `lookup`), as `("15133", "93.184.216.0/24")`.
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, String)> {
        match ip {
            IpAddr::V4(a) => {
                let addr = u32::from(a);
                self.v4.iter().find_map(|(len, map)| {
                    let net = mask_v4(addr, *len);
                    map.get(&net).map(|asn| (*asn, format!("{}/{len}", Ipv4Addr::from(net))))
                })
            }
            IpAddr::V6(a) => {
                let addr = u128::from(a);
                self.v6.iter().find_map(|(len, map)| {
                    let net = mask_v6(addr, *len);
                    map.get(&net).map(|asn| (*asn, format!("{}/{len}", Ipv6Addr::from(net))))
                })
            }
        }
    }
}

/// Adds the ASN and network of source and destination.
pub struct AsnLookupExpertBot {
    database_path: String,
    database: Option<AsnDatabase>,
}

impl BuildBot for AsnLookupExpertBot {
    type Params = AsnLookupExpertParams;

    fn build(params: AsnLookupExpertParams) -> Result<Self, ParamError> {
        let database_path = params
            .database
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| ParamError::new("database", "the path of the pyasn data file is required"))?;
        Ok(AsnLookupExpertBot { database_path, database: None })
    }
}

impl ExpertBot for AsnLookupExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if self.database.is_none() {
            let path = ctx.resolve(&self.database_path);
            match AsnDatabase::load(&path) {
                Ok(db) => self.database = Some(db),
                Err(e) => {
                    ctx.log.log(
                        Level::Error,
                        &format!(
                            "pyasn data file does not exist or could not be accessed in {:?}.",
                            path.display().to_string()
                        ),
                    );
                    return Err(BotError::Fatal(e.to_string()));
                }
            }
        }
        let Some(db) = &self.database else {
            return Err(BotError::Fatal("pyasn data file is not loaded".to_string()));
        };
        let overwrite = AddOptions { overwrite: Some(true), ..AddOptions::default() };
        for dir in ["source", "destination"] {
            let Some(ip) = event.get_str(&format!("{dir}.ip")).and_then(|ip| ip.parse::<IpAddr>().ok()) else {
                continue;
            };
            if let Some((asn, network)) = db.lookup(ip) {
                event.add_with(&format!("{dir}.asn"), Value::String(asn.to_string()), overwrite)?;
                event.add_with(&format!("{dir}.network"), Value::String(network), overwrite)?;
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

    const DAT: &str = concat!(
        "; IP-ASN32-DAT file\n;\n",
        "93.184.216.0/24\t15133\n93.184.0.0/16\t1\n192.0.43.0/24\t40528\n2001:500:88::/48\t16876\n"
    );

    fn run(bot: &mut AsnLookupExpertBot, root: &Path, fields: Value) -> Result<Message, BotError> {
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "asn-lookup-expert",
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

    #[test]
    fn longest_prefix_wins_for_v4_and_v6() {
        let db = AsnDatabase::parse(DAT).unwrap();
        assert_eq!(db.lookup("93.184.216.34".parse().unwrap()), Some((15133, "93.184.216.0/24".to_string())));
        assert_eq!(db.lookup("93.184.1.1".parse().unwrap()), Some((1, "93.184.0.0/16".to_string())));
        assert_eq!(db.lookup("2001:500:88:200::7".parse().unwrap()), Some((16876, "2001:500:88::/48".to_string())));
        assert_eq!(db.lookup("10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = AsnDatabase::parse("; c\n1.2.3.0/24 notanumber\n").err().unwrap();
        assert_eq!(err.0, 2);
    }

    #[test]
    fn relative_database_resolves_against_root_and_overwrites_existing_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ipasn.dat"), DAT).unwrap();
        let mut bot = AsnLookupExpertBot::build(AsnLookupExpertParams {
            database: Some("ipasn.dat".into()),
            ..Default::default()
        })
        .unwrap();
        let msg = run(
            &mut bot,
            dir.path(),
            json!({"source.ip": "93.184.216.34", "source.asn": 1, "destination.ip": "10.0.0.1"}),
        )
        .unwrap();
        assert_eq!(msg.get("source.asn"), Some(&json!(15133)));
        assert_eq!(msg.get_str("source.network"), Some("93.184.216.0/24"));
        assert!(!msg.contains("destination.asn"));
    }

    #[test]
    fn missing_database_stops_the_bot() {
        let dir = tempfile::tempdir().unwrap();
        let mut bot = AsnLookupExpertBot::build(AsnLookupExpertParams {
            database: Some("nope.dat".into()),
            ..Default::default()
        })
        .unwrap();
        let err = run(&mut bot, dir.path(), json!({"source.ip": "192.0.2.1"})).err().unwrap();
        assert!(matches!(err, BotError::Fatal(_)), "{err}");
    }

    #[test]
    fn database_is_required() {
        let err = AsnLookupExpertBot::build(AsnLookupExpertParams::default()).err().unwrap();
        assert_eq!(err.key, "database");
    }
}
