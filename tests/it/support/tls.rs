//! TLS clients for the tests: a verifier that accepts the bouncer's
//! self-signed certificate (still checking handshake signatures), optional
//! client certificates, and writing a certificate for a test bouncer.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::harness::*;

/// Accepts any server certificate (signatures are still checked) and
/// records the end-entity certificate.
#[derive(Debug)]
pub struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    end_entity: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.end_entity.lock().expect("lock") = Some(end_entity.as_ref().to_vec());
        Ok(ServerCertVerified::assertion())
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

/// Connect over TLS; returns the stream and the server's certificate (DER).
pub async fn tls_connect(addr: SocketAddr) -> (IrcStream, Vec<u8>) {
    tls_connect_as(addr, None).await
}

/// A client certificate and its key (DER) for [`tls_connect_as`].
pub struct ClientIdentity {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

/// [`tls_connect`], presenting a client certificate when one is given.
pub async fn tls_connect_as(
    addr: SocketAddr,
    client: Option<&ClientIdentity>,
) -> (IrcStream, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        provider: provider.clone(),
        end_entity: Mutex::new(None),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(id.cert_der.clone())],
                PrivateKeyDer::try_from(id.key_der.clone()).expect("a private key"),
            )
            .expect("client certificate"),
    };
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = match timeout(TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("connecting to {addr}: {e}"),
        Err(_) => panic!("connecting to {addr}: timed out"),
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().expect("local addr");
    let server_name = ServerName::try_from("localhost").expect("server name");
    let tls = match timeout(TIMEOUT, connector.connect(server_name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("TLS handshake with {addr}: {e}"),
        Err(_) => panic!("TLS handshake with {addr}: timed out"),
    };
    let cert = verifier
        .end_entity
        .lock()
        .expect("lock")
        .clone()
        .expect("the verifier saw no certificate");
    let (r, w) = tokio::io::split(tls);
    (IrcStream::new(r, w, format!("tls {local} -> {addr}")), cert)
}

/// A self-signed certificate for `localhost`: (cert PEM, key PEM, cert DER).
pub fn self_signed() -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a certificate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().as_ref().to_vec(),
    )
}

pub fn install_cert(dir: &Path, cert_pem: &str, key_pem: &str) {
    std::fs::write(dir.join("cert.pem"), cert_pem).expect("writing cert.pem");
    std::fs::write(dir.join("key.pem"), key_pem).expect("writing key.pem");
}

pub fn tls_config_lines(dir: &Path) -> String {
    format!(
        "tls {dir}/cert.pem {dir}/key.pem\nlisten ircs://127.0.0.1:0\n",
        dir = dir.display()
    )
}

/// A fresh self-signed client certificate: the identity and the
/// lowercase hex SHA-512 of its certificate, as tether names it.
pub fn client_identity() -> (ClientIdentity, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["client".to_string()])
        .expect("generating a certificate");
    let cert_der = ck.cert.der().as_ref().to_vec();
    let fingerprint = tether::server::client_cert::fingerprint(&cert_der);
    (
        ClientIdentity {
            cert_der,
            key_der: ck.signing_key.serialize_der(),
        },
        fingerprint,
    )
}
