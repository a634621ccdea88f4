//! The connection to the node (Unix socket, or TCP with TLS / mutual TLS and a bearer-token
//! interceptor) and the mapping of every failure, local, TLS or gRPC, to one diagnostic line and an
//! exit code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Request, Status};

use intelmq_proto::control::v1::control_client::ControlClient;

use crate::cli::GlobalOpts;

/// Exit code: ok.
pub const EXIT_OK: u8 = 0;
/// Exit code: the verb failed in IntelMQ's sense.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: unknown bot/queue/dump id, bad arguments or message.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no node to talk to.
pub const EXIT_CONNECT: u8 = 3;
/// Exit code: the node refused our credentials (token or client certificate), or we refused the
/// node's TLS certificate.
pub const EXIT_AUTH: u8 = 4;

const DEFAULT_ROOT: &str = "/opt/intelmq";
const SOCKET_REL: &str = "var/run/control.sock";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Dumps and catalogues can be large.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The control client, with the token interceptor.
pub type Client = ControlClient<InterceptedService<Channel, Auth>>;

/// What every command gets: the connected client and the output mode.
pub struct Ctx {
    pub client: Client,
    /// `--json` / `--type json`.
    pub json: bool,
}

/// A failure: one diagnostic line for stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    pub code: u8,
    pub message: String,
    /// The node answered NOT_FOUND.
    pub not_found: bool,
}

impl CtlError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CtlError { code, message: one_line(&message.into()), not_found: false }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CtlError::new(EXIT_USAGE, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        CtlError::new(EXIT_FAILED, message)
    }
    /// Whether the node answered NOT_FOUND (exit code 2 from a gRPC status).
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

impl From<Status> for CtlError {
    fn from(s: Status) -> Self {
        if let Some(e) = tls_failure(&s) {
            return e;
        }
        // A connection that broke below gRPC: the TLS layer may know why.
        if matches!(s.code(), Code::Cancelled | Code::Unknown | Code::Unavailable | Code::Internal) {
            if let Some(e) = crate::tls::last_error().and_then(|t| tls_text_failure(&t, true)) {
                return e;
            }
        }
        let msg = if s.message().is_empty() { s.code().description().to_string() } else { s.message().to_string() };
        let broken = matches!(
            (s.code(), msg.as_str()),
            (Code::Cancelled, _) | (Code::Unknown, "transport error") | (Code::Internal, _)
        ) && (s.code() != Code::Internal || msg.starts_with("h2 protocol error"));
        if broken && crate::tls::used() {
            // TLS 1.3 tells a refused client certificate after the handshake; when the connection
            // breaks before that alert is read, the refusal is the likely cause.
            return CtlError::new(
                EXIT_AUTH,
                format!(
                    "the node closed the TLS connection: {msg} (does it require a client certificate? check --cert and --key)"
                ),
            );
        }
        if broken {
            // The connection broke below gRPC, e.g. plain HTTP/2 to a listener that speaks TLS.
            return CtlError::new(
                EXIT_CONNECT,
                format!("the connection to the node failed: {msg} (a node speaking TLS needs https:// and --ca)"),
            );
        }
        match s.code() {
            Code::NotFound => CtlError { not_found: true, ..CtlError::new(EXIT_USAGE, msg) },
            Code::InvalidArgument => CtlError::new(EXIT_USAGE, msg),
            Code::OutOfRange => CtlError::new(EXIT_USAGE, format!("out of range: {msg}")),
            Code::AlreadyExists => CtlError::new(EXIT_USAGE, format!("already exists: {msg}")),
            Code::Unauthenticated => CtlError::new(EXIT_AUTH, format!("authentication failed: {msg}")),
            Code::PermissionDenied => CtlError::new(EXIT_AUTH, format!("permission denied: {msg}")),
            Code::Unavailable => CtlError::new(EXIT_CONNECT, format!("the node is unavailable: {msg}")),
            Code::FailedPrecondition => CtlError::failed(msg),
            Code::Unimplemented => CtlError::failed(format!("the node does not implement this verb: {msg}")),
            Code::DeadlineExceeded => CtlError::failed(format!("the node did not answer in time: {msg}")),
            _ => CtlError::failed(format!("{}: {msg}", s.code().description())),
        }
    }
}

