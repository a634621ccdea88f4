//! The Shodan parser (`intelmq.bots.parsers.shodan.parser`): one Shodan banner (JSON) per report.
//! Known banner keys are mapped onto fields; in `minimal_mode` only the core fields are kept and the
//! whole banner goes to `extra.shodan`.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bots::parsers::report_text;
use crate::bots::registry::BuildBot;
use crate::bots::{BotError, Context, ParamError, ParserBot, ParserOutput};
use crate::message::{AddOptions, Message};

/// Banner keys (nested objects as nested maps) and their fields, as IntelMQ maps them.
const MAPPING_JSON: &str = r#"
{"hash":"extra.shodan.event_hash","hostnames":"source.reverse_dns","org":"event_description.target","data":"extra.data","port":"source.port","transport":"protocol.transport","isp":"extra.isp","platform":"extra.platform","product":"extra.product","device":"extra.device","devicetype":"extra.devicetype","info":"extra.info","mac":"extra.mac","version":"extra.version","vulns":"extra.vulns","ftp":{"features":"extra.ftp.features","anonymous":"extra.ftp.anonymous"},"http":{"title":"extra.http.html.title","html":"extra.http.html.data","location":"extra.http.location","components":"extra.http.components","server":"extra.http.server","host":"extra.http.host","waf":"extra.http.waf"},"isakmp":{"initiator_spi":"extra.isakmp.initiator_spi","responder_spi":"extra.isakmp.responder_spi","msg_id":"extra.isakmp.msg_id","next_payload":"extra.isakmp.next_payload","exchange_type":"extra.isakmp.exchange_type","length":"extra.isakmp.length","version":"extra.isakmp.version","flags":{"encryption":"extra.isakmp.encryption","authentication":"extra.isakmp.authentication","commit":"extra.isakmp.commit"}},"asn":"source.asn","location":{"city":"source.geolocation.city","region_code":"extra.region_code","postal_code":"extra.postal_code","longitude":"source.geolocation.longitude","country_code":"source.geolocation.cc","latitude":"source.geolocation.latitude","area_code":"extra.area_code","dma_code":"extra.dma_code"},"timestamp":"time.source","domains":"source.fqdn","ip_str":"source.ip","os":"extra.os_name","opts":{"amqp":{"mechanisms":"extra.amqp.mechanism","server_properties":{"capabilities":{"basic.nack":"extra.amqp.capabilities.nack","consumer_cancel_notify":"extra.amqp.capabilities.consumer_cancel_notify","exchange_exchange_bindings":"extra.amqp.capabilities.exchange_exchange_bindings","publisher_confirms":"extra.amqp.capabilities.publisher_confirms","copyright":"extra.amqp.copyright","information":"extra.amqp.information","platform":"extra.amqp.platform","product":"extra.amqp.product","version":"extra.amqp.version"}}},"dhcp":{"broadcast":"extra.dhcp.broadcast","chaddr":"extra.dhcp.chaddr","ciaddr":"extra.dhcp.ciaddr","file":"extra.dhcp.file","giaddr":"extra.dhcp.giaddr","siaddr":"extra.dhcp.siaddr","sname":"extra.dhcp.sname","yiaddr":"extra.dhcp.yiaddr"},"heartbleed":"extra.heartbleed","ip":"extra.ip","ldap":{"configurationNamingContext":"extra.ldap.configurationnamingcontext","defaultNamingContext":"extra.ldap.defaultnamingcontext","dnsHostName":"extra.ldap.dnshostname","dsServiceName":"extra.ldap.dsservicename","errorMessage":"extra.ldap.errormessage","ldapServiceName":"extra.ldap.ldapservicename","namingContexts":"extra.ldap.namingcontexts","resultCode":"extra.ldap.resultcode","rootDomainNamingContext":"extra.ldap.rootdomainnamingcontext","schemaNamingContext":"extra.ldap.schemanamingcontext","serverName":"extra.ldap.servername","subschemaSubentry":"extra.ldap.subschemasubentry","supportedCapabilities":"extra.ldap.supportedcapabilities","supportedControl":"extra.ldap.supportedcontrol","supportedExtension":"extra.ldap.supportedextension","supportedLDAPPolicies":"extra.ldap.supportedldappolicies","supportedLDAPVersion":"extra.ldap.supportedldapversion","supportedSASLMechanisms":"extra.ldap.supportedsaslmechanisms"},"raw":"extra.raw","text":"extra.text"},"tags":"extra.tags","telnet":{"do":"extra.telnet.do","dont":"extra.telnet.dont","will":"extra.telnet.will","wont":"extra.telnet.wont"},"afp":{"machine_type":"extra.afp.machine_type","network_addresses":"extra.afp.network_addresses","uams":"extra.afp.uams","utf8_server_name":"extra.afp.server_name"},"checkpoint":{"firewall_host":"extra.checkpoint.firewall_host","smartcenter_host":"extra.checkpoint.smartcenter_host"},"coap":{"resources":"extra.coap.resources"},"dns":{"recursive":"extra.dns.recursive","resolver_hostname":"extra.dns.resolver_hostname","resolver_id":"extra.dns.resolver_id","software":"extra.dns.software"},"elastic":{"cluster":{"cluster_name":"extra.elastic.cluster.cluster_name","status":"extra.elastic.cluster.status"}},"etcd":{"api":"extra.etcd.api","clientURLs":"extra.etcd.clienturls","name":"extra.etcd.name","peerURLs":"extra.etcd.peerurls","state":"extra.etcd.state","version":"extra.etcd.version"},"ethernetip":{"device_type":"extra.ethernetip.device_type","ip":"extra.ethernetip.ip","product_name":"extra.ethernetip.product_name","revision_major":"extra.ethernetip.revision_major","revision_minor":"extra.ethernetip.revision_minor","serial":"extra.ethernetip.serial","vendor_id":"extra.ethernetip.vendor_id","version":"extra.ethernetip.version"},"hp_ilo":{"ilo_firmware":"extra.hp_ilo.ilo_firmware","ilo_serial_number":"extra.hp_ilo.ilo_serial_number","ilo_type":"extra.hp_ilo.ilo_type","server_type":"extra.hp_ilo.server_type"},"influxdb":{"bind_address":"extra.influxdb.bind_address","build":"extra.influxdb.build","databases":"extra.influxdb.databases","go_arch":"extra.influxdb.go_arch","go_os":"extra.influxdb.go_os","version":"extra.influxdb.version"},"knx":{"device":{"friendly_name":"extra.knx.device.friendly_name","knx_address":"extra.knx.device.knx_address","mac":"extra.knx.device.mac","multicast_address":"extra.knx.device.multicast_address","serial":"extra.knx.device.serial"},"supported_services":{"core":"extra.knx.supported_services.core","device_management":"extra.knx.supported_services.device_management","routing":"extra.knx.supported_services.routing","tunneling":"extra.knx.supported_services.tunneling"}},"lantronix":{"gateway":"extra.lantronix.gateway","ip":"extra.lantronix.ip","mac":"extra.lantronix.mac","type":"extra.lantronix.type","version":"extra.lantronix.version"},"mongodb":{"authentication":"extra.mongodb.authentication","buildInfo":{"buildEnvironment":{"target_arch":"extra.mongodb.target_arch","target_os":"extra.mongodb.target_os"},"openssl":{"compiled":"extra.mongodb.openssl.compiled","running":"extra.mongodb.openssl.running"},"debug":"extra.mongodb.debug","gitVersion":"extra.mongodb.gitversion","version":"extra.mongodb.version"}},"mssql":{"dns_computer_name":"extra.mssql.dns_computer_name","dns_domain_name":"extra.mssql.dns_domain_name","dns_forest_name":"extra.mssql.dns_forest_name","netbios_computer_name":"extra.mssql.netbios_computer_name","netbios_domain_name":"extra.mssql.netbios_domain_name","os_version":"extra.mssql.os_version","target_realm":"extra.mssql.target_realm"},"netbios":{"mac":"extra.netbios.mac","networks":"extra.netbios.networks","server_name":"extra.netbios.server_name"},"ntp":{"digest":"extra.ntp.digest","host":"extra.ntp.host","processor":"extra.ntp.processor","stratum":"extra.ntp.stratum","system":"extra.ntp.system","version":"extra.ntp.version"},"redis":{"keys":{"data":"extra.redis.keys.data"},"replication":{"master_host":"extra.redis.replication.master_host","role":"extra.redis.replication.role"},"server":{"os":"extra.redis.server.os","redis_mode":"extra.redis.mode","redis_version":"extra.redis.version","tcp_port":"extra.redis.server.tcp_port"}},"rsync":{"modules":"extra.rsync.modules"},"smb":{"anonymous":"extra.smb.anonymous","capabilities":"extra.smb.capabilities","os":"extra.smb.os","smb_version":"extra.smb.smb_version","software":"extra.smb.software"},"snmp":{"contact":"extra.snmp.contact","description":"extra.snmp.description","location":"extra.snmp.location","name":"extra.snmp.name","objectid":"extra.snmp.objectid","ordescr":"extra.snmp.ordescr"},"ssh":{"cipher":"extra.ssh.cipher","fingerprint":"extra.ssh.fingerprint","mac":"extra.ssh.mac","type":"extra.ssh.type"},"ssl":{"cert":{"expired":"extra.ssl.cert.expired","issuer":{"C":"extra.ssl.cert.issuer.c","O":"extra.ssl.cert.issuer.c","OU":"extra.ssl.cert.issuer.ou","CN":"extra.ssl.cert.issuer.cn"},"pubkey":{"bits":"extra.ssl.cert.pubkey.bits","type":"extra.ssl.cert.pubkey.type"},"serial":"extra.ssl.cert.serial","subject":{"C":"extra.ssl.cert.subject.c","O":"extra.ssl.cert.subject.c","OU":"extra.ssl.cert.subject.ou","CN":"extra.ssl.cert.subject.cn"},"version":"extra.ssl.cert.version"},"cipher":{"bits":"extra.ssl.cipher.bits","name":"extra.ssl.cipher.name","version":"extra.ssl.cipher.version"},"dhparams":{"bits":"extra.ssl.dhparams.bits","fingerprint":"extra.ssl.dhparams.fingerprint","generator":"extra.ssl.dhparams.generator","prime":"extra.ssl.dhparams.prime","public_key":"extra.ssl.dhparams.public_key"}},"ubiquiti":{"hostname":"extra.ubiquiti.hostname","ip":"extra.ubiquiti.ip","ip_alt":"extra.ubiquiti.ip_alt","mac":"extra.ubiquiti.mac","mac_alt":"extra.ubiquiti.mac_alt","product":"extra.ubiquiti.product","version":"extra.ubiquiti.version"},"unitronics_pcom":{"hardware_version":"extra.unitronics_pcom.hardware_version","model":"extra.unitronics_pcom.model","os_build":"extra.unitronics_pcom.os_build","os_version":"extra.unitronics_pcom.os_version","plc_name":"extra.unitronics_pcom.plc_name","plc_unique_id":"extra.unitronics_pcom.plc_unique_id","uid_master":"extra.unitronics_pcom.uid_master"},"upnp":{"device_type":"extra.upnp.device_type","friendly_name":"extra.upnp.friendly_name","manufacturer":"extra.upnp.manufacturer","model_description":"extra.upnp.model_description","model_name":"extra.upnp.model_name","model_number":"extra.upnp.model_number","serial_number":"extra.upnp.serial_number","udn":"extra.upnp.udn","upc":"extra.upnp.upc"},"vmware":{"api_type":"extra.vmware.api_type","api_version":"extra.vmware.api_version","build":"extra.vmware.build","full_name":"extra.vmware.full_name","name":"extra.vmware.name","os_type":"extra.vmware.os_type","product_line_id":"extra.vmware.product_line_id","vendor":"extra.vmware.vendor","version":"extra.vmware.version"}}"#;

