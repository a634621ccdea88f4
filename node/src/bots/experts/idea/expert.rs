//! `intelmq.bots.experts.idea.expert`: converts the event into the IDEA format (CESNET's
//! Intrusion Detection Extensible Alert, version 0) and stores that JSON in `output`.
//!
//! The mapping is IntelMQ's: classification types to IDEA categories (plus `Test` in
//! `test_mode`), Source/Target from the `source.*`/`destination.*` fields, references, the
//! original data (`raw`, decoded as Latin-1) as an attachment, and a random `ID` (UUID 4). A part
//! whose fields are missing is left out; empty lists and objects are left out. The tables also
//! map the current type names `dga-domain` and `system-compromise`. Unlike IntelMQ,
//! which fails on non-string values in the URL-quoted references (e.g. an integer `rtir_id`),
//! such values are quoted as their text.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ExpertBot, Outbox, ParamError};
use crate::message::types::{base64_decode, is_falsy};
use crate::message::wire::python_str;
use crate::message::Message;

/// A boolean given as JSON bool or as `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(serde::de::Error::custom(format!("{other} is not a boolean"))),
    }
}

/// Parameters of the IDEA expert (IntelMQ's names and defaults).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdeaExpertParams {
    /// Add the category `Test` to every alert; default false (IntelMQ's docs say true).
    #[serde(deserialize_with = "lenient_bool")]
    pub test_mode: bool,
}

/// Classification type → IDEA category (IntelMQ's table with its old type names, plus
/// `dga-domain` and `system-compromise`).
const TYPE_TO_CATEGORY: [(&str, &str); 55] = [
    ("phishing", "Fraud.Phishing"),
    ("ddos", "Availability.DDoS"),
    ("spam", "Abusive.Spam"),
    ("scanner", "Recon.Scanning"),
    ("dropzone", "Information.UnauthorizedAccess"),
    ("infected-system", "Malware"),
    ("malware-configuration", "Malware"),
    ("ransomware", "Malware"),
    ("malware", "Malware"),
    ("c2-server", "Intrusion.Botnet"),
    ("exploit", "Attempt.Exploit"),
    ("brute-force", "Attempt.Login"),
    ("ids-alert", "Attempt.Exploit"),
    ("defacement", "Intrusion.AppCompromise"),
    ("compromised", "Intrusion.AdminCompromise"),
    ("backdoor", "Intrusion.AdminCompromise"),
    ("vulnerable-service", "Vulnerable.Open"),
    ("vulnerable-client", "Vulnerable.Config"),
    ("blacklist", "Other"),
    ("dga domain", "Anomaly.Behaviour"),
    ("proxy", "Vulnerable.Config"),
    ("data-leak", "Information"),
    ("tor", "Other"),
    ("other", "Other"),
    ("unknown", "Other"),
    ("test", "Test"),
    ("unauthorized-command", "Intrusion.AdminCompromise"),
    ("unauthorized-login", "Intrusion.AdminCompromise"),
    ("violence", "Abusive.Violence"),
    ("data-loss", "Information"),
    ("burglary", "Intrusion"),
    ("weak-crypto", "Vulnerable.Config"),
    ("unauthorised-information-access", "Information.UnauthorizedAccess"),
    ("privileged-account-compromise", "Intrusion.AdminCompromise"),
    ("potentially-unwanted-accessible", "Vulnerable.Open"),
    ("application-compromise", "Intrusion.AppCompromise"),
    ("unauthorized-use-of-resources", "Fraud.UnauthorizedUsage"),
    ("masquerade", "Fraud.Scam"),
    ("harmful-speech", "Abusive.Harassment"),
    ("unprivileged-account-compromise", "Intrusion.UserCompromise"),
    ("social-engineering", "Recon.SocialEngineering"),
    ("dos", "Availability.DoS"),
    ("information-disclosure", "Information.UnauthorizedAccess"),
    ("sniffing", "Recon.Sniffing"),
    ("vulnerable-system", "Vulnerable.Config"),
    ("unauthorised-information-modification", "Information.UnauthorizedModification"),
    ("sabotage", "Availability.Sabotage"),
    ("malware-distribution", "Malware"),
    ("outage", "Availability.Outage"),
    ("ddos-amplifier", "Intrusion.Botnet"),
    ("copyright", "Fraud.Copyright"),
    ("misconfiguration", "Availability.Outage"),
    ("undetermined", "Other"),
    ("dga-domain", "Anomaly.Behaviour"),
    ("system-compromise", "Intrusion.AdminCompromise"),
];

