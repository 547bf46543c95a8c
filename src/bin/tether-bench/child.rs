//! tether as a child process of the bench, so that its memory and CPU
//! can be read from `/proc/<pid>` without the bench's own clients and
//! fake server in the figures; plus seeding users, networks and channels
//! straight into the database before it starts, and raising the open
//! file limit.
//!
//! The child is this same binary run with the hidden `serve` subcommand
//! ([`serve`]): it starts tether in-process, prints its IRC address on
//! stdout and runs until its stdin closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use tether::config::Config;
use tether::db::{ChannelRecord, Db, NetworkRecord, UserRecord};
use tether::server::Server;

use crate::rig::{PASSWORD, ScratchDir, config_text};

/// Body of the hidden `serve` subcommand, run in the child.
pub fn serve(config: &Path) -> Result<()> {
    tether::server::alloc::tune();
    let text = std::fs::read_to_string(config)?;
    let config = Config::parse_str(&text).map_err(|e| anyhow!("bench config:\n{e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        let addr = server.irc_addr().context("no IRC listener bound")?;
        let mut out = std::io::stdout();
        writeln!(out, "addr {addr}")?;
        out.flush()?;
        // The parent closes our stdin (or dies) when it is done.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// A tether child process.
pub struct TetherChild {
    /// `None` once stopped.
    child: Option<Child>,
    pid: u32,
    pub addr: SocketAddr,
}

impl TetherChild {
    /// Write the bench configuration (plus `extra`) into `dir` and start
    /// tether on it.
    pub async fn start(dir: &ScratchDir, extra: &str) -> Result<TetherChild> {
        let path = dir.path().join("tether.conf");
        std::fs::write(&path, config_text(dir.path(), extra))?;
        let exe = std::env::current_exe()?;
        // For profiling: TETHER_BENCH_WRAP="heaptrack -o /tmp/t" runs the
        // child under a wrapper (the /proc figures are then the wrapper's).
        let wrap = std::env::var("TETHER_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the tether child")?;
        let stdout = child.stdout.take().context("child stdout")?;
        // A wrapper may print first; the child's own line starts "addr ".
        let line = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.starts_with("addr ") {
                    return std::io::Result::Ok(line);
                }
            }
        })
        .await??;
        let Some(addr) = line.trim().strip_prefix("addr ") else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the tether child did not start: {line:?}");
        };
        let addr = addr.parse()?;
        Ok(TetherChild {
            pid: child.id(),
            child: Some(child),
            addr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory of the child, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid())
    }

    /// CPU time (user + system) of the child so far.
    pub fn cpu(&self) -> Result<Duration> {
        cpu_time(self.pid())
    }

    /// Close the child's stdin and wait for it to shut down.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            tokio::task::spawn_blocking(move || child.wait()).await??;
        }
        Ok(())
    }
}

impl Drop for TetherChild {
    fn drop(&mut self) {
        // Only an error path gets here with the child still running.
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `VmRSS` of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// utime + stime of process `pid`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11)
        .zip(fields.get(12))
        .and_then(|(u, s)| Some(u.parse::<u64>().ok()? + s.parse::<u64>().ok()?))
        .context("bad utime/stime in /proc stat")?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// Raise the soft open-file limit to the hard limit; returns the new
/// soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// What to create in a fresh database.
pub struct Seed<'a> {
    /// Usernames; each gets the same password hash ([`PASSWORD`]).
    pub users: &'a [String],
    /// Networks per user, named `fake`, `fake1`, `fake2`, ...
    pub networks: usize,
    /// Channels per network, named by `channel(user, net, chan)`.
    pub channels: usize,
    /// Server address of every network.
    pub upstream: SocketAddr,
}

/// Name of network `n` of a seeded user.
pub fn network_name(n: usize) -> String {
    if n == 0 {
        "fake".to_string()
    } else {
        format!("fake{n}")
    }
}

/// Create `seed` in the database of `dir`, before tether starts.
/// `channel(user, network, index)` names each channel.
pub async fn seed(
    dir: &ScratchDir,
    seed: &Seed<'_>,
    channel: impl Fn(usize, usize, usize) -> String,
) -> Result<()> {
    let db = Db::open(&dir.db_path())?;
    // One argon2 hash, shared: hashing is deliberately slow.
    let hash = tether::auth::hash_password_async(PASSWORD.to_string()).await?;
    for (u, username) in seed.users.iter().enumerate() {
        let user = db
            .create_user(UserRecord {
                username: username.clone(),
                password_hash: Some(hash.clone()),
                enabled: true,
                ..UserRecord::default()
            })
            .await?;
        for n in 0..seed.networks {
            let net = db
                .create_network(NetworkRecord {
                    user_id: user.id,
                    name: network_name(n),
                    addr: format!("irc+insecure://{}", seed.upstream),
                    enabled: true,
                    ..NetworkRecord::default()
                })
                .await?;
            for c in 0..seed.channels {
                db.upsert_channel(ChannelRecord {
                    network_id: net.id,
                    name: channel(u, n, c),
                    ..ChannelRecord::default()
                })
                .await?;
            }
        }
    }
    db.close().await;
    Ok(())
}

/// Poll until `done()` holds, giving up after [`crate::rig::WAIT`].
pub async fn wait_until(what: &str, done: impl Fn() -> bool) -> Result<()> {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > crate::rig::WAIT {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
