//! IRC over WebSocket, as in the IRCv3 "WebSocket support" specification,
//! for `wss://`, `ws://` and `ws+insecure://` listeners.
//!
//! The HTTP upgrade is checked against the origin policy ([`super::origin`])
//! and answered with the first subprotocol of the client's list that tether
//! speaks: `binary.ircv3.net` (binary messages) or `text.ircv3.net` (text
//! messages, UTF-8). A client offering neither gets text messages and no
//! subprotocol header.
//!
//! After the upgrade a bridge joins the WebSocket to the ordinary client
//! machinery ([`crate::downstream::registration::serve`]) through an
//! in-memory pipe: each WebSocket message becomes one CRLF-terminated line,
//! and each line tether writes becomes one message without line ending. So
//! login, limits and error replies are those of TCP clients. The pipe is
//! bounded in both directions: a client that sends faster than tether reads
//! waits, and one that reads slower than tether writes backs up into
//! tether's client queue, where the usual slow-client policy applies.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::conn::WRITE_TIMEOUT;
use crate::server::{Shared, origin};

/// Subprotocol for binary messages.
pub const BINARY_PROTOCOL: &str = "binary.ircv3.net";
/// Subprotocol for text messages.
pub const TEXT_PROTOCOL: &str = "text.ircv3.net";

/// Time allowed for the HTTP upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest message (and frame) accepted from a client. Lines above the
/// client line limit but below this reach the line reader, which answers
/// them as it answers over-long TCP lines; anything larger ends the
/// connection before it is buffered.
const MAX_MESSAGE: usize = 16 * 1024;
/// Capacity of each direction of the pipe between bridge and client task.
const PIPE_BUFFER: usize = 16 * 1024;
/// Longest line tether writes. Its own lines are far shorter; the bound
/// only keeps a line without newline from growing the buffer for ever.
const MAX_OUT_LINE: usize = 64 * 1024;
/// Time left for the close handshake once one side has finished.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The kind of WebSocket message lines travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `binary.ircv3.net`: lines as raw bytes.
    Binary,
    /// `text.ircv3.net`, or no subprotocol: lines as UTF-8 text.
    Text,
}

/// Serve one WebSocket client on an accepted (and, for `wss`, decrypted)
/// stream: upgrade, then run the client like any other.
pub async fn serve<S>(shared: Arc<Shared>, stream: S, remote: String, cert: Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut framing = Framing::Text;
    let origins = &shared.config.http_origins;
    // The callback's signature is tungstenite's: its error is the HTTP
    // response sent instead of the upgrade.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        let chosen = upgrade(origins, request, &mut response).map_err(|refused| match refused {
            Refused::Origin => refusal(StatusCode::FORBIDDEN, "Origin not allowed\n"),
        })?;
        framing = chosen;
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let accept = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "WebSocket handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "WebSocket handshake timed out");
            return;
        }
    };
    let (client_side, bridge_side) = tokio::io::duplex(PIPE_BUFFER);
    let (read, write) = tokio::io::split(client_side);
    tokio::join!(
        crate::downstream::registration::serve(
            shared,
            Box::new(read),
            Box::new(write),
            remote,
            cert
        ),
        bridge(ws, bridge_side, framing),
    );
}

/// Why an upgrade request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// The origin policy does not allow the page that made the request.
    Origin,
}

/// Check the upgrade request and choose the framing, adding the chosen
/// subprotocol to `response`.
fn upgrade(
    origins: &[String],
    request: &Request,
    response: &mut Response,
) -> Result<Framing, Refused> {
    let headers = request.headers();
    // A header that is not visible ASCII cannot match anything, but it is
    // still an origin: treat it as one that is refused.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or_default());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin::allowed(origins, origin, host) {
        tracing::debug!(
            origin = origin.unwrap_or_default(),
            "WebSocket origin refused"
        );
        return Err(Refused::Origin);
    }
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let chosen = choose_protocol(offered);
    if let Some((name, _)) = chosen {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(name),
        );
    }
    Ok(chosen.map_or(Framing::Text, |(_, f)| f))
}

/// The first offered subprotocol tether speaks, with its framing.
fn choose_protocol<'a>(
    offered: impl IntoIterator<Item = &'a str>,
) -> Option<(&'static str, Framing)> {
    offered.into_iter().find_map(|p| match p {
        BINARY_PROTOCOL => Some((BINARY_PROTOCOL, Framing::Binary)),
        TEXT_PROTOCOL => Some((TEXT_PROTOCOL, Framing::Text)),
        _ => None,
    })
}

