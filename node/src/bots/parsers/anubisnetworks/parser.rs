//! The AnubisNetworks Cyberfeed Stream parser (`intelmq.bots.parsers.anubisnetworks.parser`): one
//! JSON document per report (sinkhole connections of infected systems, 2016 and 2020 formats)
//! becomes one event. An unknown field fails the whole report, as in IntelMQ.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::json::{add_overwrite, add_soft, kind_name, py_int, BoolParam};
use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::types::py_strip;
use crate::message::wire::python_str;
use crate::message::{AddOptions, FieldError, Message, TimeFormat};

/// `_geo_env_remote_addr` keys and their fields (2016 format).
const GEO_ENV_REMOTE_ADDR: [(&str, &str); 8] = [
    ("country_code", "source.geolocation.cc"),
    ("country_name", "source.geolocation.country"),
    ("region", "source.geolocation.region"),
    ("city", "source.geolocation.city"),
    ("asn_name", "source.as_name"),
    ("asn", "source.asn"),
    ("longitude", "source.geolocation.longitude"),
    ("latitude", "source.geolocation.latitude"),
];

/// Keys copied to `extra.<key>` as they are, wherever they appear in `env`, `malw` and `comm`.
const EXTRA_PASSTHROUGH: [&str; 4] = ["request_method", "cookies", "path_info", "http_referer"];

/// The feed provider's internal test malware: such events are dropped.
const IGNORED_MALWARE: &str = "testsinkholingloss";

/// Parameters of the AnubisNetworks parser (IntelMQ's names and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnubisnetworksParserParams {
    /// Default: `true`. `malw.family` becomes `classification.identifier`; otherwise it is kept in
    /// `extra.malware.family` when it differs from `malw.variant`. (IntelMQ spells the name so.)
    #[serde(alias = "use_malware_family_as_classification_identifier")]
    pub use_malware_familiy_as_classification_identifier: BoolParam,
}

impl Default for AnubisnetworksParserParams {
    fn default() -> Self {
        AnubisnetworksParserParams { use_malware_familiy_as_classification_identifier: BoolParam::Bool(true) }
    }
}

/// The AnubisNetworks Cyberfeed parser.
#[derive(Debug)]
pub struct AnubisnetworksParserBot {
    malware_as_identifier: bool,
}

impl BuildBot for AnubisnetworksParserBot {
    type Params = AnubisnetworksParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        Ok(AnubisnetworksParserBot {
            malware_as_identifier: params
                .use_malware_familiy_as_classification_identifier
                .get("use_malware_familiy_as_classification_identifier")?,
        })
    }
}

fn unknown(path: &str) -> BotError {
    BotError::Invalid(format!("unable to parse data field `{path}`"))
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, BotError> {
    value
        .as_object()
        .ok_or_else(|| BotError::Invalid(format!("data field `{path}` is {}, not an object", kind_name(value))))
}

fn get<'v>(map: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v Value, BotError> {
    map.get(key).ok_or_else(|| BotError::Invalid(format!("data field `{path}` has no `{key}`")))
}

/// IntelMQ's `event[key] = value`: like `add` (an existing key is an error).
fn set(event: &mut Message, key: &str, value: &Value) -> Result<(), BotError> {
    event.add(key, value.clone())?;
    Ok(())
}

