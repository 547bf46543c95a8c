//! Helpers for the bouncer integration tests.
//!
//! - [`Tether`]: an in-process [`tether::server::Server`] started from a
//!   config file written into a temp dir, with shortcuts to drive it through
//!   its admin socket (`BOUNCERSERV :<command line>`) and to connect clients.
//! - [`Setup`]: the common scenario of a running bouncer, one user `alice`
//!   and one network `fake` connected to a [`FakeServer`].
//! - [`TetherProcess`]: the `tether` binary run as a child process, with its
//!   stderr read line by line by a thread (never by sleeping and polling).
//! - [`service_command`] / [`expect_service_line`]: talk to BouncerServ as an
//!   IRC client; [`is_service_notice`] recognises its notices.
//! - [`batch`]: commands answered with a batch, such as `CHATHISTORY`
//!   ([`batch_reply`], [`send_until_batch_end`]).
//! - [`temp_dir`] and [`config_dir`]: where a test's bouncer keeps its files.
//!
//! Every wait is bounded by [`TIMEOUT`].

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;
use tether::config::Config;
use tether::proto::Message;
use tether::server::Server;
use tether::service::words::quote_word;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

use crate::harness::*;

pub mod batch;
pub mod http_endpoint;
pub use batch::*;
pub mod tls;
pub use tls::*;

/// Password given to every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// Source of BouncerServ's messages.
pub const SERVICE_SOURCE: &str = "BouncerServ!BouncerServ@BouncerServ";

/// The config text used by the in-process tests for a given temp dir.
pub fn config_text(dir: &Path) -> String {
    format!(
        "listen irc+insecure://127.0.0.1:0\n\
         listen unix+admin://{dir}/admin.sock\n\
         db sqlite3 {dir}/tether.db\n\
         hostname tether.test\n",
        dir = dir.display()
    )
}

/// A fresh temp dir named `<prefix>...`.
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a temp dir")
}

/// A fresh temp dir named `<prefix>...` holding `tether.conf` with
/// [`config_text`], for a [`TetherProcess`] or `tetherctl`; returns the dir
/// and the config file's path.
pub fn config_dir(prefix: &str) -> (TempDir, PathBuf) {
    let dir = temp_dir(prefix);
    let config = dir.path().join("tether.conf");
    std::fs::write(&config, config_text(dir.path())).expect("writing config");
    (dir, config)
}

/// An in-process bouncer running from a temp dir (config, DB, admin socket).
pub struct Tether {
    /// `None` only transiently, while shutting down.
    server: Option<Server>,
    /// The temp dir; kept alive as long as the bouncer (and by `restart`).
    pub dir: TempDir,
    /// The plaintext IRC listener.
    pub addr: SocketAddr,
    /// The admin socket.
    pub admin_path: PathBuf,
    /// The password of `admin` printed on the first start, if any.
    pub first_run_password: Option<String>,
}

impl Tether {
    /// Start a bouncer in a fresh temp dir.
    pub async fn start() -> Tether {
        Tether::start_in(temp_dir("tether-it-")).await
    }

    /// Start a bouncer using (and writing) the config in `dir`; an existing
    /// DB there is reused.
    pub async fn start_in(dir: TempDir) -> Tether {
        Tether::start_with(dir, "").await
    }

    /// Like [`start_in`](Self::start_in), with `extra` appended to the
    /// config text (e.g. `tls` and `listen ircs://` directives).
    pub async fn start_with(dir: TempDir, extra: &str) -> Tether {
        Tether::start_adjusted(dir, extra, |_| {}).await
    }

