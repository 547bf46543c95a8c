//! Reloading the TLS certificate: on SIGHUP in the daemon, and with
//! `Server::reload_tls` in process. New connections get the new
//! certificate; established ones keep working.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::harness::*;
use crate::support::*;

/// Accepts any server certificate (signatures are still checked) and
/// records the end-entity certificate.
#[derive(Debug)]
struct RecordingVerifier {
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
pub(crate) async fn tls_connect(addr: SocketAddr) -> (IrcStream, Vec<u8>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        provider: provider.clone(),
        end_entity: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
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
pub(crate) fn self_signed() -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a certificate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().as_ref().to_vec(),
    )
}

fn install_cert(dir: &Path, cert_pem: &str, key_pem: &str) {
    std::fs::write(dir.join("cert.pem"), cert_pem).expect("writing cert.pem");
    std::fs::write(dir.join("key.pem"), key_pem).expect("writing key.pem");
}

fn tls_config_lines(dir: &Path) -> String {
    format!(
        "tls {dir}/cert.pem {dir}/key.pem\nlisten ircs://127.0.0.1:0\n",
        dir = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_tls_certificate_for_new_connections() {
    let dir = temp_dir("tether-tls-");
    let (cert_a, key_a, der_a) = self_signed();
    let (cert_b, key_b, der_b) = self_signed();
    assert_ne!(der_a, der_b);
    install_cert(dir.path(), &cert_a, &key_a);
    let config = dir.path().join("tether.conf");
    std::fs::write(
        &config,
        format!(
            "listen ircs://127.0.0.1:0\n\
             tls {d}/cert.pem {d}/key.pem\n\
             db sqlite3 {d}/tether.db\n\
             hostname tether.test\n",
            d = dir.path().display()
        ),
    )
    .expect("writing config");

    let mut tether = TetherProcess::spawn(&config, dir.path());
    let (addrs, password) = tether.wait_startup(&["ircs"], true).await;
    let addr: SocketAddr = addrs[0]
        .parse()
        .unwrap_or_else(|e| panic!("ircs listener address {:?}: {e}", addrs[0]));
    let password = password.expect("first-run password");

    let (irc, cert) = tls_connect(addr).await;
    assert!(
        cert == der_a,
        "the first connection did not get certificate A"
    );
    let mut first = TestClient::register_pass_on(irc, "admin", &password, "admin", &[]).await;
    first.sync().await;

    install_cert(dir.path(), &cert_b, &key_b);
    tether.signal("HUP");
    tether
        .wait_for_line("\"TLS certificate reloaded\"", |l| {
            l.contains("TLS certificate reloaded")
        })
        .await;

    let (irc, cert) = tls_connect(addr).await;
    assert!(
        cert == der_b,
        "a connection after SIGHUP did not get certificate B"
    );
    let mut second = TestClient::register_pass_on(irc, "admin", &password, "admin", &[]).await;
    second.sync().await;

    // The connection made before the reload is unaffected.
    first.sync().await;

    // SIGINT is a graceful shutdown too.
    tether.signal("INT");
    first.expect_cmd("ERROR").await;
    let status = tether.wait_exit().await;
    assert!(
        status.success(),
        "tether exited with {status}\n{:#?}",
        tether.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_tls_in_process_switches_certificate_and_keeps_old_on_error() {
    let dir = temp_dir("tether-tls-");
    let (cert_a, key_a, der_a) = self_signed();
    let (cert_b, key_b, der_b) = self_signed();
    install_cert(dir.path(), &cert_a, &key_a);
    let extra = tls_config_lines(dir.path());
    let path = dir.path().to_path_buf();
    let t = Tether::start_with(dir, &extra).await;
    let addr = t
        .server()
        .tls_addr()
        .expect("tls_addr() with an ircs listener");
    assert_ne!(addr.port(), 0);

    let (irc, cert) = tls_connect(addr).await;
    assert!(cert == der_a, "expected certificate A");
    t.create_user("alice").await;
    let mut first = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;

    // A broken certificate file: the reload fails, A is still served.
    std::fs::write(path.join("cert.pem"), "not a certificate").expect("write");
    assert!(
        t.server().reload_tls().is_err(),
        "reload_tls accepted a broken certificate"
    );
    let (_irc, cert) = tls_connect(addr).await;
    assert!(cert == der_a, "a failed reload must keep certificate A");

    install_cert(&path, &cert_b, &key_b);
    t.server()
        .reload_tls()
        .expect("reload_tls with certificate B");
    let (irc, cert) = tls_connect(addr).await;
    assert!(cert == der_b, "expected certificate B after reload_tls");
    let mut second = TestClient::register_pass_on(irc, "alice", PASSWORD, "alice", &[]).await;
    second.sync().await;
    first.sync().await;
}