/// Joins the lines of a message so a diagnostic stays on one line.
pub fn one_line(s: &str) -> String {
    let parts: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    parts.join("; ")
}

/// Where the node listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Socket(PathBuf),
    Tcp(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Socket(p) => write!(f, "{}", p.display()),
            Target::Tcp(u) => f.write_str(u),
        }
    }
}

/// `--socket`, else `--endpoint`, else `$INTELMQ_CTL_ENDPOINT`, else the socket under the root
/// (`--root`, else `$INTELMQ_ROOT_DIR`, else /opt/intelmq). `unix:PATH` endpoints are sockets.
pub fn resolve_target(g: &GlobalOpts, env_endpoint: Option<String>, env_root: Option<String>) -> Target {
    if let Some(s) = &g.socket {
        return Target::Socket(s.clone());
    }
    let endpoint = g.endpoint.clone().or(env_endpoint.filter(|e| !e.trim().is_empty()));
    if let Some(e) = endpoint {
        let e = e.trim().to_string();
        if let Some(path) = e.strip_prefix("unix://").or_else(|| e.strip_prefix("unix:")) {
            return Target::Socket(PathBuf::from(path));
        }
        return Target::Tcp(e);
    }
    let root = g
        .root
        .clone()
        .or(env_root.filter(|r| !r.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    Target::Socket(root.join(SOCKET_REL))
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl Auth {
    pub fn new(token: Option<&str>) -> Result<Self, CtlError> {
        let header = match token {
            None => None,
            Some(t) => Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| CtlError::usage("the token holds characters not allowed in a header"))?,
            ),
        };
        Ok(Auth { header })
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert("authorization", h.clone());
        }
        Ok(request)
    }
}

/// Reads a token file: its content without surrounding whitespace.
pub fn read_token(path: &Path) -> Result<String, CtlError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CtlError::usage(format!("cannot read the token file {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CtlError::usage(format!("the token file {} is empty", path.display())));
    }
    Ok(token.to_string())
}

/// TLS for a TCP endpoint: `--ca`, `--cert`, `--key` (or `$INTELMQ_CTL_CA`, `_CERT`, `_KEY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA certificates the node's certificate must chain to (default: the system's roots).
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// Whether any TLS file was given (then TCP speaks TLS whatever the endpoint's scheme).
    pub fn any(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }
}

/// The URL to dial: `host:port` gets `http://`, and with TLS `http://` becomes `https://`.
pub fn endpoint_url(url: &str, tls: bool) -> String {
    let url = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
    match url.strip_prefix("http://") {
        Some(rest) if tls => format!("https://{rest}"),
        _ => url,
    }
}

/// A TLS failure somewhere in `e`'s chain, as an exit code and one line (see [`tls_text_failure`]).
pub fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<CtlError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let io_inner = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if let Some(r) = io_inner.and_then(|i| i.downcast_ref::<rustls::Error>()).or(err.downcast_ref()) {
            return tls_text_failure(&r.to_string(), true);
        }
        cur = err.source();
    }
    // Some layers keep only the text of the TLS error.
    tls_text_failure(&root_cause(e), false)
}

/// A TLS error by its text: certificates refused either way are exit code 4 (credentials), other
/// TLS errors exit code 3 (cannot connect). `surely_tls`: the text is a TLS error's.
pub fn tls_text_failure(text: &str, surely_tls: bool) -> Option<CtlError> {
    const REFUSED: &[&str] = &[
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "CertificateExpired",
        "CertificateRevoked",
        "UnsupportedCertificate",
        "AccessDenied",
    ];
    if text.contains("invalid peer certificate") {
        Some(CtlError::new(
            EXIT_AUTH,
            format!("the node's TLS certificate is not trusted: {text} (check --ca and the endpoint's host name)"),
        ))
    } else if text.contains("received fatal alert") && REFUSED.iter().any(|a| text.contains(a)) {
        Some(CtlError::new(
            EXIT_AUTH,
            format!("the node refused our client certificate: {text} (mutual TLS: give --cert and --key)"),
        ))
    } else if surely_tls || text.contains("received fatal alert") {
        Some(CtlError::new(EXIT_CONNECT, format!("TLS with the node failed: {text} (does the endpoint speak TLS?)")))
    } else {
        None
    }
}

