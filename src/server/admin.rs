//! The admin socket: a unix socket (mode 0600) speaking a small line
//! protocol. `BOUNCERSERV <command line>` runs a BouncerServ command with
//! administrator rights and answers zero or more `PRIVMSG * :<line>`, then
//! `BOUNCERSERV OK` or `FAIL BOUNCERSERV :<error>`. Registration commands
//! get `ERROR` so that nobody mistakes it for an IRC listener.

use std::sync::Arc;

use crate::conn::{BoxRead, BoxWrite, LineReader, WriterOptions, spawn_writer};
use crate::proto::codec::CLIENT_LINE_MAX;
use crate::proto::{Frame, Message};
use crate::server::Shared;

pub async fn serve(shared: Arc<Shared>, read: BoxRead, write: BoxWrite) {
    let (writer, task) = spawn_writer(
        write,
        WriterOptions {
            capacity: 1024,
            flood: None,
        },
    );
    let mut reader = LineReader::new(read, CLIENT_LINE_MAX);
    let cancel = writer.cancel_token();
    loop {
        let frame = tokio::select! {
            _ = shared.shutdown.cancelled() => {
                writer.close(Some("ERROR :Server shutting down".to_string()));
                break;
            }
            _ = cancel.cancelled() => break,
            f = reader.next_frame() => f,
        };
        let msg = match frame {
            Ok(Some(Frame::Line { text, .. })) => match text.parse::<Message>() {
                Ok(msg) => msg,
                Err(_) => continue,
            },
            Ok(Some(Frame::TooLong)) => {
                let _ = writer.try_send("FAIL BOUNCERSERV :Line too long");
                continue;
            }
            Ok(None) | Err(_) => break,
        };
        match msg.command.as_str() {
            "BOUNCERSERV" => {
                let line = msg.params.join(" ");
                let result = crate::service::run_admin_line(shared.clone(), &line).await;
                // This task serves only this connection, so it may wait for
                // room: long outputs are delivered whole, at the reader's pace.
                let replies: Vec<Message> = match result {
                    Ok(lines) => lines
                        .into_iter()
                        .map(|line| Message::new("PRIVMSG", ["*".to_string(), line]))
                        .chain(std::iter::once(Message::new("BOUNCERSERV", ["OK"])))
                        .collect(),
                    Err(e) => vec![Message::new("FAIL", ["BOUNCERSERV".to_string(), e])],
                };
                for reply in replies {
                    if writer.send_wait(reply.to_string()).await.is_err() {
                        break;
                    }
                }
            }
            "CAP" | "NICK" | "USER" | "PASS" => {
                writer.close(Some("ERROR :This is not a regular IRC server".to_string()));
                break;
            }
            "PING" => {
                let token = msg.param(0).unwrap_or("").to_string();
                let _ = writer.send_msg(&Message::new(
                    "PONG",
                    [shared.config.hostname.clone(), token],
                ));
            }
            "QUIT" => {
                writer.close(None);
                break;
            }
            other => {
                let _ = writer.send_msg(&Message::new("421", ["*", other, "Unknown command"]));
            }
        }
    }
    writer.close(None);
    let _ = task.await;
}
