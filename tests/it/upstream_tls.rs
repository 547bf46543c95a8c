//! Upstream TLS features against fake servers speaking TLS (tokio-rustls,
//! rcgen certificates): the client certificate of `certfp generate` with
//! SASL EXTERNAL, server certificate pinning with `-certfp`, IRCv3 STS
//! (upgrade from plaintext, persisted policy across a restart), and
//! `-connect-command` lines sent after the welcome.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tether::proto::Message;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::harness::*;
use crate::support::*;

/// Lowercase hex SHA-256, computed here independently of tether.
fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asks for a client certificate and accepts any (self-signed is the
/// norm on IRC), still checking the handshake signature.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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

/// A fake upstream server over TLS with a fresh self-signed certificate.
struct TlsFake {
    addr: SocketAddr,
    /// SHA-256 of the server certificate (what `-certfp` pins).
    sha256: String,
    opts: FakeServerOptions,
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsFake {
    /// With `require_client_cert`, the handshake fails unless tether
    /// presents a certificate.
    async fn bind(opts: FakeServerOptions, require_client_cert: bool) -> TlsFake {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("generating the server certificate");
        let cert = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if require_client_cert {
            builder.with_client_cert_verifier(Arc::new(AnyClientCert { provider }))
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(vec![cert.clone()], key)
            .expect("server certificate");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the TLS fake server");
        TlsFake {
            addr: listener.local_addr().expect("address"),
            sha256: sha256_hex(cert.as_ref()),
            opts,
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    fn uri(&self) -> String {
        format!("ircs://127.0.0.1:{}", self.addr.port())
    }

    /// Accept a TCP connection and run the server side of the handshake.
    async fn handshake(
        &self,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        let (tcp, _) = match timeout(TIMEOUT, self.listener.accept()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("TLS fake server {}: accept failed: {e}", self.addr),
            Err(_) => panic!(
                "TLS fake server {}: no connection from the bouncer within {TIMEOUT:?}",
                self.addr
            ),
        };
        match timeout(TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(result) => result,
            Err(_) => panic!("TLS fake server {}: handshake timed out", self.addr),
        }
    }

    /// Accept a TLS connection; returns it and the client certificate
    /// tether presented, if any.
    async fn accept_tls(&self) -> (IrcStream, Option<Vec<u8>>) {
        let tls = match self.handshake().await {
            Ok(tls) => tls,
            Err(e) => panic!("TLS fake server {}: handshake failed: {e}", self.addr),
        };
        let client_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.as_ref().to_vec());
        let (r, w) = tokio::io::split(tls);
        let irc = IrcStream::new(r, w, format!("TLS fake server {}", self.addr));
        (irc, client_cert)
    }

    /// Accept a TLS connection and run the harness registration.
    async fn accept(&self) -> FakeConn {
        let (irc, _) = self.accept_tls().await;
        register_fake_conn(&self.opts, irc).await
    }

    /// Accept a connection whose handshake must fail; returns the error.
    async fn expect_failed_handshake(&self) -> String {
        match self.handshake().await {
            Ok(_) => panic!(
                "TLS fake server {}: the handshake succeeded but should have failed",
                self.addr
            ),
            Err(e) => e.to_string(),
        }
    }
}

/// The welcome burst that completes a hand-scripted registration.
async fn send_welcome(irc: &mut IrcStream, nick: &str) {
    irc.send(&format!(":irc.fake 001 {nick} :Welcome")).await;
    irc.send(&format!(
        ":irc.fake 005 {nick} CASEMAPPING=rfc1459 CHANTYPES=# :are supported"
    ))
    .await;
    irc.send(&format!(":irc.fake 422 {nick} :MOTD File is missing"))
        .await;
}

/// Read the first message and check it is `CAP LS 302`.
async fn expect_cap_ls(irc: &mut IrcStream) {
    let m = irc.expect_cmd("CAP").await;
    assert_eq!(m.params, ["LS", "302"], "{m}");
}

/// The value after `prefix` in one of `lines`.
fn line_value(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_external_presents_the_generated_client_certificate() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let server = TlsFake::bind(FakeServerOptions::default(), true).await;
    let uri = server.uri();
    let created = t
        .create_network_at(
            "alice",
            "fake",
            &uri,
            &["-certfp", &server.sha256, "-enabled", "false"],
        )
        .await;
    created.expect("network created");

    let missing = t
        .admin("user run alice certfp fingerprint -network fake")
        .await
        .unwrap_err();
    assert!(missing.contains("no client certificate"), "{missing}");
    let rsa = t
        .admin("user run alice certfp generate -network fake -key-type rsa")
        .await
        .unwrap_err();
    assert!(rsa.contains("RSA"), "{rsa}");

    let generated = t
        .admin_ok("user run alice certfp generate -network fake -key-type ed25519")
        .await;
    let sha256 = line_value(&generated, "SHA-256 fingerprint: ");
    let sha512 = line_value(&generated, "SHA-512 fingerprint: ");
    assert_eq!((sha256.len(), sha512.len()), (64, 128), "{generated:?}");
    let shown = t
        .admin_ok("user run alice certfp fingerprint -network fake")
        .await;
    assert_eq!(line_value(&shown, "SHA-256 fingerprint: "), sha256);
    assert_eq!(line_value(&shown, "SHA-512 fingerprint: "), sha512);
    let status = t.admin_ok("user run alice sasl status -network fake").await;
    assert!(status[0].contains("SASL EXTERNAL enabled"), "{status:?}");

    let enable = t.admin("user run alice network update fake -enabled true");
    let (updated, (mut irc, client_cert)) = tokio::join!(enable, server.accept_tls());
    updated.expect("network enabled");
    let client_cert = client_cert.expect("tether presented no client certificate");
    assert_eq!(
        sha256_hex(&client_cert),
        sha256,
        "the presented certificate is not the one certfp reported"
    );

    // The SASL EXTERNAL exchange.
    expect_cap_ls(&mut irc).await;
    irc.send(":irc.fake CAP * LS :sasl=PLAIN,EXTERNAL server-time")
        .await;
    let req = irc.expect_cmd("CAP").await;
    assert_eq!(req.param(0), Some("REQ"), "{req}");
    let list = req.params.last().cloned().unwrap_or_default();
    assert!(list.split(' ').any(|c| c == "sasl"), "{req}");
    irc.send(&format!(":irc.fake CAP * ACK :{list}")).await;
    let auth = irc.expect_cmd("AUTHENTICATE").await;
    assert_eq!(auth.params, ["EXTERNAL"], "{auth}");
    irc.send("AUTHENTICATE +").await;
    let answer = irc.expect_cmd("AUTHENTICATE").await;
    assert_eq!(answer.params, ["+"], "{answer}");
    irc.send(":irc.fake 900 alice alice!u@h alice :You are now logged in as alice")
        .await;
    irc.send(":irc.fake 903 alice :SASL authentication successful")
        .await;
    let end = irc.expect_cmd("CAP").await;
    assert_eq!(end.params, ["END"], "{end}");
    send_welcome(&mut irc, "alice").await;
    irc.sync().await;

    let status = t.network_status("alice").await;
    assert!(status[0].contains("connected as alice"), "{status:?}");
    let status = t.admin_ok("user run alice sasl status -network fake").await;
    assert_eq!(status.len(), 1, "no SASL error expected: {status:?}");

    // set-plain keeps the certificate; delete forgets it.
    t.admin_ok("user run alice sasl set-plain -network fake acct pw")
        .await;
    let shown = t
        .admin_ok("user run alice certfp fingerprint -network fake")
        .await;
    assert_eq!(line_value(&shown, "SHA-256 fingerprint: "), sha256);
    t.admin_ok("user run alice certfp delete -network fake")
        .await;
    assert!(
        t.admin("user run alice certfp fingerprint -network fake")
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_server_certificate_is_required() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let server = TlsFake::bind(FakeServerOptions::default(), false).await;
    let uri = server.uri();
    let create_words = [
        "user",
        "run",
        "alice",
        "network",
        "create",
        "-addr",
        &uri,
        "-name",
        "fake",
        "-certfp",
        &server.sha256,
    ];
    let create = t.admin_words(&create_words);
    let (created, mut conn) = tokio::join!(create, server.accept());
    created.expect("network created");
    conn.sync().await;
    let status = t.network_status("alice").await;
    assert!(status[0].contains("connected as"), "{status:?}");
    assert!(
        status[0].contains(&format!("pinned certificate SHA-256 {}", server.sha256)),
        "{status:?}"
    );

    // A wrong pin, typed in the colon-separated upper-case form.
    let wrong: Vec<String> = "00".repeat(32).as_bytes()[..]
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
        .collect();
    let wrong = wrong.join(":");
    let update_words = [
        "user", "run", "alice", "network", "update", "fake", "-certfp", &wrong,
    ];
    let update = t.admin_words(&update_words);
    let (updated, error) = tokio::join!(update, server.expect_failed_handshake());
    updated.expect("network updated");
    assert!(!error.is_empty());
    // The first failure is retried at once: once the retry arrives, the
    // failure has been recorded.
    server.expect_failed_handshake().await;
    let status = t.network_status("alice").await;
    let want = format!(
        "server certificate fingerprint mismatch (got {})",
        server.sha256
    );
    assert!(status[0].contains(&want), "{status:?}");
    assert!(
        status[0].contains(&format!("pinned certificate SHA-256 {}", "00".repeat(32))),
        "{status:?}"
    );

    let bad = t
        .admin("user run alice network update fake -certfp 12:34")
        .await
        .unwrap_err();
    assert!(bad.contains("invalid certificate fingerprint"), "{bad}");
    t.admin_words(&[
        "user", "run", "alice", "network", "update", "fake", "-certfp", "",
    ])
    .await
    .expect("clearing the pin");
    let status = t.network_status("alice").await;
    assert!(!status[0].contains("pinned"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_upgrades_to_tls_and_the_policy_survives_a_restart() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let server = TlsFake::bind(
        FakeServerOptions {
            caps: vec!["sts=duration=3600,port=1".to_string()],
            ..FakeServerOptions::default()
        },
        false,
    )
    .await;
    // The plaintext server, checked later without waiting (a std listener
    // in non-blocking mode answers "nothing pending" from the kernel).
    let plain_std = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    plain_std.set_nonblocking(true).expect("non-blocking");
    let plain = TcpListener::from_std(plain_std.try_clone().expect("clone")).expect("tokio");
    let plain_uri = format!(
        "irc+insecure://127.0.0.1:{}",
        plain.local_addr().expect("addr").port()
    );

    let create_words = [
        "user",
        "run",
        "alice",
        "network",
        "create",
        "-addr",
        &plain_uri,
        "-name",
        "fake",
        "-certfp",
        &server.sha256,
    ];
    let create = t.admin_words(&create_words);
    let tls_port = server.addr.port();
    let plaintext = async {
        let (tcp, _) = timeout(TIMEOUT, plain.accept())
            .await
            .expect("a plaintext connection")
            .expect("accept");
        let mut irc = IrcStream::from_tcp(tcp);
        expect_cap_ls(&mut irc).await;
        irc.send(&format!(
            ":irc.fake CAP * LS :sts=port={tls_port},duration=99 multi-prefix"
        ))
        .await;
        // tether leaves at once, without requesting anything.
        let mut seen = Vec::new();
        while let Some(m) = irc.recv().await {
            seen.push(m);
        }
        assert!(
            !seen.iter().any(|m| m.command == "CAP"),
            "no CAP REQ/END on the plaintext link: {seen:?}"
        );
        assert!(
            seen.iter().any(|m| m.command == "QUIT"),
            "expected a QUIT: {seen:?}"
        );
    };
    let (created, (), mut conn) = tokio::join!(create, plaintext, server.accept());
    created.expect("network created");
    conn.sync().await;
    assert!(
        !conn.caps.iter().any(|c| c == "sts"),
        "sts must never be requested: {:?}",
        conn.caps
    );
    let status = t.network_status("alice").await;
    assert!(status[0].contains("connected as"), "{status:?}");

    // Restart: the persisted policy sends tether straight to TLS although
    // the network's address is still the plaintext one.
    let (dir, _) = tokio::join!(t.shutdown(), expect_quit_or_close(&mut conn));
    drop(conn);
    let t = Tether::start_in(dir).await;
    let mut conn = server.accept().await;
    conn.sync().await;
    match plain_std.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("tether connected to the plaintext address from {peer}"),
        Err(e) => panic!("checking the plaintext listener: {e}"),
    }
    let status = t.network_status("alice").await;
    assert!(
        status[0].contains("connected as") && status[0].contains(&plain_uri),
        "{status:?}"
    );
    assert!(
        status[0].contains(&format!("STS: TLS on port {tls_port}")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_commands_are_sent_after_the_welcome() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let uri = format!("irc+insecure://{}", fake.addr);
    let create_words = [
        "user",
        "run",
        "alice",
        "network",
        "create",
        "-addr",
        &uri,
        "-name",
        "fake",
        "-connect-command",
        "MODE alice +R",
        "-connect-command",
        "PRIVMSG NickServ :IDENTIFY secret",
    ];
    let create = t.admin_words(&create_words);
    let server = async {
        let mut irc = fake.accept_raw().await;
        expect_cap_ls(&mut irc).await;
        irc.send(":irc.fake CAP * LS :").await;
        let mut before_welcome: Vec<Message> = Vec::new();
        loop {
            let m = irc.recv().await.expect("registration lines");
            if m.command == "CAP" && m.param(0) == Some("END") {
                break;
            }
            before_welcome.push(m);
        }
        assert!(
            before_welcome
                .iter()
                .all(|m| matches!(m.command.as_str(), "NICK" | "USER")),
            "only NICK and USER before the welcome: {before_welcome:?}"
        );
        send_welcome(&mut irc, "alice").await;
        let first = irc
            .expect("MODE", |m| m.command == "MODE" || m.command == "PRIVMSG")
            .await;
        assert_eq!(first.to_string(), "MODE alice +R");
        let second = irc.expect_cmd("PRIVMSG").await;
        assert_eq!(second.params, ["NickServ", "IDENTIFY secret"]);
        irc
    };
    let (created, mut irc) = tokio::join!(create, server);
    created.expect("network created");
    irc.sync().await;
}
