//! The `http+prometheus://` and `http+insecure+prometheus://` listeners:
//! a minimal HTTP/1.1 server ([`super::http`]) answering `GET` (and `HEAD`)
//! on any path with the metrics in the Prometheus text format
//! ([`crate::metrics::render`]).
//!
//! It stands apart from the IRC listeners: its connections take no permit
//! of `max-connections` but have their own small limit
//! ([`MAX_CONNECTIONS`]; one over it is sent `503` if its socket takes it
//! at once, and closed), and a
//! scrape only reads atomics, so it never waits on, or holds up, a user
//! actor. Each connection may make several requests (keep-alive), each
//! within [`REQUEST_TIMEOUT`]; a malformed request gets its error status
//! and the connection is closed. Other methods than `GET` and `HEAD` get
//! `405`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::server::Shared;
use crate::server::http::{self, HeadError, MAX_HEAD};
use crate::server::listener::{AcceptBackoff, accept_next};

/// Scrape connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time allowed to receive a request head, including the wait for it on
/// a kept-alive connection, and to write the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served on one connection before it is closed.
const MAX_REQUESTS: usize = 100;
/// How long a closing connection's remaining input is read and discarded.
const LINGER: Duration = Duration::from_secs(2);
/// How much of a closing connection's remaining input is read at most.
const LINGER_BYTES: usize = 64 * 1024;

/// Accept scrape connections until the server shuts down.
pub(super) async fn accept(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpListener,
    tracker: tokio_util::task::TaskTracker,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = AcceptBackoff::default();
    while let Some((stream, peer)) = accept_next(&shared, &mut backoff, || tcp.accept()).await {
        let _ = stream.set_nodelay(true);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many metrics connections");
            // Without waiting: a fresh socket's buffer takes these few
            // bytes, and an overload is no time to hold connections open.
            let busy = http::response(
                (503, "Service Unavailable"),
                &[("Content-Type", "text/plain; charset=utf-8")],
                b"Too many connections\n",
                false,
                false,
            );
            let _ = stream.try_write(&busy);
            continue;
        };
        let shared = shared.clone();
        tracker.spawn(async move {
            let mut stream = stream;
            let _permit = permit;
            tokio::select! {
                _ = shared.shutdown.cancelled() => {}
                () = serve(&shared, &mut stream) => {}
            }
            close(&mut stream).await;
        });
    }
}

/// Close politely: send FIN, then read and discard what the peer still
/// sends (a refused body, the rest of an over-long head) for a little
/// while. Closing with unread input would reset the connection, and the
/// peer could lose the response it has not read yet.
async fn close(stream: &mut TcpStream) {
    if tokio::time::timeout(LINGER, stream.shutdown())
        .await
        .is_err()
    {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// What reading a request head gave.
enum Read {
    /// A complete head ends at this index of the buffer.
    Head(usize),
    /// The peer closed the connection (possibly mid-request).
    Eof,
    /// The head grew past [`MAX_HEAD`].
    TooLarge,
}

/// Read until `buf` holds a complete request head.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Read> {
    loop {
        if let Some(end) = http::head_end(buf) {
            return Ok(Read::Head(end));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Read::TooLarge);
        }
        let mut chunk = [0u8; 2048];
        let room = (MAX_HEAD + 1 - buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Ok(Read::Eof);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serve the requests of one connection.
async fn serve(shared: &Shared, stream: &mut TcpStream) {
    let mut buf = Vec::new();
    for served in 1..=MAX_REQUESTS {
        let read = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(stream, &mut buf)).await {
            Ok(Ok(read)) => read,
            // An idle keep-alive connection, or a peer too slow to send
            // its request: close without a word.
            Ok(Err(_)) | Err(_) => return,
        };
        let parsed = match read {
            Read::Eof => return,
            Read::TooLarge => Err(HeadError::TooLarge),
            Read::Head(end) => {
                let parsed = http::parse_head(&buf[..end]);
                buf.drain(..end);
                parsed
            }
        };
        let (reply, keep_alive) = match parsed {
            Ok(request) => answer(shared, &request, served < MAX_REQUESTS),
            Err(e) => {
                tracing::debug!(error = %e, "bad metrics request");
                let (code, reason) = e.status();
                let body = format!("{reason}\n");
                let reply = http::response(
                    (code, reason),
                    &[("Content-Type", "text/plain; charset=utf-8")],
                    body.as_bytes(),
                    false,
                    false,
                );
                (reply, false)
            }
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, stream.write_all(&reply)).await {
            Ok(Ok(())) if keep_alive => {}
            _ => return,
        }
    }
}

/// The response to a well-formed request, and whether to keep the
/// connection open after it.
fn answer(shared: &Shared, request: &http::Request, more: bool) -> (Vec<u8>, bool) {
    let keep_alive = request.keep_alive && more;
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        let reply = http::response(
            (405, "Method Not Allowed"),
            &[
                ("Allow", "GET, HEAD"),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
            b"Method Not Allowed\n",
            keep_alive,
            false,
        );
        return (reply, keep_alive);
    }
    let body = crate::metrics::render(&shared.metrics, shared.db.stats());
    let reply = http::response(
        (200, "OK"),
        &[("Content-Type", crate::metrics::CONTENT_TYPE)],
        body.as_bytes(),
        keep_alive,
        head_only,
    );
    (reply, keep_alive)
}
