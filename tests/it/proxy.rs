//! PROXY protocol headers on client listeners: believed from the
//! addresses of `accept-proxy-ip` (and on unix sockets with
//! `accept-proxy-unix true`), ignored from everyone else. What a header
//! claims is observed through the login throttle, which keys on the
//! client's address: with `login-limit-address-failures 2`, the third
//! failed login from one address is refused without a password check.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tether::proto::Message;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::harness::*;
use crate::support::*;

/// Per-address lockout after two failures; per-user limits out of the way.
const LIMITS: &str = "login-limit-address-failures 2\nlogin-limit-user-failures 1000\n";
const THROTTLED: &str = "Too many failed logins, try again later";
const INVALID: &str = "Invalid credentials";

/// The 12 bytes every version 2 header starts with.
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

fn v1(client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().expect("client address");
    let (proto, dst) = if client.is_ipv4() {
        ("TCP4", "127.0.0.1")
    } else {
        ("TCP6", "::1")
    };
    format!(
        "PROXY {proto} {} {dst} {} 6667\r\n",
        client.ip(),
        client.port()
    )
    .into_bytes()
}

/// A version 2 PROXY header for a TCP client at `client`, with an ALPN
/// TLV after the addresses (to be skipped).
fn v2(client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().expect("client address");
    let mut body = Vec::new();
    let family = match client.ip() {
        IpAddr::V4(ip) => {
            body.extend_from_slice(&ip.octets());
            body.extend_from_slice(&[127, 0, 0, 1]);
            0x11
        }
        IpAddr::V6(ip) => {
            body.extend_from_slice(&ip.octets());
            body.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
            0x21
        }
    };
    body.extend_from_slice(&client.port().to_be_bytes());
    body.extend_from_slice(&6667u16.to_be_bytes());
    body.extend_from_slice(&[0x01, 0x00, 0x03, b'i', b'r', b'c']);
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[0x21, family]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn error_text(seen: &[Message]) -> String {
    seen.iter()
        .find(|m| m.command == "ERROR")
        .map(|m| m.params[0].clone())
        .unwrap_or_default()
}

/// Send `header` (may be empty), then a login with a wrong password;
/// returns how the connection ended.
async fn fail_login(mut c: TestClient, header: &[u8], user: &str) -> Vec<Message> {
    if !header.is_empty() {
        c.send_raw(header).await;
    }
    c.send_msg(&Message::new("PASS", ["wrong"])).await;
    c.send(&format!("NICK {user}")).await;
    c.send(&format!("USER {user} 0 * :{user}")).await;
    c.expect_eof().await
}

async fn fail_tcp(tether: &Tether, header: &[u8], user: &str) -> String {
    error_text(&fail_login(TestClient::connect(tether.addr).await, header, user).await)
}

#[tokio::test]
async fn v1_and_v2_headers_from_a_trusted_peer_set_the_client_address() {
    let extra = format!("accept-proxy-ip 10.0.0.0/8 127.0.0.0/8\n{LIMITS}");
    let tether = Tether::start_with(temp_dir("tether-it-"), &extra).await;
    tether.create_user("bob").await;

    // Address A, claimed with version 1, fails twice and is locked.
    let a = "203.0.113.7:50000";
    assert_eq!(fail_tcp(&tether, &v1(a), "guess1").await, INVALID);
    assert_eq!(fail_tcp(&tether, &v1(a), "guess2").await, INVALID);
    assert_eq!(fail_tcp(&tether, &v1(a), "guess3").await, THROTTLED);
    // The same address claimed with version 2 (another port) is the same
    // client address: locked too.
    assert_eq!(
        fail_tcp(&tether, &v2("203.0.113.7:50001"), "guess4").await,
        THROTTLED
    );
    // Address B (IPv6, version 2) is independent of A.
    let b = "[2001:db8::42]:7000";
    assert_eq!(fail_tcp(&tether, &v2(b), "guess5").await, INVALID);
    // So is the proxy's own address: a trusted peer without a header is
    // served as itself, and its first bytes are not lost.
    assert_eq!(fail_tcp(&tether, b"", "guess6").await, INVALID);
    let mut direct = tether.connect_client("bob", None, None, "bob", &[]).await;
    direct.sync().await;
    // A correct login through the proxy works, for B but not for A.
    let mut irc = IrcStream::connect_tcp(tether.addr).await;
    irc.send_raw(&v2(b)).await;
    let mut via_b = TestClient::register_pass_on(irc, "bob", PASSWORD, "bob2", &[]).await;
    via_b.sync().await;
    let mut c = TestClient::connect(tether.addr).await;
    c.send_raw(&v1(a)).await;
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send("NICK bob3").await;
    c.send("USER bob 0 * :bob").await;
    assert_eq!(error_text(&c.expect_eof().await), THROTTLED);
    tether.shutdown().await;
}

#[tokio::test]
async fn headers_from_other_peers_are_not_believed() {
    // 127.0.0.1 is not a trusted proxy here.
    let extra = format!("accept-proxy-ip 192.0.2.0/24\n{LIMITS}");
    let tether = Tether::start_with(temp_dir("tether-it-"), &extra).await;
    // The header is an ordinary (unknown, unregistered) IRC command.
    let mut c = TestClient::connect(tether.addr).await;
    c.send_raw(&v1("203.0.113.7:50000")).await;
    let reply = c.expect_cmd("451").await;
    assert_eq!(reply.param(1), Some("You have not registered"), "{reply}");
    // Failures with two different claimed addresses both count for the
    // real one, which is then locked.
    assert_eq!(error_text(&fail_login(c, b"", "guess1").await), INVALID);
    assert_eq!(
        fail_tcp(&tether, &v1("198.51.100.1:1"), "guess2").await,
        INVALID
    );
    assert_eq!(
        fail_tcp(&tether, &v1("198.51.100.2:2"), "guess3").await,
        THROTTLED
    );
    assert_eq!(fail_tcp(&tether, b"", "guess4").await, THROTTLED);
    tether.shutdown().await;
}

#[tokio::test]
async fn malformed_v2_header_from_a_trusted_peer_closes_only_that_connection() {
    let tether = Tether::start_with(temp_dir("tether-it-"), "accept-proxy-ip localhost\n").await;
    tether.create_user("bob").await;
    let mut bob = tether.connect_client("bob", None, None, "bob", &[]).await;
    bob.sync().await;
    // Version 1 in the version nibble of a version 2 header.
    let mut bad = v2("203.0.113.7:50000");
    bad[12] = 0x11;
    let mut c = TestClient::connect(tether.addr).await;
    c.send_raw(&bad).await;
    c.send("NICK x").await;
    let seen = c.expect_eof().await;
    assert!(seen.is_empty(), "no IRC reply expected: {seen:?}");
    // A TLV running past the end of the header: the same.
    let mut bad = v2("203.0.113.7:50000");
    let len = bad.len();
    bad[len - 4] = 0x10;
    let mut c = TestClient::connect(tether.addr).await;
    c.send_raw(&bad).await;
    assert!(c.expect_eof().await.is_empty());
    // Everyone else carries on, and new connections are served.
    bob.sync().await;
    let mut again = tether.connect_client("bob", None, None, "bob2", &[]).await;
    again.sync().await;
    tether.shutdown().await;
}

#[tokio::test]
async fn headers_on_a_unix_listener_with_accept_proxy_unix() {
    let dir = temp_dir("tether-it-");
    let sock = dir.path().join("irc.sock");
    let extra = format!(
        "listen unix://{}\naccept-proxy-unix true\n{LIMITS}",
        sock.display()
    );
    let tether = Tether::start_with(dir, &extra).await;
    tether.create_user("bob").await;
    let unix = |header: Vec<u8>, user: &'static str| {
        let sock = sock.clone();
        async move {
            let c = TestClient::connect_unix(&sock).await;
            error_text(&fail_login(c, &header, user).await)
        }
    };
    let a = "203.0.113.9:1234";
    assert_eq!(unix(v1(a), "guess1").await, INVALID);
    assert_eq!(unix(v2(a), "guess2").await, INVALID);
    assert_eq!(unix(v1(a), "guess3").await, THROTTLED);
    assert_eq!(unix(v2("[2001:db8::9]:1"), "guess4").await, INVALID);
    // Without a header a unix client has no address to lock.
    for user in ["guess5", "guess6", "guess7"] {
        assert_eq!(unix(Vec::new(), user).await, INVALID);
    }
    let irc = IrcStream::connect_unix(&sock).await;
    let mut bob = TestClient::register_pass_on(irc, "bob", PASSWORD, "bob", &[]).await;
    bob.sync().await;
    tether.shutdown().await;
}

