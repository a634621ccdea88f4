//! The other nodes of the botnet as the control plane sees them: one cached gRPC client per peer
//! (a lazily connecting tonic channel with TCP_NODELAY, so a peer that is down at start or comes
//! back later is reached when asked), the credentials `peers` in `node.conf` give for it (bearer
//! token, TLS, mutual TLS), when it last answered, and the calls forwarded to it, each marked with
//! [`FORWARDED_BY`] so the peer answers alone and never forwards again.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use intelmq_proto::control::v1 as pb;
use intelmq_proto::control::v1::control_client::ControlClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Response, Status};

use super::tls::{self, TlsFileError};
use crate::config::{NodeConfig, PeerConfig};
use crate::runtime::Command;

/// The metadata key marking a call forwarded by another node; its value is that node's id.
pub const FORWARDED_BY: &str = "x-intelmq-forwarded-by";
/// How long a peer may take to answer a question about the whole botnet (status, queues, stats).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a peer may take to carry out a verb (a start waits for the bot's start-up, a run for
/// the bot's step, a check for its connection tests).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Dumps and catalogues can be large.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The client of a peer's control service.
pub type Client = ControlClient<Channel>;

/// Whether `r` was forwarded by another node (then it is answered locally, never forwarded).
pub fn is_forwarded<T>(r: &Request<T>) -> bool {
    r.metadata().contains_key(FORWARDED_BY)
}

/// A peer's setting that keeps the control plane from starting.
#[derive(Debug, thiserror::Error)]
pub enum PeerSetupError {
    #[error("peer `{peer}`: cannot read the token file {file}: {source}")]
    Token { peer: String, file: std::path::PathBuf, source: std::io::Error },
    #[error("peer `{peer}`: the token file {file} is empty or not a header value")]
    BadToken { peer: String, file: std::path::PathBuf },
    #[error("peer `{peer}`: cannot use the {source}")]
    Tls { peer: String, source: TlsFileError },
    #[error("peer `{peer}`: bad control address `{control}`: {reason}")]
    Address { peer: String, control: String, reason: String },
}

/// A peer that could not be asked: down, too slow, or refusing this node's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDown {
    pub node: String,
    pub reason: String,
    /// How long ago the peer last answered this node (never: `None`).
    pub last_answer: Option<Duration>,
}

impl std::fmt::Display for PeerDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} unreachable ({}), ", self.node, self.reason)?;
        match self.last_answer {
            Some(age) => write!(f, "last answer {} s ago", age.as_secs()),
            None => f.write_str("no answer yet"),
        }
    }
}

/// What asking a peer gave besides its answer.
#[derive(Debug)]
pub enum PeerError {
    /// The peer answered with an error (unknown bot, wrong state, ...): the answer to pass on.
    Answer(Status),
    /// The peer could not be asked.
    Down(PeerDown),
}

impl PeerError {
    /// The peer as a node whose part is missing from a merged answer.
    pub fn into_down(self, peer: &Peer) -> PeerDown {
        match self {
            PeerError::Down(d) => d,
            PeerError::Answer(s) => PeerDown {
                node: peer.id.clone(),
                reason: format!("its answer was an error: {}", s.message()),
                last_answer: peer.last_answer(),
            },
        }
    }
}

impl From<PeerError> for Status {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::Answer(s) => Status::new(s.code(), s.message()),
            PeerError::Down(d) => Status::unavailable(d.to_string()),
        }
    }
}

/// One other node and the client this node keeps for it.
pub struct Peer {
    pub id: String,
    /// The peer's control address as configured.
    pub endpoint: String,
    channel: Channel,
    authorization: Option<MetadataValue<Ascii>>,
    /// This node's id, sent as [`FORWARDED_BY`].
    from: MetadataValue<Ascii>,
    last_answer: Mutex<Option<Instant>>,
}

