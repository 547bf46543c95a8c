//! The daemon under a service manager: `sd_notify` messages (READY,
//! RELOADING with MONOTONIC_USEC, STOPPING, STATUS, WATCHDOG) sent to a
//! datagram socket the test binds, SIGHUP reloading the configuration file
//! (valid and invalid), and socket activation with descriptors passed the
//! way systemd passes them. Every wait is for a notification, a log line or
//! an IRC reply, bounded by [`TIMEOUT`].

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::net::UnixDatagram;
use tokio::time::{Instant, timeout_at};

use crate::harness::*;
use crate::support::*;

/// The test's end of `$NOTIFY_SOCKET`.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every notification received so far.
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
        NotifySocket {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Read notifications until one matches `pred`; returns it.
    async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = vec![0u8; 4096];
        loop {
            match timeout_at(deadline, self.socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.seen.push(msg.clone());
                    if pred(&msg) {
                        return msg;
                    }
                }
                Ok(Err(e)) => panic!("reading the notify socket: {e}"),
                Err(_) => panic!(
                    "no notification with {what} within {TIMEOUT:?}; got {:#?}",
                    self.seen
                ),
            }
        }
    }
}

/// The value of `KEY=` in a notification.
fn field<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

fn has(msg: &str, assignment: &str) -> bool {
    msg.lines().any(|l| l == assignment)
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn kill(tether: &TetherProcess, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(tether.pid()).expect("pid");
    // SAFETY: sending a signal to our own child.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Config text of a daemon in `dir` with `extra` appended.
fn daemon_config(dir: &Path, extra: &str) -> String {
    format!(
        "listen irc+insecure://127.0.0.1:0\n\
         listen unix+admin://{d}/admin.sock\n\
         db sqlite3 {d}/tether.db\n\
         hostname tether.test\n{extra}",
        d = dir.display()
    )
}

/// A connection that answers a PING before registration.
async fn answers(mut irc: IrcStream) {
    irc.send("PING probe").await;
    irc.expect("PONG probe", |m| m.command == "PONG").await;
}

/// Register as `admin` over `irc` and return the MOTD lines of the burst.
async fn motd_of(irc: IrcStream, password: &str) -> (TestClient, Vec<String>) {
    let mut c = TestClient::register_pass_on(irc, "admin", password, "admin", &[]).await;
    let motd = c
        .sync()
        .await
        .into_iter()
        .filter(|m| m.command == "372")
        .filter_map(|m| m.params.last().cloned())
        .collect();
    (c, motd)
}

fn parse_addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("listener address {text:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_ready_reloading_stopping_and_pings_the_watchdog() {
    let (dir, config) = config_dir("tether-sd-");
    let mut notify = NotifySocket::bind(dir.path());
    let mut tether = TetherProcess::spawn_with(&config, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID");
    });

    let ready = notify.expect("READY=1", |m| has(m, "READY=1")).await;
    let status = field(&ready, "STATUS").expect("a STATUS with READY");
    assert!(status.starts_with("serving 1 users on "), "{ready:?}");
    // The listeners are bound by now.
    let (addrs, password) = tether.wait_startup(&["irc+insecure"], true).await;
    let password = password.expect("first-run password");
    let mut client =
        TestClient::register_pass(parse_addr(&addrs[0]), "admin", &password, "admin", &[]).await;

    notify.expect("WATCHDOG=1", |m| m == "WATCHDOG=1").await;

    let before = monotonic_usec();
    kill(&tether, libc::SIGHUP);
    let reloading = notify
        .expect("RELOADING=1", |m| has(m, "RELOADING=1"))
        .await;
    let after = monotonic_usec();
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(
        (before..=after).contains(&usec),
        "MONOTONIC_USEC={usec} not between {before} and {after}"
    );
    let ready = notify.expect("READY=1", |m| has(m, "READY=1")).await;
    assert_eq!(
        field(&ready, "STATUS"),
        Some("configuration reloaded: no change"),
        "{ready:?}"
    );
    // More watchdog pings after the reload.
    notify.expect("WATCHDOG=1", |m| m == "WATCHDOG=1").await;
    client.sync().await;

    kill(&tether, libc::SIGTERM);
    notify.expect("STOPPING=1", |m| has(m, "STOPPING=1")).await;
    client.expect_cmd("ERROR").await;
    let status = tether.wait_exit().await;
    assert!(
        status.success(),
        "tether exited with {status}\n{:#?}",
        tether.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_motd_and_adds_and_removes_listeners() {
    let dir = temp_dir("tether-sd-");
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("motd-a"), "the old motd\n").expect("motd");
    std::fs::write(dir.path().join("motd-b"), "the new motd\n").expect("motd");
    let config = dir.path().join("tether.conf");
    std::fs::write(
        &config,
        daemon_config(
            dir.path(),
            &format!("motd {d}/motd-a\nlisten unix://{d}/old.sock\nlisten irc://127.0.0.1:0\n"),
        ),
    )
    .expect("config");
    let mut notify = NotifySocket::bind(dir.path());
    let mut tether = TetherProcess::spawn_with(&config, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &notify.path);
    });
    notify.expect("READY=1", |m| has(m, "READY=1")).await;
    let (addrs, password) = tether
        .wait_startup(&["irc+insecure", "irc", "unix"], true)
        .await;
    let password = password.expect("first-run password");
    let (main_addr, doomed) = (parse_addr(&addrs[0]), parse_addr(&addrs[1]));
    let old_sock = dir.path().join("old.sock");

    let (mut first, motd) = motd_of(IrcStream::connect_tcp(main_addr).await, &password).await;
    assert_eq!(motd, vec!["- the old motd"]);
    // A client of the listener that goes away.
    let (mut leaving, _) = motd_of(IrcStream::connect_tcp(doomed).await, &password).await;
    answers(IrcStream::connect_unix(&old_sock).await).await;

    std::fs::write(
        &config,
        daemon_config(
            dir.path(),
            &format!(
                "motd {d}/motd-b\nlisten unix://{d}/new.sock\n\
                 listen irc+insecure://localhost:0\n"
            ),
        ),
    )
    .expect("config");
    kill(&tether, libc::SIGHUP);
    notify
        .expect("RELOADING=1", |m| has(m, "RELOADING=1"))
        .await;
    let ready = notify.expect("READY=1", |m| has(m, "READY=1")).await;
    let status = field(&ready, "STATUS").unwrap_or_default().to_string();
    assert!(status.contains("motd changed"), "{status}");

    tether
        .wait_for_line("\"motd changed\"", |l| l.contains("reload: motd changed"))
        .await;
    let added = tether
        .wait_for_line("the added TCP listener", |l| {
            l.contains("listener added irc+insecure://")
        })
        .await;
    let added =
        parse_addr(&token_after(&added, "listener added irc+insecure://").expect("an address"));
    assert!(status.contains("listener added"), "{status}");
    assert!(
        status.contains(&format!("listener removed irc://{doomed}")),
        "{status}"
    );
    assert!(
        status.contains(&format!("listener removed unix://{d}/old.sock")),
        "{status}"
    );

    // New clients get the new MOTD, on every listener.
    let (_c, motd) = motd_of(IrcStream::connect_tcp(main_addr).await, &password).await;
    assert_eq!(motd, vec!["- the new motd"]);
    let (_c, motd) = motd_of(IrcStream::connect_tcp(added).await, &password).await;
    assert_eq!(motd, vec!["- the new motd"]);
    answers(IrcStream::connect_unix(&dir.path().join("new.sock")).await).await;
    // The removed listeners refuse new connections...
    assert!(
        tokio::net::TcpStream::connect(doomed).await.is_err(),
        "the removed listener {doomed} still accepts"
    );
    assert!(
        tokio::net::UnixStream::connect(&old_sock).await.is_err(),
        "the removed unix listener still accepts"
    );
    // ...and the clients connected earlier stay.
    first.sync().await;
    leaving.sync().await;

    tether.signal("TERM");
    let status = tether.wait_exit().await;
    assert!(status.success(), "tether exited with {status}");
    assert!(
        !dir.path().join("new.sock").exists(),
        "the unix socket file is left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_an_invalid_config_keeps_the_running_one() {
    let dir = temp_dir("tether-sd-");
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("motd-a"), "the old motd\n").expect("motd");
    std::fs::write(dir.path().join("motd-b"), "the new motd\n").expect("motd");
    let config = dir.path().join("tether.conf");
    std::fs::write(
        &config,
        daemon_config(dir.path(), &format!("motd {d}/motd-a\n")),
    )
    .expect("config");
    let mut notify = NotifySocket::bind(dir.path());
    let mut tether = TetherProcess::spawn_with(&config, dir.path(), |c| {
        c.env("NOTIFY_SOCKET", &notify.path);
    });
    notify.expect("READY=1", |m| has(m, "READY=1")).await;
    let (addrs, password) = tether.wait_startup(&["irc+insecure"], true).await;
    let password = password.expect("first-run password");
    let addr = parse_addr(&addrs[0]);

    // A new MOTD, and a typo on line 6.
    std::fs::write(
        &config,
        daemon_config(dir.path(), &format!("motd {d}/motd-b\nmax-conections 5\n")),
    )
    .expect("config");
    kill(&tether, libc::SIGHUP);
    notify
        .expect("RELOADING=1", |m| has(m, "RELOADING=1"))
        .await;
    let ready = notify.expect("READY=1", |m| has(m, "READY=1")).await;
    let status = field(&ready, "STATUS").unwrap_or_default();
    assert!(
        status.starts_with("configuration reload refused") && status.contains("max-conections"),
        "{ready:?}"
    );
    tether
        .wait_for_line("the refusal", |l| {
            l.contains("ERROR") && l.contains("configuration reload refused")
        })
        .await;
    tether
        .wait_for_line("the reason", |l| {
            l.contains("line 6") && l.contains("unknown directive \"max-conections\"")
        })
        .await;

    // Still running, with the old MOTD.
    let (mut c, motd) = motd_of(IrcStream::connect_tcp(addr).await, &password).await;
    assert_eq!(motd, vec!["- the old motd"]);
    c.sync().await;
    tether.signal("TERM");
    assert!(tether.wait_exit().await.success());
}