#[tokio::test]
async fn unix_listener_ignores_headers_without_accept_proxy_unix() {
    let dir = temp_dir("tether-it-");
    let sock = dir.path().join("irc.sock");
    let extra = format!(
        "listen unix://{}\naccept-proxy-ip localhost\n",
        sock.display()
    );
    let tether = Tether::start_with(dir, &extra).await;
    let mut c = TestClient::connect_unix(&sock).await;
    c.send_raw(&v1("203.0.113.9:1234")).await;
    c.expect_cmd("451").await;
    c.sync().await;
    tether.shutdown().await;
}

/// The header of an `ircs://` connection comes before the TLS handshake.
#[tokio::test]
async fn header_before_the_tls_handshake() {
    let dir = temp_dir("tether-it-");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).expect("cert");
    std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).expect("key");
    let extra = format!(
        "tls {d}/cert.pem {d}/key.pem\nlisten ircs://127.0.0.1:0\naccept-proxy-ip localhost\n{LIMITS}",
        d = dir.path().display()
    );
    let tether = Tether::start_with(dir, &extra).await;
    let tls_addr = tether.server().tls_addr().expect("ircs listener");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let connect = |header: Vec<u8>| {
        let connector = connector.clone();
        async move {
            let mut tcp = timeout(TIMEOUT, TcpStream::connect(tls_addr))
                .await
                .expect("connect in time")
                .expect("connect");
            tokio::io::AsyncWriteExt::write_all(&mut tcp, &header)
                .await
                .expect("header");
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let tls = timeout(TIMEOUT, connector.connect(name, tcp))
                .await
                .expect("handshake in time")
                .expect("handshake");
            let (r, w) = tokio::io::split(tls);
            TestClient::from_irc(IrcStream::new(r, w, "tls client"))
        }
    };
    let a = "203.0.113.5:4444";
    for user in ["guess1", "guess2"] {
        let seen = fail_login(connect(v2(a)).await, b"", user).await;
        assert_eq!(error_text(&seen), INVALID);
    }
    let seen = fail_login(connect(v1(a)).await, b"", "guess3").await;
    assert_eq!(error_text(&seen), THROTTLED);
    // The proxy itself (no header) is not locked.
    let seen = fail_login(connect(Vec::new()).await, b"", "guess4").await;
    assert_eq!(error_text(&seen), INVALID);
    tether.shutdown().await;
}

