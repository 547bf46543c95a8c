//! The bench rig: tether started in-process from configuration text in a
//! scratch directory, a minimal fake IRC upstream the bench can inject
//! lines into, plain TCP IRC clients, and the admin socket.
//!
//! Everything here is deliberately small and self-contained: it speaks
//! just enough IRC for the scenarios in `main.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use tether::config::Config;
use tether::proto::Message;
use tether::server::Server;

/// Password of the bench user `alice`.
pub const PASSWORD: &str = "bench-password";

/// Upper bound on any single wait; a scenario that stalls this long fails.
pub const WAIT: Duration = Duration::from_secs(300);

/// Server name of the fake upstream.
const UPSTREAM_NAME: &str = "upstream.bench";

/// A scratch directory under the system temp dir, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new() -> Result<ScratchDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("tether-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn db_path(&self) -> PathBuf {
        self.0.join("tether.db")
    }

    /// Size of the database file plus its WAL, in bytes.
    pub fn db_size(&self) -> u64 {
        ["tether.db", "tether.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.0.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration text of a bench bouncer in `dir`, plus `extra`
/// directives. Connection attempts are not spaced: every bench network is
/// on the bench's own ircd at 127.0.0.1, and thousands of them would
/// otherwise take one `upstream-connect-spacing` each to connect.
pub fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        "listen irc+insecure://127.0.0.1:0\n\
         listen unix+admin://{dir}/admin.sock\n\
         db sqlite3 {dir}/tether.db\n\
         hostname bench\n\
         upstream-connect-spacing 0\n\
         {extra}",
        dir = dir.display()
    )
}

/// An in-process bouncer.
pub struct Tether {
    server: Server,
    /// The plain-text IRC listener.
    pub addr: SocketAddr,
    admin: PathBuf,
}

impl Tether {
    pub async fn start(text: &str) -> Result<Tether> {
        let config = Config::parse_str(text).map_err(|e| anyhow!("bench config:\n{e}"))?;
        let server = Server::start(config).await?;
        let addr = server.irc_addr().context("no IRC listener bound")?;
        let admin = server.admin_path().context("no admin socket bound")?;
        Ok(Tether {
            server,
            addr,
            admin,
        })
    }

    /// Run one BouncerServ command line on the admin socket.
    pub async fn admin(&self, line: &str) -> Result<Vec<String>> {
        let stream = UnixStream::connect(&self.admin).await?;
        let (read, mut write) = stream.into_split();
        let request = Message::new("BOUNCERSERV", [line]);
        write.write_all(format!("{request}\r\n").as_bytes()).await?;
        let mut lines = BufReader::new(read).lines();
        let mut out = Vec::new();
        loop {
            let Some(reply) = timeout(WAIT, lines.next_line()).await?? else {
                bail!("admin socket closed during {line:?}");
            };
            let Ok(msg) = reply.parse::<Message>() else {
                continue;
            };
            match msg.command.as_str() {
                "PRIVMSG" => out.push(msg.params.last().cloned().unwrap_or_default()),
                "BOUNCERSERV" if msg.param(0) == Some("OK") => return Ok(out),
                "FAIL" => bail!("admin {line:?}: {reply}"),
                _ => {}
            }
        }
    }

