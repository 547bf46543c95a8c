//! TLS for `ircs` and `wss` listeners: the certificate and key are loaded from PEM
//! files into a resolver that can swap them at run time (SIGHUP), so a
//! renewed certificate is served to new connections while established ones
//! keep their session.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificate {path}: {error}")]
    Cert { path: PathBuf, error: String },
    #[error("reading key {path}: {error}")]
    Key { path: PathBuf, error: String },
    #[error("certificate {0} holds no certificate")]
    EmptyChain(PathBuf),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// ALPN protocol name of IRC over TLS.
pub const ALPN_IRC: &[u8] = b"irc";
/// ALPN protocol name offered by browsers for WebSocket over TLS (the
/// upgrade is an HTTP/1.1 request). A server that only lists `irc` would
/// fail their handshake, since a client's ALPN list must then overlap.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The current certificate, swappable.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert_path.to_path_buf(),
            error: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::EmptyChain(cert_path.to_path_buf()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.to_path_buf(),
        error: e.to_string(),
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: key_path.to_path_buf(),
            error: e.to_string(),
        })?;
    Ok(CertifiedKey::new(certs, signing))
}

impl CertStore {
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let key = load(cert_path, key_path)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: ArcSwap::from_pointee(key),
        }))
    }

    /// Read the files again; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load(&self.cert_path, &self.key_path)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    /// A rustls server configuration serving this store's certificate,
    /// announcing the ALPN protocol `alpn` (clients offering no ALPN are
    /// accepted too).
    ///
    /// With `client_certs`, clients are asked for an optional certificate
    /// (see [`super::client_cert`]).
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[u8],
        client_certs: bool,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = if client_certs {
            builder.with_client_cert_verifier(Arc::new(super::client_cert::AnyClientCert::new(
                provider(),
            )))
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
