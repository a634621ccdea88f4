//! `node.conf`: what IntelMQ did not have. This node's id, the store and its sync setting, the
//! control listeners and their auth, the peers of a multi-node botnet and the broker that carries
//! messages between the nodes. Optional: a missing
//! file means [`NodeConfig::default`]. Unknown keys are refused, naming the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ConfigError;

/// When the store fsyncs its write-ahead log (`store.sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync every processing step: survives power loss.
    Always,
    /// Group commit: fsync at most every `sync_interval_ms`; survives a process crash (default).
    #[default]
    Interval,
    /// Never fsync explicitly (the WAL is still written): survives a process crash only.
    Never,
}

impl SyncMode {
    fn parse(s: &str) -> Option<SyncMode> {
        match s {
            "always" => Some(SyncMode::Always),
            "interval" => Some(SyncMode::Interval),
            "never" => Some(SyncMode::Never),
            _ => None,
        }
    }
}

/// `store`: the node's RocksDB database.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    /// `store.path`, default `var/lib/store` (relative paths are under the root; see
    /// [`NodeConfig::store_path`]).
    pub path: String,
    /// `store.sync`, default `interval`.
    pub sync: SyncMode,
    /// `store.sync_interval_ms`, default 10 (the group-commit window for `interval`).
    pub sync_interval_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: "var/lib/store".to_string(), sync: SyncMode::Interval, sync_interval_ms: 10 }
    }
}

/// `control`: the gRPC listeners besides the always-on Unix socket `var/run/control.sock`.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlConfig {
    /// `control.tcp`, default null (no TCP listener), e.g. `127.0.0.1:7600`.
    pub tcp: Option<SocketAddr>,
    /// `control.token_file`, default null: a file holding the bearer token TCP clients must send.
    /// A TCP address beyond loopback needs it or `tls_client_ca`. Relative paths are under the
    /// root; see [`NodeConfig::token_file`].
    pub token_file: Option<String>,
    /// `control.tls_cert`, default null: the PEM certificate chain of the TCP listener. With
    /// `tls_key`, TCP speaks TLS. Relative paths are under the root (as every file here).
    pub tls_cert: Option<String>,
    /// `control.tls_key`, default null: the PEM private key of `tls_cert`.
    pub tls_key: Option<String>,
    /// `control.tls_client_ca`, default null: PEM CA certificates; when set, TCP clients must
    /// present a certificate signed by one of them (mutual TLS). Needs `tls_cert`.
    pub tls_client_ca: Option<String>,
    /// `control.rate_window_ms`, default 10000: the window over which stats give a bot's rate.
    pub rate_window_ms: u64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            tcp: None,
            token_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            rate_window_ms: DEFAULT_RATE_WINDOW_MS,
        }
    }
}

/// The default of `control.rate_window_ms`.
pub const DEFAULT_RATE_WINDOW_MS: u64 = 10_000;

/// One other node of the botnet (`peers` entries: `{"id": .., "control": "host:port"}`, plus how
/// this node authenticates to the peer's TCP control listener when it forwards control calls).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerConfig {
    /// The peer's node id (what bot entries name in `node:`).
    pub id: String,
    /// The peer's control address, `host:port` (its `control.tcp`).
    pub control: String,
    /// `token_file`, default null: a file holding the bearer token sent to the peer (the content
    /// of the peer's own `control.token_file`). Relative paths are under the root.
    pub token_file: Option<String>,
    /// `ca`, default null: PEM CA certificates the peer's TLS certificate must chain to; when set,
    /// calls to the peer speak TLS and the certificate must name the host of `control`.
    pub ca: Option<String>,
    /// `cert`, default null: the PEM client certificate presented to the peer (mutual TLS, for a
    /// peer with `control.tls_client_ca`). Needs `key` and `ca`.
    pub cert: Option<String>,
    /// `key`, default null: the PEM private key of `cert`.
    pub key: Option<String>,
}

