//! systemd's service notification protocol (`Type=notify`), spoken
//! directly: each notification is one datagram of `KEY=value` lines sent to
//! the unix socket named by `$NOTIFY_SOCKET` (a leading `@` names a socket
//! in the abstract namespace). Without `$NOTIFY_SOCKET` every call is a
//! no-op.
//!
//! The daemon sends `READY=1` once its listeners are bound and its users
//! loaded, `RELOADING=1` with `MONOTONIC_USEC` when a reload starts and
//! `READY=1` when it is over, `STOPPING=1` at shutdown and `STATUS=` lines
//! with a short summary. With `$WATCHDOG_USEC` set (and `$WATCHDOG_PID`
//! unset or ours) [`spawn_watchdog`] sends `WATCHDOG=1` every half interval,
//! but only after the database thread has answered a trivial request: a
//! wedged database stops the pings and lets systemd restart the service.
//!
//! Notifications are best effort: the socket is non-blocking, and a
//! datagram that cannot be sent (systemd's queue full, socket gone) is
//! dropped with a debug log; the next one is tried afresh.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

/// Where notifications go; disabled when the service manager asked for
/// none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

/// Why `$NOTIFY_SOCKET` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?}: abstract sockets are only supported on Linux")]
    AbstractUnsupported(String),
    #[error("NOTIFY_SOCKET {0:?}: only unix socket paths and @abstract names are supported")]
    Unsupported(String),
    #[error("NOTIFY_SOCKET {addr:?}: {error}")]
    Io { addr: String, error: std::io::Error },
}

/// The socket address named by a `$NOTIFY_SOCKET` value.
fn parse_address(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    let shown = || value.to_string_lossy().into_owned();
    let bytes = value.as_bytes();
    let io = |error| NotifyError::Io {
        addr: shown(),
        error,
    };
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value).map_err(io),
        Some(b'@') => abstract_address(&bytes[1..])
            .ok_or_else(|| NotifyError::AbstractUnsupported(shown()))?
            .map_err(io),
        _ => Err(NotifyError::Unsupported(shown())),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> Option<std::io::Result<SocketAddr>> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    Some(SocketAddr::from_abstract_name(name))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> Option<std::io::Result<SocketAddr>> {
    None
}

/// A `STATUS=` value on one line (the protocol separates assignments by
/// newlines).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares
/// `MONOTONIC_USEC` with.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is
    // always available on the platforms tether supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let micros = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000;
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// The notifier `$NOTIFY_SOCKET` asks for; disabled (with a warning)
    /// when the variable is unset or unusable.
    pub fn from_env() -> Notifier {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::disabled();
        };
        match Notifier::to_address(&value) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("not notifying the service manager: {e}");
                Notifier::disabled()
            }
        }
    }

    /// A notifier sending to the socket named like `$NOTIFY_SOCKET` would.
    pub fn to_address(value: &OsStr) -> Result<Notifier, NotifyError> {
        let addr = parse_address(value)?;
        let io = |error| NotifyError::Io {
            addr: value.to_string_lossy().into_owned(),
            error,
        };
        let socket = UnixDatagram::unbound().map_err(io)?;
        socket.set_nonblocking(true).map_err(io)?;
        Ok(Notifier {
            target: Some((socket, addr)),
        })
    }

    /// Whether notifications are sent at all.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Send one notification (newline-separated `KEY=value` assignments).
    pub fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            tracing::debug!(error = %e, state, "service manager notification not sent");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `RELOADING=1` with the current monotonic time.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            monotonic_usec()
        ));
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// `STATUS=` alone.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }
}

/// The watchdog interval systemd expects pings within, from
/// `$WATCHDOG_USEC` and `$WATCHDOG_PID` (`None`: no watchdog for us).
pub fn watchdog_from_env() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The watchdog interval for the given variable values and our own pid.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own)
    {
        return None;
    }
    match usec?.trim().parse::<u64>() {
        Ok(n) if n > 0 => Some(Duration::from_micros(n)),
        _ => {
            tracing::warn!("ignoring WATCHDOG_USEC={usec:?}: not a positive number");
            None
        }
    }
}

