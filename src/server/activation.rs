//! Socket activation: listening sockets handed over by systemd (or any
//! service manager speaking the same protocol) instead of bound by tether.
//!
//! When `$LISTEN_PID` is our pid, `$LISTEN_FDS` sockets start at file
//! descriptor 3, optionally named by the colon-separated
//! `$LISTEN_FDNAMES`. [`take_from_env`] takes them over and unsets the
//! three variables. [`Inherited::take`] then gives each configured
//! listener the socket whose local address is the listener's (a TCP
//! address, or a unix socket path); a listener without one is bound as
//! usual, and a socket no listener claimed is logged and closed by
//! [`Inherited::close_unclaimed`].

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::config::Listener;
use crate::server::listener::Socket;

/// The first file descriptor passed by the service manager.
pub const FIRST_FD: RawFd = 3;

/// Most descriptors taken: a larger `$LISTEN_FDS` is a mistake, and
/// walking far past the open descriptors would be pointless.
const MAX_FDS: usize = 1024;

/// One inherited listening socket.
#[derive(Debug)]
pub struct InheritedSocket {
    /// Its name from `$LISTEN_FDNAMES`, if given.
    pub name: Option<String>,
    /// The descriptor number it was passed as.
    pub fd: RawFd,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Tcp(std::net::TcpListener, SocketAddr),
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

impl InheritedSocket {
    /// The socket's local address, for logs.
    pub fn address(&self) -> String {
        match &self.kind {
            Kind::Tcp(_, addr) => addr.to_string(),
            Kind::Unix(_, path) => path.display().to_string(),
        }
    }

    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("fd {} ({name}, {})", self.fd, self.address()),
            None => format!("fd {} ({})", self.fd, self.address()),
        }
    }
}

/// The sockets passed to this process and not claimed yet.
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: Vec<InheritedSocket>,
}

/// Why an inherited descriptor cannot serve as a listener.
fn classify(fd: OwnedFd) -> Result<Kind, String> {
    let mut listening: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is open and owned by `fd`; `listening` and
    // `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut listening as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!("not a socket: {}", std::io::Error::last_os_error()));
    }
    if listening == 0 {
        return Err("not a listening socket".to_string());
    }
    let tcp = std::net::TcpListener::from(fd);
    if let Ok(addr) = tcp.local_addr() {
        return Ok(Kind::Tcp(tcp, addr));
    }
    let unix = std::os::unix::net::UnixListener::from(OwnedFd::from(tcp));
    match unix.local_addr() {
        Ok(addr) => match addr.as_pathname() {
            Some(path) => Ok(Kind::Unix(unix, path.to_path_buf())),
            None => Err("a unix socket without a path".to_string()),
        },
        Err(e) => Err(format!("neither a TCP nor a unix socket: {e}")),
    }
}

/// The descriptors `$LISTEN_PID`/`$LISTEN_FDS` announce for process `pid`:
/// `None` when they are not for us.
fn announced(listen_pid: Option<&str>, listen_fds: Option<&str>, pid: u32) -> Option<usize> {
    if listen_pid?.trim().parse::<u32>().ok()? != pid {
        return None;
    }
    let n = listen_fds?.trim().parse::<usize>().ok()?;
    (n > 0).then_some(n.min(MAX_FDS))
}

/// Take over the sockets passed by the service manager, and unset
/// `$LISTEN_PID`, `$LISTEN_FDS` and `$LISTEN_FDNAMES`.
///
/// # Safety
///
/// Call this once, while the process has a single thread (it changes the
/// environment), and before anything else has opened or closed file
/// descriptors from 3 on: it takes ownership of the descriptors announced.
pub unsafe fn take_from_env() -> Inherited {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: the caller guarantees that no other thread runs.
        unsafe { std::env::remove_var(var) };
    }
    let Some(count) = announced(pid.as_deref(), fds.as_deref(), std::process::id()) else {
        if fds.is_some() {
            tracing::debug!(?pid, ?fds, "LISTEN_FDS is not for this process; ignored");
        }
        return Inherited::default();
    };
    let names: Vec<&str> = names
        .as_deref()
        .map_or(Vec::new(), |n| n.split(':').collect());
    let mut sockets = Vec::new();
    for i in 0..count {
        let fd = FIRST_FD + i as RawFd;
        // SAFETY: F_GETFD only reads the descriptor flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            tracing::warn!("LISTEN_FDS announced fd {fd}, which is not open");
            continue;
        }
        // SAFETY: the fd is open, and the caller guarantees that nothing
        // else owns it: the service manager passed it to this process.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // Not for children of ours.
        // SAFETY: F_SETFD on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        let name = names
            .get(i)
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string());
        match classify(owned) {
            Ok(kind) => sockets.push(InheritedSocket { name, fd, kind }),
            Err(why) => {
                // Dropping the descriptor closed it.
                tracing::warn!("closing inherited fd {fd} ({name:?}): {why}");
            }
        }
    }
    Inherited { sockets }
}

