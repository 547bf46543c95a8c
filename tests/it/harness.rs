//! Integration-test harness: scripted IRC peers over real sockets.
//!
//! - [`IrcStream`]: a line-based IRC peer over any byte stream, with a
//!   transcript of everything sent and received for failure messages.
//! - [`TestClient`]: a downstream client of the bouncer.
//! - [`FakeServer`] / [`FakeConn`]: the upstream network the bouncer dials.
//!
//! Tests synchronise on PING/PONG round trips ([`IrcStream::sync`]), never on
//! sleeps. Every wait is bounded by [`TIMEOUT`] so a broken test fails with a
//! transcript instead of hanging.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::prelude::*;
use tether::proto::Message;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::time::timeout;

/// Upper bound for any single wait in the harness.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum length of the non-tag part of a line, CRLF included.
const MAX_LINE: usize = 512;
/// Maximum length of the tag part of a line (`@...` plus the space).
const MAX_TAGS: usize = 8191;
/// How many transcript entries a failure message shows.
const TRANSCRIPT_TAIL: usize = 200;

static SYNC_COUNTER: AtomicU64 = AtomicU64::new(0);

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A line-based IRC peer over any stream; records everything sent and
/// received in a transcript for failure messages.
pub struct IrcStream {
    reader: BufReader<BoxRead>,
    writer: BoxWrite,
    /// Bytes of a line not yet terminated (kept across cancelled reads).
    partial: Vec<u8>,
    transcript: Vec<String>,
    label: String,
    auto_pong: bool,
    /// A torn last line before EOF is tolerated (and dropped).
    allow_torn_eof: bool,
    eof: bool,
}