/// Ping the watchdog every half `interval` while the server is healthy:
/// each ping waits for the database thread to answer a trivial query
/// within half the interval. Stops at shutdown.
pub fn spawn_watchdog(
    notifier: Arc<Notifier>,
    shared: Arc<Shared>,
    interval: Duration,
) -> JoinHandle<()> {
    let shutdown = shared.shutdown.clone();
    let check = move || {
        let shared = shared.clone();
        async move {
            shared
                .db
                .count_users()
                .await
                .map(|_| ())
                .map_err(|e| format!("the database failed a health check: {e}"))
        }
    };
    tokio::spawn(watchdog_loop(notifier, shutdown, interval, check))
}

/// The watchdog: every half `interval`, run `check` and ping if it
/// succeeded within half the interval.
async fn watchdog_loop<F, Fut>(
    notifier: Arc<Notifier>,
    shutdown: CancellationToken,
    interval: Duration,
    check: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let half = (interval / 2).max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval(half);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match tokio::time::timeout(half, check()).await {
            Ok(Ok(())) => notifier.send("WATCHDOG=1"),
            Ok(Err(e)) => tracing::warn!("watchdog: {e}; not pinging"),
            Err(_) => tracing::warn!("watchdog: no answer within {half:?}; not pinging"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound_receiver(dir: &std::path::Path) -> (UnixDatagram, std::path::PathBuf) {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("binding the receiver");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        (socket, path)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_socket_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (rx, path) = bound_receiver(dir.path());
        let n = Notifier::to_address(path.as_os_str()).expect("notifier");
        assert!(n.enabled());
        n.ready("serving\n3 users");
        assert_eq!(recv(&rx), "READY=1\nSTATUS=serving; 3 users");
        n.reloading();
        let msg = recv(&rx);
        assert!(msg.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{msg}");
        let usec: u64 = msg
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("a number");
        assert!(usec > 0 && usec <= monotonic_usec());
        n.stopping();
        assert!(recv(&rx).starts_with("STOPPING=1"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("tether-test-{}-{}", std::process::id(), fastrand::u64(..));
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
        let rx = UnixDatagram::bind_addr(&addr).expect("binding");
        rx.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let n = Notifier::to_address(OsStr::new(&format!("@{name}"))).expect("notifier");
        n.status("hello");
        assert_eq!(recv(&rx), "STATUS=hello");
    }

    #[test]
    fn disabled_and_bad_addresses() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.ready("nothing happens");
        assert!(matches!(
            Notifier::to_address(OsStr::new("vsock:2:1234")),
            Err(NotifyError::Unsupported(_))
        ));
        assert!(Notifier::to_address(OsStr::new("")).is_err());
    }

    #[test]
    fn a_missing_receiver_is_not_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = Notifier::to_address(dir.path().join("absent.sock").as_os_str()).expect("notifier");
        n.ready("nobody listens");
    }

    #[test]
    fn watchdog_interval_rules() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_only_while_the_check_answers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (rx, path) = bound_receiver(dir.path());
        rx.set_nonblocking(true).expect("nonblocking");
        let notifier = Arc::new(Notifier::to_address(path.as_os_str()).expect("notifier"));
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let shutdown = CancellationToken::new();
        let flag = healthy.clone();
        let check = move || {
            let healthy = flag.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if !healthy {
                    // A wedged database: never answers.
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        };
        let task = tokio::spawn(watchdog_loop(
            notifier,
            shutdown.clone(),
            Duration::from_secs(10),
            check,
        ));
        let count = |rx: &UnixDatagram| {
            let mut n = 0;
            let mut buf = [0u8; 64];
            while let Ok(len) = rx.recv(&mut buf) {
                assert_eq!(&buf[..len], b"WATCHDOG=1");
                n += 1;
            }
            n
        };
        // Pings at 0 s, 5 s, 10 s, 15 s.
        tokio::time::sleep(Duration::from_millis(15_500)).await;
        assert_eq!(count(&rx), 4);
        healthy.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(count(&rx), 0, "pinged while the check hung");
        healthy.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(count(&rx) >= 1, "pings did not resume");
        shutdown.cancel();
        task.await.expect("the watchdog ends at shutdown");
    }
}