/// The absolute form of `path`, for comparing socket paths.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Inherited {
    /// Whether no socket is left.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The inherited socket whose local address is `listener`'s, ready to
    /// serve; `None` if there is none.
    pub async fn take(&mut self, listener: &Listener) -> Option<Socket> {
        let index = match listener {
            Listener::Unix { path } | Listener::UnixAdmin { path } => {
                let want = absolute(path);
                self.sockets
                    .iter()
                    .position(|s| matches!(&s.kind, Kind::Unix(_, p) if absolute(p) == want))?
            }
            tcp => {
                let addr = tcp.tcp_addr()?;
                if self.sockets.is_empty() {
                    return None;
                }
                let wanted: Vec<SocketAddr> = match tokio::net::lookup_host(addr).await {
                    Ok(addrs) => addrs.collect(),
                    Err(e) => {
                        tracing::warn!("resolving {listener} to match inherited sockets: {e}");
                        return None;
                    }
                };
                self.sockets
                    .iter()
                    .position(|s| matches!(&s.kind, Kind::Tcp(_, a) if wanted.contains(a)))?
            }
        };
        let socket = self.sockets.remove(index);
        let described = socket.describe();
        let served = match socket.kind {
            Kind::Tcp(tcp, _) => tcp
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(tcp))
                .map(Socket::Tcp),
            Kind::Unix(unix, _) => unix
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(unix))
                .map(Socket::Unix),
        };
        match served {
            Ok(s) => {
                tracing::info!("{listener}: using the socket passed by systemd, {described}");
                Some(s)
            }
            Err(e) => {
                tracing::warn!("{listener}: cannot use inherited {described}: {e}; binding it");
                None
            }
        }
    }

    /// Close every socket no listener claimed, with a warning each.
    pub fn close_unclaimed(&mut self) {
        for socket in self.sockets.drain(..) {
            tracing::warn!(
                "closing the socket passed by systemd as {}: no configured listener has that address",
                socket.describe()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_only_for_our_pid() {
        assert_eq!(announced(Some("42"), Some("2"), 42), Some(2));
        assert_eq!(announced(Some("41"), Some("2"), 42), None);
        assert_eq!(announced(None, Some("2"), 42), None);
        assert_eq!(announced(Some("42"), None, 42), None);
        assert_eq!(announced(Some("42"), Some("0"), 42), None);
        assert_eq!(announced(Some("42"), Some("many"), 42), None);
        assert_eq!(announced(Some("42"), Some("999999"), 42), Some(MAX_FDS));
    }

    #[test]
    fn classify_tcp_unix_and_others() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = tcp.local_addr().expect("addr");
        match classify(OwnedFd::from(tcp)) {
            Ok(Kind::Tcp(_, a)) => assert_eq!(a, addr),
            other => panic!("expected TCP, got {other:?}"),
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        match classify(OwnedFd::from(unix)) {
            Ok(Kind::Unix(_, p)) => assert_eq!(p, path),
            other => panic!("expected unix, got {other:?}"),
        }
        // A connected (not listening) socket is refused.
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(server.local_addr().expect("addr")).expect("connect");
        assert!(classify(OwnedFd::from(client)).is_err());
        // A file is not a socket.
        let file = std::fs::File::open("/dev/null").expect("open");
        assert!(classify(OwnedFd::from(file)).is_err());
    }

    #[tokio::test]
    async fn take_matches_by_address() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("irc.sock");
        let unix = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let mut inherited = Inherited {
            sockets: vec![
                InheritedSocket {
                    name: Some("irc".into()),
                    fd: 3,
                    kind: Kind::Tcp(tcp, addr),
                },
                InheritedSocket {
                    name: None,
                    fd: 4,
                    kind: Kind::Unix(unix, path.clone()),
                },
            ],
        };
        let other = Listener::parse(&format!("irc+insecure://127.0.0.1:{}", addr.port() ^ 1))
            .expect("listener");
        assert!(inherited.take(&other).await.is_none());
        let wanted =
            Listener::parse(&format!("irc+insecure://127.0.0.1:{}", addr.port())).expect("l");
        match inherited.take(&wanted).await {
            Some(Socket::Tcp(l)) => assert_eq!(l.local_addr().expect("addr"), addr),
            other => panic!("expected the TCP socket, got {other:?}"),
        }
        assert!(inherited.take(&wanted).await.is_none(), "taken twice");
        let unix_listener = Listener::Unix { path };
        assert!(matches!(
            inherited.take(&unix_listener).await,
            Some(Socket::Unix(_))
        ));
        assert!(inherited.is_empty());
    }
}