impl Peer {
    /// Reads the peer's credentials and prepares its channel (nothing connects yet). Needs a tokio
    /// runtime.
    fn new(local: &str, cfg: &PeerConfig, root: &Path) -> Result<Peer, PeerSetupError> {
        let peer = cfg.id.clone();
        let authorization = match &cfg.token_file {
            Some(f) => {
                let file = root.join(f);
                let text = std::fs::read_to_string(&file).map_err(|source| PeerSetupError::Token {
                    peer: peer.clone(),
                    file: file.clone(),
                    source,
                })?;
                let value = MetadataValue::try_from(format!("Bearer {}", text.trim()))
                    .ok()
                    .filter(|_| !text.trim().is_empty())
                    .ok_or_else(|| PeerSetupError::BadToken { peer: peer.clone(), file })?;
                Some(value)
            }
            None => None,
        };
        let address =
            |reason: String| PeerSetupError::Address { peer: peer.clone(), control: cfg.control.clone(), reason };
        let scheme = if cfg.ca.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", cfg.control))
            .map_err(|e| address(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(ca) = &cfg.ca {
            let tls_err = |source| PeerSetupError::Tls { peer: peer.clone(), source };
            tls::install_crypto_provider();
            let ca = root.join(ca);
            let ca_pem = tls::read("TLS CA file", &ca).map_err(tls_err)?;
            tls::certificates("TLS CA file", &ca, &ca_pem).map_err(tls_err)?;
            let mut config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca_pem)).domain_name(cfg.host());
            if let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) {
                let (cert, key) = (root.join(cert), root.join(key));
                let cert_pem = tls::read("TLS client certificate file", &cert).map_err(tls_err)?;
                tls::certificates("TLS client certificate file", &cert, &cert_pem).map_err(tls_err)?;
                let key_pem = tls::read("TLS client key file", &key).map_err(tls_err)?;
                config = config.identity(Identity::from_pem(&cert_pem, &key_pem));
            }
            endpoint = endpoint.tls_config(config).map_err(|e| address(e.to_string()))?;
        }
        let from = MetadataValue::try_from(local).map_err(|e| address(format!("node id: {e}")))?;
        Ok(Peer {
            id: peer,
            endpoint: cfg.control.clone(),
            channel: endpoint.connect_lazy(),
            authorization,
            from,
            last_answer: Mutex::new(None),
        })
    }

    /// How long ago the peer last answered this node.
    pub fn last_answer(&self) -> Option<Duration> {
        self.last_answer.lock().ok().and_then(|t| t.map(|t| t.elapsed()))
    }

    fn answered(&self) {
        if let Ok(mut t) = self.last_answer.lock() {
            *t = Some(Instant::now());
        }
    }

    fn down(&self, reason: String) -> PeerError {
        PeerError::Down(PeerDown { node: self.id.clone(), reason, last_answer: self.last_answer() })
    }

    /// Sends `req` through `call` (one rpc of the client), marked as forwarded, with this peer's
    /// credentials, within `timeout`.
    pub async fn call<Req, Resp, F, Fut>(&self, req: Req, timeout: Duration, call: F) -> Result<Resp, PeerError>
    where
        F: FnOnce(Client, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut request = Request::new(req);
        request.set_timeout(timeout);
        request.metadata_mut().insert(FORWARDED_BY, self.from.clone());
        if let Some(a) = &self.authorization {
            request.metadata_mut().insert("authorization", a.clone());
        }
        let client = ControlClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let answer = match tokio::time::timeout(timeout, call(client, request)).await {
            Ok(a) => a,
            Err(_) => return Err(self.down(format!("no answer within {} s", timeout.as_secs_f64()))),
        };
        match answer {
            Ok(r) => {
                self.answered();
                Ok(r.into_inner())
            }
            Err(s) => match failure(&s) {
                Some(reason) => Err(self.down(reason)),
                None => {
                    self.answered();
                    Err(PeerError::Answer(s))
                }
            },
        }
    }

    /// A lifecycle verb on the peer's bots.
    pub async fn lifecycle(
        &self,
        cmd: Command,
        selector: Option<pb::BotSelector>,
    ) -> Result<Vec<pb::BotStatus>, PeerError> {
        let t = if matches!(cmd, Command::Status) { QUERY_TIMEOUT } else { ACTION_TIMEOUT };
        Ok(match cmd {
            Command::Start => {
                self.call(pb::StartBotRequest { selector }, t, |mut c, r| async move { c.start_bot(r).await })
                    .await?
                    .bots
            }
            Command::Stop => {
                self.call(pb::StopBotRequest { selector }, t, |mut c, r| async move { c.stop_bot(r).await }).await?.bots
            }
            Command::Restart => {
                self.call(pb::RestartBotRequest { selector }, t, |mut c, r| async move { c.restart_bot(r).await })
                    .await?
                    .bots
            }
            Command::Reload => {
                self.call(pb::ReloadBotRequest { selector }, t, |mut c, r| async move { c.reload_bot(r).await })
                    .await?
                    .bots
            }
            Command::Status => {
                self.call(pb::GetStatusRequest { selector }, t, |mut c, r| async move { c.get_status(r).await })
                    .await?
                    .bots
            }
        })
    }
}

/// Why a call failed below the peer's answer (connection, timeout, credentials), or `None` when the
/// status is the peer's answer.
fn failure(s: &Status) -> Option<String> {
    let cause = root_cause(s);
    let text = if s.message().is_empty() { s.code().description().to_string() } else { s.message().to_string() };
    let text = match cause {
        Some(c) if !text.contains(&c) => format!("{text}: {c}"),
        _ => text,
    };
    match s.code() {
        Code::Unauthenticated | Code::PermissionDenied => Some(format!(
            "it refused this node's credentials: {text}; check `token_file`, `cert` and `key` of the peer"
        )),
        Code::Unimplemented => Some(format!("it does not know this call (an older version?): {text}")),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => Some(text),
        Code::Internal if text.starts_with("h2 protocol error") => Some(text),
        _ => None,
    }
}