/// One failed login over WebSocket, with an `X-Forwarded-For` header if
/// given; the text of the `ERROR` that ends it.
async fn ws_fail(addr: SocketAddr, forwarded_for: Option<&str>, user: &str) -> String {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let mut request = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    if let Some(xff) = forwarded_for {
        request.headers_mut().insert(
            "X-Forwarded-For",
            HeaderValue::from_str(xff).expect("header"),
        );
    }
    let tcp = timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let (mut ws, _) = timeout(TIMEOUT, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    for line in [
        "PASS wrong".to_string(),
        format!("NICK {user}"),
        format!("USER {user} 0 * :{user}"),
    ] {
        ws.send(WsMessage::Text(line.into())).await.expect("send");
    }
    loop {
        match timeout(TIMEOUT, ws.next()).await.expect("reply in time") {
            Some(Ok(WsMessage::Text(t))) => {
                let msg: Message = t.as_str().parse().expect("IRC line");
                if msg.command == "ERROR" {
                    return msg.params[0].clone();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return String::new(),
        }
    }
}

#[tokio::test]
async fn websocket_behind_a_trusted_http_proxy_uses_its_forwarded_address() {
    let extra = format!("listen ws+insecure://127.0.0.1:0\naccept-proxy-ip localhost\n{LIMITS}");
    let tether = Tether::start_with(temp_dir("tether-it-"), &extra).await;
    let ws = tether.server().websocket_addr().expect("ws listener");
    // The entry the client wrote itself (first) is not the one used.
    let chain = "10.1.1.1, 203.0.113.8";
    assert_eq!(ws_fail(ws, Some(chain), "guess1").await, INVALID);
    assert_eq!(
        ws_fail(ws, Some("10.2.2.2, 203.0.113.8"), "guess2").await,
        INVALID
    );
    assert_eq!(ws_fail(ws, Some(chain), "guess3").await, THROTTLED);
    assert_eq!(ws_fail(ws, Some("10.1.1.1"), "guess4").await, INVALID);
    assert_eq!(ws_fail(ws, None, "guess5").await, INVALID);
    tether.shutdown().await;
}

#[tokio::test]
async fn admin_socket_takes_a_header_with_accept_proxy_unix() {
    let tether = Tether::start_with(temp_dir("tether-it-"), "accept-proxy-unix true\n").await;
    let mut admin = IrcStream::connect_unix(&tether.admin_path).await;
    admin.send_raw(&v2("203.0.113.9:1234")).await;
    admin.send("BOUNCERSERV user status").await;
    admin
        .expect("BOUNCERSERV OK", |m| {
            m.command == "BOUNCERSERV" && m.param(0) == Some("OK")
        })
        .await;
    tether.shutdown().await;
}