impl PeerConfig {
    /// The host part of `control` (without brackets around an IPv6 address).
    pub fn host(&self) -> &str {
        let host = self.control.rsplit_once(':').map_or(self.control.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// `broker`: the message broker between the nodes of a botnet (RabbitMQ over AMQP 0-9-1). Default
/// null: a single node needs none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `broker.url`, required: `amqp://user:password@host:5672/vhost` (`amqps://` for TLS).
    pub url: String,
    /// `broker.queue_prefix`, default `intelmq.`: the broker queue of queue `q` is
    /// `<queue_prefix><q>`, so several botnets can share one broker.
    pub queue_prefix: String,
    /// `broker.tls_ca_file`, default null: PEM CA certificates the broker's certificate must chain
    /// to (`amqps://`); null: the system's roots. Relative paths are under the root.
    pub tls_ca_file: Option<String>,
    /// `broker.dedup_ttl_s`, default 86400: how long the receiving node remembers the id of a
    /// message it took in, so a redelivery within that time is not a second event.
    pub dedup_ttl_s: u64,
}

/// The default of `broker.queue_prefix`.
pub const DEFAULT_QUEUE_PREFIX: &str = "intelmq.";
/// The default of `broker.dedup_ttl_s`.
pub const DEFAULT_DEDUP_TTL_S: u64 = 86_400;

impl BrokerConfig {
    /// `url` without its password, for logs and messages.
    pub fn display_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}@{}", &self.url[..scheme + 3], &self.url[at + 1..])
            }
            _ => self.url.clone(),
        }
    }
}

/// The contents of `node.conf`.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// `node_id`, default `local`.
    pub node_id: String,
    pub store: StoreConfig,
    pub control: ControlConfig,
    /// `peers`, default none.
    pub peers: Vec<PeerConfig>,
    /// `broker`, default null.
    pub broker: Option<BrokerConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: "local".to_string(),
            store: StoreConfig::default(),
            control: ControlConfig::default(),
            peers: Vec::new(),
            broker: None,
        }
    }
}

impl NodeConfig {
    /// The store directory, resolved against `root` when relative.
    pub fn store_path(&self, root: &Path) -> PathBuf {
        root.join(&self.store.path)
    }

    /// The token file, resolved against `root` when relative.
    pub fn token_file(&self, root: &Path) -> Option<PathBuf> {
        self.control.token_file.as_ref().map(|p| root.join(p))
    }

