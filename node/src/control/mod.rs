//! The control plane: the tonic service `intelmq.control.v1.Control` (the contract is
//! `proto/intelmq/control/v1/control.proto`), `grpc.health.v1` (the empty name is the node, one
//! service name per bot, SERVING only while the bot runs) and server reflection. Served on the Unix
//! socket `<root>/var/run/control.sock` (mode 0660) always, and on TCP when `node.conf` asks for
//! it, where a bearer token is required if a token file is configured and TLS (mutual TLS with a
//! client CA) is spoken when a certificate is configured. There are no pid files: a node that finds
//! a live socket under its root refuses to start, a stale one is replaced. With `peers` in
//! `node.conf`, every node answers for the whole botnet: calls about another node's bot go on to
//! that node, calls about every bot merge every node's answer (`peers`, `merge`).
//!
//! Depends on `runtime` (the [`NodeHandle`]), `store`, `config`, `message` and the proto crate.

mod auth;
mod destinations;
mod merge;
mod ops;
mod peers;
mod service;
mod tls;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use intelmq_proto::control::v1::control_server::ControlServer;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::Server;

pub use ops::{check, parse_log_line, LogRecord};
pub use peers::{PeerSetupError, Peers, FORWARDED_BY};
pub use service::ControlService;
pub use tls::TlsFileError;

use crate::runtime::{ControlError, NodeHandle, RunState};

impl From<ControlError> for tonic::Status {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::UnknownBot(_)
            | ControlError::UnknownGroup(_)
            | ControlError::UnknownQueue(_)
            | ControlError::UnknownDump { .. } => tonic::Status::not_found(e.to_string()),
            ControlError::Precondition(_) => tonic::Status::failed_precondition(e.to_string()),
            ControlError::Invalid(_) => tonic::Status::invalid_argument(e.to_string()),
            ControlError::Internal(_) => tonic::Status::internal(e.to_string()),
        }
    }
}

/// The control socket of a root.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join("var/run/control.sock")
}

/// Errors that keep the control plane from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("another node is running on this root: {0} accepts connections")]
    AlreadyRunning(PathBuf),
    #[error("cannot listen on {what}: {source}")]
    Bind { what: String, source: std::io::Error },
    #[error("cannot read the token file {file}: {source}")]
    Token { file: PathBuf, source: std::io::Error },
    #[error("the token file {0} is empty")]
    EmptyToken(PathBuf),
    #[error("cannot use the {0}")]
    Tls(#[from] TlsFileError),
    #[error("{0}")]
    Peer(#[from] PeerSetupError),
    #[error("cannot start the control plane: {0}")]
    Runtime(String),
}

/// Makes sure no other node serves `socket` and removes a stale socket file.
pub fn claim_socket(socket: &Path) -> Result<(), ServeError> {
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(ServeError::AlreadyRunning(socket.to_path_buf()));
        }
        std::fs::remove_file(socket)
            .map_err(|source| ServeError::Bind { what: socket.display().to_string(), source })?;
    }
    Ok(())
}

/// Starts the control plane on its own thread (with its own tokio runtime) for a running node.
/// Returns once the listeners are bound.
pub fn spawn(node: NodeHandle) -> Result<(), ServeError> {
    let botnet = node.botnet().map_err(|e| ServeError::Runtime(e.to_string()))?;
    let socket = socket_path(&botnet.root);
    let tcp = botnet.node.control.tcp;
    let (node_conf, root) = (botnet.node.clone(), botnet.root.clone());
    let tls = match botnet.node.tls_files(&botnet.root) {
        Some((cert, key, ca)) => Some(tls::server_config(&cert, &key, ca.as_deref())?),
        None => None,
    };
    let token = match botnet.node.token_file(&botnet.root) {
        Some(file) => {
            let text =
                std::fs::read_to_string(&file).map_err(|source| ServeError::Token { file: file.clone(), source })?;
            let t = text.trim().to_string();
            if t.is_empty() {
                return Err(ServeError::EmptyToken(file));
            }
            Some(t)
        }
        None => None,
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Bind { what: dir.display().to_string(), source })?;
    }
    claim_socket(&socket)?;
    // The control plane gets its own thread and tokio runtime; binding happens there and the
    // outcome comes back before this function returns.
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), ServeError>>();
    std::thread::Builder::new()
        .name("control-plane".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("control")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(ServeError::Runtime(e.to_string())));
                    return;
                }
            };
            rt.block_on(async move {
                let bound = async {
                    // The peers' channels connect lazily, but are made inside the runtime.
                    let peers = Peers::new(&node_conf, &root)?;
                    let uds = tokio::net::UnixListener::bind(&socket)
                        .map_err(|source| ServeError::Bind { what: socket.display().to_string(), source })?;
                    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
                        .map_err(|source| ServeError::Bind { what: socket.display().to_string(), source })?;
                    let tcp_listener = match tcp {
                        Some(addr) => {
                            let listener = tokio::net::TcpListener::bind(addr)
                                .await
                                .map_err(|source| ServeError::Bind { what: addr.to_string(), source })?;
                            let server = match tls {
                                Some(t) => Server::builder()
                                    .tls_config(t)
                                    .map_err(|e| ServeError::Runtime(format!("TLS on {addr}: {e}")))?,
                                None => Server::builder(),
                            };
                            Some((listener, server))
                        }
                        None => None,
                    };
                    Ok::<_, ServeError>((uds, tcp_listener, peers))
                }
                .await;
                match bound {
                    Ok((uds, tcp_listener, peers)) => {
                        let _ = tx.send(Ok(()));
                        serve(node, uds, tcp_listener, token, peers).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    rx.recv().map_err(|e| ServeError::Runtime(e.to_string()))?
}

/// Serves the control plane on already-bound listeners until the process ends. The TCP listener
/// comes with its server builder, which holds the TLS configuration if any; `peers` are the other
/// nodes of the botnet.
pub async fn serve(
    node: NodeHandle,
    uds: tokio::net::UnixListener,
    tcp: Option<(tokio::net::TcpListener, Server)>,
    token: Option<String>,
    peers: Peers,
) {
    let service = ControlService::new(node.clone(), peers);
    service.spawn_sampler();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(intelmq_proto::control::v1::FILE_DESCRIPTOR_SET)
        .build_v1();
    let reflection = match reflection {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %e, "grpc reflection unavailable");
            None
        }
    };
    // Per-bot health: SERVING only while the bot runs.
    {
        let (health, node) = (health.clone(), node.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(bots) = node.control(crate::runtime::Command::Status, Default::default()).await {
                    for b in bots {
                        let status = if b.state == RunState::Running {
                            tonic_health::ServingStatus::Serving
                        } else {
                            tonic_health::ServingStatus::NotServing
                        };
                        health.set_service_status(&b.bot_id, status).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    let uds_server = Server::builder()
        .add_service(health_service.clone())
        .add_optional_service(reflection.clone())
        .add_service(ControlServer::new(service.clone()))
        .serve_with_incoming(UnixListenerStream::new(uds));
    let tcp_server = async move {
        let Some((listener, mut server)) = tcp else { return Ok(()) };
        server
            .add_service(health_service)
            .add_optional_service(reflection)
            .add_service(ControlServer::with_interceptor(service, auth::BearerAuth::new(token)))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
    };
    let (a, b) = tokio::join!(uds_server, tcp_server);
    for r in [a, b] {
        if let Err(e) = r {
            tracing::error!(error = %e, "control server failed");
        }
    }
}
