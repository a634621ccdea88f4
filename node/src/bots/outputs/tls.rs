//! TLS for the bots' own blocking clients (IMAP, SMTP, STOMP) and the PostgreSQL connections:
//! rustls with the ring provider. [`Stream`] is a TCP connection that is plain or TLS from the
//! start (IMAPS, SMTPS, STOMP over TLS) or upgraded later (STARTTLS); [`client_config`] builds the
//! client side from IntelMQ's parameters: verify the server against the system's CA certificates
//! or a given CA file, or not at all, and optionally log in with a client certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::bots::ParamError;

/// How the server is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Any certificate is accepted (IntelMQ's `verify_cert: false`, libpq's `sslmode=require`).
    Nothing,
    /// The chain must lead to a trusted CA; the name is not checked (libpq's `verify-ca`).
    Chain,
    /// Chain and server name (the default everywhere else).
    Full,
}

/// The client side of a TLS connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub verify: Verify,
    /// CA certificates (PEM) trusted instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// Verify against the system's CA certificates, no client certificate.
    pub fn verified() -> TlsOptions {
        TlsOptions { verify: Verify::Full, ca_file: None, client_cert: None }
    }
}

/// A `verify_cert`-style parameter: a boolean, or the path of a CA file to verify against
/// (IntelMQ's `http_verify_cert` takes both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyCert {
    Yes,
    No,
    CaFile(PathBuf),
}

impl VerifyCert {
    /// The TLS options it means (no client certificate).
    pub fn options(&self) -> TlsOptions {
        match self {
            VerifyCert::Yes => TlsOptions::verified(),
            VerifyCert::No => TlsOptions { verify: Verify::Nothing, ca_file: None, client_cert: None },
            VerifyCert::CaFile(path) => {
                TlsOptions { verify: Verify::Full, ca_file: Some(path.clone()), client_cert: None }
            }
        }
    }
}

impl Serialize for VerifyCert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VerifyCert::Yes => s.serialize_bool(true),
            VerifyCert::No => s.serialize_bool(false),
            VerifyCert::CaFile(path) => s.serialize_str(&path.to_string_lossy()),
        }
    }
}

impl<'de> Deserialize<'de> for VerifyCert {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let yes = |b: bool| if b { VerifyCert::Yes } else { VerifyCert::No };
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Ok(VerifyCert::No),
            serde_json::Value::Bool(b) => Ok(yes(b)),
            serde_json::Value::Number(n) => Ok(yes(n.as_f64().is_some_and(|f| f != 0.0))),
            serde_json::Value::String(text) => Ok(match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => VerifyCert::Yes,
                "false" | "no" | "off" | "0" | "" => VerifyCert::No,
                _ => VerifyCert::CaFile(PathBuf::from(text)),
            }),
            other => Err(serde::de::Error::custom(format!("{other} is neither a boolean nor the path of a CA file"))),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trusted CA certificates: those of `ca_file`, else the system's.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
                store.add(cert).map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!("the CA file {} holds no certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err("the system has no CA certificates (package ca-certificates); give a CA file".to_string());
            }
        }
    }
    Ok(store)
}

/// A client configuration for `options`; the error names the file or setting at fault.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = match options.verify {
        Verify::Full => builder.with_root_certificates(roots(options.ca_file.as_deref())?),
        Verify::Nothing => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Relaxed { chain: None, provider }))
        }
        Verify::Chain => {
            let roots = Arc::new(roots(options.ca_file.as_deref())?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Relaxed { chain: Some(chain), provider }))
        }
    };
    let config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read the client certificate {}: {e}", cert_file.display()))?;
            if chain.is_empty() {
                return Err(format!("the client certificate file {} holds no certificate", cert_file.display()));
            }
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| format!("cannot read the client key {}: {e}", key_file.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!("the client certificate {} and key {} do not fit: {e}", cert_file.display(), key_file.display())
            })?
        }
    };
    Ok(Arc::new(config))
}

/// A client configuration made when a bot is built, or why it could not be made. A CA file or
/// client certificate that cannot be used is an error of the parameter `key` at once; a system
/// without CA certificates matters only once the bot uses TLS, so it is kept as the `Err` inside.
pub fn config_for(options: &TlsOptions, key: &str) -> Result<Result<Arc<ClientConfig>, String>, ParamError> {
    match client_config(options) {
        Err(e) if options.ca_file.is_some() || options.client_cert.is_some() => Err(ParamError::new(key, e)),
        config => Ok(config),
    }
}