impl IrcStream {
    /// Wrap any pair of read/write halves.
    pub fn new<R, W>(reader: R, writer: W, label: impl Into<String>) -> IrcStream
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        IrcStream {
            reader: BufReader::new(Box::new(reader) as BoxRead),
            writer: Box::new(writer),
            partial: Vec::new(),
            transcript: Vec::new(),
            label: label.into(),
            auto_pong: false,
            allow_torn_eof: false,
            eof: false,
        }
    }

    pub async fn connect_tcp(addr: SocketAddr) -> IrcStream {
        let stream = match timeout(TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("connecting to {addr}: {e}"),
            Err(_) => panic!("connecting to {addr}: timed out after {TIMEOUT:?}"),
        };
        IrcStream::from_tcp(stream)
    }

    pub async fn connect_unix(path: &Path) -> IrcStream {
        let stream = match timeout(TIMEOUT, UnixStream::connect(path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("connecting to {}: {e}", path.display()),
            Err(_) => panic!(
                "connecting to {}: timed out after {TIMEOUT:?}",
                path.display()
            ),
        };
        let (r, w) = stream.into_split();
        IrcStream::new(r, w, format!("unix {}", path.display()))
    }

    pub fn from_tcp(stream: TcpStream) -> IrcStream {
        let _ = stream.set_nodelay(true);
        let label = match (stream.local_addr(), stream.peer_addr()) {
            (Ok(l), Ok(p)) => format!("tcp {l} -> {p}"),
            _ => "tcp".to_string(),
        };
        let (r, w) = stream.into_split();
        IrcStream::new(r, w, label)
    }

    /// A name shown in failure messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// When enabled, incoming PINGs are answered with a PONG and not
    /// returned by the receiving methods (they still appear in the
    /// transcript). Off by default.
    pub fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// When enabled, a last line cut off by EOF is dropped instead of
    /// failing the test: for a peer the bouncer disconnects while it is not
    /// reading, where the line being written may be cut short.
    pub fn set_allow_torn_eof(&mut self, on: bool) {
        self.allow_torn_eof = on;
    }

    /// Send one line; CRLF is appended.
    pub async fn send(&mut self, line: &str) {
        assert!(
            !line.contains(['\r', '\n']),
            "[{}] send: line contains CR/LF, use send_raw: {line:?}",
            self.label
        );
        self.transcript.push(format!("-> {line}"));
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, line).await;
    }

    /// Send a message (serialized with `Display`, CRLF appended).
    pub async fn send_msg(&mut self, msg: &Message) {
        self.send(&msg.to_string()).await;
    }

    /// Send exact bytes (no CRLF appended).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.transcript
            .push(format!("-> (raw) {:?}", String::from_utf8_lossy(bytes)));
        self.write(bytes, "(raw bytes)").await;
    }

    async fn write(&mut self, bytes: &[u8], what: &str) {
        let res = timeout(TIMEOUT, async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "[{}] sending {what:?} failed: {e}\n{}",
                self.label,
                self.transcript()
            ),
            Err(_) => panic!(
                "[{}] sending {what:?} timed out after {TIMEOUT:?}\n{}",
                self.label,
                self.transcript()
            ),
        }
    }

    /// Close the write half (the peer reads EOF); reading still works.
    pub async fn shutdown_write(&mut self) {
        self.transcript.push("-> (shutdown)".to_string());
        let _ = timeout(TIMEOUT, self.writer.shutdown()).await;
    }

    /// Read one raw line (CRLF stripped, validated). `None` on EOF or
    /// connection reset. No timeout.
    async fn read_line(&mut self) -> Option<String> {
        if self.eof {
            return None;
        }
        let res = self.reader.read_until(b'\n', &mut self.partial).await;
        match res {
            Ok(_) if self.partial.is_empty() => {
                self.transcript.push("<- (EOF)".to_string());
                self.eof = true;
                None
            }
            Ok(_) => {
                let raw = std::mem::take(&mut self.partial);
                if !raw.ends_with(b"\n") && self.allow_torn_eof {
                    self.transcript
                        .push(format!("<- (torn line before EOF: {} bytes)", raw.len()));
                    self.transcript.push("<- (EOF)".to_string());
                    self.eof = true;
                    return None;
                }
                if !raw.ends_with(b"\n") {
                    panic!(
                        "[{}] EOF in the middle of a line: {:?}\n{}",
                        self.label,
                        String::from_utf8_lossy(&raw),
                        self.transcript()
                    );
                }
                let Some(body) = raw.strip_suffix(b"\r\n") else {
                    panic!(
                        "[{}] line not terminated by CRLF: {:?}\n{}",
                        self.label,
                        String::from_utf8_lossy(&raw),
                        self.transcript()
                    );
                };
                let line = match String::from_utf8(body.to_vec()) {
                    Ok(l) => l,
                    Err(_) => panic!(
                        "[{}] received invalid UTF-8: {:?}\n{}",
                        self.label,
                        String::from_utf8_lossy(body),
                        self.transcript()
                    ),
                };
                self.transcript.push(format!("<- {line}"));
                self.check_length(&line);
                Some(line)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.transcript.push(format!("<- (connection reset: {e})"));
                self.eof = true;
                None
            }
            Err(e) => panic!("[{}] read failed: {e}\n{}", self.label, self.transcript()),
        }
    }

    fn check_length(&self, line: &str) {
        let (tags, rest) = match line.strip_prefix('@') {
            Some(after) => match after.find(' ') {
                Some(i) => (i + 2, &after[i + 1..]),
                None => (0, line),
            },
            None => (0, line),
        };
        if tags > MAX_TAGS || rest.len() + 2 > MAX_LINE {
            panic!(
                "[{}] received an over-long line (tags {tags} bytes, rest {} bytes): {line:?}\n{}",
                self.label,
                rest.len() + 2,
                self.transcript()
            );
        }
    }

    /// Read one message; `None` on EOF. No timeout.
    async fn read_msg(&mut self) -> Option<Message> {
        loop {
            let line = self.read_line().await?;
            let msg: Message = match line.parse() {
                Ok(m) => m,
                Err(e) => panic!(
                    "[{}] unparseable line ({e}): {line:?}\n{}",
                    self.label,
                    self.transcript()
                ),
            };
            if self.auto_pong && msg.command == "PING" {
                let token = msg.params.last().cloned().unwrap_or_default();
                self.send_msg(&Message::new("PONG", [token])).await;
                continue;
            }
            return Some(msg);
        }
    }

    fn timed_out(&self, doing: &str) -> ! {
        panic!(
            "[{}] timed out after {TIMEOUT:?} {doing}\n{}",
            self.label,
            self.transcript()
        )
    }

    /// Read the next message; `None` on EOF.
    pub async fn recv(&mut self) -> Option<Message> {
        match timeout(TIMEOUT, self.read_msg()).await {
            Ok(m) => m,
            Err(_) => self.timed_out("waiting for a message"),
        }
    }

    /// Read the next raw line (CRLF stripped); `None` on EOF.
    pub async fn recv_line(&mut self) -> Option<String> {
        match timeout(TIMEOUT, self.read_line()).await {
            Ok(l) => l,
            Err(_) => self.timed_out("waiting for a line"),
        }
    }

    /// Read until a message matches; returns it. Panics on EOF or TIMEOUT.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let res = timeout(TIMEOUT, async {
            loop {
                match self.read_msg().await {
                    Some(m) if pred(&m) => return m,
                    Some(_) => {}
                    None => panic!(
                        "[{}] EOF while expecting {what}\n{}",
                        self.label,
                        self.transcript()
                    ),
                }
            }
        })
        .await;
        match res {
            Ok(m) => m,
            Err(_) => self.timed_out(&format!("expecting {what}")),
        }
    }

    /// Expect a message with this command (e.g. "001", "JOIN").
    pub async fn expect_cmd(&mut self, command: &str) -> Message {
        let command = command.to_ascii_uppercase();
        self.expect(&command, |m| m.command == command).await
    }

    /// Read until EOF; returns all messages read.
    pub async fn expect_eof(&mut self) -> Vec<Message> {
        let res = timeout(TIMEOUT, async {
            let mut seen = Vec::new();
            while let Some(m) = self.read_msg().await {
                seen.push(m);
            }
            seen
        })
        .await;
        match res {
            Ok(seen) => seen,
            Err(_) => self.timed_out("expecting EOF"),
        }
    }

    /// Send `PING <unique token>` and read until the matching PONG (whose
    /// last param is the token); returns every other message read.
    pub async fn sync(&mut self) -> Vec<Message> {
        let n = SYNC_COUNTER.fetch_add(1, Ordering::Relaxed);
        let token = format!("harness-sync-{n}");
        self.send(&format!("PING {token}")).await;
        let res = timeout(TIMEOUT, async {
            let mut seen = Vec::new();
            loop {
                match self.read_msg().await {
                    Some(m)
                        if m.command == "PONG"
                            && m.params.last().map(String::as_str) == Some(token.as_str()) =>
                    {
                        return seen;
                    }
                    Some(m) => seen.push(m),
                    None => panic!(
                        "[{}] EOF while waiting for PONG {token}\n{}",
                        self.label,
                        self.transcript()
                    ),
                }
            }
        })
        .await;
        match res {
            Ok(seen) => seen,
            Err(_) => self.timed_out(&format!("waiting for PONG {token}")),
        }
    }

    /// Like [`sync`](Self::sync), but panics if any message read before the
    /// PONG matches `pred`.
    pub async fn sync_expect_none(&mut self, what: &str, pred: impl Fn(&Message) -> bool) {
        let seen = self.sync().await;
        if let Some(bad) = seen.iter().find(|m| pred(m)) {
            panic!(
                "[{}] expected no {what}, but got: {bad}\n{}",
                self.label,
                self.transcript()
            );
        }
    }

    /// Everything sent (`->`) and received (`<-`) so far, most recent last.
    pub fn transcript(&self) -> String {
        let mut out = format!("--- transcript of {} ---\n", self.label);
        let skip = self.transcript.len().saturating_sub(TRANSCRIPT_TAIL);
        if skip > 0 {
            let _ = writeln!(out, "... ({skip} earlier lines)");
        }
        for line in &self.transcript[skip..] {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("--- end of transcript ---");
        out
    }
}

