//! TLS to a node's TCP endpoint. Done here rather than inside tonic so that the reason a node ends
//! a connection is kept for the diagnostic: with TLS 1.3 a node refusing our client certificate
//! says so only after the handshake, and the HTTP/2 layer above drops that alert.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::client::{CtlError, TlsFiles};

/// The last TLS error seen on a connection of this process.
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);
/// Whether this process made a TLS connection.
static USED: AtomicBool = AtomicBool::new(false);

/// Whether this process made a TLS connection to the node.
pub fn used() -> bool {
    USED.load(Ordering::Acquire)
}

/// The last TLS error seen on a connection of this process, if any.
pub fn last_error() -> Option<String> {
    LAST_ERROR.lock().ok().and_then(|g| g.clone())
}

fn record(e: &io::Error) {
    record_into(&LAST_ERROR, e);
}

fn record_into(slot: &Mutex<Option<String>>, e: &io::Error) {
    if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        if let Ok(mut g) = slot.lock() {
            *g = Some(r.to_string());
        }
    }
}

fn certificates(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, CtlError> {
    let fail = |why: String| CtlError::usage(format!("the {what} {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM CERTIFICATE".to_string()));
    }
    Ok(certs)
}

/// The client's rustls configuration; a file that cannot be used is exit code 2 naming it.
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, CtlError> {
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            for c in certificates("CA file", ca)? {
                roots.add(c).map_err(|e| CtlError::usage(format!("the CA file {}: {e}", ca.display())))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CtlError::failed(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let mut config = match &files.identity {
        Some((cert, key)) => {
            let chain = certificates("client certificate file", cert)?;
            let private_key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| CtlError::usage(format!("the client key file {}: {e}", key.display())))?;
            builder.with_client_auth_cert(chain, private_key).map_err(|e| {
                CtlError::usage(format!("the client key file {} does not fit {}: {e}", key.display(), cert.display()))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS connection that records its errors (see [`last_error`]).
pub struct RecordingIo(TlsStream<TcpStream>);

/// Connects to `host:port` and does the TLS handshake, checking the node's name against `host`.
pub async fn connect(host: String, port: u16, config: Arc<rustls::ClientConfig>) -> io::Result<RecordingIo> {
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    let name = ServerName::try_from(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    USED.store(true, Ordering::Release);
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.inspect_err(record)?;
    Ok(RecordingIo(tls))
}

fn recorded<T>(r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    if let Poll::Ready(Err(e)) = &r {
        record(e);
    }
    r
}

impl AsyncRead for RecordingIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        recorded(Pin::new(&mut self.0).poll_read(cx, buf))
    }
}

impl AsyncWrite for RecordingIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        recorded(Pin::new(&mut self.0).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        recorded(Pin::new(&mut self.0).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        recorded(Pin::new(&mut self.0).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_files_are_usage_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let files = TlsFiles { ca: Some(ca.clone()), identity: None };
        let e = client_config(&files).map(|_| ()).expect_err("missing");
        assert_eq!(e.code, crate::client::EXIT_USAGE);
        assert!(e.message.contains(&ca.display().to_string()), "{}", e.message);
        std::fs::write(&ca, "hello").expect("write");
        let e = client_config(&files).map(|_| ()).expect_err("not PEM");
        assert!(e.message.contains("holds no PEM"), "{}", e.message);
        assert!(client_config(&TlsFiles::default()).is_ok(), "the system's roots");
    }

    #[test]
    fn only_tls_errors_are_recorded() {
        let slot = Mutex::new(None);
        record_into(&slot, &io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        assert_eq!(*slot.lock().expect("lock"), None);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        record_into(&slot, &io::Error::new(io::ErrorKind::InvalidData, alert));
        assert_eq!(slot.lock().expect("lock").as_deref(), Some("received fatal alert: CertificateRequired"));
    }
}