/// Checks less than the full chain and name: nothing (`chain` none) or the chain without the
/// name. The handshake signatures are checked either way.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The name a server is checked against (a DNS name or an IP address).
pub fn server_name(host: &str) -> std::io::Result<ServerName<'static>> {
    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string()).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{host}` is not a valid TLS server name: {e}"))
    })
}

/// A client connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// A plain TCP connection to the first address of `host` that answers, with `timeout` for
    /// connecting, reading and writing.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<Stream> {
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(sock) => {
                    sock.set_read_timeout(Some(timeout))?;
                    sock.set_write_timeout(Some(timeout))?;
                    let _ = sock.set_nodelay(true);
                    return Ok(Stream::Plain(sock));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other(format!("`{host}` resolves to no address"))))
    }

    /// Starts TLS on a plain connection (right after connecting, or after STARTTLS) and completes
    /// the handshake; the error says why the server was not accepted.
    pub fn start_tls(self, host: &str, config: Arc<ClientConfig>) -> std::io::Result<Stream> {
        let sock = match self {
            Stream::Plain(sock) => sock,
            tls @ Stream::Tls(_) => return Ok(tls),
        };
        let conn = ClientConnection::new(config, server_name(host)?).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| std::io::Error::new(e.kind(), format!("TLS handshake with {host} failed: {e}")))?;
        }
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// The TCP connection underneath (timeouts, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(sock) => sock,
            Stream::Tls(tls) => &tls.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(sock) => sock.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(sock) => sock.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(sock) => sock.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// Test helpers: a certificate made on the spot and a TLS server side for it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A self-signed certificate for `localhost` and 127.0.0.1: (PEM of the certificate, server
    /// configuration).
    pub(crate) fn server() -> (String, Arc<rustls::ServerConfig>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap();
        (cert.pem(), Arc::new(config))
    }

    /// Accepts TLS on `sock` (the handshake completes on the first read or write).
    pub(crate) fn accept(
        sock: std::net::TcpStream,
        config: &Arc<rustls::ServerConfig>,
    ) -> rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream> {
        rustls::StreamOwned::new(rustls::ServerConnection::new(config.clone()).unwrap(), sock)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// An echo server over TLS: answers each line with the line in upper case.
    fn echo_server(config: Arc<rustls::ServerConfig>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let config = config.clone();
                std::thread::spawn(move || {
                    let mut tls = BufReader::new(test_support::accept(sock.unwrap(), &config));
                    let mut line = String::new();
                    while tls.read_line(&mut line).unwrap_or(0) > 0 {
                        let answer = line.to_uppercase();
                        if tls.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        port
    }

    fn talk(host: &str, port: u16, options: &TlsOptions) -> std::io::Result<String> {
        let config = client_config(options).map_err(std::io::Error::other)?;
        let stream = Stream::connect("127.0.0.1", port, Duration::from_secs(5))?;
        let mut stream = stream.start_tls(host, config)?;
        assert!(stream.is_tls());
        stream.write_all(b"hello\n")?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    }

    #[test]
    fn verifies_against_a_ca_file_or_not_at_all() {
        let (pem, config) = test_support::server();
        let port = echo_server(config);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &pem).unwrap();
        let with_ca = TlsOptions { verify: Verify::Full, ca_file: Some(ca.clone()), client_cert: None };
        assert_eq!(talk("localhost", port, &with_ca).unwrap(), "HELLO\n");
        assert_eq!(talk("127.0.0.1", port, &with_ca).unwrap(), "HELLO\n");
        // A name the certificate does not hold: refused, unless only the chain is checked.
        let err = talk("example.com", port, &with_ca).unwrap_err().to_string();
        assert!(err.contains("TLS handshake with example.com failed") && err.contains("not valid for name"), "{err}");
        let chain = TlsOptions { verify: Verify::Chain, ..with_ca };
        assert_eq!(talk("example.com", port, &chain).unwrap(), "HELLO\n");
        // The system's CAs do not know the test certificate.
        let err = talk("localhost", port, &TlsOptions::verified()).unwrap_err().to_string();
        let unknown = ["UnknownIssuer", "unknown issuer", "no CA certificates"];
        assert!(unknown.iter().any(|u| err.contains(u)), "{err}");
        let none = TlsOptions { verify: Verify::Nothing, ca_file: None, client_cert: None };
        assert_eq!(talk("example.com", port, &none).unwrap(), "HELLO\n");
    }

    #[test]
    fn verify_cert_is_a_boolean_or_a_ca_file() {
        let v = |j: serde_json::Value| serde_json::from_value::<VerifyCert>(j).unwrap();
        assert_eq!(v(serde_json::json!(true)), VerifyCert::Yes);
        assert_eq!(v(serde_json::json!("false")), VerifyCert::No);
        assert_eq!(v(serde_json::json!("/etc/ca.pem")), VerifyCert::CaFile("/etc/ca.pem".into()));
        assert_eq!(serde_json::to_value(VerifyCert::Yes).unwrap(), serde_json::json!(true));
        assert_eq!(VerifyCert::CaFile("/x".into()).options().ca_file, Some(PathBuf::from("/x")));
    }

    #[test]
    fn bad_files_are_named() {
        let missing =
            TlsOptions { verify: Verify::Full, ca_file: Some("/nonexistent/ca.pem".into()), client_cert: None };
        assert!(client_config(&missing).unwrap_err().contains("/nonexistent/ca.pem"));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let options = TlsOptions { verify: Verify::Nothing, ca_file: None, client_cert: Some((empty.clone(), empty)) };
        assert!(client_config(&options).unwrap_err().contains("empty.pem"));
    }
}
