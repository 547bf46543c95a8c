//! Dialing an IRC server (plain TCP or TLS as set up by [`super::tls`], from
//! the address and with the ident [`super::source`] gives) after the
//! network's backoff and its turn in the shared
//! [`super::schedule::ConnectScheduler`], and the reader pump of an
//! upstream connection, which also detects a dead link: after
//! [`Liveness::idle_probe`] of silence it asks the actor to send a PING,
//! and after [`Liveness::ping_timeout`] more without any line it gives
//! up. It stops reading while the network's read gate is closed
//! (clients catching up, see [`crate::user::flow`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Liveness;
use crate::conn::{
    BoxRead, BoxWrite, FloodControl, LineReader, WriterOptions, spawn_counted_writer,
};
use crate::metrics::{CounterRef, GaugeGuard, Metrics};
use crate::proto::codec::SERVER_LINE_MAX;
use crate::proto::{Frame, Message};
use crate::upstream::schedule::ConnectTicket;
use crate::upstream::source::{DialSource, Registered, SourceError};
use crate::upstream::tls::{TlsOptions, TlsSetupError, client_setup};
use crate::upstream::{UpstreamAddr, UpstreamLink};
use crate::user::{UpstreamEvent, UserEvent};

/// Time allowed for TCP connect plus TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines queued for one server.
const UPSTREAM_QUEUE: usize = 4096;

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connection timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] TlsSetupError),
    #[error("invalid server name {0:?}")]
    ServerName(String),
    #[error("server certificate fingerprint mismatch (got {0})")]
    PinMismatch(String),
    #[error("{0}")]
    Source(#[from] SourceError),
}

/// Open a connection to `addr` as `source` says; `tls` applies when
/// `addr.tls` is set. The connection is registered with the ident server
/// before anything is sent, for as long as its read half lives.
pub async fn dial(
    addr: &UpstreamAddr,
    tls: &TlsOptions,
    source: &DialSource,
) -> Result<(BoxRead, BoxWrite), DialError> {
    let fut = async {
        let tcp: TcpStream = source.connect(addr.host.as_str(), addr.port).await?;
        let _ = tcp.set_nodelay(true);
        let ident = source.register(&tcp);
        if !addr.tls {
            let (r, w) = tcp.into_split();
            return Ok::<(BoxRead, BoxWrite), DialError>((
                Registered::wrap(Box::new(r), ident),
                Box::new(w),
            ));
        }
        let name = rustls_pki_types::ServerName::try_from(addr.host.clone())
            .map_err(|_| DialError::ServerName(addr.host.clone()))?;
        let setup = client_setup(tls)?;
        let connector = tokio_rustls::TlsConnector::from(setup.config);
        let stream = match connector.connect(name, tcp).await {
            Ok(stream) => stream,
            Err(e) => {
                return Err(match setup.pin.and_then(|p| p.mismatch()) {
                    Some(got) => DialError::PinMismatch(got),
                    None => e.into(),
                });
            }
        };
        let (r, w) = tokio::io::split(stream);
        Ok((Registered::wrap(Box::new(r), ident), Box::new(w)))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| DialError::Timeout)?
}

/// How the reader pump paces itself.
pub struct ReaderOptions {
    pub liveness: Liveness,
    /// Reading pauses while this is false (see [`crate::user::flow`]).
    pub gate: tokio::sync::watch::Receiver<bool>,
}

/// Per-link settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Dead-link detection timings.
    pub liveness: Liveness,
    /// Pace of lines sent to the server.
    pub flood: FloodControl,
    /// Reading pauses while this is false (see [`crate::user::flow`]).
    pub gate: tokio::sync::watch::Receiver<bool>,
    /// Source address and ident of the connection.
    pub source: DialSource,
    /// Where the link counts its lines, connect errors and itself.
    pub metrics: Arc<Metrics>,
}

/// When a connection attempt may start, and how it is called off.
pub struct AttemptStart {
    /// The network's backoff before this attempt (for the log).
    pub delay: Duration,
    /// The attempt's place in the per-host queue of the shared
    /// [`super::schedule::ConnectScheduler`], for its backoff deadline.
    pub ticket: ConnectTicket,
    /// Cancelled when the network gives the attempt up before it is
    /// connected (deleted, updated, reconnected, user stopped): the task
    /// leaves the scheduler's queue, or drops the half-open connection.
    pub cancel: CancellationToken,
}

