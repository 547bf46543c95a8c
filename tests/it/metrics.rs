//! The `http+prometheus://` listener: scraped over a real TCP socket with a
//! hand-written HTTP/1.1 client, the exposition text parsed, and the
//! values checked against traffic the test made (synchronised with
//! PING/PONG round trips, so every counted line has been counted).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tether::config::Listener;
use tether::server::Bound;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::harness::*;
use crate::support::*;

/// One parsed scrape: `(name, labels)` to value, and the declared types.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<(String, String), f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// Parse the text exposition format, checking its shape: every
    /// non-comment line is `name{labels} value`, every metric has a
    /// `# TYPE` (and `# HELP`) before its samples, no sample repeats.
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(!help.is_empty(), "empty HELP: {line}");
                helped.push(name.to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "unexpected type: {line}"
                );
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "TYPE twice: {line}"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment: {line}");
            assert!(!line.is_empty(), "empty line in exposition");
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest.strip_suffix('}').expect("labels end with }");
                    for pair in labels.split(',') {
                        let (k, v) = pair.split_once('=').expect("label k=v");
                        assert!(
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line}"
                        );
                        assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                    }
                    (name, labels)
                }
                None => (series, ""),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad metric name in {line:?}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|f| types.get(*f).map(String::as_str) == Some("histogram"))
                .unwrap_or(name);
            assert!(types.contains_key(family), "sample before its TYPE: {line}");
            assert!(
                helped.iter().any(|h| h == family),
                "no HELP for {family}: {line}"
            );
            assert!(
                samples
                    .insert((name.to_string(), labels.to_string()), value)
                    .is_none(),
                "sample twice: {line}"
            );
        }
        Scrape { samples, types }
    }

    /// The value of `name{labels}`, where `labels` is written as in the
    /// exposition (`state="connected"`), or `""` for none.
    fn get(&self, name: &str, labels: &str) -> f64 {
        *self
            .samples
            .get(&(name.to_string(), labels.to_string()))
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in {:#?}", self.samples))
    }
}

/// The address of the server's metrics listener.
fn metrics_addr(s: &Setup) -> SocketAddr {
    s.tether
        .server()
        .bound()
        .iter()
        .find_map(|b| match b {
            Bound::Tcp {
                listener: Listener::Prometheus { .. },
                addr,
            } => Some(*addr),
            _ => None,
        })
        .expect("a bound http+prometheus listener")
}

/// A response: status code, headers (lower-cased names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response (its body delimited by Content-Length) from `stream`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    let read = async {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("reading the response");
            assert!(n > 0, "EOF before the end of the response head: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header name: value");
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("Content-Length");
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("reading the body");
            assert!(n > 0, "EOF inside the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8(buf[head_end..head_end + length].to_vec()).expect("UTF-8");
        buf.drain(..head_end + length);
        Response {
            status,
            headers,
            body,
        }
    };
    timeout(TIMEOUT, read)
        .await
        .expect("response within TIMEOUT")
}

/// Send `request` on a new connection and read one response.
async fn request(addr: SocketAddr, request: &[u8]) -> (Response, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(request).await.expect("sending");
    let mut buf = Vec::new();
    let response = read_response(&mut stream, &mut buf).await;
    (response, stream)
}

/// `GET /metrics` on a new connection, checked and parsed.
async fn scrape(addr: SocketAddr) -> Scrape {
    let (r, _) = request(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.header("connection"), Some("close"));
    Scrape::parse(&r.body)
}