/// Classification type → IDEA Source.Type (IntelMQ's table; some are non-standard).
const TYPE_TO_SOURCE_TYPE: [(&str, &str); 9] = [
    ("phishing", "Phishing"),
    ("dropzone", "Dropzone"),
    ("malware-configuration", "MalwareConf"),
    ("c2-server", "CC"),
    ("dga domain", "DGA"),
    ("proxy", "Proxy"),
    ("tor", "Tor"),
    ("malware-distribution", "Malware"),
    ("dga-domain", "DGA"),
];

/// A value that is missing (IntelMQ: a `KeyError` inside the mapping).
struct Missing;

type Getter = fn(&IdeaExpertBot, &Message) -> Result<Option<Value>, Missing>;

/// One node of the mapping: a field name, a computed value, a list or an object.
enum Desc {
    Key(&'static str),
    Func(Getter),
    List(Vec<Desc>),
    Dict(Vec<(&'static str, Desc)>),
}

/// `src[key]` (`Missing` when absent).
fn field(src: &Message, key: &str) -> Result<Value, Missing> {
    src.get(key).cloned().or_else(|| src.get_jsondict(key)).ok_or(Missing)
}

fn text(src: &Message, key: &str) -> Result<String, Missing> {
    field(src, key).map(|v| python_str(&v))
}

/// Python's `urllib.parse.quote_plus(s or "")`.
pub fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `quot(src[key])`.
fn quot(src: &Message, key: &str) -> Result<String, Missing> {
    let v = field(src, key)?;
    Ok(if is_falsy(&v) { String::new() } else { quote_plus(&python_str(&v)) })
}

fn s(v: impl Into<String>) -> Result<Option<Value>, Missing> {
    Ok(Some(Value::String(v.into())))
}

/// `s[key] and "<word>"`: the value itself when falsy.
fn and_then_word(src: &Message, key: &str, word: &str) -> Result<Option<Value>, Missing> {
    let v = field(src, key)?;
    Ok(Some(if is_falsy(&v) { v } else { Value::String(word.to_string()) }))
}

fn addr(src: &Message, key: &str, v6: bool) -> Result<Option<Value>, Missing> {
    let ip = text(src, key)?;
    Ok((ip.contains(':') == v6).then_some(Value::String(ip)))
}

/// A random version 4 UUID.
fn uuid4() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u32(std::process::id());
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// `min(1, max(0, accuracy / 100))` with Python's choice of the int bounds on ties.
fn confidence(accuracy: &Value) -> Option<Value> {
    let x = accuracy.as_f64()? / 100.0;
    Some(if x <= 0.0 {
        Value::from(0)
    } else if x >= 1.0 {
        Value::from(1)
    } else {
        Value::Number(Number::from_f64(x)?)
    })
}

/// The Source or Target part for one direction.
fn endpoint(dir: &'static str) -> Desc {
    let source = dir == "source";
    let type_list = if source {
        Desc::List(vec![
            Desc::Func(|_, s| {
                let t = text(s, "classification.type")?;
                Ok(TYPE_TO_SOURCE_TYPE.iter().find(|(k, _)| *k == t).map(|(_, v)| Value::String((*v).to_string())))
            }),
            Desc::Func(|_, s| and_then_word(s, "source.tor_node", "Tor")),
        ])
    } else {
        Desc::List(vec![Desc::Func(|_, s| and_then_word(s, "destination.tor_node", "Tor"))])
    };
    let k = |name: &'static str| -> &'static str {
        match (source, name) {
            (true, "account") => "source.account",
            (true, "asn") => "source.asn",
            (true, "fqdn") => "source.fqdn",
            (true, "local_hostname") => "source.local_hostname",
            (true, "port") => "source.port",
            (true, "reverse_dns") => "source.reverse_dns",
            (true, _) => "source.url",
            (false, "account") => "destination.account",
            (false, "asn") => "destination.asn",
            (false, "fqdn") => "destination.fqdn",
            (false, "local_hostname") => "destination.local_hostname",
            (false, "port") => "destination.port",
            (false, "reverse_dns") => "destination.reverse_dns",
            (false, _) => "destination.url",
        }
    };
    let (ip4, ip6, lip4, lip6): (Getter, Getter, Getter, Getter) = if source {
        (
            |_, s| addr(s, "source.ip", false),
            |_, s| addr(s, "source.ip", true),
            |_, s| addr(s, "source.local_ip", false),
            |_, s| addr(s, "source.local_ip", true),
        )
    } else {
        (
            |_, s| addr(s, "destination.ip", false),
            |_, s| addr(s, "destination.ip", true),
            |_, s| addr(s, "destination.local_ip", false),
            |_, s| addr(s, "destination.local_ip", true),
        )
    };
    Desc::List(vec![Desc::Dict(vec![
        ("Proto", Desc::List(vec![Desc::Key("protocol.transport"), Desc::Key("protocol.application")])),
        ("Type", type_list),
        ("Account", Desc::List(vec![Desc::Key(k("account"))])),
        ("ASN", Desc::List(vec![Desc::Key(k("asn"))])),
        ("Hostname", Desc::List(vec![Desc::Key(k("fqdn"))])),
        ("IP4", Desc::List(vec![Desc::Func(ip4)])),
        ("IP6", Desc::List(vec![Desc::Func(ip6)])),
        ("LocalHostname", Desc::List(vec![Desc::Key(k("local_hostname"))])),
        ("LocalIP4", Desc::List(vec![Desc::Func(lip4)])),
        ("LocalIP6", Desc::List(vec![Desc::Func(lip6)])),
        ("Port", Desc::List(vec![Desc::Key(k("port"))])),
        ("PTR", Desc::List(vec![Desc::Key(k("reverse_dns"))])),
        ("URL", Desc::List(vec![Desc::Key(k("url"))])),
        ("Note", Desc::Key("status")),
    ])])
}

/// IntelMQ's translation table.
fn translation() -> Desc {
    Desc::Dict(vec![
        ("Format", Desc::Func(|_, _| s("IDEA0"))),
        (
            "Description",
            Desc::Func(|_, src| {
                let name = text(src, "feed.name")?;
                let what = ["event_description.text", "comment", "classification.type"]
                    .iter()
                    .find_map(|k| text(src, k).ok())
                    .unwrap_or_else(|| "unknown".to_string());
                s(format!("{name}: {what}"))
            }),
        ),
        (
            "Category",
            Desc::List(vec![
                Desc::Func(|_, src| {
                    let t = text(src, "classification.type").unwrap_or_else(|_| "unknown".to_string());
                    let category = TYPE_TO_CATEGORY.iter().find(|(k, _)| *k == t).ok_or(Missing)?.1;
                    s(category)
                }),
                Desc::Func(|bot, _| Ok(bot.test_mode.then(|| Value::String("Test".to_string())))),
            ]),
        ),
        ("DetectTime", Desc::Key("time.observation")),
        ("EventTime", Desc::Key("time.source")),
        ("ID", Desc::Func(|_, _| s(uuid4()))),
        ("RelID", Desc::Func(|_, src| s(format!("hash:{}", quot(src, "event_hash")?)))),
        ("Confidence", Desc::Func(|_, src| Ok(confidence(&field(src, "feed.accuracy")?)))),
        ("Note", Desc::Key("comment")),
        (
            "Ref",
            Desc::List(vec![
                Desc::Func(|_, src| s(format!("malid:{}", quot(src, "classification.identifier")?))),
                Desc::Key("event_description.url"),
                Desc::Func(|_, src| s(format!("intelmq_feed:{}", quot(src, "feed.code")?))),
                Desc::Func(|_, src| s(format!("misp_attr:{}", quot(src, "misp.attribute_uuid")?))),
                Desc::Func(|_, src| s(format!("misp_event:{}", quot(src, "misp.event_uuid")?))),
                Desc::Func(|_, src| s(format!("rtir:{}", quot(src, "rtir_id")?))),
                Desc::Key("screenshot_url"),
            ]),
        ),
        (
            "Attach",
            Desc::List(vec![
                Desc::Dict(vec![
                    (
                        "Hash",
                        Desc::List(vec![
                            Desc::Func(|_, src| s(format!("crypt:{}", quot(src, "malware.hash")?))),
                            Desc::Func(|_, src| s(format!("md5:{}", quot(src, "malware.hash.md5")?))),
                            Desc::Func(|_, src| s(format!("sha1:{}", quot(src, "malware.hash.sha1")?))),
                        ]),
                    ),
                    (
                        "Ref",
                        Desc::List(vec![Desc::Func(|_, src| {
                            let name = quot(src, "malware.name")?;
                            let version = quot(src, "malware.version").unwrap_or_default();
                            s(format!("malware:{name}-{version}"))
                        })]),
                    ),
                ]),
                Desc::Dict(vec![
                    (
                        "Content",
                        Desc::Func(|_, src| {
                            let raw = text(src, "raw")?;
                            let bytes = base64_decode(&raw).ok_or(Missing)?;
                            s(bytes.iter().map(|&b| char::from(b)).collect::<String>())
                        }),
                    ),
                    ("Type", Desc::List(vec![Desc::Func(|_, src| and_then_word(src, "raw", "OrigData"))])),
                    ("Ref", Desc::List(vec![Desc::Key("feed.url")])),
                ]),
            ]),
        ),
        ("Source", endpoint("source")),
        ("Target", endpoint("destination")),
    ])
}

/// Converts events to IDEA.
pub struct IdeaExpertBot {
    test_mode: bool,
    translation: Desc,
}

impl BuildBot for IdeaExpertBot {
    type Params = IdeaExpertParams;

    fn build(params: IdeaExpertParams) -> Result<Self, ParamError> {
        Ok(IdeaExpertBot { test_mode: params.test_mode, translation: translation() })
    }
}

impl IdeaExpertBot {
    fn value(&self, src: &Message, desc: &Desc) -> Option<Value> {
        match desc {
            Desc::Key(key) => field(src, key).ok(),
            Desc::Func(f) => f(self, src).ok().flatten(),
            Desc::List(items) => {
                let list: Vec<Value> = items.iter().filter_map(|d| self.value(src, d)).collect();
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Desc::Dict(items) => {
                let map: Map<String, Value> =
                    items.iter().filter_map(|(k, d)| self.value(src, d).map(|v| ((*k).to_string(), v))).collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
        }
    }

    /// The IDEA alert of an event.
    pub fn convert(&self, event: &Message) -> Value {
        self.value(event, &self.translation).unwrap_or(Value::Null)
    }
}

impl ExpertBot for IdeaExpertBot {
    fn process(&mut self, mut event: Message, _ctx: &mut Context<'_>, out: &mut Outbox) -> Result<(), BotError> {
        let idea = self.convert(&event);
        event.add("output", idea)?;
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

    #[test]
    fn event_becomes_idea() {
        let h = harmonization();
        let bot = IdeaExpertBot::build(IdeaExpertParams { test_mode: true }).unwrap();
        let e = event(
            &h,
            json!({"classification.type": "c2-server", "destination.ip": "2001:db8::1", "destination.port": 22,
                   "feed.accuracy": 90.0, "feed.name": "Feed", "protocol.transport": "tcp",
                   "source.ip": "192.0.2.1", "source.asn": 64496, "raw": "w6Q=", "feed.url": "http://x.example/",
                   "classification.identifier": "a b/c", "time.observation": "2016-04-20T19:02:35+00:00"}),
        );
        let mut idea = bot.convert(&e);
        let id = idea.as_object_mut().unwrap().remove("ID").unwrap();
        assert_eq!(id.as_str().unwrap().len(), 36);
        assert_eq!(&id.as_str().unwrap()[14..15], "4");
        assert_eq!(
            idea,
            json!({
                "Format": "IDEA0", "Description": "Feed: c2-server", "Category": ["Intrusion.Botnet", "Test"],
                "DetectTime": "2016-04-20T19:02:35+00:00", "Confidence": 0.9, "Ref": ["malid:a+b%2Fc"],
                "Attach": [{"Content": "\u{c3}\u{a4}", "Type": ["OrigData"], "Ref": ["http://x.example/"]}],
                "Source": [{"Proto": ["tcp"], "Type": ["CC"], "ASN": [64496], "IP4": ["192.0.2.1"]}],
                "Target": [{"Proto": ["tcp"], "IP6": ["2001:db8::1"], "Port": [22]}]
            })
        );
    }

    #[test]
    fn confidence_uses_int_bounds() {
        assert_eq!(confidence(&json!(100.0)), Some(json!(1)));
        assert_eq!(confidence(&json!(0.0)), Some(json!(0)));
        assert_eq!(confidence(&json!(50.0)), Some(json!(0.5)));
    }

    #[test]
    fn quote_plus_is_pythons() {
        assert_eq!(quote_plus("a b/c~ä"), "a+b%2Fc~%C3%A4");
    }
}
