//! WebSocket listeners (IRCv3 "WebSocket support"): subprotocol choice,
//! one line per message in both directions, text framing and UTF-8, the
//! origin policy, `wss://`, and messages that try to carry two lines.
//!
//! The test client is a real WebSocket client ([`tokio_tungstenite`]) whose
//! frames are turned into CRLF lines for an [`IrcStream`], so the usual
//! registration and sync helpers work unchanged. Every frame from tether is
//! checked on the way: its kind must be the negotiated one and it must hold
//! exactly one non-empty line without CR or LF; a bad frame is turned into
//! an `ERROR :ws check: ...` line followed by end of stream, which fails
//! whatever the test is waiting for, with the reason in the transcript.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::harness::*;
use crate::support::*;

/// The kind of frame lines travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Binary,
    Text,
}

/// What a handshake asks for.
struct Offer<'a> {
    protocols: &'a [&'a str],
    origin: Option<&'a str>,
}

/// A registered-or-not WebSocket client seen as an IRC line stream.
struct WsClient {
    client: TestClient,
    /// Frames sent as they are, bypassing the line path (sent before any
    /// line written after them).
    raw: mpsc::UnboundedSender<WsMessage>,
    /// Frames received from tether that passed the checks.
    frames: Arc<AtomicUsize>,
    /// The subprotocol tether chose, if any.
    protocol: Option<String>,
}

/// The kind of frames a negotiated subprotocol (or none) means.
fn kind_of(protocol: Option<&str>) -> Kind {
    match protocol {
        Some("binary.ircv3.net") => Kind::Binary,
        _ => Kind::Text,
    }
}

/// WebSocket handshake over `stream`; the error is tungstenite's (an HTTP
/// refusal is `WsError::Http`).
async fn handshake<S>(
    stream: S,
    url: &str,
    offer: &Offer<'_>,
) -> Result<(WebSocketStream<S>, Option<String>), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    if !offer.protocols.is_empty() {
        let list = offer.protocols.join(", ");
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&list).expect("header value"),
        );
    }
    if let Some(origin) = offer.origin {
        headers.insert(
            "Origin",
            HeaderValue::from_str(origin).expect("header value"),
        );
    }
    let (ws, response) =
        match timeout(TIMEOUT, tokio_tungstenite::client_async(request, stream)).await {
            Ok(r) => r?,
            Err(_) => panic!("WebSocket handshake with {url} timed out"),
        };
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().expect("ASCII subprotocol").to_string());
    Ok((ws, protocol))
}

async fn tcp(addr: SocketAddr) -> TcpStream {
    match timeout(TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("connecting to {addr}: {e}"),
        Err(_) => panic!("connecting to {addr}: timed out"),
    }
}

impl WsClient {
    /// Connect to a `ws+insecure` listener with `offer`; panics if the
    /// handshake is refused.
    async fn connect(addr: SocketAddr, offer: Offer<'_>) -> WsClient {
        let url = format!("ws://{addr}/");
        match handshake(tcp(addr).await, &url, &offer).await {
            Ok((ws, protocol)) => WsClient::start(ws, protocol, format!("ws {addr}")),
            Err(e) => panic!("WebSocket handshake with {url} failed: {e}"),
        }
    }

    /// Run the frame/line adapter for an established WebSocket.
    fn start<S>(ws: WebSocketStream<S>, protocol: Option<String>, label: String) -> WsClient
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let kind = kind_of(protocol.as_deref());
        let (irc_side, adapter_side) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(irc_side);
        let (raw, raw_rx) = mpsc::unbounded_channel();
        let frames = Arc::new(AtomicUsize::new(0));
        tokio::spawn(adapt(ws, adapter_side, kind, raw_rx, frames.clone()));
        let mut irc = IrcStream::new(r, w, label);
        irc.set_label(format!("{} ({kind:?} frames)", irc.label()));
        WsClient {
            client: TestClient {
                irc,
                nick: String::new(),
            },
            raw,
            frames,
            protocol,
        }
    }

    /// Register as `alice/fake@<client>` with PASS.
    async fn register(self, client: &str) -> WsClient {
        let WsClient {
            client: c,
            raw,
            frames,
            protocol,
        } = self;
        let login = login_name("alice", Some("fake"), Some(client));
        let c = TestClient::register_pass_on(c.irc, &login, PASSWORD, client, &[]).await;
        WsClient {
            client: c,
            raw,
            frames,
            protocol,
        }
    }

    fn send_frame(&self, frame: WsMessage) {
        self.raw.send(frame).expect("adapter running");
    }

    fn frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }
}