/// Connect to a network once `start` allows it and pump its lines into the
/// user's events channel until the link ends.
pub fn spawn_connection(
    events: mpsc::Sender<UserEvent>,
    net: i64,
    attempt: u64,
    addr: UpstreamAddr,
    tls: TlsOptions,
    start: AttemptStart,
    link: LinkOptions,
) -> JoinHandle<()> {
    let LinkOptions {
        liveness,
        flood,
        gate,
        source,
        metrics,
    } = link;
    let AttemptStart {
        delay,
        ticket,
        cancel: call_off,
    } = start;
    let reader = ReaderOptions { liveness, gate };
    let span = tracing::info_span!("upstream", net, host = %addr.host);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if !delay.is_zero() {
                tracing::info!(?delay, "reconnecting after delay");
            }
            let held = tokio::select! {
                () = call_off.cancelled() => {
                    tracing::debug!("connection attempt called off while waiting");
                    return;
                }
                held = ticket.wait() => held,
            };
            if !held.is_zero() {
                tracing::debug!(
                    ?held,
                    "connection attempt delayed by upstream-connect-spacing"
                );
            }
            let send = |event| {
                let events = events.clone();
                async move {
                    events
                        .send(UserEvent::Upstream {
                            net,
                            attempt,
                            event,
                        })
                        .await
                        .is_ok()
                }
            };
            // Boxed: the TLS handshake's state is large and only lives
            // while dialing; inline it would stay part of the task for as
            // long as the link lasts.
            let dialed = tokio::select! {
                () = call_off.cancelled() => {
                    tracing::debug!("connection attempt called off while dialing");
                    return;
                }
                dialed = Box::pin(dial(&addr, &tls, &source)) => dialed,
            };
            let (read, write) = match dialed {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::info!(error = %e, "connection failed");
                    metrics.upstream_connect_errors.inc();
                    send(UpstreamEvent::ConnectFailed(e.to_string())).await;
                    return;
                }
            };
            tracing::info!("connected");
            let open = GaugeGuard::new(&metrics, |m| &m.upstreams);
            let (writer, writer_task) = spawn_counted_writer(
                write,
                WriterOptions {
                    capacity: UPSTREAM_QUEUE,
                    flood: Some(flood),
                },
                Some(CounterRef::new(&metrics, |m| &m.upstream_sent)),
            );
            let read = LineReader::new(read, SERVER_LINE_MAX)
                .counting(CounterRef::new(&metrics, |m| &m.upstream_received));
            let cancel = writer.cancel_token();
            if !send(UpstreamEvent::Connected(Box::new(UpstreamLink {
                writer: writer.clone(),
                writer_task,
                addr,
            })))
            .await
            {
                writer.close(None);
                return;
            }
            let reason = read_loop(read, &events, net, attempt, &cancel, reader).await;
            tracing::info!(
                reason = reason.as_deref().unwrap_or("closed by server"),
                "disconnected"
            );
            writer.close(None);
            // Counted down before the actor hears of it, so that what it
            // tells clients is already in the metrics.
            drop(open);
            send(UpstreamEvent::Closed(reason)).await;
        },
        span,
    ))
}

async fn read_loop(
    mut reader: LineReader,
    events: &mpsc::Sender<UserEvent>,
    net: i64,
    attempt: u64,
    cancel: &tokio_util::sync::CancellationToken,
    options: ReaderOptions,
) -> Option<String> {
    let ReaderOptions { liveness, mut gate } = options;
    let mut probing = false;
    loop {
        // Paused for slow clients: silence meanwhile is ours, not the
        // server's, so the liveness timer starts after the pause.
        let open = *gate.borrow();
        if !open {
            tokio::select! {
                _ = cancel.cancelled() => return Some("connection closed".to_string()),
                () = crate::user::flow::wait_open(&mut gate) => {}
            }
        }
        let wait = if probing {
            liveness.ping_timeout
        } else {
            liveness.idle_probe
        };
        let frame = tokio::select! {
            _ = cancel.cancelled() => return Some("connection closed".to_string()),
            r = tokio::time::timeout(wait, reader.next_frame()) => r,
        };
        let event = match frame {
            Err(_) if probing => return Some("ping timeout".to_string()),
            Err(_) => {
                probing = true;
                UpstreamEvent::Idle
            }
            Ok(Err(e)) => return Some(e.to_string()),
            Ok(Ok(None)) => return None,
            Ok(Ok(Some(Frame::TooLong))) => {
                probing = false;
                tracing::warn!("skipped an over-long line from the server");
                continue;
            }
            Ok(Ok(Some(Frame::Line { text, lossy }))) => {
                probing = false;
                match text.parse::<Message>() {
                    Ok(msg) => {
                        if lossy {
                            tracing::debug!("server line was not valid UTF-8; decoded lossily");
                        }
                        UpstreamEvent::Line(Box::new(msg))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, line = %text, "skipped a malformed line from the server");
                        continue;
                    }
                }
            }
        };
        if events
            .send(UserEvent::Upstream {
                net,
                attempt,
                event,
            })
            .await
            .is_err()
        {
            return Some("user stopped".to_string());
        }
    }
}
