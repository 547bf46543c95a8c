//! A client that stops reading must not hold up the others: once its send
//! queue (2048 lines) is full it is disconnected, while another client of
//! the same user keeps receiving everything.

use std::net::SocketAddr;

use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::harness::*;
use crate::support::*;

/// The bouncer's per-client send queue, in lines.
const SEND_QUEUE_LINES: usize = 2048;
/// Flood lines per batch; the flood waits for the reading client to have
/// received each batch, so that client's queue never holds more than this.
const BATCH: usize = 1000;
/// Approximate size of one flood line as sent to clients.
const LINE_BYTES: usize = 400;
/// Requested receive buffer of the stalled client (the kernel doubles it).
const STALLED_RCVBUF: u32 = 16 * 1024;

/// Third field of `/proc/sys/net/ipv4/<name>` (the autotuning maximum).
fn proc_max(name: &str) -> usize {
    let path = format!("/proc/sys/net/ipv4/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected contents of {path}: {text:?}"))
}

/// Connect with a small, fixed receive buffer (setting SO_RCVBUF disables
/// receive autotuning), so the bytes the kernel can buffer for a client that
/// does not read are bounded. Returns the stream and the effective buffer.
async fn connect_small_rcvbuf(addr: SocketAddr) -> (tokio::net::TcpStream, usize) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(STALLED_RCVBUF)
        .expect("setting SO_RCVBUF");
    let rcvbuf = socket.recv_buffer_size().expect("reading SO_RCVBUF") as usize;
    let stream = match timeout(TIMEOUT, socket.connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("connecting to {addr}: {e}"),
        Err(_) => panic!("connecting to {addr}: timed out"),
    };
    (stream, rcvbuf)
}

fn flood_line(i: usize) -> String {
    let text = format!("{i:06} {}", "x".repeat(LINE_BYTES - 50));
    format!(":bob!b@h.example PRIVMSG #flood :{text}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_disconnected_while_other_client_keeps_receiving() {
    let mut s = Setup::new().await;
    let mut good = s.client("good", &[]).await;
    s.join(&mut good, "#flood", None, &["bob"]).await;

    let (stream, rcvbuf) = connect_small_rcvbuf(s.tether.addr).await;
    let mut stalled = TestClient::register_pass_on(
        IrcStream::from_tcp(stream),
        "alice/fake@stalled",
        PASSWORD,
        "stalled",
        &[],
    )
    .await;
    stalled.set_label("client alice/fake@stalled");
    // Cut off while not reading, it may be left with half a line.
    stalled.set_allow_torn_eof(true);
    // Read its whole burst, then never read again until the end.
    stalled.sync().await;
    good.sync().await;

    // Enough lines to fill the bouncer's socket send buffer at its largest,
    // the stalled client's receive buffer and the send queue, with margin.
    let wmem_max = proc_max("tcp_wmem");
    let kernel_lines = (wmem_max + rcvbuf).div_ceil(LINE_BYTES);
    let needed = (kernel_lines + SEND_QUEUE_LINES + 1024) * 3 / 2;
    let total = needed.max(40_000).div_ceil(BATCH) * BATCH;
    println!(
        "flooding {total} lines (tcp_wmem max {wmem_max}, stalled rcvbuf {rcvbuf}, \
         {kernel_lines} lines of kernel buffers)"
    );

    // The good client is read concurrently; it reports each batch marker.
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<usize>();
    let reader = tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let Some(m) = good.recv().await else {
                panic!(
                    "[{}] the reading client was disconnected during the flood \
                     after {next} lines\n{}",
                    good.label(),
                    good.transcript()
                );
            };
            if m.command != "PRIVMSG" || m.param(0) != Some("#flood") {
                continue;
            }
            let text = m.param(1).unwrap_or_default();
            if let Some(batch) = text.strip_prefix("flood-mark-") {
                let batch: usize = batch.parse().expect("marker number");
                assert_eq!(
                    next,
                    (batch + 1) * BATCH,
                    "[{}] lines missing before marker {batch}",
                    good.label()
                );
                let _ = progress_tx.send(batch);
                continue;
            }
            if text == "flood-end" {
                return (good, next);
            }
            let i: usize = text
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line in #flood: {m}"));
            assert_eq!(
                i,
                next,
                "[{}] flood lines out of order or missing",
                good.label()
            );
            next += 1;
        }
    });

    for batch in 0..total / BATCH {
        let mut bytes = Vec::with_capacity((BATCH + 1) * (LINE_BYTES + 2));
        for i in batch * BATCH..(batch + 1) * BATCH {
            bytes.extend_from_slice(flood_line(i).as_bytes());
        }
        bytes.extend_from_slice(
            format!(":bob!b@h.example PRIVMSG #flood :flood-mark-{batch}\r\n").as_bytes(),
        );
        s.conn.send_raw(&bytes).await;
        match timeout(TIMEOUT, progress_rx.recv()).await {
            Ok(Some(b)) => assert_eq!(b, batch, "markers out of order"),
            Ok(None) => {
                // The reader panicked; surface its message.
                match reader.await {
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    other => panic!("reader ended early: {:?}", other.map(|_| ())),
                }
            }
            Err(_) => panic!(
                "the reading client did not get flood batch {batch} within {TIMEOUT:?}\n{}",
                s.conn.transcript()
            ),
        }
    }
    s.conn
        .send(":bob!b@h.example PRIVMSG #flood :flood-end")
        .await;
    let (mut good, received) = match timeout(TIMEOUT, reader).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("reader task failed: {e}"),
        Err(_) => panic!("the reading client did not get the end of the flood"),
    };
    assert_eq!(received, total, "the reading client lost lines");
    // Still connected and served.
    good.sync().await;
    s.conn.sync().await;

    // Now drain the stalled client: it must have been cut off.
    let rest = stalled.expect_eof().await;
    let flood_seen = rest
        .iter()
        .filter(|m| m.command == "PRIVMSG" && m.param(0) == Some("#flood"))
        .count();
    assert!(
        !rest.iter().any(|m| is_privmsg(m, "#flood", "flood-end")),
        "the stalled client got the whole flood ({flood_seen} lines): it was never disconnected"
    );
    assert!(
        flood_seen < total,
        "the stalled client got all {total} flood lines"
    );
    if let Some(pos) = rest.iter().position(|m| m.command == "ERROR") {
        assert_eq!(
            pos,
            rest.len() - 1,
            "ERROR must be the last line sent to the stalled client: {}",
            rest[pos]
        );
        let text = rest[pos].param(0).unwrap_or_default();
        assert!(
            text.starts_with("Send queue full"),
            "unexpected ERROR for the stalled client: {}",
            rest[pos]
        );
    }
    println!(
        "stalled client read {flood_seen} flood lines before EOF (ERROR sent: {})",
        rest.iter().any(|m| m.command == "ERROR")
    );
}