    /// Create user `alice` and her network `fake` pointing at `upstream`,
    /// and accept the connection tether opens.
    pub async fn create_alice(&self, upstream: &UpstreamListener) -> Result<Upstream> {
        self.admin(&format!("user create -username alice -password {PASSWORD}"))
            .await?;
        self.admin(&format!(
            "user run alice network create -name fake -addr irc+insecure://{}",
            upstream.addr
        ))
        .await?;
        upstream.accept().await
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The fake upstream's listening socket.
pub struct UpstreamListener {
    listener: TcpListener,
    pub addr: SocketAddr,
}

impl UpstreamListener {
    pub async fn bind() -> Result<UpstreamListener> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(UpstreamListener { listener, addr })
    }

    /// Accept tether's connection and register it: answer `CAP LS` with
    /// no capabilities, then 001, 005 and 422 once NICK and USER are in.
    /// Afterwards a task answers PING and JOIN, and [`Upstream::send`]
    /// injects lines.
    pub async fn accept(&self) -> Result<Upstream> {
        let (stream, _) = timeout(WAIT, self.listener.accept()).await??;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let (mut nick, mut user) = (None::<String>, false);
        let (mut cap_started, mut cap_ended) = (false, false);
        let mut line = String::new();
        loop {
            line.clear();
            if timeout(WAIT, reader.read_line(&mut line)).await?? == 0 {
                bail!("tether closed the upstream link during registration");
            }
            let Ok(msg) = line.trim_end().parse::<Message>() else {
                continue;
            };
            match msg.command.as_str() {
                "CAP" if msg.param(0) == Some("LS") => {
                    cap_started = true;
                    write
                        .write_all(format!(":{UPSTREAM_NAME} CAP * LS :\r\n").as_bytes())
                        .await?;
                }
                "CAP" if msg.param(0) == Some("END") => cap_ended = true,
                "NICK" => nick = msg.param(0).map(str::to_string),
                "USER" => user = true,
                "PING" => {
                    let token = msg.params.last().cloned().unwrap_or_default();
                    write
                        .write_all(
                            format!(":{UPSTREAM_NAME} PONG {UPSTREAM_NAME} :{token}\r\n")
                                .as_bytes(),
                        )
                        .await?;
                }
                _ => {}
            }
            if let Some(n) = &nick
                && user
                && (!cap_started || cap_ended)
            {
                let s = UPSTREAM_NAME;
                let welcome = format!(
                    ":{s} 001 {n} :Welcome\r\n\
                     :{s} 005 {n} CASEMAPPING=ascii CHANTYPES=# :are supported\r\n\
                     :{s} 422 {n} :MOTD File is missing\r\n"
                );
                write.write_all(welcome.as_bytes()).await?;
                break;
            }
        }
        let nick = nick.unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(upstream_writer(write, rx));
        tokio::spawn(upstream_reader(reader, tx.clone(), nick.clone()));
        Ok(Upstream { tx })
    }
}

/// tether's registered upstream link.
pub struct Upstream {
    tx: mpsc::UnboundedSender<String>,
}

impl Upstream {
    /// Queue `text` (one or more CRLF-terminated lines) for tether.
    pub fn send(&self, text: String) -> Result<()> {
        self.tx
            .send(text)
            .map_err(|_| anyhow!("the upstream link is closed"))
    }
}

async fn upstream_writer(write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut write = BufWriter::with_capacity(64 * 1024, write);
    while let Some(chunk) = rx.recv().await {
        if write.write_all(chunk.as_bytes()).await.is_err() {
            return;
        }
        // Coalesce whatever is already queued, then flush.
        while let Ok(more) = rx.try_recv() {
            if write.write_all(more.as_bytes()).await.is_err() {
                return;
            }
        }
        if write.flush().await.is_err() {
            return;
        }
    }
}

async fn upstream_reader(
    mut reader: BufReader<OwnedReadHalf>,
    tx: mpsc::UnboundedSender<String>,
    nick: String,
) {
    let s = UPSTREAM_NAME;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Ok(msg) = line.trim_end().parse::<Message>() else {
            continue;
        };
        let reply = match msg.command.as_str() {
            "PING" => {
                let token = msg.params.last().cloned().unwrap_or_default();
                format!(":{s} PONG {s} :{token}\r\n")
            }
            "JOIN" => {
                let mut out = String::new();
                for chan in msg.param(0).unwrap_or("").split(',') {
                    out.push_str(&format!(
                        ":{nick}!bench@bench.host JOIN {chan}\r\n\
                         :{s} 353 {nick} = {chan} :{nick} bob\r\n\
                         :{s} 366 {nick} {chan} :End of /NAMES list.\r\n"
                    ));
                }
                out
            }
            _ => continue,
        };
        if tx.send(reply).is_err() {
            return;
        }
    }
}

/// A plain TCP IRC client of `alice/fake@<name>`. Answers PING itself.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    line: String,
    syncs: u64,
}

impl Client {
    /// Connect and send the whole registration; returns the client and
    /// the instant `CAP END` was written.
    pub async fn register(addr: SocketAddr, name: &str, caps: &str) -> Result<(Client, Instant)> {
        Client::register_as(addr, &format!("alice/fake@{name}"), caps, 64 * 1024).await
    }

