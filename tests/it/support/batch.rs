//! Commands answered with a batch (`CHATHISTORY`, `SEARCH`, `BOUNCER
//! LISTNETWORKS`), and the capabilities a history client needs.

use tether::proto::Message;

use super::collect_until;
use crate::harness::TestClient;

/// Capabilities of a client that reads history with `CHATHISTORY`.
pub const HISTORY_CAPS: &[&str] = &["batch", "server-time", "message-tags", "draft/chathistory"];

/// Send `line` (a `CHATHISTORY` command) and return the reference of the
/// batch that answers it and the lines inside it, without the `BATCH`
/// lines. Panics on a `FAIL` instead of a batch.
pub async fn batch_reply(c: &mut TestClient, line: &str) -> (String, Vec<Message>) {
    c.send(line).await;
    let start = c
        .expect("BATCH + or FAIL", |m| {
            (m.command == "BATCH" && m.param(0).is_some_and(|r| r.starts_with('+')))
                || m.command == "FAIL"
        })
        .await;
    assert_eq!(start.command, "BATCH", "{line} failed: {start}");
    let reference = start.params[0][1..].to_string();
    let end = format!("-{reference}");
    let mut lines = collect_until(c, "end of the batch", |m| {
        m.command == "BATCH" && m.param(0) == Some(end.as_str())
    })
    .await;
    lines.pop();
    (reference, lines)
}

/// Send `line` and read up to the end of the first batch that closes
/// (`what` names it in a failure); returns every line read, `BATCH` lines
/// included.
pub async fn send_until_batch_end(c: &mut TestClient, line: &str, what: &str) -> Vec<Message> {
    c.send(line).await;
    collect_until(c, what, |m| {
        m.command == "BATCH" && m.param(0).is_some_and(|r| r.starts_with('-'))
    })
    .await
}
