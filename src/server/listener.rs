//! Binding listeners and their accept loops: TCP (plain or TLS, IRC or
//! WebSocket), unix sockets for IRC, and the admin socket; the metrics
//! listeners are bound here and served by [`super::prometheus`]. Every accepted connection holds a
//! permit of the connection limit for its lifetime; one over the limit gets
//! `ERROR` and is closed. Temporary accept errors (such as running out of
//! file descriptors) back off instead of spinning.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::Listener;
use crate::conn::{BoxRead, BoxWrite};
use crate::server::{Bound, ServerError, Shared};

/// Time allowed for a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

fn bind_error(listener: &Listener, error: std::io::Error) -> ServerError {
    ServerError::Bind {
        uri: listener.to_string(),
        error,
    }
}

/// Bind one listener and start its accept loop.
pub async fn bind(
    shared: Arc<Shared>,
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
    tracker: TaskTracker,
) -> Result<(Bound, JoinHandle<()>), ServerError> {
    let limit = shared.connection_limit.clone();
    match &listener {
        Listener::Ircs { addr }
        | Listener::Irc { addr }
        | Listener::IrcInsecure { addr }
        | Listener::Wss { addr }
        | Listener::Ws { addr }
        | Listener::WsInsecure { addr } => {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(&listener, e))?;
            let local = tcp.local_addr().map_err(|e| bind_error(&listener, e))?;
            tracing::info!("listening on {}://{local}", listener.scheme());
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            let websocket = listener.is_websocket();
            let task = tokio::spawn(accept_tcp(shared, tcp, acceptor, websocket, limit, tracker));
            Ok((
                Bound::Tcp {
                    listener,
                    addr: local,
                },
                task,
            ))
        }
        Listener::Prometheus { addr } | Listener::PrometheusInsecure { addr } => {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(&listener, e))?;
            let local = tcp.local_addr().map_err(|e| bind_error(&listener, e))?;
            tracing::info!("listening on {}://{local}", listener.scheme());
            let task = tokio::spawn(crate::server::prometheus::accept(shared, tcp, tracker));
            Ok((
                Bound::Tcp {
                    listener,
                    addr: local,
                },
                task,
            ))
        }
        Listener::Unix { path } | Listener::UnixAdmin { path } => {
            let admin = matches!(listener, Listener::UnixAdmin { .. });
            // A socket file left by a previous run would make bind fail.
            if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
                let _ = std::fs::remove_file(path);
            }
            let unix = UnixListener::bind(path).map_err(|e| bind_error(&listener, e))?;
            let mode = if admin { 0o600 } else { 0o775 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| bind_error(&listener, e))?;
            let scheme = if admin { "unix+admin" } else { "unix" };
            tracing::info!("listening on {scheme}://{}", path.display());
            let task = tokio::spawn(accept_unix(shared, unix, admin, limit, tracker));
            Ok((
                Bound::Unix {
                    listener: listener.clone(),
                    path: path.clone(),
                },
                task,
            ))
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
    limit: &Arc<Semaphore>,
    tracker: &TaskTracker,
    mut stream: S,
) -> Option<(OwnedSemaphorePermit, S)>
where
    S: AsyncWrite + Unpin + Send + 'static,
{
    match limit.clone().try_acquire_owned() {
        Ok(permit) => Some((permit, stream)),
        Err(_) => {
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
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
) {
    let mut backoff = AcceptBackoff(Duration::ZERO);
    while let Some((stream, peer)) = accept_next(&shared, &mut backoff, || tcp.accept()).await {
        let Some((permit, stream)) = admit(&limit, &tracker, stream) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let remote = peer.to_string();
            let Some(acceptor) = acceptor else {
                if websocket {
                    crate::server::websocket::serve(shared, stream, remote, None).await;
                } else {
                    let (r, w) = stream.into_split();
                    crate::downstream::registration::serve(
                        shared,
                        Box::new(r),
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
            serve_stream(shared, tls, websocket, remote, cert).await;
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
    cert: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if websocket {
        crate::server::websocket::serve(shared, stream, remote, cert).await;
    } else {
        let (r, w) = tokio::io::split(stream);
        let (read, write): (BoxRead, BoxWrite) = (Box::new(r), Box::new(w));
        crate::downstream::registration::serve(shared, read, write, remote, cert).await;
    }
}

async fn accept_unix(
    shared: Arc<Shared>,
    unix: UnixListener,
    admin: bool,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
) {
    let mut backoff = AcceptBackoff(Duration::ZERO);
    while let Some((stream, _)) = accept_next(&shared, &mut backoff, || unix.accept()).await {
        let Some((permit, stream)) = admit(&limit, &tracker, stream) else {
            continue;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let (r, w) = stream.into_split();
            if admin {
                crate::server::admin::serve(shared, Box::new(r), Box::new(w)).await;
            } else {
                crate::downstream::registration::serve(
                    shared,
                    Box::new(r),
                    Box::new(w),
                    "unix".to_string(),
                    None,
                )
                .await;
            }
        });
    }
}