    /// The TLS files of the TCP listener (certificate, key, client CA), resolved against `root`.
    pub fn tls_files(&self, root: &Path) -> Option<(PathBuf, PathBuf, Option<PathBuf>)> {
        let c = &self.control;
        match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => {
                Some((root.join(cert), root.join(key), c.tls_client_ca.as_ref().map(|p| root.join(p))))
            }
            _ => None,
        }
    }

    /// Whether `node` (a bot's `node:` value) names this node; `None` does.
    pub fn is_local(&self, node: Option<&str>) -> bool {
        node.is_none_or(|n| n == self.node_id)
    }

    /// Every node id this botnet knows: this node first, then the peers.
    pub fn node_ids(&self) -> Vec<&str> {
        std::iter::once(self.node_id.as_str()).chain(self.peers.iter().map(|p| p.id.as_str())).collect()
    }

    /// Reads `file`; a missing file gives the defaults.
    pub fn load(file: &Path) -> Result<NodeConfig, ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
            Err(source) => return Err(ConfigError::Io { file: file.to_path_buf(), source }),
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| ConfigError::Json {
            file: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            reason: e.to_string(),
        })?;
        NodeConfig::from_value(file, &value)
    }

    /// Validates the parsed JSON of `node.conf` (no IO).
    pub fn from_value(file: &Path, value: &Value) -> Result<NodeConfig, ConfigError> {
        let err = |key: &str, reason: String| ConfigError::NodeConf {
            file: file.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let top = as_object(value, "node.conf").map_err(|r| err("(top level)", r))?;
        check_keys(top, "", &["node_id", "store", "control", "peers", "broker"]).map_err(|(k, r)| err(&k, r))?;
        let mut cfg = NodeConfig::default();

        if let Some(v) = non_null(top.get("node_id")) {
            let id = as_str(v).map_err(|r| err("node_id", r))?;
            check_node_id(id).map_err(|r| err("node_id", r))?;
            cfg.node_id = id.to_string();
        }

        if let Some(v) = non_null(top.get("store")) {
            let store = as_object(v, "store").map_err(|r| err("store", r))?;
            check_keys(store, "store.", &["path", "sync", "sync_interval_ms"]).map_err(|(k, r)| err(&k, r))?;
            if let Some(v) = non_null(store.get("path")) {
                let p = as_str(v).map_err(|r| err("store.path", r))?;
                if p.is_empty() {
                    return Err(err("store.path", "must not be empty".to_string()));
                }
                cfg.store.path = p.to_string();
            }
            if let Some(v) = non_null(store.get("sync")) {
                let s = as_str(v).map_err(|r| err("store.sync", r))?;
                cfg.store.sync = SyncMode::parse(s)
                    .ok_or_else(|| err("store.sync", format!("`{s}` is not one of always, interval, never")))?;
            }
            if let Some(v) = non_null(store.get("sync_interval_ms")) {
                let ms = v
                    .as_u64()
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| err("store.sync_interval_ms", format!("`{v}` is not a positive integer")))?;
                cfg.store.sync_interval_ms = ms;
            }
        }

        if let Some(v) = non_null(top.get("control")) {
            let control = as_object(v, "control").map_err(|r| err("control", r))?;
            check_keys(
                control,
                "control.",
                &["tcp", "token_file", "tls_cert", "tls_key", "tls_client_ca", "rate_window_ms"],
            )
            .map_err(|(k, r)| err(&k, r))?;
            let file = |key: &str| path_key(control, "control.", key).map_err(|(k, r)| err(&k, r));
            cfg.control.token_file = file("token_file")?;
            cfg.control.tls_cert = file("tls_cert")?;
            cfg.control.tls_key = file("tls_key")?;
            cfg.control.tls_client_ca = file("tls_client_ca")?;
            match (&cfg.control.tls_cert, &cfg.control.tls_key) {
                (Some(_), None) => return Err(err("control.tls_key", "missing: `tls_cert` needs its key".to_string())),
                (None, Some(_)) => {
                    return Err(err("control.tls_cert", "missing: `tls_key` needs its certificate".to_string()))
                }
                (None, None) if cfg.control.tls_client_ca.is_some() => {
                    return Err(err(
                        "control.tls_client_ca",
                        "client certificates need TLS: set `tls_cert` and `tls_key` too".to_string(),
                    ))
                }
                _ => {}
            }
            if let Some(v) = non_null(control.get("rate_window_ms")) {
                let ms = v
                    .as_u64()
                    .filter(|ms| *ms >= 100)
                    .ok_or_else(|| err("control.rate_window_ms", format!("`{v}` is not an integer of at least 100")))?;
                cfg.control.rate_window_ms = ms;
            }
            if let Some(v) = non_null(control.get("tcp")) {
                let s = as_str(v).map_err(|r| err("control.tcp", r))?;
                let addr: SocketAddr =
                    s.parse().map_err(|_| err("control.tcp", format!("`{s}` is not an ip:port socket address")))?;
                let authenticated = cfg.control.token_file.is_some() || cfg.control.tls_client_ca.is_some();
                if !addr.ip().is_loopback() && !authenticated {
                    return Err(err(
                        "control.tcp",
                        format!(
                            "`{s}` is not a loopback address, so clients must authenticate: set \
                             `control.token_file` or `control.tls_client_ca` (mutual TLS)"
                        ),
                    ));
                }
                cfg.control.tcp = Some(addr);
            }
        }

        if let Some(v) = non_null(top.get("peers")) {
            let list = v.as_array().ok_or_else(|| err("peers", format!("expected a list, got `{v}`")))?;
            for (i, p) in list.iter().enumerate() {
                let key = format!("peers[{i}]");
                let obj = as_object(p, &key).map_err(|r| err(&key, r))?;
                check_keys(obj, &format!("{key}."), &["id", "control", "token_file", "ca", "cert", "key"])
                    .map_err(|(k, r)| err(&k, r))?;
                let id_key = format!("{key}.id");
                let id = non_null(obj.get("id"))
                    .ok_or_else(|| err(&id_key, "missing".to_string()))
                    .and_then(|v| as_str(v).map_err(|r| err(&id_key, r)))?;
                check_node_id(id).map_err(|r| err(&id_key, r))?;
                if cfg.node_ids().contains(&id) {
                    return Err(err(&id_key, format!("node id `{id}` is used twice")));
                }
                let control_key = format!("{key}.control");
                let control = non_null(obj.get("control"))
                    .ok_or_else(|| err(&control_key, "missing".to_string()))
                    .and_then(|v| as_str(v).map_err(|r| err(&control_key, r)))?;
                match control.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                    _ => return Err(err(&control_key, format!("`{control}` is not a host:port address"))),
                }
                let prefix = format!("{key}.");
                let file = |name: &str| path_key(obj, &prefix, name).map_err(|(k, r)| err(&k, r));
                let peer = PeerConfig {
                    id: id.to_string(),
                    control: control.to_string(),
                    token_file: file("token_file")?,
                    ca: file("ca")?,
                    cert: file("cert")?,
                    key: file("key")?,
                };
                match (&peer.cert, &peer.key) {
                    (Some(_), None) => return Err(err(&format!("{key}.key"), "missing: `cert` needs its key".into())),
                    (None, Some(_)) => {
                        return Err(err(&format!("{key}.cert"), "missing: `key` needs its certificate".into()))
                    }
                    (Some(_), Some(_)) if peer.ca.is_none() => {
                        return Err(err(
                            &format!("{key}.ca"),
                            "missing: a client certificate needs TLS, set the CA of the peer's certificate".into(),
                        ))
                    }
                    _ => {}
                }
                cfg.peers.push(peer);
            }
        }

        if let Some(v) = non_null(top.get("broker")) {
            let broker = as_object(v, "broker").map_err(|r| err("broker", r))?;
            check_keys(broker, "broker.", &["url", "queue_prefix", "tls_ca_file", "dedup_ttl_s"])
                .map_err(|(k, r)| err(&k, r))?;
            let url = non_null(broker.get("url"))
                .ok_or_else(|| err("broker.url", "missing".to_string()))
                .and_then(|v| as_str(v).map_err(|r| err("broker.url", r)))?;
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(err("broker.url", format!("`{url}` is not an amqp:// or amqps:// url")));
            }
            let mut b = BrokerConfig {
                url: url.to_string(),
                queue_prefix: DEFAULT_QUEUE_PREFIX.to_string(),
                tls_ca_file: None,
                dedup_ttl_s: DEFAULT_DEDUP_TTL_S,
            };
            if let Some(v) = non_null(broker.get("queue_prefix")) {
                let p = as_str(v).map_err(|r| err("broker.queue_prefix", r))?;
                if !p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
                    return Err(err(
                        "broker.queue_prefix",
                        format!("`{p}` may hold only letters, digits and `-`, `_`, `.`, `:`"),
                    ));
                }
                b.queue_prefix = p.to_string();
            }
            if let Some(v) = non_null(broker.get("tls_ca_file")) {
                let p = as_str(v).map_err(|r| err("broker.tls_ca_file", r))?;
                if p.is_empty() {
                    return Err(err("broker.tls_ca_file", "must not be empty".to_string()));
                }
                b.tls_ca_file = Some(p.to_string());
            }
            if let Some(v) = non_null(broker.get("dedup_ttl_s")) {
                b.dedup_ttl_s = v
                    .as_u64()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| err("broker.dedup_ttl_s", format!("`{v}` is not a positive integer")))?;
            }
            cfg.broker = Some(b);
        }
        Ok(cfg)
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{what} must be an object, got `{v}`"))
}

