//! The TLS side of a network's connection: the rustls client
//! configuration (webpki roots, or a pinned server certificate; the
//! network's client certificate for CertFP and SASL EXTERNAL) and the
//! certificate fingerprints shown and accepted by BouncerServ.

use std::sync::{Arc, Mutex, OnceLock};

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::db::NetworkRecord;

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the stored client certificate is unusable: {0}")]
    ClientCert(String),
}

/// The TLS settings of one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM certificate and private key presented to the server.
    pub client_identity: Option<(String, String)>,
    /// Lowercase hex SHA-256 of the only server certificate to accept.
    pub pinned_sha256: Option<String>,
}

impl TlsOptions {
    pub fn from_record(record: &NetworkRecord) -> TlsOptions {
        let client_identity = match (&record.client_cert, &record.client_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => None,
        };
        TlsOptions {
            client_identity,
            pinned_sha256: record.server_certfp.clone(),
        }
    }
}

/// A client configuration, plus the pin verifier when one is in use (it
/// remembers a mismatching certificate so the error can name it).
pub struct ClientSetup {
    pub config: Arc<ClientConfig>,
    pub pin: Option<Arc<PinnedVerifier>>,
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn webpki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The configuration shared by every network without a client
/// certificate or pin.
fn plain_config() -> Result<Arc<ClientConfig>, TlsSetupError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.with_root_certificates(webpki_roots())
                            .with_no_client_auth(),
                    )
                })
        })
        .clone()
        .map_err(TlsSetupError::Rustls)
}

fn parse_identity(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::ClientCert(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsSetupError::ClientCert("no certificate".to_string()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsSetupError::ClientCert(e.to_string()))?;
    Ok((chain, key))
}

/// Build the client configuration for a network's TLS connection.
pub fn client_setup(opts: &TlsOptions) -> Result<ClientSetup, TlsSetupError> {
    if opts.client_identity.is_none() && opts.pinned_sha256.is_none() {
        return Ok(ClientSetup {
            config: plain_config()?,
            pin: None,
        });
    }
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let pin = opts
        .pinned_sha256
        .as_ref()
        .map(|hex| Arc::new(PinnedVerifier::new(hex.clone(), provider())));
    let builder = match &pin {
        Some(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone()),
        None => builder.with_root_certificates(webpki_roots()),
    };
    let config = match &opts.client_identity {
        Some((cert, key)) => {
            let (chain, key) = parse_identity(cert, key)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(ClientSetup {
        config: Arc::new(config),
        pin,
    })
}

/// Accepts exactly the server certificate whose SHA-256 is pinned (self-
/// signed or not, any name, any dates: the pin is the trust decision).
/// Handshake signatures are still verified, so the server must hold the
/// certificate's private key.
#[derive(Debug)]
pub struct PinnedVerifier {
    pinned: String,
    provider: Arc<CryptoProvider>,
    /// The fingerprint of a rejected certificate.
    mismatch: Mutex<Option<String>>,
}

impl PinnedVerifier {
    pub fn new(pinned_sha256_hex: String, provider: Arc<CryptoProvider>) -> PinnedVerifier {
        PinnedVerifier {
            pinned: pinned_sha256_hex.to_ascii_lowercase(),
            provider,
            mismatch: Mutex::new(None),
        }
    }

    /// The SHA-256 of the certificate that did not match the pin, if the
    /// handshake failed for that reason.
    pub fn mismatch(&self) -> Option<String> {
        self.mismatch.lock().ok().and_then(|m| m.clone())
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha256_hex(end_entity.as_ref());
        if got == self.pinned {
            return Ok(ServerCertVerified::assertion());
        }
        if let Ok(mut slot) = self.mismatch.lock() {
            *slot = Some(got);
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Lowercase hex SHA-256 of a DER certificate.
pub fn sha256_hex(der: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, der).as_ref())
}

/// Lowercase hex SHA-512 of a DER certificate.
pub fn sha512_hex(der: &[u8]) -> String {
    hex(digest::digest(&digest::SHA512, der).as_ref())
}

/// Normalise a SHA-256 fingerprint typed by a user: hex digits, either
/// case, optionally separated by colons (`AB:CD:…`). Returns lowercase
/// hex without separators.
pub fn parse_sha256_fingerprint(input: &str) -> Result<String, String> {
    let digits: String = input.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid certificate fingerprint {input:?}: expected a SHA-256 fingerprint (64 hex digits, colons allowed)"
        ));
    }
    Ok(digits.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex() {
        // SHA-256 and SHA-512 of the empty input.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha512_hex(b"abc").len(), 128);
        assert!(sha512_hex(b"abc").starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let plain = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse_sha256_fingerprint(plain).unwrap(), plain);
        let colons: Vec<String> = plain
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
            .collect();
        assert_eq!(parse_sha256_fingerprint(&colons.join(":")).unwrap(), plain);
        assert!(parse_sha256_fingerprint(&plain[..62]).is_err());
        assert!(parse_sha256_fingerprint(&format!("{plain}00")).is_err());
        assert!(parse_sha256_fingerprint(&plain.replace('e', "g")).is_err());
        assert!(parse_sha256_fingerprint("").is_err());
    }

    #[test]
    fn setups() {
        let plain = client_setup(&TlsOptions::default()).unwrap();
        assert!(plain.pin.is_none());
        let pinned = client_setup(&TlsOptions {
            pinned_sha256: Some("ab".repeat(32)),
            ..TlsOptions::default()
        })
        .unwrap();
        assert!(pinned.pin.is_some());
        let broken = client_setup(&TlsOptions {
            client_identity: Some(("not pem".into(), "not pem".into())),
            ..TlsOptions::default()
        });
        assert!(matches!(broken, Err(TlsSetupError::ClientCert(_))));
    }
}