/// Connects to the node; a node that is not there is exit code 3. `tls` applies to TCP endpoints.
pub async fn connect(target: &Target, token: Option<&str>, tls: &TlsFiles) -> Result<Client, CtlError> {
    let auth = Auth::new(token)?;
    let cannot = |e: &(dyn std::error::Error + 'static)| {
        tls_failure(e).unwrap_or_else(|| {
            CtlError::new(
                EXIT_CONNECT,
                format!("cannot connect to the node at {target}: {} (is intelmq-node running?)", root_cause(e)),
            )
        })
    };
    let channel = match target {
        Target::Socket(path) => {
            let path = path.clone();
            let endpoint = Endpoint::try_from("http://[::]:50051")
                .map_err(|e| CtlError::failed(format!("socket endpoint: {e}")))?
                .connect_timeout(CONNECT_TIMEOUT);
            endpoint
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
                }))
                .await
                .map_err(|e| cannot(&e))?
        }
        Target::Tcp(url) => {
            let url = endpoint_url(url, tls.any());
            let bad = |why: String| CtlError::usage(format!("bad endpoint `{url}`: {why}"));
            let uri = url.parse::<Uri>().map_err(|e| bad(e.to_string()))?;
            match uri.scheme_str() {
                Some("https") => {
                    let host = uri.host().ok_or_else(|| bad("no host".into()))?;
                    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                    let port = uri.port_u16().unwrap_or(443);
                    let config = crate::tls::client_config(tls)?;
                    // TLS is ours (see `tls`); tonic dials plain HTTP/2 over it.
                    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
                    Endpoint::from_shared(format!("http://{authority}"))
                        .map_err(|e| bad(root_cause(&e)))?
                        .connect_timeout(CONNECT_TIMEOUT)
                        .connect_with_connector(tower::service_fn(move |_: Uri| {
                            let (host, config) = (host.clone(), config.clone());
                            async move {
                                Ok::<_, std::io::Error>(TokioIo::new(crate::tls::connect(host, port, config).await?))
                            }
                        }))
                        .await
                        .map_err(|e| cannot(&e))?
                }
                _ => Endpoint::from_shared(url.clone())
                    .map_err(|e| bad(root_cause(&e)))?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .connect()
                    .await
                    .map_err(|e| cannot(&e))?,
            }
        }
    };
    Ok(ControlClient::with_interceptor(channel, auth)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// The innermost error of a chain (the io error under tonic's transport error).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.is_empty() {
        e.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GlobalOpts {
        GlobalOpts::default()
    }

    #[test]
    fn the_socket_defaults_to_the_root_then_the_env_then_opt_intelmq() {
        let mut g = opts();
        assert_eq!(resolve_target(&g, None, None), Target::Socket("/opt/intelmq/var/run/control.sock".into()));
        assert_eq!(
            resolve_target(&g, None, Some("/srv/i".into())),
            Target::Socket("/srv/i/var/run/control.sock".into())
        );
        g.root = Some("/r".into());
        assert_eq!(resolve_target(&g, None, Some("/srv/i".into())), Target::Socket("/r/var/run/control.sock".into()));
    }

    #[test]
    fn flags_beat_the_endpoint_variable() {
        let mut g = opts();
        assert_eq!(resolve_target(&g, Some("http://n1:50051".into()), None), Target::Tcp("http://n1:50051".into()));
        assert_eq!(
            resolve_target(&g, Some("  ".into()), None),
            Target::Socket("/opt/intelmq/var/run/control.sock".into())
        );
        g.socket = Some("/tmp/c.sock".into());
        assert_eq!(resolve_target(&g, Some("http://n1:50051".into()), None), Target::Socket("/tmp/c.sock".into()));
        let mut g = opts();
        g.endpoint = Some("http://n2:1".into());
        assert_eq!(resolve_target(&g, Some("http://n1:50051".into()), None), Target::Tcp("http://n2:1".into()));
        g.endpoint = Some("unix:/tmp/x.sock".into());
        assert_eq!(resolve_target(&g, None, None), Target::Socket("/tmp/x.sock".into()));
    }

    #[test]
    fn grpc_codes_map_to_exit_codes() {
        let code = |c: Code| CtlError::from(Status::new(c, "bot `x`")).code;
        assert_eq!(code(Code::NotFound), EXIT_USAGE);
        assert_eq!(code(Code::InvalidArgument), EXIT_USAGE);
        assert_eq!(code(Code::Unauthenticated), EXIT_AUTH);
        assert_eq!(code(Code::Unavailable), EXIT_CONNECT);
        assert_eq!(code(Code::FailedPrecondition), EXIT_FAILED);
        assert_eq!(code(Code::Internal), EXIT_FAILED);
        let e = CtlError::from(Status::not_found("unknown bot `nope`"));
        assert!(e.is_not_found());
        assert_eq!(e.message, "unknown bot `nope`");
        assert!(!CtlError::from(Status::invalid_argument("bad")).is_not_found());
    }

    #[test]
    fn tls_settings_turn_the_endpoint_into_https() {
        assert_eq!(endpoint_url("http://h:1", false), "http://h:1");
        assert_eq!(endpoint_url("http://h:1", true), "https://h:1");
        assert_eq!(endpoint_url("https://h:1", false), "https://h:1");
        assert_eq!(endpoint_url("h:1", false), "http://h:1");
        assert_eq!(endpoint_url("h:1", true), "https://h:1");
    }

    #[test]
    fn tls_failures_are_auth_or_connect_errors() {
        use rustls::{AlertDescription, CertificateError};
        let wrap = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let untrusted = wrap(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        let e = tls_failure(&untrusted).expect("a TLS failure");
        assert_eq!(e.code, EXIT_AUTH);
        assert!(e.message.contains("not trusted"), "{}", e.message);
        let refused = wrap(rustls::Error::AlertReceived(AlertDescription::CertificateRequired));
        assert_eq!(tls_failure(&refused).map(|e| e.code), Some(EXIT_AUTH));
        let garbage = wrap(rustls::Error::General("corrupt".into()));
        assert_eq!(tls_failure(&garbage).map(|e| e.code), Some(EXIT_CONNECT));
        // Only the text left, as after h2.
        let text = std::io::Error::other("received fatal alert: UnknownCA");
        let e = tls_failure(&text).expect("a TLS failure");
        assert_eq!(e.code, EXIT_AUTH);
        assert!(e.message.starts_with("the node refused our client certificate"), "{}", e.message);
        let plain_h2 = CtlError::from(Status::internal("h2 protocol error: http2 error"));
        assert_eq!(plain_h2.code, EXIT_CONNECT);
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_failure(&plain), None);
    }

    #[test]
    fn diagnostics_stay_on_one_line() {
        let e = CtlError::from(Status::internal("first\n  second\n"));
        assert_eq!(e.message, "Internal error: first; second");
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn the_interceptor_adds_the_bearer_token() {
        let mut auth = Auth::new(Some("s3cret")).expect("valid token");
        let req = auth.call(Request::new(())).expect("passes");
        assert_eq!(req.metadata().get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer s3cret"));
        let mut none = Auth::new(None).expect("no token");
        assert!(none.call(Request::new(())).expect("passes").metadata().get("authorization").is_none());
        assert_eq!(Auth::new(Some("bad\ntoken")).map(|_| ()).map_err(|e| e.code), Err(EXIT_USAGE));
    }

    #[test]
    fn token_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, "abc\n").expect("write");
        assert_eq!(read_token(&f), Ok("abc".to_string()));
        std::fs::write(&f, " \n").expect("write");
        assert_eq!(read_token(&f).map_err(|e| e.code), Err(EXIT_USAGE));
        assert_eq!(read_token(&dir.path().join("missing")).map_err(|e| e.code), Err(EXIT_USAGE));
    }

    #[tokio::test]
    async fn a_missing_socket_is_exit_code_three_with_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = Target::Socket(dir.path().join("var/run/control.sock"));
        let err = connect(&target, None, &TlsFiles::default()).await.map(|_| ()).expect_err("no node");
        assert_eq!(err.code, EXIT_CONNECT);
        assert!(err.message.starts_with("cannot connect to the node at "), "{}", err.message);
        assert!(err.message.ends_with("(is intelmq-node running?)"), "{}", err.message);
        assert!(err.message.contains("control.sock"), "{}", err.message);
    }
}