    /// Like [`start_with`](Self::start_with), then `adjust` changes the
    /// parsed configuration (for settings that are not file directives).
    pub async fn start_adjusted(
        dir: TempDir,
        extra: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Tether {
        let text = config_text(dir.path()) + extra;
        std::fs::write(dir.path().join("tether.conf"), &text).expect("writing the config");
        let mut config = match Config::parse_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("test config rejected:\n{e}\n--- config ---\n{text}"),
        };
        adjust(&mut config);
        let server = match timeout(TIMEOUT, Server::start(config)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => panic!("Server::start failed: {e}"),
            Err(_) => panic!("Server::start did not return within {TIMEOUT:?}"),
        };
        let addr = server
            .irc_addr()
            .expect("Server::irc_addr() is None although an irc+insecure listener is configured");
        assert_ne!(
            addr.port(),
            0,
            "Server::irc_addr() must report the bound port"
        );
        let admin_path = server
            .admin_path()
            .expect("Server::admin_path() is None although a unix+admin listener is configured");
        assert_eq!(
            admin_path,
            dir.path().join("admin.sock"),
            "Server::admin_path() should be the configured socket path"
        );
        let first_run_password = server.first_run_password().map(str::to_string);
        Tether {
            server: Some(server),
            dir,
            addr,
            admin_path,
            first_run_password,
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    pub fn server_mut(&mut self) -> &mut Server {
        self.server.as_mut().expect("server running")
    }

    /// Graceful shutdown, bounded by [`TIMEOUT`]; returns the temp dir so
    /// that the same config and DB can be started again.
    pub async fn shutdown(mut self) -> TempDir {
        let server = self.server.take().expect("server running");
        if timeout(TIMEOUT, server.shutdown()).await.is_err() {
            panic!("Server::shutdown did not return within {TIMEOUT:?}");
        }
        self.dir
    }

    /// Run one BouncerServ command line on the admin socket. `Ok` holds the
    /// `PRIVMSG * :<line>` texts when the command ended with `BOUNCERSERV
    /// OK`, `Err` the error text of `FAIL BOUNCERSERV :<error>`.
    pub async fn admin(&self, command_line: &str) -> Result<Vec<String>, String> {
        admin_command(&self.admin_path, command_line).await
    }

    /// Like [`admin`](Self::admin) with an argument vector, each word quoted
    /// with `quote_word` (what tetherctl does).
    pub async fn admin_words(&self, words: &[&str]) -> Result<Vec<String>, String> {
        let line: Vec<String> = words.iter().map(|w| quote_word(w)).collect();
        self.admin(&line.join(" ")).await
    }

    /// [`admin`](Self::admin), panicking on FAIL.
    pub async fn admin_ok(&self, command_line: &str) -> Vec<String> {
        match self.admin(command_line).await {
            Ok(lines) => lines,
            Err(e) => panic!("admin socket: {command_line:?} failed: {e}"),
        }
    }

    /// Create a (non-admin) user with [`PASSWORD`].
    pub async fn create_user(&self, name: &str) {
        let lines = self
            .admin_words(&["user", "create", "-username", name, "-password", PASSWORD])
            .await
            .unwrap_or_else(|e| panic!("creating user {name:?}: {e}"));
        let want = format!("created user \"{name}\"");
        assert!(
            lines.iter().any(|l| l == &want),
            "creating user {name:?}: expected {want:?}, got {lines:?}"
        );
    }

    /// `user run <user> network create -addr irc+insecure://<fake> -name
    /// <name> <extra...>` while the fake server accepts the connection the
    /// bouncer opens; returns it once the bouncer has processed the whole
    /// welcome burst (synced).
    pub async fn create_network_with(
        &self,
        user: &str,
        name: &str,
        fake: &FakeServer,
        extra: &[&str],
    ) -> FakeConn {
        let mut conn = self.create_network_unsynced(user, name, fake, extra).await;
        conn.sync().await;
        conn
    }

    /// `network create -addr <uri> -name <name> <extra...>` for `user`,
    /// without waiting for any connection: the admin reply lines.
    pub async fn create_network_at(
        &self,
        user: &str,
        name: &str,
        uri: &str,
        extra: &[&str],
    ) -> Result<Vec<String>, String> {
        let mut words = vec![
            "user", "run", user, "network", "create", "-addr", uri, "-name", name,
        ];
        words.extend_from_slice(extra);
        self.admin_words(&words).await
    }

    /// [`create_network_with`](Self::create_network_with) without the
    /// final sync: returns as soon as the fake server has sent its welcome
    /// burst, so that everything the bouncer sends after registration is
    /// still to be read from the connection.
    pub async fn create_network_unsynced(
        &self,
        user: &str,
        name: &str,
        fake: &FakeServer,
        extra: &[&str],
    ) -> FakeConn {
        let uri = format!("irc+insecure://{}", fake.addr);
        let mut words = vec![
            "user", "run", user, "network", "create", "-addr", &uri, "-name", name,
        ];
        words.extend_from_slice(extra);
        let create = async {
            let lines = self
                .admin_words(&words)
                .await
                .unwrap_or_else(|e| panic!("creating network {name:?} for {user:?}: {e}"));
            let want = format!("created network \"{name}\"");
            assert!(
                lines.iter().any(|l| l == &want),
                "creating network {name:?}: expected {want:?}, got {lines:?}"
            );
        };
        let ((), conn) = tokio::join!(create, fake.accept());
        conn
    }

    /// [`create_network_with`](Self::create_network_with) without extra
    /// flags.
    pub async fn create_network(&self, user: &str, name: &str, fake: &FakeServer) -> FakeConn {
        self.create_network_with(user, name, fake, &[]).await
    }

    /// Register a client with PASS as `user[/network][@client]`.
    pub async fn connect_client(
        &self,
        user: &str,
        network: Option<&str>,
        client: Option<&str>,
        nick: &str,
        caps: &[&str],
    ) -> TestClient {
        let login = login_name(user, network, client);
        TestClient::register_pass(self.addr, &login, PASSWORD, nick, caps).await
    }

    /// `network status` lines of `user`, through the admin socket.
    pub async fn network_status(&self, user: &str) -> Vec<String> {
        self.admin_words(&["user", "run", user, "network", "status"])
            .await
            .unwrap_or_else(|e| panic!("network status of {user:?}: {e}"))
    }
}

/// `user/network@client` as used in USER and SASL.
pub fn login_name(user: &str, network: Option<&str>, client: Option<&str>) -> String {
    let mut s = user.to_string();
    if let Some(n) = network {
        s.push('/');
        s.push_str(n);
    }
    if let Some(c) = client {
        s.push('@');
        s.push_str(c);
    }
    s
}

/// Run one command line on an admin socket (see [`Tether::admin`]).
pub async fn admin_command(path: &Path, command_line: &str) -> Result<Vec<String>, String> {
    let mut irc = IrcStream::connect_unix(path).await;
    irc.set_label(format!("admin socket {}", path.display()));
    irc.send_msg(&Message::new("BOUNCERSERV", [command_line]))
        .await;
    let mut lines = Vec::new();
    loop {
        let Some(m) = irc.recv().await else {
            panic!(
                "[{}] EOF before BOUNCERSERV OK / FAIL for {command_line:?}\n{}",
                irc.label(),
                irc.transcript()
            );
        };
        match m.command.as_str() {
            "PRIVMSG" => lines.push(m.params.last().cloned().unwrap_or_default()),
            "BOUNCERSERV" if m.param(0) == Some("OK") => return Ok(lines),
            "FAIL" if m.param(0) == Some("BOUNCERSERV") => {
                return Err(m.params.last().cloned().unwrap_or_default());
            }
            _ => panic!(
                "[{}] unexpected reply to {command_line:?}: {m}\n{}",
                irc.label(),
                irc.transcript()
            ),
        }
    }
}

/// The common scenario: a bouncer, user `alice` (password [`PASSWORD`]),
/// and her network `fake` connected to a [`FakeServer`].
pub struct Setup {
    pub tether: Tether,
    pub fake: FakeServer,
    pub conn: FakeConn,
}

impl Setup {
    pub async fn new() -> Setup {
        Setup::with_options(FakeServerOptions::default()).await
    }

    /// [`Setup::with_options`] without syncing the upstream connection:
    /// what the bouncer sends right after registration (MONITOR, AWAY) is
    /// still to be read.
    pub async fn with_options_unsynced(opts: FakeServerOptions) -> Setup {
        let tether = Tether::start().await;
        tether.create_user("alice").await;
        let fake = FakeServer::bind(opts).await;
        let conn = tether
            .create_network_unsynced("alice", "fake", &fake, &[])
            .await;
        Setup { tether, fake, conn }
    }

    pub async fn with_options(opts: FakeServerOptions) -> Setup {
        let tether = Tether::start().await;
        tether.create_user("alice").await;
        let fake = FakeServer::bind(opts).await;
        let conn = tether.create_network("alice", "fake", &fake).await;
        Setup { tether, fake, conn }
    }

    /// [`Setup::new`] with `extra` appended to the config text (e.g.
    /// `message-store memory`).
    pub async fn with_config(extra: &str) -> Setup {
        let tether = Tether::start_with(temp_dir("tether-it-"), extra).await;
        tether.create_user("alice").await;
        let fake = FakeServer::bind(FakeServerOptions::default()).await;
        let conn = tether.create_network("alice", "fake", &fake).await;
        Setup { tether, fake, conn }
    }

    /// Restart the bouncer on the same dir (config and DB), with `extra`
    /// appended to the config text, and wait until it is registered on the
    /// fake server again. The rings start empty, so history comes from the
    /// store.
    pub async fn restart_with(self, extra: &str) -> Setup {
        let Setup { tether, fake, conn } = self;
        // Keep the upstream open until tether has quit, or it would reconnect.
        let dir = tether.shutdown().await;
        drop(conn);
        let tether = Tether::start_with(dir, extra).await;
        let mut conn = fake.accept().await;
        conn.sync().await;
        Setup { tether, fake, conn }
    }

    /// A client of alice bound to network `fake` with client name `client`.
    pub async fn client(&self, client: &str, caps: &[&str]) -> TestClient {
        let mut c = self
            .tether
            .connect_client("alice", Some("fake"), Some(client), client, caps)
            .await;
        c.set_label(format!("client alice/fake@{client}"));
        c
    }

    /// A client JOINs `channel`; the fake server answers (with `topic` and
    /// `members`), and the client sees its JOIN and the end of NAMES.
    pub async fn join(
        &mut self,
        client: &mut TestClient,
        channel: &str,
        topic: Option<&str>,
        members: &[&str],
    ) -> Message {
        client.send(&format!("JOIN {channel}")).await;
        let join = self.conn.expect_join(channel, topic, members).await;
        expect_own_join(client, &self.conn.nick, channel).await;
        join
    }
}

/// Wait for the client's own JOIN of `channel` (source nick `nick`), then
/// the end of NAMES.
pub async fn expect_own_join(client: &mut TestClient, nick: &str, channel: &str) {
    let what = format!("JOIN {channel} by {nick}");
    client
        .expect(&what, |m| {
            m.command == "JOIN"
                && m.source_nick().is_some_and(|n| irc_eq(n, nick))
                && m.param(0).is_some_and(|c| irc_eq(c, channel))
        })
        .await;
    client
        .expect(&format!("366 for {channel}"), |m| {
            m.command == "366" && m.param(1).is_some_and(|c| irc_eq(c, channel))
        })
        .await;
}

/// True for a PRIVMSG to `target` with exactly `text`.
pub fn is_privmsg(m: &Message, target: &str, text: &str) -> bool {
    m.command == "PRIVMSG"
        && m.param(0).is_some_and(|t| irc_eq(t, target))
        && m.param(1) == Some(text)
}

/// True for a message from BouncerServ.
pub fn is_from_service(m: &Message) -> bool {
    m.command == "PRIVMSG"
        && (m.source.as_deref() == Some(SERVICE_SOURCE)
            || m.source_nick().is_some_and(|n| irc_eq(n, "BouncerServ")))
}

/// True for a NOTICE from BouncerServ whose text contains `text`.
pub fn is_service_notice(m: &Message, text: &str) -> bool {
    m.command == "NOTICE"
        && (m.source.as_deref() == Some(SERVICE_SOURCE)
            || m.source_nick().is_some_and(|n| irc_eq(n, "BouncerServ")))
        && m.params.last().is_some_and(|t| t.contains(text))
}

/// Send a command to BouncerServ as an IRC client.
pub async fn service_command(client: &mut TestClient, command_line: &str) {
    client
        .send_msg(&Message::new("PRIVMSG", ["BouncerServ", command_line]))
        .await;
}

/// Read until BouncerServ sends a line matching `pred`; returns its text.
/// Also checks the reply is addressed to the client's nick and comes from
/// `BouncerServ!BouncerServ@BouncerServ`.
pub async fn expect_service_line(
    client: &mut TestClient,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let m = client
        .expect(&format!("BouncerServ reply: {what}"), |m| {
            is_from_service(m) && m.param(1).is_some_and(&pred)
        })
        .await;
    assert_eq!(
        m.source.as_deref(),
        Some(SERVICE_SOURCE),
        "BouncerServ reply with a wrong source: {m}"
    );
    assert!(
        m.param(0).is_some_and(|t| irc_eq(t, &client.nick)),
        "BouncerServ reply not addressed to {}: {m}",
        client.nick
    );
    m.params[1].clone()
}

/// Read messages with [`IrcStream::recv`] until one matches `pred`
/// (included); returns all of them. Panics on EOF; the whole read is
/// bounded by [`TIMEOUT`].
pub async fn collect_until(
    irc: &mut IrcStream,
    what: &str,
    pred: impl Fn(&Message) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let m = match timeout_at(deadline, irc.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => panic!(
                "[{}] EOF while collecting messages until {what}\n{}",
                irc.label(),
                irc.transcript()
            ),
            Err(_) => panic!(
                "[{}] timed out after {TIMEOUT:?} collecting messages until {what}\n{}",
                irc.label(),
                irc.transcript()
            ),
        };
        let done = pred(&m);
        seen.push(m);
        if done {
            return seen;
        }
    }
}

/// Read the fake upstream connection until the bouncer sends QUIT or
/// closes the connection; returns the QUIT if there was one.
pub async fn expect_quit_or_close(conn: &mut FakeConn) -> Option<Message> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match timeout_at(deadline, conn.recv()).await {
            Ok(Some(m)) if m.command == "QUIT" => return Some(m),
            Ok(Some(m)) if m.command == "PING" => {
                let token = m.params.last().cloned().unwrap_or_default();
                let sn = conn.server_name.clone();
                conn.send_msg(&Message::new("PONG", [sn.clone(), token]).with_source(&sn))
                    .await;
            }
            Ok(Some(_)) => {}
            Ok(None) => return None,
            Err(_) => panic!(
                "[{}] neither QUIT nor EOF within {TIMEOUT:?}\n{}",
                conn.label(),
                conn.transcript()
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// The tether binary as a child process.
// ---------------------------------------------------------------------------

/// The `tether` daemon run as a child process; killed on drop. Its stderr
/// is read line by line by a thread and forwarded over a channel.
pub struct TetherProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stderr line read so far (for failure messages).
    pub log: Vec<String>,
    stderr_eof: bool,
}

impl TetherProcess {
    /// `tether --config <config>` with cwd `cwd`, info-level logging and no
    /// colours.
    pub fn spawn(config: &Path, cwd: &Path) -> TetherProcess {
        TetherProcess::spawn_with(config, cwd, |_| {})
    }

    /// Like [`spawn`](Self::spawn), with `configure` changing the command
    /// first (environment, `pre_exec`).
    pub fn spawn_with(
        config: &Path,
        cwd: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> TetherProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
        command.arg("--config").arg(config);
        configure(&mut command);
        TetherProcess::start(command, cwd)
    }

    /// Run `command` (the tether binary, or a wrapper that execs it) with
    /// cwd `cwd`, info-level logging, no colours and stderr captured.
    pub fn start(mut command: Command, cwd: &Path) -> TetherProcess {
        let mut child = command
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the tether binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = strip_ansi(line.trim_end_matches(['\r', '\n']));
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        TetherProcess {
            child,
            lines: rx,
            log: Vec::new(),
            stderr_eof: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_dump(&self) -> String {
        format!(
            "--- tether stderr ({} lines) ---\n{}\n--- end of stderr ---",
            self.log.len(),
            self.log.join("\n")
        )
    }

    /// Read stderr lines until one matches `pred`; returns it. Panics on
    /// EOF (the daemon exited) or after [`TIMEOUT`].
    pub async fn wait_for_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Ok(None) => {
                    self.stderr_eof = true;
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "tether exited (status {status:?}) while waiting for {what}\n{}",
                        self.log_dump()
                    );
                }
                Err(_) => panic!(
                    "no stderr line with {what} from tether within {TIMEOUT:?}\n{}",
                    self.log_dump()
                ),
            }
        }
    }

