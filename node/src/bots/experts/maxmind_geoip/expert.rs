//! `intelmq.bots.experts.maxmind_geoip.expert`: looks `source.ip` and `destination.ip` up in a
//! MaxMind GeoIP2/GeoLite2 City database and sets `<dir>.geolocation.cc` (the country, or the
//! registered country with `use_registered`), `.latitude`, `.longitude` and `.city` (English name).
//! Values that are missing, empty or zero are not set (IntelMQ tests their truth); existing values
//! are kept unless `overwrite`. An address not in the database leaves the event as it is.
//!
//! The database is opened when the first event arrives (a relative path resolves against the node
//! root); a missing or invalid file stops the bot. The lookup goes through [`GeoLookup`], so the
//! field mapping does not depend on the file format. The `--update-database` download helper
//! (download.maxmind.com, `license_key`) is not part of this bot.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bots::experts::asn_lookup::lenient;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Level, Outbox, ParamError};
use crate::message::{AddOptions, Message};

/// Parameters of the MaxMind GeoIP expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxmindGeoipExpertParams {
    /// The City database; default "/opt/intelmq/var/lib/bots/maxmind_geoip/GeoLite2-City.mmdb".
    pub database: String,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default
    /// "<insert Maxmind license key>".
    pub license_key: Option<String>,
    /// Replace existing geolocation fields; default false (IntelMQ's docs say true, its code false).
    #[serde(deserialize_with = "lenient::bool")]
    pub overwrite: bool,
    /// Take the country code from `registered_country` instead of `country`; default false.
    #[serde(deserialize_with = "lenient::bool")]
    pub use_registered: bool,
    /// Used by IntelMQ's `--update-database` only, accepted and ignored; default true.
    #[serde(deserialize_with = "lenient::bool")]
    pub autoupdate_cached_database: bool,
}

impl Default for MaxmindGeoipExpertParams {
    fn default() -> Self {
        MaxmindGeoipExpertParams {
            database: "/opt/intelmq/var/lib/bots/maxmind_geoip/GeoLite2-City.mmdb".to_string(),
            license_key: Some("<insert Maxmind license key>".to_string()),
            overwrite: false,
            use_registered: false,
            autoupdate_cached_database: true,
        }
    }
}

/// What the expert uses of a City record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeoRecord {
    pub country_iso_code: Option<String>,
    pub registered_country_iso_code: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// The English city name.
    pub city_name: Option<String>,
}

/// A source of City records. `Ok(None)`: the address is not in the database.
pub trait GeoLookup: Send {
    fn city(&self, ip: IpAddr) -> Result<Option<GeoRecord>, String>;
}