    /// Connect with a read buffer of `capacity` bytes; nothing is sent.
    pub async fn connect(addr: SocketAddr, capacity: usize) -> Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Client {
            reader: BufReader::with_capacity(capacity, read),
            write,
            line: String::new(),
            syncs: 0,
        })
    }

    /// Like [`Client::register`] for any `USER` word (`user/network@client`),
    /// with a read buffer of `capacity` bytes.
    pub async fn register_as(
        addr: SocketAddr,
        user: &str,
        caps: &str,
        capacity: usize,
    ) -> Result<(Client, Instant)> {
        let mut client = Client::connect(addr, capacity).await?;
        let nick = user.split(['/', '@']).next().unwrap_or(user);
        client
            .send(&format!(
                "CAP LS 302\r\nCAP REQ :{caps}\r\nPASS {PASSWORD}\r\nNICK {nick}\r\n\
                 USER {user} 0 * :x"
            ))
            .await?;
        let sent = Instant::now();
        client.send("CAP END").await?;
        client.expect(|l| is_command(l, "001")).await?;
        Ok((client, sent))
    }

    /// Register directly on a plain IRC server (no bouncer) as `nick`.
    pub async fn register_direct(addr: SocketAddr, nick: &str) -> Result<Client> {
        let mut client = Client::connect(addr, 64 * 1024).await?;
        client
            .send(&format!("NICK {nick}\r\nUSER {nick} 0 * :x"))
            .await?;
        client.expect(|l| is_command(l, "001")).await?;
        Ok(client)
    }

    /// Write raw bytes (already CRLF-terminated lines).
    pub async fn send_raw(&mut self, text: &str) -> Result<()> {
        self.write.write_all(text.as_bytes()).await?;
        Ok(())
    }

    /// Send one line (CRLF appended).
    pub async fn send(&mut self, line: &str) -> Result<()> {
        self.write
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// The next line that is not a PING (those are answered), without
    /// its line ending. `None` at end of stream.
    pub async fn next_line(&mut self) -> Result<Option<&str>> {
        self.next_line_within(WAIT).await
    }

    /// [`Client::next_line`] with a different limit on the wait.
    pub async fn next_line_within(&mut self, limit: Duration) -> Result<Option<&str>> {
        loop {
            self.line.clear();
            let n = timeout(limit, self.reader.read_line(&mut self.line))
                .await
                .context("timed out waiting for a line from tether")??;
            if n == 0 {
                return Ok(None);
            }
            if self.line.contains("PING ")
                && let Ok(msg) = self.line.trim_end().parse::<Message>()
                && msg.command == "PING"
            {
                let token = msg.params.last().cloned().unwrap_or_default();
                self.send(&format!("PONG :{token}")).await?;
                continue;
            }
            return Ok(Some(self.line.trim_end()));
        }
    }

    /// Read until a line matches `pred`.
    pub async fn expect(&mut self, pred: impl Fn(&str) -> bool) -> Result<()> {
        loop {
            match self.next_line().await? {
                Some(line) if pred(line) => return Ok(()),
                Some(_) => {}
                None => bail!("tether closed the client connection"),
            }
        }
    }

    /// Round-trip a PING so that everything tether sent before is read.
    pub async fn sync(&mut self) -> Result<()> {
        self.syncs += 1;
        let token = format!("bench-sync-{}", self.syncs);
        self.send(&format!("PING {token}")).await?;
        self.expect(|l| is_command(l, "PONG") && l.ends_with(&token))
            .await
    }

    /// JOIN `channel` and wait for the echo.
    pub async fn join(&mut self, channel: &str) -> Result<()> {
        self.send(&format!("JOIN {channel}")).await?;
        self.expect(|l| is_command(l, "366") && l.contains(channel))
            .await
    }

    /// QUIT and read until tether closes the connection.
    pub async fn quit(mut self) -> Result<()> {
        self.send("QUIT :bye").await?;
        while self.next_line().await?.is_some() {}
        Ok(())
    }
}

/// Whether `line` (tags and source allowed) has command `command`.
pub fn is_command(line: &str, command: &str) -> bool {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let mut word = words.next();
    if word.is_some_and(|w| w.starts_with('@')) {
        word = words.next();
    }
    if word.is_some_and(|w| w.starts_with(':')) {
        word = words.next();
    }
    word.is_some_and(|w| w.eq_ignore_ascii_case(command))
}