/// A scripted IRC client (downstream side of the bouncer).
pub struct TestClient {
    pub irc: IrcStream,
    pub nick: String,
}

impl Deref for TestClient {
    type Target = IrcStream;
    fn deref(&self) -> &IrcStream {
        &self.irc
    }
}

impl DerefMut for TestClient {
    fn deref_mut(&mut self) -> &mut IrcStream {
        &mut self.irc
    }
}

impl TestClient {
    /// Start a connection without registering.
    pub async fn connect(addr: SocketAddr) -> TestClient {
        TestClient::from_stream(IrcStream::connect_tcp(addr).await, "")
    }

    /// Start a connection over a unix socket without registering.
    pub async fn connect_unix(path: &Path) -> TestClient {
        TestClient::from_stream(IrcStream::connect_unix(path).await, "")
    }

    /// A client over an existing stream (e.g. TLS), not registered yet.
    pub fn from_irc(irc: IrcStream) -> TestClient {
        TestClient::from_stream(irc, "")
    }

    fn from_stream(mut irc: IrcStream, nick: &str) -> TestClient {
        let label = if nick.is_empty() {
            format!("client ({})", irc.label())
        } else {
            format!("client {nick} ({})", irc.label())
        };
        irc.set_label(label);
        TestClient {
            irc,
            nick: nick.to_string(),
        }
    }

    /// Connect and register with PASS (see [`TestClient::register_pass_on`]).
    pub async fn register_pass(
        addr: SocketAddr,
        username: &str,
        password: &str,
        nick: &str,
        caps: &[&str],
    ) -> TestClient {
        let irc = IrcStream::connect_tcp(addr).await;
        TestClient::register_pass_on(irc, username, password, nick, caps).await
    }

