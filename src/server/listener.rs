//! Binding listeners and their accept loops: TCP (plain or TLS, IRC or
//! WebSocket), unix sockets for IRC, the admin socket, the ident server
//! and the metrics endpoint (served by [`super::prometheus`]). Binding
//! ([`open`]) and serving ([`serve`]) are separate steps so that a socket
//! inherited from systemd can be served, and a reload can bind every new
//! listener before it changes anything. Every accepted connection holds a
//! permit of the connection limit for its lifetime; one over the limit gets
//! `ERROR` and is closed. Temporary accept errors (such as running out of
//! file descriptors) back off instead of spinning. A connection from a
//! trusted proxy first has its PROXY header taken off ([`super::proxied`]),
//! before any TLS handshake.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::Listener;
use crate::conn::{BoxRead, BoxWrite};
use crate::server::conn_limit::ConnectionLimit;
use crate::server::proxied::{self, Prefixed};
use crate::server::{Bound, ServerError, Shared};

/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

fn bind_error(listener: &Listener, error: std::io::Error) -> ServerError {
    ServerError::Bind {
        uri: listener.to_string(),
        error,
    }
}

/// An open listening socket: bound here, or inherited from the service
/// manager (socket activation).
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Bind one listener and start its accept loop.
pub async fn bind(
    shared: Arc<Shared>,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tracker: TaskTracker,
) -> Result<(Bound, JoinHandle<()>), ServerError> {
    let socket = open(&listener).await?;
    serve(shared, listener, socket, tls, tracker)
}

/// Bind the socket of one listener (an IRC unix socket gets mode 0775,
/// the admin socket 0600).
pub async fn open(listener: &Listener) -> Result<Socket, ServerError> {
    match (listener.tcp_addr(), listener) {
        (Some(addr), _) => TcpListener::bind(addr)
            .await
            .map(Socket::Tcp)
            .map_err(|e| bind_error(listener, e)),
        (None, Listener::Unix { path } | Listener::UnixAdmin { path }) => {
            let admin = matches!(listener, Listener::UnixAdmin { .. });
            // A socket file left by a previous run would make bind fail.
            if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
                let _ = std::fs::remove_file(path);
            }
            let unix = UnixListener::bind(path).map_err(|e| bind_error(listener, e))?;
            let mode = if admin { 0o600 } else { 0o775 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| bind_error(listener, e))?;
            Ok(Socket::Unix(unix))
        }
        (None, _) => Err(bind_error(
            listener,
            std::io::Error::other("neither a TCP address nor a socket path"),
        )),
    }
}

/// Start the accept loop of `listener` on its open `socket`.
pub fn serve(
    shared: Arc<Shared>,
    listener: Listener,
    socket: Socket,
    tls: Option<Arc<rustls::ServerConfig>>,
    tracker: TaskTracker,
) -> Result<(Bound, JoinHandle<()>), ServerError> {
    match socket {
        Socket::Tcp(tcp) => {
            let local = tcp.local_addr().map_err(|e| bind_error(&listener, e))?;
            tracing::info!("listening on {}://{local}", listener.scheme());
            let task = if matches!(listener, Listener::Ident { .. }) {
                tokio::spawn(accept_ident(shared, tcp, tracker))
            } else if matches!(
                listener,
                Listener::Prometheus { .. } | Listener::PrometheusInsecure { .. }
            ) {
                tokio::spawn(crate::server::prometheus::accept(shared, tcp, tracker))
            } else {
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                let websocket = listener.is_websocket();
                tokio::spawn(accept_tcp(shared, tcp, acceptor, websocket, tracker))
            };
            Ok((
                Bound::Tcp {
                    listener,
                    addr: local,
                },
                task,
            ))
        }
        Socket::Unix(unix) => {
            let admin = matches!(listener, Listener::UnixAdmin { .. });
            let path = match &listener {
                Listener::Unix { path } | Listener::UnixAdmin { path } => path.clone(),
                _ => unix
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                    .unwrap_or_default(),
            };
            tracing::info!("listening on {}://{}", listener.scheme(), path.display());
            let task = tokio::spawn(accept_unix(shared, unix, admin, tracker));
            Ok((Bound::Unix { listener, path }, task))
        }
    }
}

/// Back off on accept errors: 5 ms doubling up to 1 s.
#[derive(Default)]
pub(super) struct AcceptBackoff(Duration);

impl AcceptBackoff {
    async fn wait(&mut self, error: &std::io::Error) {
        tracing::warn!(%error, "accept failed");
        self.0 = (self.0 * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        tokio::time::sleep(self.0).await;
    }
}

/// The next accepted connection of a listener, backing off on accept
/// errors; `None` once the server shuts down.
pub(super) async fn accept_next<T, F, Fut>(
    shared: &Shared,
    backoff: &mut AcceptBackoff,
    mut accept: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return None,
            a = accept() => a,
        };
        match accepted {
            Ok(conn) => {
                backoff.0 = Duration::ZERO;
                return Some(conn);
            }
            Err(e) => backoff.wait(&e).await,
        }
    }
}

