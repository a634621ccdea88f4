//! `check`'s "unreachable destinations": the network addresses that outputs' parameters name
//! (database, broker, mail and HTTP servers), each tried with a TCP connect and a short timeout.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::bots::registry;
use crate::config::{BotConfig, Botnet};

/// How long `check` waits for one destination.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a destination is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect.
    Connect,
    /// UDP has no handshake: only the name is resolved.
    Resolve,
}

/// A network address named by a bot's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub bot_id: String,
    /// The parameters naming it, e.g. `host`/`port`.
    pub params: String,
    pub host: String,
    pub port: u16,
    pub probe: Probe,
}

impl Destination {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// (module, host parameter, port parameter) of the outputs whose parameters name a TCP server.
const HOST_PORT: &[(&str, &str, &str)] = &[
    ("intelmq.bots.outputs.sql.output", "host", "port"),
    ("intelmq.bots.outputs.redis.output", "redis_server_ip", "redis_server_port"),
    ("intelmq.bots.outputs.amqptopic.output", "connection_host", "connection_port"),
    ("intelmq.bots.outputs.tcp.output", "ip", "port"),
    ("intelmq.bots.outputs.elasticsearch.output", "elastic_host", "elastic_port"),
    ("intelmq.bots.outputs.smtp.output", "smtp_host", "smtp_port"),
    ("intelmq.bots.outputs.templated_smtp.output", "smtp_host", "smtp_port"),
    ("intelmq.bots.outputs.mqtt.output", "host", "port"),
];

/// The bot's parameters over its module's defaults.
fn effective_params(bot: &BotConfig) -> Map<String, Value> {
    let mut params = registry::find(&bot.module)
        .and_then(|e| match (e.defaults)() {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    params.extend(bot.params.iter().map(|(k, v)| (k.clone(), v.clone())));
    params
}

fn text(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn port(params: &Map<String, Value>, key: &str) -> Option<u16> {
    match params.get(key)? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The destinations a bot's parameters name (none for other bots, or when they are incomplete:
/// the bot's own parameter check reports that).
pub fn of_bot(bot: &BotConfig) -> Vec<Destination> {
    let params = effective_params(bot);
    let dest = |params_name: String, host: String, port: u16, probe| Destination {
        bot_id: bot.id.clone(),
        params: params_name,
        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        probe,
    };
    let module = bot.module.as_str();
    if module == "intelmq.bots.outputs.sql.output"
        && !text(&params, "engine").is_some_and(|e| e.eq_ignore_ascii_case("postgresql"))
    {
        return Vec::new();
    }
    if let Some((_, h, p)) = HOST_PORT.iter().find(|(m, _, _)| *m == module) {
        return match (text(&params, h), port(&params, p)) {
            (Some(host), Some(port)) => vec![dest(format!("`{h}`/`{p}`"), host, port, Probe::Connect)],
            _ => Vec::new(),
        };
    }
    match module {
        "intelmq.bots.outputs.udp.output" => match (text(&params, "udp_host"), port(&params, "udp_port")) {
            (Some(host), Some(port)) => vec![dest("`udp_host`/`udp_port`".into(), host, port, Probe::Resolve)],
            _ => Vec::new(),
        },
        "intelmq.bots.outputs.restapi.output" => {
            let url = text(&params, "host").and_then(|h| url::Url::parse(&h).ok());
            match url.as_ref().and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?))) {
                Some((host, port)) => vec![dest("`host`".into(), host, port, Probe::Connect)],
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// Why `d` cannot be reached, or None when it can.
pub fn probe(d: &Destination, timeout: Duration) -> Option<String> {
    let addrs: Vec<SocketAddr> = match (d.host.as_str(), d.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Some(format!("the name does not resolve: {e}")),
    };
    if addrs.is_empty() {
        return Some("the name resolves to no address".to_string());
    }
    if d.probe == Probe::Resolve {
        return None;
    }
    let mut last = String::new();
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return None,
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Some(last)
}

/// Warnings for the destinations of this node's enabled bots that cannot be reached; every
/// destination is tried at once, so the check takes about one `timeout` at most.
pub fn unreachable(botnet: &Botnet, timeout: Duration) -> Vec<String> {
    let all: Vec<Destination> =
        botnet.bots.iter().filter(|b| b.enabled && botnet.node.is_local(b.node.as_deref())).flat_map(of_bot).collect();
    let failures: Vec<Option<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = all.iter().map(|d| s.spawn(move || probe(d, timeout))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Some("the probe failed".into()))).collect()
    });
    all.iter()
        .zip(failures)
        .filter_map(|(d, why)| {
            why.map(|why| {
                format!("Bot {:?}: destination {} from {} is unreachable ({why}).", d.bot_id, d.address(), d.params)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bot(module: &str, params: Value) -> BotConfig {
        BotConfig {
            id: "out".into(),
            file: "etc/runtime.conf".into(),
            group: None,
            module: module.to_string(),
            name: None,
            description: None,
            enabled: true,
            run_mode: Default::default(),
            node: None,
            source_queue: Some("out-queue".into()),
            destination_queues: Default::default(),
            common: Default::default(),
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn outputs_name_their_servers_with_defaults() {
        let d = of_bot(&bot("intelmq.bots.outputs.redis.output", json!({})));
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].address(), d[0].params.as_str()),
            ("127.0.0.1:6379".to_string(), "`redis_server_ip`/`redis_server_port`")
        );
        let d = of_bot(&bot("intelmq.bots.outputs.tcp.output", json!({"ip": "::1", "port": "5000"})));
        assert_eq!(d[0].address(), "[::1]:5000");
        let d = of_bot(&bot("intelmq.bots.outputs.restapi.output", json!({"host": "https://siem.example:8443/in"})));
        assert_eq!((d[0].host.as_str(), d[0].port), ("siem.example", 8443));
        let d = of_bot(&bot("intelmq.bots.outputs.restapi.output", json!({"host": "https://siem.example/in"})));
        assert_eq!(d[0].port, 443);
        let d = of_bot(&bot("intelmq.bots.outputs.udp.output", json!({"udp_port": 514})));
        assert_eq!((d[0].address(), d[0].probe), ("localhost:514".to_string(), Probe::Resolve));
        assert!(of_bot(&bot("intelmq.bots.outputs.sql.output", json!({"engine": "sqlite"}))).is_empty());
        assert_eq!(of_bot(&bot("intelmq.bots.outputs.sql.output", json!({"engine": "postgresql"})))[0].port, 5432);
        assert!(of_bot(&bot("intelmq.bots.outputs.tcp.output", json!({}))).is_empty(), "incomplete: no address");
        assert!(of_bot(&bot("intelmq.bots.outputs.file.output", json!({}))).is_empty());
    }

    #[test]
    fn a_closed_port_is_unreachable_and_an_open_one_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let d = |port| Destination {
            bot_id: "b".into(),
            params: "`ip`/`port`".into(),
            host: "127.0.0.1".into(),
            port,
            probe: Probe::Connect,
        };
        assert_eq!(probe(&d(open), CONNECT_TIMEOUT), None);
        let why = probe(&d(closed), CONNECT_TIMEOUT).expect("refused");
        assert!(why.contains(&format!("127.0.0.1:{closed}")), "{why}");
        let mut bad = d(open);
        bad.host = "no-such-host.invalid".into();
        assert!(probe(&bad, CONNECT_TIMEOUT).is_some_and(|w| w.contains("does not resolve")));
    }
}