    /// Register over an existing stream with PASS: `CAP LS 302`, `PASS`,
    /// `NICK`, `USER`, `CAP REQ` (waits for ACK) if `caps` is non-empty,
    /// `CAP END`; waits for 001.
    pub async fn register_pass_on(
        irc: IrcStream,
        username: &str,
        password: &str,
        nick: &str,
        caps: &[&str],
    ) -> TestClient {
        let mut c = TestClient::from_stream(irc, nick);
        c.send("CAP LS 302").await;
        c.send_msg(&Message::new("PASS", [password])).await;
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {username} 0 * :{nick}")).await;
        if !caps.is_empty() {
            c.request_caps(caps).await;
        }
        c.send("CAP END").await;
        c.expect_welcome().await;
        c
    }

    /// Connect and register with SASL PLAIN (see
    /// [`TestClient::register_sasl_on`]).
    pub async fn register_sasl(
        addr: SocketAddr,
        username: &str,
        password: &str,
        nick: &str,
        caps: &[&str],
    ) -> TestClient {
        let irc = IrcStream::connect_tcp(addr).await;
        TestClient::register_sasl_on(irc, username, password, nick, caps).await
    }

    /// Register over an existing stream with SASL PLAIN: `CAP LS 302`,
    /// `NICK`, `USER`, `CAP REQ :sasl <caps>` (waits for ACK),
    /// `AUTHENTICATE PLAIN`, waits for `AUTHENTICATE +`, sends the payload,
    /// expects 903, `CAP END`, waits for 001.
    pub async fn register_sasl_on(
        irc: IrcStream,
        username: &str,
        password: &str,
        nick: &str,
        caps: &[&str],
    ) -> TestClient {
        let mut c = TestClient::from_stream(irc, nick);
        c.send("CAP LS 302").await;
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {username} 0 * :{nick}")).await;
        let mut all = vec!["sasl"];
        all.extend(caps.iter().copied().filter(|c| *c != "sasl"));
        c.request_caps(&all).await;
        c.send("AUTHENTICATE PLAIN").await;
        c.expect("AUTHENTICATE +", |m| {
            m.command == "AUTHENTICATE" && m.param(0) == Some("+")
        })
        .await;
        c.authenticate_plain("", username, password).await;
        let m = c
            .expect("SASL result (903)", |m| {
                matches!(m.command.as_str(), "902" | "903" | "904" | "905" | "906")
            })
            .await;
        if m.command != "903" {
            panic!("[{}] SASL failed: {m}\n{}", c.label(), c.transcript());
        }
        c.send("CAP END").await;
        c.expect_welcome().await;
        c
    }

    /// Send the PLAIN payload `authzid\0authcid\0password`, base64-encoded
    /// and split into 400-byte `AUTHENTICATE` chunks.
    pub async fn authenticate_plain(&mut self, authzid: &str, authcid: &str, password: &str) {
        let payload = format!("{authzid}\0{authcid}\0{password}");
        let encoded = BASE64_STANDARD.encode(payload.as_bytes());
        for chunk in encoded.as_bytes().chunks(400) {
            let chunk = std::str::from_utf8(chunk).expect("base64 is ASCII");
            self.send(&format!("AUTHENTICATE {chunk}")).await;
        }
        if encoded.len() % 400 == 0 {
            self.send("AUTHENTICATE +").await;
        }
    }

    /// `CAP REQ :<caps>`; waits for the ACK and panics on NAK.
    pub async fn request_caps(&mut self, caps: &[&str]) {
        let list = caps.join(" ");
        self.send(&format!("CAP REQ :{list}")).await;
        let m = self
            .expect("CAP ACK/NAK", |m| {
                m.command == "CAP" && matches!(m.param(1), Some("ACK" | "NAK"))
            })
            .await;
        if m.param(1) != Some("ACK") {
            panic!(
                "[{}] CAP REQ :{list} was refused: {m}\n{}",
                self.label(),
                self.transcript()
            );
        }
    }

    /// Wait for 001 (panics early on 464/465/ERROR); records the nick the
    /// server assigned.
    pub async fn expect_welcome(&mut self) -> Message {
        let m = self
            .expect("001", |m| {
                matches!(m.command.as_str(), "001" | "464" | "465" | "ERROR")
            })
            .await;
        if m.command != "001" {
            panic!(
                "[{}] registration failed: {m}\n{}",
                self.label(),
                self.transcript()
            );
        }
        if let Some(nick) = m.param(0) {
            self.nick = nick.to_string();
        }
        m
    }
}