    /// Wait until the log has shown every listener line in `schemes` (e.g.
    /// `["irc+insecure", "unix+admin"]`) and, with `want_password`, the
    /// first-run password. Returns the address text after `listening on
    /// <scheme>://` for each scheme, and the password.
    pub async fn wait_startup(
        &mut self,
        schemes: &[&str],
        want_password: bool,
    ) -> (Vec<String>, Option<String>) {
        let mut addrs: Vec<Option<String>> = vec![None; schemes.len()];
        let mut password = None;
        // Lines already read count too.
        let check = |line: &str, addrs: &mut Vec<Option<String>>, pw: &mut Option<String>| {
            for (i, scheme) in schemes.iter().enumerate() {
                if addrs[i].is_none()
                    && let Some(v) = token_after(line, &format!("listening on {scheme}://"))
                {
                    addrs[i] = Some(v);
                }
            }
            if pw.is_none()
                && let Some(v) = token_after(line, "password: ")
            {
                *pw = Some(v);
            }
        };
        for line in self.log.clone() {
            check(&line, &mut addrs, &mut password);
        }
        while addrs.iter().any(Option::is_none) || (want_password && password.is_none()) {
            let missing: Vec<String> = schemes
                .iter()
                .zip(&addrs)
                .filter(|(_, a)| a.is_none())
                .map(|(s, _)| format!("\"listening on {s}://\""))
                .chain((want_password && password.is_none()).then(|| "\"password: \"".into()))
                .collect();
            let line = self.wait_for_line(&missing.join(" and "), |_| true).await;
            check(&line, &mut addrs, &mut password);
        }
        (addrs.into_iter().map(Option::unwrap).collect(), password)
    }

