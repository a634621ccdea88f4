//! TLS for the PostgreSQL connections, as libpq's `sslmode` says, on rustls: `disable` (none),
//! `allow`/`prefer` (TLS when the server offers it), `require` (TLS, the certificate not checked,
//! as libpq without a root certificate file), `verify-ca` (TLS, the chain checked against the root
//! certificates) and `verify-full` (chain and host name). The root certificates are those of
//! `sslrootcert` (a PEM file, or `system` for the system's CAs), else libpq's defaults:
//! `$PGSSLROOTCERT`, then `~/.postgresql/root.crt`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::config::SslMode;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::bots::outputs::tls::{client_config, server_name, TlsOptions, Verify};
use crate::bots::ParamError;

/// The TLS side of a PostgreSQL connection: the `sslmode` for the client library and the
/// connector.
pub fn for_sslmode(sslmode: &str, sslrootcert: Option<&str>) -> Result<(SslMode, RustlsConnect), ParamError> {
    let (mode, verify) = match sslmode {
        "disable" => (SslMode::Disable, Verify::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Verify::Nothing),
        "require" => (SslMode::Require, Verify::Nothing),
        "verify-ca" => (SslMode::Require, Verify::Chain),
        "verify-full" => (SslMode::Require, Verify::Full),
        other => {
            return Err(ParamError::new(
                "sslmode",
                format!("`{other}` is not a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)"),
            ))
        }
    };
    let ca_file = if verify == Verify::Nothing { None } else { root_file(sslrootcert, sslmode)? };
    let options = TlsOptions { verify, ca_file, client_cert: None };
    let key = if sslrootcert.is_some() { "sslrootcert" } else { "sslmode" };
    let config = client_config(&options).map_err(|e| ParamError::new(key, e))?;
    Ok((mode, RustlsConnect(config)))
}

/// The root certificate file (`None`: the system's CAs).
fn root_file(sslrootcert: Option<&str>, sslmode: &str) -> Result<Option<PathBuf>, ParamError> {
    if let Some(given) = sslrootcert.filter(|s| !s.is_empty()) {
        return Ok((given != "system").then(|| PathBuf::from(given)));
    }
    let default = std::env::var_os("PGSSLROOTCERT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql/root.crt")));
    match default {
        Some(path) if path.is_file() => Ok(Some(path)),
        other => Err(ParamError::new(
            "sslrootcert",
            format!(
                "sslmode `{sslmode}` checks the server against root certificates, and none are given: set sslrootcert \
                 to a PEM file or `system` (libpq's default file {} does not exist)",
                other.map(|p| p.display().to_string()).unwrap_or_else(|| "~/.postgresql/root.crt".to_string())
            ),
        )),
    }
}

/// Makes TLS connections for the PostgreSQL client.
#[derive(Clone)]
pub struct RustlsConnect(Arc<rustls::ClientConfig>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for RustlsConnect {
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> std::io::Result<PgTlsConnect> {
        Ok(PgTlsConnect { config: self.0.clone(), name: server_name(domain)? })
    }
}

/// One TLS connection about to be made.
pub struct PgTlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for PgTlsConnect {
    type Stream = PgTlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let host = format!("{:?}", self.name);
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("TLS handshake with {host} failed: {e}")))?;
            Ok(PgTlsStream(tls))
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