/// Options of a [`FakeServer`].
#[derive(Clone, Debug)]
pub struct FakeServerOptions {
    /// Offered in `CAP LS`, e.g. `"server-time"`, `"sasl=PLAIN"`. Default:
    /// `message-tags` (which tether passes on to clients only while the
    /// network has it).
    pub caps: Vec<String>,
    /// RPL_ISUPPORT tokens.
    pub isupport: Vec<String>,
    pub server_name: String,
    /// Answer 464 (and ERROR, then close) when PASS differs from
    /// `expected_password`; also fail SASL (904) with a wrong password.
    pub reject_password: bool,
    pub expected_password: Option<String>,
    /// NICK with one of these gets 433.
    pub nicks_in_use: Vec<String>,
}

impl Default for FakeServerOptions {
    fn default() -> Self {
        FakeServerOptions {
            caps: vec!["message-tags".to_string()],
            isupport: [
                "CASEMAPPING=rfc1459",
                "CHANTYPES=#",
                "PREFIX=(ov)@+",
                "NETWORK=FakeNet",
            ]
            .map(String::from)
            .to_vec(),
            server_name: "irc.fake".to_string(),
            reject_password: false,
            expected_password: None,
            nicks_in_use: Vec::new(),
        }
    }
}

/// The fake upstream IRC server (the network the bouncer connects to).
pub struct FakeServer {
    pub addr: SocketAddr,
    pub opts: FakeServerOptions,
    listener: TcpListener,
    /// The same listening socket, for a non-blocking look at the backlog
    /// (see [`FakeServer::assert_no_pending_connection`]).
    probe: std::net::TcpListener,
}

impl FakeServer {
    /// Listen on 127.0.0.1 with an ephemeral port.
    pub async fn bind(opts: FakeServerOptions) -> FakeServer {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake server");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking fake server socket");
        let probe = std_listener
            .try_clone()
            .expect("cloning the fake server socket");
        let listener = TcpListener::from_std(std_listener).expect("registering the fake server");
        let addr = listener.local_addr().expect("fake server address");
        FakeServer {
            addr,
            opts,
            listener,
            probe,
        }
    }

    /// Panics if a connection from the bouncer is waiting to be accepted.
    /// This looks at the kernel's backlog directly (an `accept` that does
    /// not block), so it sees every connection that has been made; it
    /// proves that none was made when called after an event that would
    /// have followed such a connection.
    pub fn assert_no_pending_connection(&self, context: &str) {
        match self.probe.accept() {
            Ok((_, peer)) => panic!(
                "fake server {} ({}): unexpected connection from {peer}: {context}",
                self.opts.server_name, self.addr
            ),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("fake server {}: accept failed: {e}", self.addr),
        }
    }

    /// Accept the next connection without any registration handling.
    pub async fn accept_raw(&self) -> IrcStream {
        let (stream, _) = match timeout(TIMEOUT, self.listener.accept()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("fake server {}: accept failed: {e}", self.addr),
            Err(_) => panic!(
                "fake server {}: no connection from the bouncer within {TIMEOUT:?}",
                self.addr
            ),
        };
        let mut irc = IrcStream::from_tcp(stream);
        irc.set_label(format!(
            "fake server {} ({})",
            self.opts.server_name,
            irc.label()
        ));
        irc
    }

    /// Accept the next connection and run registration (CAP, SASL PLAIN,
    /// PASS, NICK, USER), then send the welcome burst (001-005, MOTD).
    /// With `reject_password` and a wrong PASS, sends 464 and ERROR, closes
    /// the write half and returns the connection with `rejected` set.
    pub async fn accept(&self) -> FakeConn {
        let irc = self.accept_raw().await;
        register_fake_conn(&self.opts, irc).await
    }
}

/// Run the [`FakeServer::accept`] registration with `opts` on a connection
/// accepted elsewhere (e.g. a TLS stream).
pub async fn register_fake_conn(opts: &FakeServerOptions, irc: IrcStream) -> FakeConn {
    let mut conn = FakeConn {
        irc,
        nick: String::new(),
        user: String::new(),
        realname: String::new(),
        pass: None,
        caps: Vec::new(),
        sasl: None,
        server_name: opts.server_name.clone(),
        rejected: false,
        pending_joins: VecDeque::new(),
    };
    let res = timeout(TIMEOUT, Registration::new(opts).run(&mut conn)).await;
    if res.is_err() {
        conn.irc.timed_out("during upstream registration");
    }
    conn
}