static MAPPING: LazyLock<Map<String, Value>> = LazyLock::new(|| match serde_json::from_str(MAPPING_JSON) {
    Ok(Value::Object(map)) => map,
    _ => Map::new(),
});

/// Minimal mode: field <- banner key.
const MAPPING_MINIMAL: &[(&str, &str)] = &[
    ("source.ip", "ip_str"),
    ("source.asn", "asn"),
    ("source.port", "port"),
    ("protocol.transport", "transport"),
    ("event_description.target", "org"),
    ("extra.data", "data"),
    ("extra.html_title", "title"),
    ("extra.tags", "tags"),
];

/// Banner keys that name the scanned protocol.
const PROTOCOLS: &[&str] = &[
    "afp",
    "bgp",
    "coap",
    "dns",
    "ethernetip",
    "ftp",
    "hp_ilo",
    "http",
    "isakmp",
    "iscsi",
    "knx",
    "lantronix",
    "minecraft",
    "mqtt",
    "msrpc",
    "netbios",
    "ntp",
    "redis",
    "rip",
    "rsync",
    "smb",
    "snmp",
    "ssh",
    "telnet",
    "unitronics_pcom",
    "upnp",
];

/// Banner keys every banner may have (not indicative of the type).
const COMMON_KEYS: &[&str] = &[
    "_id",
    "_shodan",
    "asn",
    "data",
    "device",
    "devicetype",
    "domains",
    "hash",
    "hostnames",
    "html",
    "ip",
    "ip_str",
    "isp",
    "location",
    "opts",
    "org",
    "os",
    "port",
    "tags",
    "timestamp",
    "transport",
];

