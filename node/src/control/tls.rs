//! TLS and mutual TLS of the TCP control listener: reads `control.tls_cert`, `tls_key` and
//! `tls_client_ca`, checks them with rustls (so a bad file is named at start-up, not at the first
//! handshake) and gives tonic's [`ServerTlsConfig`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A client that has not finished its handshake after this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{what} {file}: {reason}")]
pub struct TlsFileError {
    /// What the file is for, e.g. `TLS certificate file`.
    pub what: &'static str,
    pub file: PathBuf,
    pub reason: String,
}

/// Uses ring as rustls' process-wide crypto provider (several are compiled in, so rustls cannot
/// pick one by itself).
pub(super) fn install_crypto_provider() {
    // An error means a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(super) fn read(what: &'static str, file: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(file).map_err(|e| TlsFileError { what, file: file.to_path_buf(), reason: e.to_string() })
}

pub(super) fn certificates(
    what: &'static str,
    file: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let fail = |reason: String| TlsFileError { what, file: file.to_path_buf(), reason };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM `CERTIFICATE` block".to_string()));
    }
    Ok(certs)
}

/// Reads and checks the TLS files; `client_ca` turns on mutual TLS.
pub fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTlsConfig, TlsFileError> {
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_pem = read("TLS certificate file", cert)?;
    let key_pem = read("TLS key file", key)?;
    let chain = certificates("TLS certificate file", cert, &cert_pem)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsFileError {
        what: "TLS key file",
        file: key.to_path_buf(),
        reason: format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    // Building rustls' own configuration checks that the key fits the certificate.
    rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private_key))
        .map_err(|e| TlsFileError {
            what: "TLS key file",
            file: key.to_path_buf(),
            reason: format!("cannot be used with the certificate {}: {e}", cert.display()),
        })?;
    let mut config =
        ServerTlsConfig::new().identity(Identity::from_pem(&cert_pem, &key_pem)).timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = client_ca {
        let what = "TLS client CA file";
        let ca_pem = read(what, ca)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certificates(what, ca, &ca_pem)? {
            roots.add(c).map_err(|e| TlsFileError {
                what,
                file: ca.to_path_buf(),
                reason: format!("holds a certificate that cannot be a trust anchor: {e}"),
            })?;
        }
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().map_err(
            |e| TlsFileError { what, file: ca.to_path_buf(), reason: format!("cannot verify clients with it: {e}") },
        )?;
        config = config.client_ca_root(Certificate::from_pem(&ca_pem));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = server_config(&cert, &key, None).unwrap_err();
        assert_eq!(e.file, cert);
        assert!(e.to_string().starts_with("TLS certificate file "), "{e}");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        std::fs::write(&key, "not a key\n").unwrap();
        let e = server_config(&cert, &key, None).unwrap_err();
        assert_eq!(e.file, cert);
        assert!(e.reason.contains("no PEM `CERTIFICATE` block"), "{e}");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = server_config(&cert, &key, None).unwrap_err();
        assert_eq!(e.file, key, "{e}");
        assert!(e.reason.contains("private key"), "{e}");
    }
}