#[derive(Deserialize)]
struct Names {
    names: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct IsoCode {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// The parts of a GeoIP2 City record the expert reads (other keys are skipped).
#[derive(Deserialize)]
struct CityRecord {
    city: Option<Names>,
    country: Option<IsoCode>,
    registered_country: Option<IsoCode>,
    location: Option<Location>,
}

/// A MaxMind DB file read into memory.
pub struct MmdbLookup {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl MmdbLookup {
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader =
            maxminddb::Reader::open_readfile(path).map_err(|e| format!("geoip database {}: {e}", path.display()))?;
        Ok(MmdbLookup { reader })
    }
}

impl GeoLookup for MmdbLookup {
    fn city(&self, ip: IpAddr) -> Result<Option<GeoRecord>, String> {
        if ip.is_ipv6() && self.reader.metadata.ip_version == 4 {
            return Err(format!("cannot look up the IPv6 address {ip} in an IPv4-only database"));
        }
        let record: Option<CityRecord> = self.reader.lookup(ip).map_err(|e| format!("geoip lookup of {ip}: {e}"))?;
        Ok(record.map(|r| GeoRecord {
            country_iso_code: r.country.and_then(|c| c.iso_code),
            registered_country_iso_code: r.registered_country.and_then(|c| c.iso_code),
            latitude: r.location.as_ref().and_then(|l| l.latitude),
            longitude: r.location.as_ref().and_then(|l| l.longitude),
            city_name: r.city.and_then(|c| c.names).and_then(|mut n| n.remove("en")),
        }))
    }
}

/// Adds geolocation from a MaxMind database.
pub struct MaxmindGeoipExpertBot {
    database_path: String,
    overwrite: bool,
    use_registered: bool,
    lookup: Option<Box<dyn GeoLookup>>,
}

impl BuildBot for MaxmindGeoipExpertBot {
    type Params = MaxmindGeoipExpertParams;

    fn build(params: MaxmindGeoipExpertParams) -> Result<Self, ParamError> {
        Ok(MaxmindGeoipExpertBot {
            database_path: params.database,
            overwrite: params.overwrite,
            use_registered: params.use_registered,
            lookup: None,
        })
    }
}

impl MaxmindGeoipExpertBot {
    /// Uses `lookup` instead of the database file (tests, other formats).
    pub fn with_lookup(mut self, lookup: Box<dyn GeoLookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }
}

impl ExpertBot for MaxmindGeoipExpertBot {
    fn process(&mut self, mut event: Message, ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        if self.lookup.is_none() {
            let path = ctx.resolve(&self.database_path);
            match MmdbLookup::open(&path) {
                Ok(db) => self.lookup = Some(Box::new(db)),
                Err(e) => {
                    ctx.log.log(
                        Level::Error,
                        &format!(
                            "GeoIP Database does not exist or could not be accessed in {:?}.",
                            path.display().to_string()
                        ),
                    );
                    return Err(BotError::Fatal(e));
                }
            }
        }
        let Some(lookup) = &self.lookup else {
            return Err(BotError::Fatal("geoip database is not loaded".to_string()));
        };
        let opts = AddOptions { overwrite: Some(self.overwrite), ..AddOptions::default() };
        for dir in ["source", "destination"] {
            let Some(text) = event.get_str(&format!("{dir}.ip")) else {
                continue;
            };
            let ip: IpAddr =
                text.parse().map_err(|_| BotError::Invalid(format!("{dir}.ip `{text}` is not an address")))?;
            let Some(record) = lookup.city(ip).map_err(BotError::Invalid)? else {
                continue;
            };
            let cc = if self.use_registered { record.registered_country_iso_code } else { record.country_iso_code };
            if let Some(cc) = cc.filter(|c| !c.is_empty()) {
                event.add_with(&format!("{dir}.geolocation.cc"), Value::String(cc), opts)?;
            }
            for (field, value) in [("latitude", record.latitude), ("longitude", record.longitude)] {
                if let Some(v) = value.filter(|v| *v != 0.0) {
                    event.add_with(&format!("{dir}.geolocation.{field}"), Value::from(v), opts)?;
                }
            }
            if let Some(city) = record.city_name.filter(|c| !c.is_empty()) {
                event.add_with(&format!("{dir}.geolocation.city"), Value::String(city), opts)?;
            }
        }
        out.send(event);
        Ok(())
    }
}

/// A writer of tiny MaxMind DB files for tests (IPv4 tree, 24-bit records).
#[cfg(test)]
pub(crate) mod mmdb_writer {
    /// A value of the MaxMind DB data section.
    pub enum V {
        Str(&'static str),
        Double(f64),
        U16(u16),
        U32(u32),
        U64(u64),
        Map(Vec<(&'static str, V)>),
        Array(Vec<V>),
    }

    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        let (first, extra): (u8, Vec<u8>) =
            if size < 29 { (size as u8, vec![]) } else { (29, vec![(size - 29) as u8]) };
        if kind <= 7 {
            out.push((kind << 5) | first);
        } else {
            out.push(first);
            out.push(kind - 7);
        }
        out.extend(extra);
    }

    pub fn encode(v: &V, out: &mut Vec<u8>) {
        match v {
            V::Str(s) => {
                control(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            V::Double(d) => {
                control(out, 3, 8);
                out.extend(d.to_be_bytes());
            }
            V::U16(n) => {
                control(out, 5, 2);
                out.extend(n.to_be_bytes());
            }
            V::U32(n) => {
                control(out, 6, 4);
                out.extend(n.to_be_bytes());
            }
            V::U64(n) => {
                control(out, 9, 8);
                out.extend(n.to_be_bytes());
            }
            V::Map(pairs) => {
                control(out, 7, pairs.len());
                for (k, v) in pairs {
                    encode(&V::Str(k), out);
                    encode(v, out);
                }
            }
            V::Array(items) => {
                control(out, 11, items.len());
                for item in items {
                    encode(item, out);
                }
            }
        }
    }

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }

    /// A database mapping each IPv4 prefix `(address, length)` to a record.
    pub fn build(entries: Vec<([u8; 4], u8, V)>) -> Vec<u8> {
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
        let mut data = Vec::new();
        for (addr, len, value) in entries {
            let offset = data.len();
            encode(&value, &mut data);
            let addr = u32::from_be_bytes(addr);
            let mut cur = 0;
            for i in 0..len {
                let bit = ((addr >> (31 - u32::from(i))) & 1) as usize;
                if i == len - 1 {
                    nodes[cur][bit] = Rec::Data(offset);
                } else {
                    cur = match nodes[cur][bit] {
                        Rec::Node(n) => n,
                        _ => {
                            nodes.push([Rec::Empty, Rec::Empty]);
                            let n = nodes.len() - 1;
                            nodes[cur][bit] = Rec::Node(n);
                            n
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let value = match rec {
                    Rec::Empty => count,
                    Rec::Node(n) => *n,
                    Rec::Data(off) => count + 16 + off,
                };
                out.extend(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        let meta = V::Map(vec![
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_700_000_000)),
            ("database_type", V::Str("Test-City")),
            ("description", V::Map(vec![("en", V::Str("test"))])),
            ("ip_version", V::U16(4)),
            ("languages", V::Array(vec![V::Str("en")])),
            ("node_count", V::U32(count as u32)),
            ("record_size", V::U16(24)),
        ]);
        encode(&meta, &mut out);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::mmdb_writer::{build, V};
    use super::*;
    use crate::bots::experts::test_support::{event, harmonization};
    use crate::bots::{MemoryLog, MemoryState};

    fn city_db() -> Vec<u8> {
        build(vec![
            (
                [81, 2, 69, 0],
                24,
                V::Map(vec![
                    (
                        "city",
                        V::Map(vec![
                            ("geoname_id", V::U32(2643743)),
                            ("names", V::Map(vec![("en", V::Str("London")), ("de", V::Str("London"))])),
                        ]),
                    ),
                    ("country", V::Map(vec![("iso_code", V::Str("GB"))])),
                    ("registered_country", V::Map(vec![("iso_code", V::Str("SE"))])),
                    (
                        "location",
                        V::Map(vec![
                            ("latitude", V::Double(51.5142)),
                            ("longitude", V::Double(-0.0931)),
                            ("time_zone", V::Str("Europe/London")),
                        ]),
                    ),
                ]),
            ),
            (
                [192, 0, 2, 0],
                24,
                V::Map(vec![
                    ("country", V::Map(vec![("iso_code", V::Str("AT"))])),
                    ("location", V::Map(vec![("latitude", V::Double(0.0)), ("longitude", V::Double(13.5))])),
                ]),
            ),
        ])
    }

    fn run(params: Value, fields: Value) -> Message {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("city.mmdb"), city_db()).unwrap();
        let mut params: MaxmindGeoipExpertParams = serde_json::from_value(params).unwrap();
        params.database = "city.mmdb".to_string();
        let mut bot = MaxmindGeoipExpertBot::build(params).unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let mut ctx = Context {
            bot_id: "geoip",
            harmonization: &h,
            root: dir.path(),
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, fields), &mut ctx, &mut out).unwrap();
        out.sent.pop().unwrap().1
    }

    #[test]
    fn city_record_fills_country_coordinates_and_city() {
        let msg = run(json!({}), json!({"source.ip": "81.2.69.160", "destination.ip": "10.0.0.1"}));
        assert_eq!(msg.get_str("source.geolocation.cc"), Some("GB"));
        assert_eq!(msg.get("source.geolocation.latitude"), Some(&json!(51.5142)));
        assert_eq!(msg.get("source.geolocation.longitude"), Some(&json!(-0.0931)));
        assert_eq!(msg.get_str("source.geolocation.city"), Some("London"));
        assert!(!msg.fields().keys().any(|k| k.starts_with("destination.geolocation")));
    }

    #[test]
    fn use_registered_takes_the_registered_country() {
        let msg = run(json!({"use_registered": "true"}), json!({"source.ip": "81.2.69.160"}));
        assert_eq!(msg.get_str("source.geolocation.cc"), Some("SE"));
    }

    #[test]
    fn zero_coordinates_and_missing_city_are_not_set() {
        let msg = run(json!({}), json!({"destination.ip": "192.0.2.7"}));
        assert_eq!(msg.get_str("destination.geolocation.cc"), Some("AT"));
        assert!(!msg.contains("destination.geolocation.latitude"));
        assert_eq!(msg.get("destination.geolocation.longitude"), Some(&json!(13.5)));
        assert!(!msg.contains("destination.geolocation.city"));
    }

    #[test]
    fn existing_values_are_kept_unless_overwrite() {
        let fields = json!({"source.ip": "81.2.69.160", "source.geolocation.cc": "DE"});
        assert_eq!(run(json!({}), fields.clone()).get_str("source.geolocation.cc"), Some("DE"));
        assert_eq!(run(json!({"overwrite": true}), fields).get_str("source.geolocation.cc"), Some("GB"));
    }

    #[test]
    fn ipv6_in_an_ipv4_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::write(&path, city_db()).unwrap();
        let db = MmdbLookup::open(&path).unwrap();
        assert!(db.city("2001:db8::1".parse().unwrap()).is_err());
        assert_eq!(db.city("10.1.1.1".parse().unwrap()).unwrap(), None);
    }

    #[test]
    fn a_missing_database_stops_the_bot() {
        let mut bot = MaxmindGeoipExpertBot::build(MaxmindGeoipExpertParams {
            database: "/nonexistent/x.mmdb".into(),
            ..Default::default()
        })
        .unwrap();
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = Path::new("/");
        let mut ctx = Context {
            bot_id: "geoip",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let err =
            bot.process(event(&h, json!({"source.ip": "10.0.0.1"})), &mut ctx, &mut Outbox::default()).err().unwrap();
        assert!(matches!(err, BotError::Fatal(_)));
    }

    #[test]
    fn another_lookup_can_stand_in_for_the_file() {
        struct Fixed;
        impl GeoLookup for Fixed {
            fn city(&self, _ip: IpAddr) -> Result<Option<GeoRecord>, String> {
                Ok(Some(GeoRecord { country_iso_code: Some("at".into()), ..Default::default() }))
            }
        }
        let mut bot =
            MaxmindGeoipExpertBot::build(MaxmindGeoipExpertParams::default()).unwrap().with_lookup(Box::new(Fixed));
        let h = harmonization();
        let (mut state, mut log) = (MemoryState::default(), MemoryLog::default());
        let root = Path::new("/");
        let mut ctx = Context {
            bot_id: "geoip",
            harmonization: &h,
            root,
            state: &mut state,
            log: &mut log,
            clock: &crate::bots::SystemClock,
        };
        let mut out = Outbox::default();
        bot.process(event(&h, json!({"source.ip": "10.0.0.1"})), &mut ctx, &mut out).unwrap();
        assert_eq!(out.sent[0].1.get_str("source.geolocation.cc"), Some("AT"));
    }
}