    /// Send a signal with `kill -<sig> <pid>`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(
            status.success(),
            "kill -{sig} {} failed: {status}",
            self.pid()
        );
    }

    /// SIGTERM, then wait for the process to exit (stderr EOF, bounded by
    /// [`TIMEOUT`]); returns its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit().await
    }

    /// Wait for the process to exit (stderr EOF, bounded by [`TIMEOUT`]);
    /// returns its exit status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        while !self.stderr_eof {
            match timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.log.push(line),
                Ok(None) => self.stderr_eof = true,
                Err(_) => panic!(
                    "tether did not exit within {TIMEOUT:?}\n{}",
                    self.log_dump()
                ),
            }
        }
        // stderr is closed: the process has exited or is about to.
        self.child.wait().expect("waiting for tether")
    }
}

impl Drop for TetherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The word following `prefix` in `line` (an opening quote skipped; up to
/// whitespace, a quote, a comma or the end), if `prefix` occurs and the word
/// is non-empty.
pub fn token_after(line: &str, prefix: &str) -> Option<String> {
    let start = line.find(prefix)? + prefix.len();
    let rest = line[start..].trim_start_matches(['"', '\'', '`']);
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '`'))
        .unwrap_or(rest.len());
    let word = &rest[..end];
    (!word.is_empty()).then(|| word.to_string())
}