/// Duplicate `fds[i]` to descriptor `3 + i` in the child, clearing
/// close-on-exec, as systemd passes sockets.
fn pass_fds(command: &mut Command, fds: Vec<i32>) {
    assert!(fds.len() <= 8, "at most 8 descriptors");
    // SAFETY: the closure only calls fcntl and dup2, which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // First out of the way (a source may itself be 3 or 4), then
            // into place; dup2 leaves the target without FD_CLOEXEC.
            let mut high = [0i32; 8];
            for (slot, fd) in high.iter_mut().zip(&fds) {
                *slot = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 64);
                if *slot < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (target, source) in (3..).zip(&high[..fds.len()]) {
                if libc::dup2(*source, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_serves_the_passed_socket_and_closes_a_stray_one() {
    let dir = temp_dir("tether-sd-");
    let d = dir.path().display().to_string();
    let passed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let stray = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = passed.local_addr().expect("addr").port();
    let stray_addr = stray.local_addr().expect("addr");
    let config = dir.path().join("tether.conf");
    std::fs::write(
        &config,
        format!(
            "listen irc+insecure://127.0.0.1:{port}\n\
             listen unix+admin://{d}/admin.sock\n\
             db sqlite3 {d}/tether.db\n\
             hostname tether.test\n"
        ),
    )
    .expect("config");
    let mut notify = NotifySocket::bind(dir.path());

    // LISTEN_PID must be the daemon's own pid: a shell sets it and execs
    // the daemon, keeping its pid.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tether"))
        .arg("--config")
        .arg(&config)
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "irc:stray")
        .env("NOTIFY_SOCKET", &notify.path);
    pass_fds(&mut command, vec![passed.as_raw_fd(), stray.as_raw_fd()]);
    let mut tether = TetherProcess::start(command, dir.path());
    // The daemon holds the only copies now.
    drop((passed, stray));

    notify.expect("READY=1", |m| has(m, "READY=1")).await;
    tether
        .wait_for_line("the passed socket in use", |l| {
            l.contains("using the socket passed by systemd, fd 3 (irc,")
        })
        .await;
    tether
        .wait_for_line("the stray socket closed", |l| {
            l.contains("closing the socket passed by systemd as fd 4 (stray,")
        })
        .await;
    let (addrs, password) = tether.wait_startup(&["irc+insecure"], true).await;
    assert_eq!(addrs[0], format!("127.0.0.1:{port}"));
    let password = password.expect("first-run password");

    let mut client = TestClient::register_pass(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "admin",
        &password,
        "admin",
        &[],
    )
    .await;
    client.sync().await;
    assert!(
        tokio::net::TcpStream::connect(stray_addr).await.is_err(),
        "the stray socket was not closed"
    );

    tether.signal("TERM");
    assert!(tether.wait_exit().await.success());
}