/// `event[key] = value`, falling back to `extra.<key>` when the key is invalid or already set.
fn set_with_fallback(event: &mut Message, key: &str, value: Value) -> Result<(), BotError> {
    match event.add_with(key, value.clone(), AddOptions::default()) {
        Ok(_) => Ok(()),
        Err(FieldError::InvalidKey { .. } | FieldError::KeyExists { .. }) => {
            event.add(&format!("extra.{key}"), value)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Geolocation data of an address (`_geo_*`) under `namespace`.
fn parse_geo(event: &mut Message, value: &Value, namespace: &str, name: &str) -> Result<(), BotError> {
    let geo = object(value, name)?;
    for (subkey, subvalue) in geo {
        match subkey.as_str() {
            "ip" | "path" => {}
            "netmask" => {
                let ip = get(geo, "ip", name)?;
                let network = format!("{}/{}", python_str(ip), python_str(subvalue));
                set_with_fallback(event, &format!("{namespace}.network"), Value::String(network))?;
            }
            "country_code" => set_with_fallback(event, &format!("{namespace}.geolocation.cc"), subvalue.clone())?,
            "country_name" => set_with_fallback(event, &format!("{namespace}.geolocation.country"), subvalue.clone())?,
            "region_code" | "postal_code" | "region" | "city" | "latitude" | "longitude" | "dma_code" | "area_code"
            | "metro_code" => {
                set_with_fallback(event, &format!("{namespace}.geolocation.{subkey}"), subvalue.clone())?;
            }
            "asn" => set_with_fallback(event, &format!("{namespace}.asn"), subvalue.clone())?,
            "asn_name" => set_with_fallback(event, &format!("{namespace}.as_name"), subvalue.clone())?,
            _ => return Err(unknown(&format!("{name}.{subkey}"))),
        }
    }
    Ok(())
}

/// The `path` of a `_geo_*` block must name the address it describes.
fn check_geo_path(value: &Value, name: &str, expected: &str) -> Result<(), BotError> {
    let path = get(object(value, name)?, "path", name)?;
    if path.as_str() == Some(expected) {
        Ok(())
    } else {
        Err(BotError::Invalid(format!("data field `{name}.path` is {path}, not `{expected}`")))
    }
}

impl AnubisnetworksParserBot {
    fn parse_env(event: &mut Message, value: &Value) -> Result<(), BotError> {
        for (subkey, subvalue) in object(value, "env")? {
            match subkey.as_str() {
                "remote_addr" => set(event, "source.ip", subvalue)?,
                "remote_port" => set(event, "source.port", subvalue)?,
                "server_addr" => set(event, "destination.ip", subvalue)?,
                "server_port" => set(event, "destination.port", subvalue)?,
                "server_name" => {
                    add_soft(event, "destination.fqdn", subvalue.clone())?;
                }
                k if EXTRA_PASSTHROUGH.contains(&k) => set(event, &format!("extra.{k}"), subvalue)?,
                k => return Err(unknown(&format!("env.{k}"))),
            }
        }
        Ok(())
    }

    fn parse_malw(&self, event: &mut Message, value: &Value) -> Result<(), BotError> {
        let malw = object(value, "malw")?;
        for (subkey, subvalue) in malw {
            match subkey.as_str() {
                "severity" => set(event, "extra.malware.severity", subvalue)?,
                "family" => {
                    if self.malware_as_identifier {
                        set(event, "classification.identifier", subvalue)?;
                    } else if subvalue != get(malw, "variant", "malw")? {
                        set(event, "extra.malware.family", subvalue)?;
                    }
                }
                "variant" => set(event, "malware.name", subvalue)?,
                "categories" => set(event, "extra.malware.categories", subvalue)?,
                k if EXTRA_PASSTHROUGH.contains(&k) => set(event, &format!("extra.{k}"), subvalue)?,
                k => return Err(unknown(&format!("malw.{k}"))),
            }
        }
        Ok(())
    }

    fn parse_comm_http(
        event: &mut Message,
        comm: &Map<String, Value>,
        http: &Value,
        doc: &Map<String, Value>,
    ) -> Result<(), BotError> {
        let http_map = object(http, "comm.http")?;
        for (key, value) in http_map {
            match key.as_str() {
                "method" => set(event, "extra.request_method", value)?,
                "host" => {
                    // A host that is no FQDN is an IP address: kept when it is not the destination.
                    if !add_soft(event, "destination.fqdn", value.clone())? {
                        let dst = get(object(get(doc, "dst", "report")?, "dst")?, "ip", "dst")?;
                        if value != dst {
                            set(event, "extra.communication.http_host", value)?;
                        }
                    }
                }
                "path" => set(event, "destination.urlpath", value)?,
                "user_agent" => set(event, "extra.user_agent", value)?,
                "more_headers" => set(event, "extra.communication.headers", value)?,
                "cookies" | "unverified_domain" | "x_forwarded_for" => {
                    set(event, &format!("extra.communication.{key}"), value)?;
                }
                k => return Err(unknown(&format!("comm.http.{k}"))),
            }
        }
        if let (Some(proto), Some(host), Some(path)) = (comm.get("proto"), http_map.get("host"), http_map.get("path")) {
            let url = format!("{}://{}{}", python_str(proto), python_str(host), python_str(path));
            event.add("destination.url", url)?;
        }
        Ok(())
    }

    fn parse_comm(event: &mut Message, value: &Value, doc: &Map<String, Value>) -> Result<(), BotError> {
        let comm = object(value, "comm")?;
        for (subkey, subvalue) in comm {
            match subkey.as_str() {
                "proto" => {
                    add_overwrite(event, "protocol.application", subvalue.clone())?;
                }
                "method" => set(event, "extra.communication.type", subvalue)?,
                "http" => Self::parse_comm_http(event, comm, subvalue, doc)?,
                "dns" => {
                    for (key, value) in object(subvalue, "comm.dns")? {
                        match key.as_str() {
                            "name" => set(event, "destination.fqdn", value)?,
                            "qtype" => set(event, "extra.dns_query_type", value)?,
                            k => return Err(unknown(&format!("comm.dns.{k}"))),
                        }
                    }
                }
                "categories" => set(event, "extra.malware.categories", subvalue)?,
                k if EXTRA_PASSTHROUGH.contains(&k) => set(event, &format!("extra.{k}"), subvalue)?,
                k => return Err(unknown(&format!("comm.{k}"))),
            }
        }
        Ok(())
    }

    fn parse_tracking(event: &mut Message, value: &Value) -> Result<(), BotError> {
        for (subkey, subvalue) in object(value, "tracking")? {
            let key = match subkey.as_str() {
                "id" => "extra.tracking.id",
                "last_ip" => "extra.tracking.last.ip",
                "first" => "extra.first_seen",
                "seen" => "extra.last_seen",
                "changes" => "extra.tracking.changes",
                "checkins" => "extra.tracking.checkins",
                "days" => "extra.days_seen",
                "same_ip" => "extra.tracking.same_ip",
                "tr" => "extra.tracking.tr",
                k => return Err(unknown(&format!("tracking.{k}"))),
            };
            set(event, key, subvalue)?;
        }
        Ok(())
    }

    /// The document to its event.
    fn parse_document(
        &self,
        mut event: Message,
        report: &Message,
        doc: &Map<String, Value>,
    ) -> Result<Message, BotError> {
        let feed_url = event
            .get_str("feed.url")
            .ok_or_else(|| BotError::Invalid("report has no `feed.url`".to_string()))?
            .to_string();
        let stripped = feed_url.split("?key=").next().unwrap_or_default().to_string();
        event.change("feed.url", stripped)?;
        let raw = report.get("raw").cloned().unwrap_or(Value::Null);
        event.add_with("raw", raw, AddOptions { sanitize: false, ..AddOptions::default() })?;
        event.add("classification.type", "infected-system")?;
        event.add("classification.taxonomy", "malicious-code")?;
        event.add("event_description.text", "Sinkhole attempted connection")?;

        for (key, value) in doc {
            match key.as_str() {
                "_ts" => {
                    let seconds = py_int(value)
                        .ok_or_else(|| BotError::Invalid(format!("data field `_ts` is no timestamp: {value}")))?;
                    let time = TimeFormat::Timestamp
                        .convert(&seconds.to_string())
                        .ok_or_else(|| BotError::Invalid(format!("data field `_ts` is out of range: {value}")))?;
                    event.add("time.source", time)?;
                }
                "trojanfamily" => set(&mut event, "malware.name", value)?,
                "env" => Self::parse_env(&mut event, value)?,
                "src" | "dst" => {
                    let identity = if key == "src" { "source" } else { "destination" };
                    for (subkey, subvalue) in object(value, key)? {
                        match subkey.as_str() {
                            "ip" => set(&mut event, &format!("{identity}.ip"), subvalue)?,
                            "port" => set(&mut event, &format!("{identity}.port"), subvalue)?,
                            k => return Err(unknown(&format!("{key}.{k}"))),
                        }
                    }
                }
                "_geo_env_remote_addr" => {
                    let geo = object(value, key)?;
                    for (name, field) in GEO_ENV_REMOTE_ADDR {
                        if let Some(v) = geo.get(name) {
                            set(&mut event, field, v)?;
                        }
                    }
                    if let (Some(ip), Some(netmask)) = (geo.get("ip"), geo.get("netmask")) {
                        event.add("source.network", format!("{}/{}", python_str(ip), python_str(netmask)))?;
                    }
                }
                "qtype" => set(&mut event, "extra.dns_query_type", value)?,
                "app_proto" => {
                    add_overwrite(&mut event, "protocol.application", value.clone())?;
                }
                "malw" => self.parse_malw(&mut event, value)?,
                "comm" => Self::parse_comm(&mut event, value, doc)?,
                "tracking" => Self::parse_tracking(&mut event, value)?,
                "_geo_src_ip" => parse_geo(&mut event, value, "source", key)?,
                "_geo_tracking_last_ip" => {
                    parse_geo(&mut event, value, "tracking.last", key)?;
                    check_geo_path(value, key, "tracking.last_ip")?;
                }
                "_geo_comm_http_host" => {
                    parse_geo(&mut event, value, "communication.http.host", key)?;
                    check_geo_path(value, key, "comm.http.host")?;
                }
                k if k.starts_with("_geo_comm_http_x_forwarded_for_") => {
                    let namespace = format!("extra.communication.http.{}", &k["_geo_comm_http_".len()..]);
                    parse_geo(&mut event, value, &namespace, "_geo_comm_http_x_forwarded_for_")?;
                }
                "_origin" | "_provider" | "pattern_verified" => set(&mut event, &format!("extra.{key}"), value)?,
                "metadata" => {
                    for (subkey, subvalue) in object(value, key)? {
                        set(&mut event, &format!("extra.metadata.{subkey}"), subvalue)?;
                    }
                }
                k => return Err(unknown(k)),
            }
        }
        Ok(event)
    }
}

impl ParserBot for AnubisnetworksParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let text = report_text(report)?;
        let text = py_strip(&text);
        if text.is_empty() {
            return Ok(());
        }
        let doc: Value =
            serde_json::from_str(text).map_err(|e| BotError::Invalid(format!("report raw is not valid JSON: {e}")))?;
        let doc = object(&doc, "report")?;
        let event = self.parse_document(out.new_event(), report, doc)?;
        if event.get_str("malware.name") != Some(IGNORED_MALWARE) {
            out.event(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::bots::parsers::json::test_support::{report, run};

    const URL: &str = "https://prod.cyberfeed.net/stream?key=secret";

    fn bot(malware_as_identifier: bool) -> AnubisnetworksParserBot {
        AnubisnetworksParserBot { malware_as_identifier }
    }

    fn parse(bot: &mut AnubisnetworksParserBot, doc: &Value) -> (Vec<Message>, Result<(), String>) {
        let (events, _, result) = run(bot, &report(json!({"feed.url": URL}), &doc.to_string()));
        (events, result)
    }

    fn doc_2020() -> Value {
        json!({
            "app_proto": "http", "_ts": 1597984390,
            "src": {"ip": "10.0.0.1", "port": 58077}, "dst": {"ip": "198.18.0.1", "port": 2532},
            "malw": {"severity": 2, "family": "BHProxies", "variant": "BHProxies", "categories": ["Proxy"]},
            "comm": {"proto": "http", "method": "sinkhole",
                     "http": {"method": "GET", "host": "192.168.0.1", "path": "/", "user_agent": "UA", "unverified_domain": "true"}},
            "tracking": {"id": "abc", "last_ip": "203.0.113.3", "days": 154},
            "_geo_src_ip": {"ip": "10.0.0.1", "netmask": 23, "country_code": "AT", "region_code": "09", "latitude": 48.0, "asn": 6830, "path": "src.ip"},
            "_geo_tracking_last_ip": {"ip": "203.0.113.3", "netmask": 24, "country_code": "AT", "dma_code": 528, "path": "tracking.last_ip"},
            "_geo_comm_http_host": {"ip": "192.168.0.1", "netmask": 20, "country_name": "Netherlands", "path": "comm.http.host"},
            "metadata": {"flowbits": ["_mt_s"]},
            "_origin": "infections"
        })
    }

    #[test]
    fn a_2020_document_maps_every_block() {
        let (events, result) = parse(&mut bot(true), &doc_2020());
        result.unwrap();
        let e = &events[0];
        assert_eq!(e.get_str("feed.url"), Some("https://prod.cyberfeed.net/stream"));
        assert_eq!(e.get_str("classification.type"), Some("infected-system"));
        assert_eq!(e.get_str("classification.identifier"), Some("BHProxies"));
        assert_eq!(e.get_str("malware.name"), Some("bhproxies"));
        assert_eq!(e.get_str("time.source"), Some("2020-08-21T04:33:10+00:00"));
        assert_eq!(e.get_str("protocol.application"), Some("http"));
        assert_eq!(e.get_str("destination.url"), Some("http://192.168.0.1/"));
        assert_eq!(e.get_str("extra.communication.http_host"), Some("192.168.0.1"));
        assert!(e.get("destination.fqdn").is_none());
        assert_eq!(e.get_str("source.network"), Some("10.0.0.0/23"));
        assert_eq!(e.get_str("extra.source.geolocation.region_code"), Some("09"));
        assert_eq!(e.get_str("extra.tracking.last.network"), Some("203.0.113.3/24"));
        assert_eq!(e.get("extra.tracking.last.geolocation.dma_code"), Some(&json!(528)));
        assert_eq!(e.get_str("extra.communication.http.host.network"), Some("192.168.0.1/20"));
        assert_eq!(e.get("extra.metadata.flowbits"), Some(&json!(["_mt_s"])));
        assert_eq!(e.get("extra.days_seen"), Some(&json!(154)));
        let raw = report(json!({}), &doc_2020().to_string());
        assert_eq!(e.get("raw"), raw.get("raw"));
    }

    #[test]
    fn family_goes_to_extra_only_when_it_differs_from_the_variant() {
        let mut doc = doc_2020();
        let (events, _) = parse(&mut bot(false), &doc);
        assert!(events[0].get("classification.identifier").is_none());
        assert!(events[0].get("extra.malware.family").is_none());
        doc["malw"]["family"] = json!("Other");
        let (events, _) = parse(&mut bot(false), &doc);
        assert_eq!(events[0].get_str("extra.malware.family"), Some("Other"));
    }

    #[test]
    fn test_malware_and_empty_reports_give_nothing() {
        let mut doc = doc_2020();
        doc["malw"]["variant"] = json!("TestSinkholingLoss");
        let (events, result) = parse(&mut bot(true), &doc);
        result.unwrap();
        assert!(events.is_empty());
        let (events, _, result) = run(&mut bot(true), &report(json!({"feed.url": URL}), "\n"));
        result.unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn an_unknown_field_fails_the_report() {
        let mut doc = doc_2020();
        doc["surprise"] = json!(1);
        let (events, result) = parse(&mut bot(true), &doc);
        assert!(events.is_empty());
        assert!(result.unwrap_err().contains("surprise"));
    }

    #[test]
    fn the_2016_format_uses_env_and_its_geo_block() {
        let doc = json!({
            "trojanfamily": "SpyApp", "_ts": 1461107754,
            "env": {"remote_port": "52888", "server_name": "example.net", "server_addr": "190.124.67.212",
                    "request_method": "POST", "remote_addr": "190.124.67.211", "server_port": "80"},
            "_geo_env_remote_addr": {"country_name": "Dominican Republic", "ip": "190.124.67.211", "netmask": 24, "longitude": 13}
        });
        let (events, result) = parse(&mut bot(true), &doc);
        result.unwrap();
        let e = &events[0];
        assert_eq!(e.get("source.port"), Some(&json!(52888)));
        assert_eq!(e.get_str("destination.fqdn"), Some("example.net"));
        assert_eq!(e.get_str("extra.request_method"), Some("POST"));
        assert_eq!(e.get_str("source.geolocation.country"), Some("Dominican Republic"));
        assert_eq!(e.get_str("source.network"), Some("190.124.67.0/24"));
        assert_eq!(e.get("source.geolocation.longitude"), Some(&json!(13.0)));
    }
}