/// An HTTP error response with a short plain-text body; the connection is
/// closed after it.
fn refusal(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The bytes to hand to the line reader for one client message: the
/// message as one line. A trailing CRLF or LF is dropped; line breaks
/// inside become spaces, so one message can never turn into two commands.
/// `None` for an empty message.
pub fn client_line(payload: &[u8]) -> Option<Vec<u8>> {
    let body = payload.strip_suffix(b"\n").unwrap_or(payload);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.is_empty() {
        return None;
    }
    let mut line = Vec::with_capacity(body.len() + 2);
    line.extend(
        body.iter()
            .map(|&b| if matches!(b, b'\r' | b'\n') { b' ' } else { b }),
    );
    line.extend_from_slice(b"\r\n");
    Some(line)
}

/// The message carrying one line written by tether (line ending already
/// removed). Text messages must be UTF-8: invalid bytes become U+FFFD.
pub fn server_message(line: Bytes, framing: Framing) -> WsMessage {
    match framing {
        Framing::Binary => WsMessage::Binary(line),
        Framing::Text => match Utf8Bytes::try_from(line.clone()) {
            Ok(text) => WsMessage::Text(text),
            Err(_) => WsMessage::Text(String::from_utf8_lossy(&line).into_owned().into()),
        },
    }
}

/// Move lines between the WebSocket and the client task's end of the pipe
/// until both directions are done.
async fn bridge<S>(ws: WebSocketStream<S>, pipe: DuplexStream, framing: Framing)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut from_tether, mut to_tether) = tokio::io::split(pipe);

    // Client to tether. Pings are answered by the WebSocket layer while
    // reading; a close frame ends the stream after the reply is sent.
    let inbound = async {
        while let Some(message) = ws_rx.next().await {
            let payload: Bytes = match message {
                Ok(WsMessage::Text(text)) => text.into(),
                Ok(WsMessage::Binary(bytes)) => bytes,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket read failed");
                    break;
                }
            };
            let Some(line) = client_line(&payload) else {
                continue;
            };
            if to_tether.write_all(&line).await.is_err() {
                break;
            }
        }
        let _ = to_tether.shutdown().await;
    };

    // Tether to client: one message per line; a batch of lines is flushed
    // at once. Every send is bounded by the write timeout so a client that
    // stopped reading cannot hold the connection for ever.
    let outbound = async {
        let mut buf = BytesMut::with_capacity(4096);
        'pump: loop {
            let mut queued = false;
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let mut line = buf.split_to(end + 1).freeze();
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.is_empty() {
                    continue;
                }
                let send = ws_tx.feed(server_message(line, framing));
                if !matches!(tokio::time::timeout(WRITE_TIMEOUT, send).await, Ok(Ok(()))) {
                    break 'pump;
                }
                queued = true;
            }
            if buf.len() > MAX_OUT_LINE {
                let line = buf.split().freeze();
                let send = ws_tx.feed(server_message(line, framing));
                if !matches!(tokio::time::timeout(WRITE_TIMEOUT, send).await, Ok(Ok(()))) {
                    break;
                }
                queued = true;
            }
            if queued
                && !matches!(
                    tokio::time::timeout(WRITE_TIMEOUT, ws_tx.flush()).await,
                    Ok(Ok(()))
                )
            {
                break;
            }
            buf.reserve(4096);
            match from_tether.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::default(),
        };
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, ws_tx.send(WsMessage::Close(Some(close)))).await;
    };

    let mut inbound = pin!(inbound);
    let mut outbound = pin!(outbound);
    tokio::select! {
        () = &mut outbound => {
            // Tether closed the client: wait briefly for the client's
            // close reply, which ends the inbound stream.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, inbound).await;
        }
        () = &mut inbound => {
            // The client is gone; the client task sees end of input, says
            // goodbye and closes its side, which ends the outbound pump.
            outbound.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_choice_follows_the_clients_order() {
        assert_eq!(
            choose_protocol(["text.ircv3.net", "binary.ircv3.net"]),
            Some((TEXT_PROTOCOL, Framing::Text))
        );
        assert_eq!(
            choose_protocol(["chat", "binary.ircv3.net", "text.ircv3.net"]),
            Some((BINARY_PROTOCOL, Framing::Binary))
        );
        assert_eq!(choose_protocol(["chat", "TEXT.ircv3.net"]), None);
        assert_eq!(choose_protocol([]), None);
    }

    #[test]
    fn client_messages_become_exactly_one_line() {
        assert_eq!(client_line(b"PING x").as_deref(), Some(&b"PING x\r\n"[..]));
        assert_eq!(
            client_line(b"PING x\r\n").as_deref(),
            Some(&b"PING x\r\n"[..])
        );
        assert_eq!(
            client_line(b"PING x\n").as_deref(),
            Some(&b"PING x\r\n"[..])
        );
        assert_eq!(
            client_line(b"PRIVMSG #c :a\r\nQUIT :b\nJOIN 0").as_deref(),
            Some(&b"PRIVMSG #c :a  QUIT :b JOIN 0\r\n"[..])
        );
        assert_eq!(client_line(b"\xffx").as_deref(), Some(&b"\xffx\r\n"[..]));
        assert_eq!(client_line(b""), None);
        assert_eq!(client_line(b"\r\n"), None);
    }

    #[test]
    fn text_messages_replace_invalid_utf8() {
        let m = server_message(Bytes::from_static(b"PRIVMSG #c :caf\xe9"), Framing::Text);
        assert_eq!(m, WsMessage::Text("PRIVMSG #c :caf\u{fffd}".into()));
        let m = server_message(Bytes::from_static("é".as_bytes()), Framing::Text);
        assert_eq!(m, WsMessage::Text("é".into()));
        let m = server_message(Bytes::from_static(b"caf\xe9"), Framing::Binary);
        assert_eq!(m, WsMessage::Binary(Bytes::from_static(b"caf\xe9")));
    }
}