/// A flag given as a bool or a string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlagOrString {
    Bool(bool),
    String(String),
}

impl FlagOrString {
    fn value(&self, key: &str) -> Result<bool, ParamError> {
        match self {
            FlagOrString::Bool(b) => Ok(*b),
            FlagOrString::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(ParamError::new(key, format!("expected a boolean, got `{s}`"))),
            },
        }
    }
}

/// Parameters of the Shodan parser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShodanParserParams {
    /// Default: `true`. Kept for compatibility: unknown banner keys are always ignored.
    pub ignore_errors: FlagOrString,
    /// Default: `false`. Only the core fields; the whole banner goes to `extra.shodan`.
    pub minimal_mode: FlagOrString,
}

impl Default for ShodanParserParams {
    fn default() -> Self {
        ShodanParserParams { ignore_errors: FlagOrString::Bool(true), minimal_mode: FlagOrString::Bool(false) }
    }
}

/// The Shodan parser.
#[derive(Debug)]
pub struct ShodanParserBot {
    minimal_mode: bool,
}

impl BuildBot for ShodanParserBot {
    type Params = ShodanParserParams;

    fn build(params: Self::Params) -> Result<Self, ParamError> {
        params.ignore_errors.value("ignore_errors")?;
        Ok(ShodanParserBot { minimal_mode: params.minimal_mode.value("minimal_mode")? })
    }
}