struct Registration<'a> {
    opts: &'a FakeServerOptions,
    nick: Option<String>,
    user: Option<String>,
    realname: Option<String>,
    cap_started: bool,
    cap_ended: bool,
    /// Base64 chunks of an AUTHENTICATE payload in progress.
    sasl_buf: Option<String>,
}

impl<'a> Registration<'a> {
    fn new(opts: &'a FakeServerOptions) -> Self {
        Registration {
            opts,
            nick: None,
            user: None,
            realname: None,
            cap_started: false,
            cap_ended: false,
            sasl_buf: None,
        }
    }

    fn target(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    fn offered(&self, name: &str) -> bool {
        self.opts
            .caps
            .iter()
            .any(|c| c.split('=').next() == Some(name))
    }

    async fn run(mut self, conn: &mut FakeConn) {
        let sn = self.opts.server_name.clone();
        loop {
            let Some(m) = conn.irc.read_msg().await else {
                panic!(
                    "[{}] EOF during upstream registration\n{}",
                    conn.irc.label(),
                    conn.irc.transcript()
                );
            };
            match m.command.as_str() {
                "CAP" => self.handle_cap(conn, &m).await,
                "AUTHENTICATE" => self.handle_authenticate(conn, &m).await,
                "PASS" => conn.pass = m.param(0).map(str::to_string),
                "NICK" => {
                    let Some(nick) = m.param(0) else { continue };
                    if self.opts.nicks_in_use.iter().any(|n| irc_eq(n, nick)) {
                        let t = self.target().to_string();
                        conn.send(&format!(":{sn} 433 {t} {nick} :Nickname is already in use"))
                            .await;
                    } else {
                        self.nick = Some(nick.to_string());
                    }
                }
                "USER" => {
                    self.user = m.param(0).map(str::to_string);
                    self.realname = m.param(3).map(str::to_string);
                }
                "PING" => {
                    let token = m.params.last().cloned().unwrap_or_default();
                    conn.send_msg(&Message::new("PONG", [sn.clone(), token]).with_source(&sn))
                        .await;
                }
                _ => {}
            }
            if let (Some(nick), Some(user)) = (&self.nick, &self.user)
                && (!self.cap_started || self.cap_ended)
                && self.sasl_buf.is_none()
            {
                conn.nick = nick.clone();
                conn.user = user.clone();
                conn.realname = self.realname.clone().unwrap_or_default();
                break;
            }
        }
        let nick = conn.nick.clone();
        if self.opts.reject_password && conn.pass != self.opts.expected_password {
            conn.rejected = true;
            conn.send(&format!(":{sn} 464 {nick} :Password incorrect"))
                .await;
            conn.send("ERROR :Closing link (Bad password)").await;
            conn.irc.shutdown_write().await;
            return;
        }
        conn.send(&format!(":{sn} 001 {nick} :Welcome")).await;
        conn.send(&format!(":{sn} 002 {nick} :Your host is {sn}"))
            .await;
        conn.send(&format!(":{sn} 003 {nick} :This server was created today"))
            .await;
        conn.send(&format!(
            ":{sn} 004 {nick} {sn} fakeircd-1 iowx biklmnopstv"
        ))
        .await;
        for chunk in self.opts.isupport.chunks(12) {
            conn.send(&format!(
                ":{sn} 005 {nick} {} :are supported by this server",
                chunk.join(" ")
            ))
            .await;
        }
        conn.send(&format!(":{sn} 375 {nick} :- {sn} Message of the day -"))
            .await;
        conn.send(&format!(":{sn} 372 {nick} :- Hello from the fake server"))
            .await;
        conn.send(&format!(":{sn} 376 {nick} :End of /MOTD command."))
            .await;
    }

    async fn handle_cap(&mut self, conn: &mut FakeConn, m: &Message) {
        let sn = self.opts.server_name.clone();
        let t = self.target().to_string();
        match m.param(0).map(str::to_ascii_uppercase).as_deref() {
            Some("LS") => {
                self.cap_started = true;
                let v302 = m
                    .param(1)
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|v| v >= 302);
                let caps: Vec<String> = if v302 {
                    self.opts.caps.clone()
                } else {
                    self.opts
                        .caps
                        .iter()
                        .map(|c| c.split('=').next().unwrap_or_default().to_string())
                        .collect()
                };
                // Split over several lines like a real server when long.
                let mut lines: Vec<String> = vec![String::new()];
                for cap in caps {
                    let cur = lines.last_mut().expect("non-empty");
                    if v302 && !cur.is_empty() && cur.len() + cap.len() > 350 {
                        lines.push(cap);
                    } else {
                        if !cur.is_empty() {
                            cur.push(' ');
                        }
                        cur.push_str(&cap);
                    }
                }
                let n = lines.len();
                for (i, line) in lines.into_iter().enumerate() {
                    let more = if i + 1 < n { "* " } else { "" };
                    conn.send(&format!(":{sn} CAP {t} LS {more}:{line}")).await;
                }
            }
            Some("REQ") => {
                self.cap_started = true;
                let list = m.params.last().map(String::as_str).unwrap_or_default();
                let ok = list
                    .split_whitespace()
                    .all(|c| self.offered(c.strip_prefix('-').unwrap_or(c)));
                if ok {
                    for c in list.split_whitespace() {
                        match c.strip_prefix('-') {
                            Some(off) => conn.caps.retain(|x| x != off),
                            None if !conn.caps.iter().any(|x| x == c) => {
                                conn.caps.push(c.to_string())
                            }
                            None => {}
                        }
                    }
                    conn.send(&format!(":{sn} CAP {t} ACK :{}", list.trim()))
                        .await;
                } else {
                    conn.send(&format!(":{sn} CAP {t} NAK :{}", list.trim()))
                        .await;
                }
            }
            Some("LIST") => {
                let list = conn.caps.join(" ");
                conn.send(&format!(":{sn} CAP {t} LIST :{list}")).await;
            }
            Some("END") => self.cap_ended = true,
            _ => {}
        }
    }