/// Take a connection permit for a new connection; without one the peer is
/// told why and closed.
fn admit<S>(
    limit: &ConnectionLimit,
    tracker: &TaskTracker,
    mut stream: S,
) -> Option<(OwnedSemaphorePermit, S)>
where
    S: AsyncWrite + Unpin + Send + 'static,
{
    match limit.try_acquire() {
        Some(permit) => Some((permit, stream)),
        None => {
            tracker.spawn(async move {
                let _ = stream.write_all(b"ERROR :Too many connections\r\n").await;
            });
            None
        }
    }
}

async fn accept_tcp(
    shared: Arc<Shared>,
    tcp: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    websocket: bool,
    tracker: TaskTracker,
) {
    let mut backoff = AcceptBackoff(Duration::ZERO);
    while let Some((stream, peer)) = accept_next(&shared, &mut backoff, || tcp.accept()).await {
        let Some((permit, stream)) = admit(&shared.connection_limit, &tracker, stream) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let trusted = shared.config.access.trusts_proxy(peer.ip());
            let direct = peer.to_string();
            let Some((stream, remote)) = proxied::accept(stream, trusted, direct.clone()).await
            else {
                return;
            };
            // HTTP forwarding headers are the proxy's only when it did not
            // speak for a client with a PROXY header already.
            let http_proxy = trusted && remote == direct;
            let Some(acceptor) = acceptor else {
                if websocket {
                    crate::server::websocket::serve(shared, stream, remote, http_proxy, None).await;
                } else {
                    let (head, stream) = stream.into_parts();
                    let (r, w) = stream.into_split();
                    crate::downstream::registration::serve(
                        shared,
                        with_head(head, r),
                        Box::new(w),
                        remote,
                        None,
                    )
                    .await;
                }
                return;
            };
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let cert = crate::server::client_cert::peer_fingerprint(tls.get_ref().1);
            serve_stream(shared, tls, websocket, remote, http_proxy, cert).await;
        });
    }
}

/// Serve a client on a stream that is not split yet (TLS), which may have
/// presented a certificate (its fingerprint).
async fn serve_stream<S>(
    shared: Arc<Shared>,
    stream: S,
    websocket: bool,
    remote: String,
    http_proxy: bool,
    cert: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if websocket {
        crate::server::websocket::serve(shared, stream, remote, http_proxy, cert).await;
    } else {
        let (r, w) = tokio::io::split(stream);
        let (read, write): (BoxRead, BoxWrite) = (Box::new(r), Box::new(w));
        crate::downstream::registration::serve(shared, read, write, remote, cert).await;
    }
}

async fn accept_unix(shared: Arc<Shared>, unix: UnixListener, admin: bool, tracker: TaskTracker) {
    let mut backoff = AcceptBackoff(Duration::ZERO);
    while let Some((stream, _)) = accept_next(&shared, &mut backoff, || unix.accept()).await {
        let Some((permit, stream)) = admit(&shared.connection_limit, &tracker, stream) else {
            continue;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let trusted = shared.config.access.accept_proxy_unix;
            let Some((stream, remote)) = proxied::accept(stream, trusted, "unix".to_string()).await
            else {
                return;
            };
            let (head, stream) = stream.into_parts();
            let (r, w) = stream.into_split();
            if admin {
                tracing::debug!(%remote, "admin connection");
                crate::server::admin::serve(shared, with_head(head, r), Box::new(w)).await;
            } else {
                crate::downstream::registration::serve(
                    shared,
                    with_head(head, r),
                    Box::new(w),
                    remote,
                    None,
                )
                .await;
            }
        });
    }
}

/// A read half with the bytes read ahead of it (while looking for a PROXY
/// header) put back in front.
fn with_head<R>(head: Vec<u8>, read: R) -> BoxRead
where
    R: AsyncRead + Send + Unpin + 'static,
{
    if head.is_empty() {
        Box::new(read)
    } else {
        Box::new(Prefixed::new(head, read))
    }
}

/// The ident server's accept loop. Over the connection limit a query is
/// simply not answered (the connection is closed at once).
async fn accept_ident(shared: Arc<Shared>, tcp: TcpListener, tracker: TaskTracker) {
    let mut backoff = AcceptBackoff(Duration::ZERO);
    while let Some((stream, peer)) = accept_next(&shared, &mut backoff, || tcp.accept()).await {
        let Some(permit) = shared.connection_limit.try_acquire() else {
            continue;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let local = stream.local_addr().ok().map(|a| a.ip());
            let direct = peer.to_string();
            let trusted = shared.config.access.trusts_proxy(peer.ip());
            let Some((stream, remote)) = proxied::accept(stream, trusted, direct.clone()).await
            else {
                return;
            };
            // Behind a proxy, the address the query came in on is the
            // proxy's business; only the asker's is known.
            let local = if remote == direct { local } else { None };
            let asker = crate::server::login_limit::remote_ip(&remote);
            let (head, stream) = stream.into_parts();
            let (r, w) = stream.into_split();
            tokio::select! {
                _ = shared.shutdown.cancelled() => {}
                () = crate::server::ident::serve(shared.ident.clone(), with_head(head, r), w, asker, local) => {}
            }
        });
    }
}