/// A conversion of IntelMQ's `CONVERSIONS`; `None` = the value cannot be used.
fn convert(path: &str, value: Value, event: &Message) -> Option<Value> {
    match path {
        "timestamp" => match value {
            Value::String(s) => Some(Value::String(format!("{s}+00"))),
            other => Some(other),
        },
        "hostnames" | "domains" => {
            let Value::Array(items) = value else { return None };
            items.into_iter().find(|h| event.is_valid("source.fqdn", h, true).unwrap_or(false))
        }
        "coap.resources" | "http.components" | "mac" | "rsync.modules" => match value {
            Value::Object(map) => Some(Value::Array(map.keys().map(|k| Value::String(k.clone())).collect())),
            _ => None,
        },
        "opts.ldap.supportedControl" | "opts.ldap.supportedLDAPVersion" => match value {
            Value::Array(a) => Some(Value::Array(a)),
            other => Some(Value::Array(vec![other])),
        },
        "ssl.cert.serial" | "ssl.dhparams.generator" => Some(Value::String(crate::message::wire::python_str(&value))),
        "vulns" | "ftp.features" => {
            let Value::Object(map) = value else { return None };
            let mut list = Vec::new();
            for (k, v) in map {
                let Value::Object(mut inner) = v else { return None };
                inner.insert("identifier".to_string(), Value::String(k));
                list.push(Value::Object(inner));
            }
            Some(Value::Array(list))
        }
        _ => Some(value),
    }
}

