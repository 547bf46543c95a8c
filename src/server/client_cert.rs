//! Client certificates on TLS listeners (`client-cert-auth true`): clients
//! are asked for a certificate but need not send one, and a certificate is
//! not checked against any authority. It identifies a device by its SHA-512
//! fingerprint, which the user registered (`device-certificate create`) —
//! the same trust model as CertFP on IRC networks. The handshake signature
//! is still verified, so the client proves it holds the certificate's key.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Accepts any client certificate whose handshake signature is valid.
#[derive(Debug)]
pub struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl AnyClientCert {
    pub fn new(provider: Arc<CryptoProvider>) -> AnyClientCert {
        AnyClientCert { provider }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// Lowercase hex SHA-512 of a DER certificate: how device certificates are
/// named and stored.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA512, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of the certificate a client presented, if any.
pub fn peer_fingerprint(conn: &rustls::ServerConnection) -> Option<String> {
    conn.peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| fingerprint(leaf.as_ref()))
}

/// Normalise a fingerprint typed by a user: hex digits with optional
/// colons, any case. `None` if it is not hex.
pub fn normalize_fingerprint(input: &str) -> Option<String> {
    let hex: String = input.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_sha512_hex() {
        let fp = fingerprint(b"abc");
        assert_eq!(fp.len(), 128);
        assert!(fp.starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn typed_fingerprints_are_normalised() {
        assert_eq!(normalize_fingerprint("AB:cd:01").as_deref(), Some("abcd01"));
        assert_eq!(normalize_fingerprint("xyz"), None);
        assert_eq!(normalize_fingerprint(":"), None);
    }
}
