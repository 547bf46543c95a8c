//! Malformed client input is answered with an error and not relayed; the
//! connection stays usable.

use crate::harness::*;
use crate::support::*;

/// After bad input, a good message must be the first PRIVMSG the upstream
/// sees (so the bad one was not relayed), and the client is still served.
async fn good_message_still_relayed(s: &mut Setup, c: &mut TestClient, text: &str) {
    c.send(&format!("PRIVMSG #chan :{text}")).await;
    let up = s
        .conn
        .expect("the next PRIVMSG", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(
        up.params,
        ["#chan", text],
        "the upstream got something else first (bad input relayed?): {up}\n{}",
        s.conn.transcript()
    );
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_line_gets_417_and_connection_is_kept() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &[]).await;

    let long = format!("PRIVMSG #chan :{}", "a".repeat(8000));
    c.send(&long).await;
    let m = c.expect_cmd("417").await;
    assert!(
        m.param(0).is_some_and(|n| irc_eq(n, &c.nick)),
        "417 should be addressed to {}: {m}",
        c.nick
    );
    assert_eq!(
        m.params.last().map(String::as_str),
        Some("Input line was too long"),
        "{m}"
    );
    c.sync().await;
    good_message_still_relayed(&mut s, &mut c, "after the long line").await;

    // Also with a huge tag section (tags + body over 4096+512 bytes).
    let tagged = format!("@+x={} PRIVMSG #chan :tagged", "b".repeat(9000));
    c.send(&tagged).await;
    c.expect_cmd("417").await;
    c.sync().await;
    good_message_still_relayed(&mut s, &mut c, "after the long tags").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_gets_fail_and_connection_is_kept() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &[]).await;

    c.send_raw(b"PRIVMSG #chan :caf\xe9 \xff\xfe broken\r\n")
        .await;
    let m = c.expect_cmd("FAIL").await;
    assert_eq!(m.param(0), Some("PRIVMSG"), "FAIL names the command: {m}");
    assert_eq!(m.param(1), Some("INVALID_UTF8"), "FAIL code: {m}");
    c.sync().await;
    good_message_still_relayed(&mut s, &mut c, "after the bad bytes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_in_a_row_do_not_break_the_connection() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &[]).await;

    for _ in 0..3 {
        c.send_raw(b"PRIVMSG #chan :\xc3\x28\r\n").await;
        c.send(&format!("PRIVMSG #chan :{}", "z".repeat(6000)))
            .await;
    }
    // Count the answers (each wait bounded by TIMEOUT); no answer may be
    // lost or turned into a disconnection.
    let mut fails = 0;
    let mut too_long = 0;
    while fails < 3 || too_long < 3 {
        let Some(m) = c.recv().await else {
            panic!(
                "[{}] disconnected by bad input\n{}",
                c.label(),
                c.transcript()
            );
        };
        match m.command.as_str() {
            "FAIL" => fails += 1,
            "417" => too_long += 1,
            _ => {}
        }
    }
    c.sync_expect_none("extra error replies", |m| {
        matches!(m.command.as_str(), "FAIL" | "417")
    })
    .await;
    good_message_still_relayed(&mut s, &mut c, "still alive").await;
}

/// Junk from the server (lines that are not messages, an over-long line,
/// invalid UTF-8) is skipped; the link and the clients carry on.
#[tokio::test]
async fn junk_from_the_server_is_skipped_and_the_link_survives() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.conn.send(":only-a-source").await;
    s.conn.send("@tags-only").await;
    s.conn
        .send_raw(b":bob!b@h PRIVMSG alice :caf\xe9\r\n")
        .await;
    let huge = format!(":bob!b@h PRIVMSG alice :{}", "x".repeat(9000));
    s.conn.send(&huge).await;
    s.conn.send(":bob!b@h PRIVMSG alice :still here").await;
    s.conn.sync().await;
    let lossy = c.expect_cmd("PRIVMSG").await;
    assert_eq!(lossy.param(1), Some("caf\u{fffd}"), "{}", c.transcript());
    let next = c.expect_cmd("PRIVMSG").await;
    assert_eq!(
        next.param(1),
        Some("still here"),
        "the over-long line was skipped: {}",
        c.transcript()
    );
    c.sync().await;
}