/// IntelMQ's `apply_mapping`: the fields the banner gives, in a stable order.
fn apply_mapping(
    mapping: &Map<String, Value>,
    data: &Map<String, Value>,
    path: &str,
    event: &Message,
    out: &mut Vec<(String, Value)>,
) {
    for (key, value) in data {
        let Some(target) = mapping.get(key) else { continue };
        if value.is_null() {
            continue;
        }
        let current = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match target {
            Value::Object(sub) => {
                if let Value::Object(inner) = value {
                    apply_mapping(sub, inner, &current, event, out);
                }
            }
            Value::String(field) => {
                if let Some(v) = convert(&current, value.clone(), event) {
                    match out.iter_mut().find(|(k, _)| k == field) {
                        Some(slot) => slot.1 = v,
                        None => out.push((field.clone(), v)),
                    }
                }
            }
            _ => {}
        }
    }
}

fn set(event: &mut Message, key: &str, value: Value) -> Result<(), BotError> {
    event.add_with(key, value, AddOptions { overwrite: Some(true), ..AddOptions::default() })?;
    Ok(())
}

impl ParserBot for ShodanParserBot {
    fn parse(&mut self, report: &Message, _ctx: &mut Context<'_>, out: &mut ParserOutput<'_>) -> Result<(), BotError> {
        let raw = report_text(report)?;
        let decoded: Value = serde_json::from_str(&raw).map_err(|e| BotError::Invalid(format!("invalid json: {e}")))?;
        let Value::Object(banner) = &decoded else {
            return Err(BotError::Invalid("the banner is not a json object".to_string()));
        };
        let mut event = out.new_event();
        set(&mut event, "raw", Value::String(raw.clone()))?;
        if self.minimal_mode {
            for (field, key) in MAPPING_MINIMAL {
                if let Some(v) = banner.get(*key) {
                    if !crate::message::types::is_falsy(v) {
                        set(&mut event, field, v.clone())?;
                    }
                }
            }
            if let Some(location) = banner.get("location") {
                match location {
                    Value::Object(l) => {
                        if let Some(cc) = l.get("country_code") {
                            set(&mut event, "source.geolocation.cc", cc.clone())?;
                        }
                    }
                    _ => return Err(BotError::Invalid("`location` is not an object".to_string())),
                }
            }
            let timestamp =
                banner.get("timestamp").ok_or_else(|| BotError::Invalid("banner has no `timestamp`".to_string()))?;
            let timestamp = convert("timestamp", timestamp.clone(), &event).unwrap_or(Value::Null);
            set(&mut event, "time.source", timestamp)?;
            set(&mut event, "extra.shodan", decoded.clone())?;
            set(&mut event, "classification.type", Value::String("other".to_string()))?;
            set(&mut event, "classification.identifier", Value::String("network-scan".to_string()))?;
        } else {
            let mut fields = Vec::new();
            apply_mapping(&MAPPING, banner, "", &event, &mut fields);
            for (key, value) in fields {
                set(&mut event, &key, value)?;
            }
            event.add("classification.type", "other")?;
            event.add("classification.identifier", "shodan-scan")?;
            let uncommon: BTreeSet<&str> =
                banner.keys().map(String::as_str).filter(|k| !COMMON_KEYS.contains(k)).collect();
            event.add(
                "extra.shodan.unique_keys",
                Value::Array(uncommon.iter().map(|k| Value::String((*k).to_string())).collect()),
            )?;
            if let Some(protocol) = uncommon.iter().find(|k| PROTOCOLS.contains(k)) {
                event.add("protocol.application", *protocol)?;
            }
            if let Some(Value::Array(vulns)) = event.get("extra.vulns").cloned() {
                let verified: Vec<Value> = vulns
                    .iter()
                    .filter(|v| v.get("verified").is_some_and(|x| !crate::message::types::is_falsy(x)))
                    .filter_map(|v| v.get("identifier").cloned())
                    .collect();
                event.add("extra.verified_vulns", Value::Array(verified))?;
            }
        }
        out.event(event);
        Ok(())
    }
}