/// Wait for the server to close `stream`.
async fn expect_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    timeout(TIMEOUT, stream.read_to_end(&mut rest))
        .await
        .expect("closed within TIMEOUT")
        .expect("read to EOF");
    assert!(
        rest.is_empty(),
        "unexpected bytes after the response: {rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_users_links_and_relayed_messages() {
    let mut s = Setup::with_config("listen http+prometheus://127.0.0.1:0\n").await;
    let addr = metrics_addr(&s);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    // With chathistory the client gets no delivery probes (they would be
    // traffic this test does not make); echo-message makes each of its
    // messages come back once stored, so the count of stored rows is
    // settled when the client has seen the echoes.
    let mut c = s
        .client("phone", &["draft/chathistory", "echo-message"])
        .await;
    c.sync().await;
    s.conn.sync().await;

    let before = scrape(addr).await;
    for (name, kind) in [
        ("tether_users", "gauge"),
        ("tether_networks", "gauge"),
        ("tether_downstream_connections", "gauge"),
        ("tether_upstream_connections", "gauge"),
        ("tether_upstream_messages_received_total", "counter"),
        ("tether_upstream_messages_sent_total", "counter"),
        ("tether_downstream_messages_received_total", "counter"),
        ("tether_downstream_messages_sent_total", "counter"),
        ("tether_upstream_connect_errors_total", "counter"),
        ("tether_queue_disconnects_total", "counter"),
        ("tether_login_failures_total", "counter"),
        ("tether_history_rows_stored_total", "counter"),
        ("tether_db_batch_duration_seconds", "histogram"),
    ] {
        assert_eq!(
            before.types.get(name).map(String::as_str),
            Some(kind),
            "{name} should be a {kind}"
        );
    }
    // admin and alice.
    assert_eq!(before.get("tether_users", ""), 2.0);
    assert_eq!(before.get("tether_networks", "state=\"connected\""), 1.0);
    for state in ["connecting", "disconnected", "disabled", "halted"] {
        assert_eq!(
            before.get("tether_networks", &format!("state=\"{state}\"")),
            0.0,
            "{state}"
        );
    }
    assert_eq!(before.get("tether_upstream_connections", ""), 1.0);
    assert_eq!(before.get("tether_downstream_connections", ""), 1.0);
    assert_eq!(before.get("tether_upstream_connect_errors_total", ""), 0.0);
    for reason in ["send_queue_full", "stalled", "replay_overflow"] {
        let labels = format!("reason=\"{reason}\"");
        assert_eq!(before.get("tether_queue_disconnects_total", &labels), 0.0);
    }
    assert!(before.get("tether_upstream_messages_received_total", "") >= 1.0);
    assert!(before.get("tether_downstream_messages_sent_total", "") >= 1.0);

    // Traffic: SENT messages from the client to bob, RECEIVED from bob.
    const SENT: usize = 5;
    const RECEIVED: usize = 3;
    let nick = s.conn.nick.clone();
    for i in 0..SENT {
        let text = format!("hello {i}");
        c.send(&format!("PRIVMSG bob :{text}")).await;
        s.conn
            .expect("the client's message upstream", |m| {
                is_privmsg(m, "bob", &text)
            })
            .await;
        c.expect("the echo of the client's message", |m| {
            is_privmsg(m, "bob", &text)
        })
        .await;
    }
    for i in 0..RECEIVED {
        let text = format!("reply {i}");
        s.conn
            .send(&format!(":bob!b@h.example PRIVMSG {nick} :{text}"))
            .await;
        c.expect("bob's message", |m| is_privmsg(m, &nick, &text))
            .await;
    }
    // One PING each way, answered.
    let seen = c.sync().await;
    assert!(seen.is_empty(), "unexpected lines to the client: {seen:?}");
    let seen = s.conn.sync().await;
    assert!(seen.is_empty(), "unexpected lines upstream: {seen:?}");

    let after = scrape(addr).await;
    let delta = |name: &str| after.get(name, "") - before.get(name, "");
    let (sent, received) = (SENT as f64, RECEIVED as f64);
    // The client's messages and its PING; the server's PONG.
    assert_eq!(
        delta("tether_downstream_messages_received_total"),
        sent + 1.0
    );
    // Echoes, bob's messages and the PONG to the client.
    assert_eq!(
        delta("tether_downstream_messages_sent_total"),
        sent + received + 1.0
    );
    // The client's messages and the PONG to the server's PING.
    assert_eq!(delta("tether_upstream_messages_sent_total"), sent + 1.0);
    // Bob's messages and the server's PING.
    assert_eq!(
        delta("tether_upstream_messages_received_total"),
        received + 1.0
    );
    // Every message was stored (each is relayed only once stored).
    assert_eq!(delta("tether_history_rows_stored_total"), sent + received);
    let commits = after.get("tether_db_batch_duration_seconds_count", "");
    assert!(commits >= 1.0, "no group commit measured");
    assert_eq!(
        after.get("tether_db_batch_duration_seconds_bucket", "le=\"+Inf\""),
        commits
    );
    assert!(after.get("tether_db_batch_duration_seconds_sum", "") > 0.0);
    let mut last = 0.0;
    for ((_, le), v) in after
        .samples
        .iter()
        .filter(|((n, _), _)| n == "tether_db_batch_duration_seconds_bucket")
    {
        assert!(*v <= commits, "{le}: {v}");
        last = f64::max(last, *v);
    }
    assert_eq!(last, commits);
    // The gauges did not move.
    assert_eq!(after.get("tether_users", ""), 2.0);
    assert_eq!(after.get("tether_upstream_connections", ""), 1.0);
    assert_eq!(after.get("tether_downstream_connections", ""), 1.0);

    // A refused login is counted.
    let mut bad = TestClient::connect(s.tether.addr).await;
    bad.send("PASS wrong").await;
    bad.send("NICK mallory").await;
    bad.send("USER alice 0 * :M").await;
    let all = bad.expect_eof().await;
    assert!(all.iter().any(|m| m.command == "464"), "{all:?}");
    let later = scrape(addr).await;
    assert_eq!(
        later.get("tether_login_failures_total", "reason=\"invalid\""),
        before.get("tether_login_failures_total", "reason=\"invalid\"") + 1.0
    );
    for reason in ["throttled", "disabled"] {
        let labels = format!("reason=\"{reason}\"");
        assert_eq!(later.get("tether_login_failures_total", &labels), 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_counted_by_state_and_connect_errors_are_counted() {
    const NETWORKS: &str = "soju.im/bouncer-networks";
    const NOTIFY: &str = "soju.im/bouncer-networks-notify";
    let s = Setup::with_config("listen http+prometheus://127.0.0.1:0\n").await;
    let addr = metrics_addr(&s);
    let Setup { tether, fake, conn } = s;
    // A bouncer connection that is told of every network change.
    let mut c = tether
        .connect_client("alice", None, Some("watch"), "watch", &[NETWORKS, NOTIFY])
        .await;
    let seen = c.sync().await;
    let fake_id = seen
        .iter()
        .find(|m| m.command == "BOUNCER" && m.param(2).is_some_and(|a| a.starts_with("name=fake;")))
        .and_then(|m| m.param(1))
        .expect("fake announced")
        .to_string();

    // A network whose server is not there, and a disabled one.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    let dead_addr = dead.local_addr().expect("address");
    drop(dead);
    tether
        .create_network_at("alice", "dead", &format!("irc+insecure://{dead_addr}"), &[])
        .await
        .expect("network dead created");
    c.expect("the failed connection to dead", |m| {
        m.command == "BOUNCER"
            && m.param(0) == Some("NETWORK")
            && m.param(2).is_some_and(|a| a.contains("error=Connection"))
    })
    .await;
    tether
        .create_network_at(
            "alice",
            "off",
            "irc+insecure://127.0.0.1:1",
            &["-enabled=false"],
        )
        .await
        .expect("network off created");
    c.sync().await;

    let m = scrape(addr).await;
    let state = |m: &Scrape, s: &str| m.get("tether_networks", &format!("state=\"{s}\""));
    assert_eq!(state(&m, "connected"), 1.0);
    // dead: between attempts, or dialing again.
    assert_eq!(state(&m, "connecting") + state(&m, "disconnected"), 1.0);
    assert_eq!(state(&m, "disabled"), 1.0);
    assert_eq!(state(&m, "halted"), 0.0);
    assert_eq!(m.get("tether_upstream_connections", ""), 1.0);
    // The first retry after a failure is immediate, so a second failure
    // may already have happened.
    let errors = m.get("tether_upstream_connect_errors_total", "");
    assert!((1.0..=2.0).contains(&errors), "{errors}");

    // The server of fake goes away: its link is counted down.
    drop(fake);
    conn.kill();
    c.expect("fake no longer connected", |m| {
        m.command == "BOUNCER"
            && m.param(0) == Some("NETWORK")
            && m.param(1) == Some(fake_id.as_str())
            && m.param(2)
                .is_some_and(|a| a.contains("state=") && !a.contains("state=connected"))
    })
    .await;
    let m = scrape(addr).await;
    assert_eq!(m.get("tether_upstream_connections", ""), 0.0);
    assert_eq!(state(&m, "connected"), 0.0);
    assert_eq!(state(&m, "connecting") + state(&m, "disconnected"), 2.0);
    assert_eq!(state(&m, "disabled"), 1.0);
    // The bouncer connection and nothing else.
    assert_eq!(m.get("tether_downstream_connections", ""), 1.0);

    // Deleting a network takes it out of the count.
    tether
        .admin_words(&["user", "run", "alice", "network", "delete", "off"])
        .await
        .expect("network off deleted");
    let m = scrape(addr).await;
    assert_eq!(state(&m, "disabled"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_errors_and_the_listener_keeps_serving() {
    let s = Setup::with_config("listen http+prometheus://127.0.0.1:0\n").await;
    let addr = metrics_addr(&s);

    // Junk: 400, and the connection is closed.
    let (r, mut stream) = request(addr, b"this is not http\r\n\r\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    expect_closed(&mut stream).await;

    // Binary junk (a TLS ClientHello's first bytes) with a line end.
    let (r, mut stream) = request(addr, b"\x16\x03\x01\x02\x00\x01\r\n\r\n").await;
    assert_eq!(r.status, 400);
    expect_closed(&mut stream).await;

    // A head that never ends within the size cap: 431, closed.
    let mut huge = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 9000));
    let (r, mut stream) = request(addr, &huge).await;
    assert_eq!(r.status, 431);
    expect_closed(&mut stream).await;

    // Another method: 405 with Allow.
    let (r, _) = request(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    // A body is refused.
    let (r, mut stream) = request(addr, b"PUT / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody").await;
    assert_eq!(r.status, 413);
    expect_closed(&mut stream).await;

    // HTTP/2 prior knowledge is not spoken.
    let (r, _) = request(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert_eq!(r.status, 505);

    // Keep-alive: two scrapes (any path) and a HEAD on one connection.
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let mut buf = Vec::new();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sending");
    for _ in 0..2 {
        let r = read_response(&mut stream, &mut buf).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        let parsed = Scrape::parse(&r.body);
        assert_eq!(parsed.get("tether_users", ""), 2.0);
    }
    stream
        .write_all(b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("sending");
    let mut rest = Vec::new();
    timeout(TIMEOUT, stream.read_to_end(&mut rest))
        .await
        .expect("closed within TIMEOUT")
        .expect("read to EOF");
    let head = String::from_utf8(rest).expect("ASCII");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    assert!(!head.contains("tether_users"), "{head}");

    // Still serving, and the IRC side never noticed.
    let after = scrape(addr).await;
    assert_eq!(after.get("tether_downstream_connections", ""), 0.0);
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapers_over_the_limit_are_turned_away() {
    let s = Setup::with_config("listen http+prometheus://127.0.0.1:0\n").await;
    let addr = metrics_addr(&s);
    // Idle connections hold every slot (the accept loop takes them in
    // order, so all of them are in before the next one).
    let mut idle = Vec::new();
    for _ in 0..tether::server::prometheus::MAX_CONNECTIONS {
        idle.push(TcpStream::connect(addr).await.expect("connecting"));
    }
    let mut extra = TcpStream::connect(addr).await.expect("connecting");
    let mut got = Vec::new();
    timeout(TIMEOUT, extra.read_to_end(&mut got))
        .await
        .expect("turned away within TIMEOUT")
        .expect("read");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
    // The connections that have a slot are served.
    let first = idle.first_mut().expect("a connection");
    first
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("sending");
    let mut buf = Vec::new();
    let r = read_response(first, &mut buf).await;
    assert_eq!(r.status, 200);
    // IRC clients do not share that limit.
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
}

/// Log in with PASS and expect to be refused (ERROR, then the close).
async fn refused_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Vec<tether::proto::Message> {
    let mut c = TestClient::connect(addr).await;
    c.send_msg(&tether::proto::Message::new("PASS", [password]))
        .await;
    c.send("NICK someone").await;
    c.send(&format!("USER {user} 0 * :S")).await;
    let all = c.expect_eof().await;
    assert!(
        all.iter().any(|m| m.command == "ERROR") && !all.iter().any(|m| m.command == "001"),
        "{all:?}"
    );
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_are_counted_by_reason() {
    let s =
        Setup::with_config("listen http+prometheus://127.0.0.1:0\nlogin-limit-user-failures 1\n")
            .await;
    let addr = metrics_addr(&s);
    s.tether
        .admin_words(&[
            "user",
            "create",
            "-username",
            "carol",
            "-password",
            PASSWORD,
            "-enabled=false",
        ])
        .await
        .expect("creating a disabled user");
    let reasons = |m: &Scrape| {
        ["invalid", "throttled", "disabled"]
            .map(|r| m.get("tether_login_failures_total", &format!("reason=\"{r}\"")))
    };
    assert_eq!(reasons(&scrape(addr).await), [0.0, 0.0, 0.0]);

    let tether_addr = s.tether.addr;
    refused_login(tether_addr, "alice", "wrong").await;
    assert_eq!(reasons(&scrape(addr).await), [1.0, 0.0, 0.0]);
    // Locked out after one failure: refused without a check.
    let all = refused_login(tether_addr, "alice", PASSWORD).await;
    assert!(
        all.iter()
            .any(|m| m.param(0) == Some("Too many failed logins, try again later")),
        "{all:?}"
    );
    assert_eq!(reasons(&scrape(addr).await), [1.0, 1.0, 0.0]);
    refused_login(tether_addr, "carol", PASSWORD).await;
    assert_eq!(reasons(&scrape(addr).await), [1.0, 1.0, 1.0]);
}