fn as_str(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expected a string, got `{v}`"))
}

/// The file path at `obj[key]`, if set: a non-empty string. An error names `{prefix}{key}`.
fn path_key(obj: &Map<String, Value>, prefix: &str, key: &str) -> Result<Option<String>, (String, String)> {
    let name = format!("{prefix}{key}");
    let Some(v) = non_null(obj.get(key)) else { return Ok(None) };
    let p = as_str(v).map_err(|r| (name.clone(), r))?;
    if p.is_empty() {
        return Err((name, "must not be empty".to_string()));
    }
    Ok(Some(p.to_string()))
}

fn check_keys(obj: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), (String, String)> {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            return Err((format!("{prefix}{key}"), format!("unknown key (known: {})", known.join(", "))));
        }
    }
    Ok(())
}

fn check_node_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(format!("node id `{id}` may hold only letters, digits and `-`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        let v: Value = serde_json::from_str(text).unwrap();
        NodeConfig::from_value(Path::new("/r/etc/node.conf"), &v)
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = NodeConfig::load(&dir.path().join("node.conf")).unwrap();
        assert_eq!(cfg, NodeConfig::default());
        assert_eq!(cfg.node_id, "local");
        assert_eq!(cfg.store.sync, SyncMode::Interval);
        assert_eq!(cfg.store.sync_interval_ms, 10);
        assert_eq!(cfg.store_path(Path::new("/r")), PathBuf::from("/r/var/lib/store"));
        assert!(cfg.control.tcp.is_none());
    }

    #[test]
    fn full_file_is_read() {
        let cfg = parse(
            r#"{"node_id": "node-a",
                "store": {"path": "/data/store", "sync": "always", "sync_interval_ms": 5},
                "control": {"tcp": "0.0.0.0:7600", "token_file": "etc/token"},
                "peers": [{"id": "node-b", "control": "10.0.0.2:7600"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.node_id, "node-a");
        assert_eq!(cfg.store.sync, SyncMode::Always);
        assert_eq!(cfg.store.sync_interval_ms, 5);
        assert_eq!(cfg.store_path(Path::new("/r")), PathBuf::from("/data/store"));
        assert_eq!(cfg.control.tcp, Some("0.0.0.0:7600".parse().unwrap()));
        assert_eq!(cfg.token_file(Path::new("/r")), Some(PathBuf::from("/r/etc/token")));
        assert_eq!(
            cfg.peers,
            vec![PeerConfig { id: "node-b".into(), control: "10.0.0.2:7600".into(), ..Default::default() }]
        );
        assert!(cfg.is_local(None));
        assert!(cfg.is_local(Some("node-a")));
        assert!(!cfg.is_local(Some("node-b")));
    }

    #[test]
    fn unknown_nested_key_is_named_with_its_path() {
        let e = parse(r#"{"store": {"syncc": "always"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "store.syncc"), "{e}");
        assert!(e.to_string().contains("node.conf"), "{e}");
        let e = parse(r#"{"nodeid": "x"}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "nodeid"), "{e}");
    }

    #[test]
    fn bad_sync_mode_is_refused() {
        let e = parse(r#"{"store": {"sync": "sometimes"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid `store.sync` in `/r/etc/node.conf`: `sometimes` is not one of always, interval, never"
        );
    }

    #[test]
    fn tcp_off_loopback_needs_a_token_file() {
        let e = parse(r#"{"control": {"tcp": "0.0.0.0:7600"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tcp"), "{e}");
        assert!(parse(r#"{"control": {"tcp": "127.0.0.1:7600"}}"#).is_ok());
    }

    #[test]
    fn tcp_off_loopback_accepts_mutual_tls_as_auth() {
        let cfg = parse(
            r#"{"control": {"tcp": "0.0.0.0:7600", "tls_cert": "etc/c.pem", "tls_key": "/k/c.key",
                            "tls_client_ca": "etc/ca.pem"}}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.tls_files(Path::new("/r")),
            Some((PathBuf::from("/r/etc/c.pem"), PathBuf::from("/k/c.key"), Some(PathBuf::from("/r/etc/ca.pem"))))
        );
        // TLS without client certificates is encryption, not authentication.
        let e = parse(r#"{"control": {"tcp": "0.0.0.0:7600", "tls_cert": "c", "tls_key": "k"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tcp"), "{e}");
        assert!(e.to_string().contains("tls_client_ca"), "{e}");
        let both = parse(r#"{"control": {"tcp": "0.0.0.0:1", "tls_cert": "c", "tls_key": "k", "token_file": "t"}}"#);
        assert!(both.is_ok());
    }

    #[test]
    fn tls_settings_come_in_pairs() {
        let e = parse(r#"{"control": {"tls_cert": "c"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tls_key"), "{e}");
        let e = parse(r#"{"control": {"tls_key": "k"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tls_cert"), "{e}");
        let e = parse(r#"{"control": {"tls_client_ca": "ca"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tls_client_ca"), "{e}");
        let e = parse(r#"{"control": {"tls_cert": ""}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tls_cert"), "{e}");
        let e = parse(r#"{"control": {"tls_certificate": "c"}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.tls_certificate"), "{e}");
        assert_eq!(parse("{}").unwrap().tls_files(Path::new("/r")), None);
    }

    #[test]
    fn rate_window_has_a_floor() {
        assert_eq!(parse("{}").unwrap().control.rate_window_ms, 10_000);
        assert_eq!(parse(r#"{"control": {"rate_window_ms": 500}}"#).unwrap().control.rate_window_ms, 500);
        let e = parse(r#"{"control": {"rate_window_ms": 5}}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "control.rate_window_ms"), "{e}");
    }

    #[test]
    fn peer_ids_must_be_unique_and_valid() {
        let e = parse(r#"{"node_id": "a", "peers": [{"id": "a", "control": "h:1"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].id"), "{e}");
        let e = parse(r#"{"peers": [{"id": "b_c", "control": "h:1"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].id"), "{e}");
        let e = parse(r#"{"peers": [{"id": "b", "control": "nohost"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].control"), "{e}");
    }

    #[test]
    fn peers_carry_their_token_and_tls_files() {
        let cfg = parse(
            r#"{"node_id": "a", "peers": [
                {"id": "b", "control": "node-b.example:7600", "token_file": "etc/b.token",
                 "ca": "etc/ca.pem", "cert": "etc/a.pem", "key": "etc/a.key"},
                {"id": "c", "control": "[::1]:7600"}]}"#,
        )
        .unwrap();
        let b = &cfg.peers[0];
        assert_eq!(b.token_file.as_deref(), Some("etc/b.token"));
        assert_eq!(
            (b.ca.as_deref(), b.cert.as_deref(), b.key.as_deref()),
            (Some("etc/ca.pem"), Some("etc/a.pem"), Some("etc/a.key"))
        );
        assert_eq!(b.host(), "node-b.example");
        assert_eq!(cfg.peers[1].host(), "::1");
        let e = parse(r#"{"peers": [{"id": "b", "control": "h:1", "cert": "c"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].key"), "{e}");
        let e = parse(r#"{"peers": [{"id": "b", "control": "h:1", "cert": "c", "key": "k"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].ca"), "{e}");
        let e = parse(r#"{"peers": [{"id": "b", "control": "h:1", "token": "t"}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].token"), "{e}");
        let e = parse(r#"{"peers": [{"id": "b", "control": "h:1", "token_file": ""}]}"#).unwrap_err();
        assert!(matches!(&e, ConfigError::NodeConf { key, .. } if key == "peers[0].token_file"), "{e}");
    }

    #[test]
    fn broker_is_read_with_its_defaults() {
        assert_eq!(parse("{}").unwrap().broker, None);
        assert_eq!(parse(r#"{"broker": null}"#).unwrap().broker, None);
        let cfg = parse(r#"{"broker": {"url": "amqp://guest:secret@127.0.0.1:5672/%2f"}}"#).unwrap();
        let b = cfg.broker.unwrap();
        assert_eq!(b.queue_prefix, "intelmq.");
        assert_eq!(b.dedup_ttl_s, 86_400);
        assert_eq!(b.tls_ca_file, None);
        assert_eq!(b.display_url(), "amqp://guest@127.0.0.1:5672/%2f");
        let cfg = parse(
            r#"{"broker": {"url": "amqps://h:5671", "queue_prefix": "soc.", "tls_ca_file": "etc/ca.pem",
                           "dedup_ttl_s": 60}}"#,
        )
        .unwrap();
        let b = cfg.broker.unwrap();
        assert_eq!(
            (b.queue_prefix.as_str(), b.tls_ca_file.as_deref(), b.dedup_ttl_s),
            ("soc.", Some("etc/ca.pem"), 60)
        );
        assert_eq!(b.display_url(), "amqps://h:5671");
    }

    #[test]
    fn broker_settings_are_checked() {
        for (text, key) in [
            (r#"{"broker": {}}"#, "broker.url"),
            (r#"{"broker": {"url": "http://h"}}"#, "broker.url"),
            (r#"{"broker": {"url": "amqp://h", "queue_prefix": "a b"}}"#, "broker.queue_prefix"),
            (r#"{"broker": {"url": "amqp://h", "dedup_ttl_s": 0}}"#, "broker.dedup_ttl_s"),
            (r#"{"broker": {"url": "amqp://h", "tls_ca": "x"}}"#, "broker.tls_ca"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(matches!(&e, ConfigError::NodeConf { key: k, .. } if k == key), "{text}: {e}");
        }
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.conf");
        std::fs::write(&file, "{\n  \"node_id\": \"a\",\n}").unwrap();
        let e = NodeConfig::load(&file).unwrap_err();
        assert!(matches!(e, ConfigError::Json { line: 3, .. }), "{e}");
    }
}