    async fn handle_authenticate(&mut self, conn: &mut FakeConn, m: &Message) {
        let sn = self.opts.server_name.clone();
        let t = self.target().to_string();
        let arg = m.param(0).unwrap_or_default();
        let Some(buf) = self.sasl_buf.as_mut() else {
            if arg.eq_ignore_ascii_case("PLAIN") && conn.caps.iter().any(|c| c == "sasl") {
                self.sasl_buf = Some(String::new());
                conn.send("AUTHENTICATE +").await;
            } else {
                conn.send(&format!(
                    ":{sn} 908 {t} PLAIN :are available SASL mechanisms"
                ))
                .await;
                conn.send(&format!(":{sn} 904 {t} :SASL authentication failed"))
                    .await;
            }
            return;
        };
        if arg == "*" {
            self.sasl_buf = None;
            conn.send(&format!(":{sn} 906 {t} :SASL authentication aborted"))
                .await;
            return;
        }
        if arg != "+" {
            buf.push_str(arg);
        }
        if arg.len() == 400 {
            return; // more chunks follow
        }
        let encoded = self.sasl_buf.take().unwrap_or_default();
        let decoded = BASE64_STANDARD
            .decode(encoded.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let parts: Option<Vec<String>> = decoded
            .map(|d| d.split('\0').map(str::to_string).collect())
            .filter(|p: &Vec<String>| p.len() == 3);
        let Some(parts) = parts else {
            conn.send(&format!(":{sn} 904 {t} :SASL authentication failed"))
                .await;
            return;
        };
        let (authcid, password) = (parts[1].clone(), parts[2].clone());
        conn.sasl = Some((authcid.clone(), password.clone()));
        if self.opts.reject_password && Some(&password) != self.opts.expected_password.as_ref() {
            conn.send(&format!(":{sn} 904 {t} :SASL authentication failed"))
                .await;
            return;
        }
        conn.send(&format!(
            ":{sn} 900 {t} {t}!u@h {authcid} :You are now logged in as {authcid}"
        ))
        .await;
        conn.send(&format!(":{sn} 903 {t} :SASL authentication successful"))
            .await;
    }
}

/// One connection from the bouncer to the [`FakeServer`].
pub struct FakeConn {
    pub irc: IrcStream,
    /// The nick registered with (update it if the test changes it).
    pub nick: String,
    /// The USER username.
    pub user: String,
    /// The USER realname.
    pub realname: String,
    pub pass: Option<String>,
    /// Capabilities acknowledged.
    pub caps: Vec<String>,
    /// Decoded SASL PLAIN credentials (authcid, password).
    pub sasl: Option<(String, String)>,
    pub server_name: String,
    /// Registration was refused with 464 (the write half is closed).
    pub rejected: bool,
    /// Channels of multi-channel JOINs not yet answered.
    pending_joins: VecDeque<(String, Message)>,
}

impl Deref for FakeConn {
    type Target = IrcStream;
    fn deref(&self) -> &IrcStream {
        &self.irc
    }
}

impl DerefMut for FakeConn {
    fn deref_mut(&mut self) -> &mut IrcStream {
        &mut self.irc
    }
}

impl FakeConn {
    /// The bouncer's hostmask as this server shows it.
    pub fn hostmask(&self) -> String {
        format!("{}!u@h", self.nick)
    }