/// Moves frames to lines and lines to frames for one test client.
async fn adapt<S>(
    ws: WebSocketStream<S>,
    pipe: tokio::io::DuplexStream,
    kind: Kind,
    mut raw: mpsc::UnboundedReceiver<WsMessage>,
    frames: Arc<AtomicUsize>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (pipe_r, mut pipe_w) = tokio::io::split(pipe);
    let mut lines = BufReader::new(pipe_r).lines();
    let frame_of = |line: String| match kind {
        Kind::Binary => WsMessage::Binary(line.into_bytes().into()),
        Kind::Text => WsMessage::Text(line.into()),
    };
    let mut lines_done = false;
    loop {
        tokio::select! {
            biased;
            Some(frame) = raw.recv() => {
                if ws_tx.send(frame).await.is_err() {
                    break;
                }
            }
            line = lines.next_line(), if !lines_done => match line {
                Ok(Some(line)) => {
                    if ws_tx.send(frame_of(line)).await.is_err() {
                        break;
                    }
                }
                _ => {
                    lines_done = true;
                    let _ = ws_tx.close().await;
                }
            },
            frame = ws_rx.next() => {
                let (got, payload) = match frame {
                    Some(Ok(WsMessage::Binary(b))) => (Kind::Binary, b.to_vec()),
                    Some(Ok(WsMessage::Text(t))) => (Kind::Text, t.as_bytes().to_vec()),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    Some(Ok(WsMessage::Close(_))) => continue,
                    Some(Ok(WsMessage::Frame(_))) | Some(Err(_)) | None => break,
                };
                let problem = if got != kind {
                    Some(format!("{got:?} frame, expected {kind:?}"))
                } else if payload.is_empty() {
                    Some("empty frame".to_string())
                } else if payload.iter().any(|b| matches!(b, b'\r' | b'\n')) {
                    Some(format!("CR or LF in frame {:?}", String::from_utf8_lossy(&payload)))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let line = format!("ERROR :ws check: {problem}\r\n");
                    let _ = pipe_w.write_all(line.as_bytes()).await;
                    break;
                }
                frames.fetch_add(1, Ordering::Relaxed);
                let mut line = payload;
                line.extend_from_slice(b"\r\n");
                if pipe_w.write_all(&line).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = pipe_w.shutdown().await;
}

/// A [`Setup`] whose bouncer also listens for WebSocket clients
/// (`ws+insecure://`) with `extra` config; returns it with the address.
async fn ws_setup(extra: &str) -> (Setup, SocketAddr) {
    let s = Setup::with_config(&format!("listen ws+insecure://127.0.0.1:0\n{extra}")).await;
    let addr = s
        .tether
        .server()
        .websocket_addr()
        .expect("a WebSocket listener is bound");
    (s, addr)
}

/// Join `#web`, send a message upstream and receive one, all over `c`.
async fn chat_round_trip(s: &mut Setup, c: &mut WsClient) {
    s.join(&mut c.client, "#web", None, &["bob"]).await;
    c.client.send("PRIVMSG #web :hello from the browser").await;
    let up = s
        .conn
        .expect("PRIVMSG from the web client", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(up.params, ["#web", "hello from the browser"], "{up}");
    s.conn
        .send(":bob!b@h.example PRIVMSG #web :hello, browser")
        .await;
    let m = c
        .client
        .expect("bob's message", |m| is_privmsg(m, "#web", "hello, browser"))
        .await;
    assert_eq!(m.source_nick(), Some("bob"), "{m}");
    c.client.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_client_registers_joins_and_chats() {
    let (mut s, addr) = ws_setup("").await;
    let offer = Offer {
        protocols: &["binary.ircv3.net", "text.ircv3.net"],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    assert_eq!(c.protocol.as_deref(), Some("binary.ircv3.net"));
    chat_round_trip(&mut s, &mut c).await;
    assert!(c.frames() > 5, "only {} frames", c.frames());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_client_registers_joins_and_chats() {
    let (mut s, addr) = ws_setup("").await;
    // The client's order wins: text first.
    let offer = Offer {
        protocols: &["text.ircv3.net", "binary.ircv3.net"],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    assert_eq!(c.protocol.as_deref(), Some("text.ircv3.net"));
    chat_round_trip(&mut s, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_subprotocol_gets_text_frames() {
    let (mut s, addr) = ws_setup("").await;
    let offer = Offer {
        protocols: &[],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    assert_eq!(c.protocol, None);
    chat_round_trip(&mut s, &mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_subprotocols_only_fall_back_to_text_without_echo() {
    let (_s, addr) = ws_setup("").await;
    // tungstenite's client, like a browser, fails a handshake whose answer
    // lacks a subprotocol it offered; so read the raw HTTP answer.
    let mut stream = tcp(addr).await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = String::new();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let n = timeout(TIMEOUT, reader.read_line(&mut line))
            .await
            .expect("HTTP answer in time")
            .expect("read");
        if n == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_from_upstream_reaches_text_clients_as_replacement_characters() {
    let (mut s, addr) = ws_setup("").await;
    let offer = Offer {
        protocols: &["text.ircv3.net"],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    s.join(&mut c.client, "#web", None, &["bob"]).await;
    s.conn
        .send_raw(b":bob!b@h.example PRIVMSG #web :caf\xe9 \xff\xfe ok\r\n")
        .await;
    c.client
        .expect("bob's message with U+FFFD", |m| {
            is_privmsg(m, "#web", "caf\u{fffd} \u{fffd}\u{fffd} ok")
        })
        .await;
    c.client.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_client_input_gets_the_usual_error_replies() {
    let (mut s, addr) = ws_setup("").await;
    let offer = Offer {
        protocols: &["binary.ircv3.net"],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    s.join(&mut c.client, "#web", None, &[]).await;
    c.client.sync().await;
    // Not UTF-8: refused as on TCP.
    c.send_frame(WsMessage::Binary(b"PRIVMSG #web :\xff\xfe"[..].into()));
    c.client
        .expect("FAIL INVALID_UTF8", |m| {
            m.command == "FAIL" && m.param(1) == Some("INVALID_UTF8")
        })
        .await;
    // Longer than a client line, shorter than the frame limit: 417.
    let long = format!("PRIVMSG #web :{}", "x".repeat(8000));
    c.send_frame(WsMessage::Binary(long.into_bytes().into()));
    c.client.expect_cmd("417").await;
    // A trailing CRLF is tolerated and stripped.
    c.send_frame(WsMessage::Binary(b"PRIVMSG #web :with crlf\r\n"[..].into()));
    let up = s
        .conn
        .expect("PRIVMSG with a trailing CRLF", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(up.params, ["#web", "with crlf"], "{up}");
    c.client.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_ends_the_connection() {
    let (_s, addr) = ws_setup("").await;
    let offer = Offer {
        protocols: &["binary.ircv3.net"],
        origin: None,
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    c.client.sync().await;
    let huge = format!("PRIVMSG #web :{}", "x".repeat(64 * 1024));
    c.send_frame(WsMessage::Binary(huge.into_bytes().into()));
    c.client.set_allow_torn_eof(true);
    c.client.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_line_break_does_not_make_a_second_command() {
    let (mut s, addr) = ws_setup("").await;
    for protocol in ["binary.ircv3.net", "text.ircv3.net"] {
        let client = if protocol.starts_with("binary") {
            "bin"
        } else {
            "txt"
        };
        let offer = Offer {
            protocols: &[protocol],
            origin: None,
        };
        let mut c = WsClient::connect(addr, offer).await.register(client).await;
        s.join(&mut c.client, "#web", None, &[]).await;
        c.client.sync().await;
        let payload = "PRIVMSG #web :one\r\nQUIT :two\nPRIVMSG #web :three";
        c.send_frame(match kind_of(c.protocol.as_deref()) {
            Kind::Binary => WsMessage::Binary(payload.as_bytes().to_vec().into()),
            Kind::Text => WsMessage::Text(payload.into()),
        });
        let up = s
            .conn
            .expect("the one PRIVMSG", |m| m.command == "PRIVMSG")
            .await;
        assert_eq!(up.params[0], "#web", "{up}");
        assert!(
            up.params[1].starts_with("one") && up.params[1].ends_with("three"),
            "the whole message is one PRIVMSG: {up}"
        );
        // The client is still connected and nothing else went upstream.
        c.client.sync().await;
        s.conn
            .sync_expect_none("a second command from one message", |m| {
                matches!(m.command.as_str(), "PRIVMSG" | "QUIT")
            })
            .await;
        c.client.send("PART #web").await;
        s.conn.expect_cmd("PART").await;
        let part = format!(":{} PART #web", s.conn.hostmask());
        s.conn.send(&part).await;
        c.client.expect_cmd("PART").await;
    }
}

/// The status of a refused handshake, or `None` if it was accepted.
async fn refusal(addr: SocketAddr, origin: Option<&str>, host: Option<&str>) -> Option<StatusCode> {
    let url = format!("ws://{addr}/");
    let mut request = url.as_str().into_client_request().expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).expect("origin"));
    }
    if let Some(host) = host {
        request
            .headers_mut()
            .insert("Host", HeaderValue::from_str(host).expect("host"));
    }
    match timeout(
        TIMEOUT,
        tokio_tungstenite::client_async(request, tcp(addr).await),
    )
    .await
    {
        Ok(Ok((mut ws, _))) => {
            let _ = ws.close(None).await;
            None
        }
        Ok(Err(WsError::Http(response))) => Some(response.status()),
        Ok(Err(e)) => panic!("handshake failed unexpectedly: {e}"),
        Err(_) => panic!("handshake timed out"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_must_match_http_origin_patterns() {
    let (_s, addr) =
        ws_setup("http-origin https://app.example.org 'https://*.chat.example'\n").await;
    let forbidden = Some(StatusCode::FORBIDDEN);
    assert_eq!(
        refusal(addr, Some("https://app.example.org"), None).await,
        None
    );
    assert_eq!(
        refusal(addr, Some("https://web.chat.example"), None).await,
        None
    );
    assert_eq!(
        refusal(addr, None, None).await,
        None,
        "no Origin: not a browser"
    );
    assert_eq!(
        refusal(addr, Some("https://evil.example"), None).await,
        forbidden
    );
    assert_eq!(
        refusal(addr, Some("http://app.example.org"), None).await,
        forbidden
    );
    // Same-origin is not enough once patterns are configured.
    assert_eq!(
        refusal(addr, Some("https://irc.example"), Some("irc.example")).await,
        forbidden
    );
    // A refused browser never reached registration; an accepted one works.
    let offer = Offer {
        protocols: &["text.ircv3.net"],
        origin: Some("https://app.example.org"),
    };
    let mut c = WsClient::connect(addr, offer).await.register("web").await;
    c.client.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_http_origin_only_the_same_host_is_allowed() {
    let (_s, addr) = ws_setup("").await;
    let forbidden = Some(StatusCode::FORBIDDEN);
    assert_eq!(
        refusal(addr, Some("https://irc.example:8443"), Some("irc.example")).await,
        None
    );
    assert_eq!(
        refusal(addr, Some(&format!("http://{addr}")), None).await,
        None,
        "the Host header is {addr}"
    );
    assert_eq!(
        refusal(addr, Some("https://evil.example"), Some("irc.example")).await,
        forbidden
    );
    assert_eq!(
        refusal(addr, Some("null"), Some("irc.example")).await,
        forbidden
    );
    assert_eq!(refusal(addr, None, None).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_listener_serves_websocket_over_tls() {
    use rustls::pki_types::{CertificateDer, ServerName};

    let dir = temp_dir("tether-wss-");
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).expect("cert.pem");
    std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).expect("key.pem");
    let extra = format!(
        "tls {d}/cert.pem {d}/key.pem\nlisten wss://127.0.0.1:0\n",
        d = dir.path().display()
    );
    let tether = Tether::start_with(dir, &extra).await;
    tether.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let conn = tether.create_network("alice", "fake", &fake).await;
    let addr = tether.server().websocket_addr().expect("wss listener");
    let mut s = Setup { tether, fake, conn };

    // A client set up like a browser: the certificate is trusted and ALPN
    // offers HTTP.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ck.cert.der().to_vec()))
        .expect("trusted root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = match timeout(TIMEOUT, connector.connect(name, tcp(addr).await)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => panic!("TLS handshake with {addr}: {e}"),
        Err(_) => panic!("TLS handshake with {addr} timed out"),
    };
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let offer = Offer {
        protocols: &["binary.ircv3.net"],
        origin: None,
    };
    let (ws, protocol) = handshake(tls, &format!("wss://localhost:{}/", addr.port()), &offer)
        .await
        .expect("WebSocket handshake over TLS");
    assert_eq!(protocol.as_deref(), Some("binary.ircv3.net"));
    let mut c = WsClient::start(ws, protocol, format!("wss {addr}"))
        .register("web")
        .await;
    chat_round_trip(&mut s, &mut c).await;
}