/// The innermost error under a status (the io error under the transport error), if any.
fn root_cause(s: &Status) -> Option<String> {
    let mut cur: &dyn std::error::Error = std::error::Error::source(s)?;
    while let Some(next) = cur.source() {
        cur = next;
    }
    Some(cur.to_string()).filter(|t| !t.is_empty())
}

/// Every peer of this node, in the order of `peers` in `node.conf`.
#[derive(Default)]
pub struct Peers {
    list: Vec<Arc<Peer>>,
}

impl Peers {
    /// Prepares a client for each peer of `node` (paths relative to `root`). Needs a tokio runtime.
    pub fn new(node: &NodeConfig, root: &Path) -> Result<Peers, PeerSetupError> {
        let list =
            node.peers.iter().map(|p| Peer::new(&node.node_id, p, root).map(Arc::new)).collect::<Result<_, _>>()?;
        Ok(Peers { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.list.iter()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Peer>> {
        self.list.iter().find(|p| p.id == id)
    }

    /// Runs `ask` for every peer at once; the results in the peers' order.
    pub async fn each<T, F, Fut>(&self, ask: F) -> Vec<(Arc<Peer>, Result<T, PeerError>)>
    where
        T: Send + 'static,
        F: Fn(Arc<Peer>) -> Fut,
        Fut: Future<Output = Result<T, PeerError>> + Send + 'static,
    {
        let tasks: Vec<_> = self.list.iter().map(|p| tokio::spawn(ask(p.clone()))).collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (p, task) in self.list.iter().zip(tasks) {
            let r = task.await.unwrap_or_else(|e| Err(p.down(format!("the call failed: {e}"))));
            out.push((p.clone(), r));
        }
        out
    }

    /// Sends `req` to every peer at once; the results in the peers' order.
    pub async fn ask_all<Req, Resp, F, Fut>(
        &self,
        req: Req,
        timeout: Duration,
        call: F,
    ) -> Vec<(Arc<Peer>, Result<Resp, PeerError>)>
    where
        Req: Clone + Send + 'static,
        Resp: Send + 'static,
        F: FnOnce(Client, Request<Req>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Response<Resp>, Status>> + Send,
    {
        self.each(|p| {
            let (req, call) = (req.clone(), call.clone());
            async move { p.call(req, timeout, call).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_peer_says_how_long_ago_it_answered() {
        let d = PeerDown { node: "node-b".into(), reason: "connection refused".into(), last_answer: None };
        assert_eq!(d.to_string(), "node node-b unreachable (connection refused), no answer yet");
        let d = PeerDown { last_answer: Some(Duration::from_millis(12_400)), ..d };
        assert_eq!(d.to_string(), "node node-b unreachable (connection refused), last answer 12 s ago");
    }

    #[test]
    fn transport_and_credential_failures_are_not_answers() {
        assert!(failure(&Status::unavailable("tcp connect error")).is_some());
        assert!(failure(&Status::deadline_exceeded("timeout")).is_some());
        let auth = failure(&Status::unauthenticated("wrong token")).expect("a failure");
        assert!(auth.contains("refused this node's credentials: wrong token"), "{auth}");
        assert_eq!(failure(&Status::not_found("unknown bot `x`")), None);
        assert_eq!(failure(&Status::failed_precondition("running")), None);
        assert_eq!(failure(&Status::internal("cannot read")), None);
    }

    #[test]
    fn a_peer_error_becomes_the_callers_status() {
        let s: Status = PeerError::Answer(Status::not_found("unknown bot `x`")).into();
        assert_eq!((s.code(), s.message()), (Code::NotFound, "unknown bot `x`"));
        let d = PeerDown { node: "n".into(), reason: "r".into(), last_answer: None };
        let s: Status = PeerError::Down(d).into();
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().starts_with("node n unreachable"), "{}", s.message());
    }

    #[tokio::test]
    async fn a_peer_that_is_not_there_is_down_quickly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let cfg = NodeConfig {
            node_id: "a".into(),
            peers: vec![PeerConfig { id: "b".into(), control: format!("127.0.0.1:{port}"), ..Default::default() }],
            ..Default::default()
        };
        let peers = Peers::new(&cfg, Path::new("/nonexistent")).expect("peers");
        let started = Instant::now();
        let r = peers
            .ask_all(pb::ListNodesRequest {}, QUERY_TIMEOUT, |mut c, r| async move { c.list_nodes(r).await })
            .await;
        assert!(started.elapsed() < QUERY_TIMEOUT + Duration::from_millis(500));
        match &r[0].1 {
            Err(PeerError::Down(d)) => assert_eq!((d.node.as_str(), d.last_answer), ("b", None)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_token_file_is_named() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _guard = rt.enter();
        let cfg = NodeConfig {
            peers: vec![PeerConfig {
                id: "b".into(),
                control: "127.0.0.1:1".into(),
                token_file: Some("etc/b.token".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = Peers::new(&cfg, Path::new("/nonexistent")).err().expect("an error");
        assert!(e.to_string().starts_with("peer `b`: cannot read the token file /nonexistent/etc/b.token"), "{e}");
    }
}