    /// Expect a JOIN for `channel` and answer it: JOIN echo, 332 (if a
    /// topic is given), 353 (members plus `@<own nick>`), 366. Returns the
    /// JOIN received; a multi-channel JOIN is returned as the single-channel
    /// JOIN (with its key, if any) for `channel`, and its other channels are
    /// kept for later `expect_join` calls.
    pub async fn expect_join(
        &mut self,
        channel: &str,
        topic: Option<&str>,
        members: &[&str],
    ) -> Message {
        let join = match self
            .pending_joins
            .iter()
            .position(|(c, _)| irc_eq(c, channel))
        {
            Some(i) => self.pending_joins.remove(i).expect("index valid").1,
            None => loop {
                let m = self
                    .expect(&format!("JOIN {channel}"), |m| m.command == "JOIN")
                    .await;
                let chans: Vec<&str> = m.param(0).unwrap_or_default().split(',').collect();
                if chans.len() == 1 && irc_eq(chans[0], channel) {
                    break m;
                }
                let keys: Vec<&str> = m
                    .param(1)
                    .map(|k| k.split(',').collect())
                    .unwrap_or_default();
                let mut found = None;
                for (i, c) in chans.iter().enumerate() {
                    let mut params = vec![c.to_string()];
                    if let Some(k) = keys.get(i).filter(|k| !k.is_empty()) {
                        params.push(k.to_string());
                    }
                    let single = Message {
                        tags: m.tags.clone(),
                        source: m.source.clone(),
                        command: "JOIN".to_string(),
                        params,
                    };
                    if found.is_none() && irc_eq(c, channel) {
                        found = Some(single);
                    } else {
                        self.pending_joins.push_back((c.to_string(), single));
                    }
                }
                if let Some(single) = found {
                    break single;
                }
            },
        };
        let sn = self.server_name.clone();
        let nick = self.nick.clone();
        let mask = self.hostmask();
        self.send(&format!(":{mask} JOIN {channel}")).await;
        if let Some(topic) = topic {
            self.send(&format!(":{sn} 332 {nick} {channel} :{topic}"))
                .await;
        }
        let mut names = Vec::with_capacity(members.len() + 1);
        let own_listed = members
            .iter()
            .any(|m| irc_eq(m.trim_start_matches(['@', '+']), &nick));
        if !own_listed {
            names.push(format!("@{nick}"));
        }
        names.extend(members.iter().map(|m| m.to_string()));
        self.send(&format!(
            ":{sn} 353 {nick} = {channel} :{}",
            names.join(" ")
        ))
        .await;
        self.send(&format!(":{sn} 366 {nick} {channel} :End of /NAMES list."))
            .await;
        join
    }

    /// Expect a `CAP REQ` after registration (e.g. after `CAP NEW`) and
    /// acknowledge it whole; returns the requested capabilities.
    pub async fn ack_cap_req(&mut self) -> Vec<String> {
        let req = self
            .expect("CAP REQ", |m| {
                m.command == "CAP" && m.param(0).is_some_and(|s| s.eq_ignore_ascii_case("REQ"))
            })
            .await;
        let list = req.params.last().cloned().unwrap_or_default();
        let requested: Vec<String> = list.split_whitespace().map(str::to_string).collect();
        for c in &requested {
            match c.strip_prefix('-') {
                Some(off) => self.caps.retain(|x| x != off),
                None if !self.caps.contains(c) => self.caps.push(c.clone()),
                None => {}
            }
        }
        let (sn, nick) = (self.server_name.clone(), self.nick.clone());
        self.send(&format!(":{sn} CAP {nick} ACK :{}", list.trim()))
            .await;
        requested
    }

    /// Drop the connection abruptly (no QUIT/ERROR).
    pub fn kill(self) {
        drop(self);
    }
}

/// RFC 1459 case-insensitive comparison.
pub fn irc_eq(a: &str, b: &str) -> bool {
    fn fold(c: u8) -> u8 {
        match c {
            b'[' => b'{',
            b']' => b'}',
            b'\\' => b'|',
            b'~' => b'^',
            c => c.to_ascii_lowercase(),
        }
    }
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}