/// Remove ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Output of a finished `tetherctl` run.
#[derive(Debug)]
pub struct CtlOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `tetherctl --config <config> <words...>`; panics if it does not exit
/// within [`TIMEOUT`] (the child is then killed).
pub async fn tetherctl(config: &Path, words: &[&str]) -> CtlOutput {
    let child = Command::new(env!("CARGO_BIN_EXE_tetherctl"))
        .arg("--config")
        .arg(config)
        .args(words)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning tetherctl");
    let pid = child.id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A plain thread (not spawn_blocking) so that a hung tetherctl cannot
    // keep the test runtime from shutting down.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match timeout(TIMEOUT, rx).await {
        Ok(Ok(Ok(out))) => CtlOutput {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Ok(Err(e))) => panic!("waiting for tetherctl {words:?}: {e}"),
        Ok(Err(_)) => panic!("tetherctl {words:?}: waiter thread vanished"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("tetherctl {words:?} did not exit within {TIMEOUT:?}")
        }
    }
}

static MARKER_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Everything the bouncer sent upstream in answer to the client's earlier
/// commands: the client sends a command the bouncer relays as it is
/// (`TIME <unique token>`), and the upstream connection is read up to it.
/// Lines queued upstream keep their order, so whatever the client's
/// earlier commands made the bouncer send comes before the marker.
pub async fn upstream_until_marker(client: &mut TestClient, conn: &mut FakeConn) -> Vec<Message> {
    let n = MARKER_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = format!("tether-marker-{n}");
    client.send(&format!("TIME {token}")).await;
    let mut seen = collect_until(conn, &format!("TIME {token}"), |m| {
        m.command == "TIME" && m.param(0) == Some(token.as_str())
    })
    .await;
    seen.pop();
    seen
}
