//! History: backlog replay per client name, delivery cursors across
//! reconnects, read markers, search, and detached channels.

use crate::harness::*;
use crate::support::*;
use tether::proto::Message;

const BACKLOG_CAPS: &[&str] = &["batch", "server-time", "message-tags"];

/// A client of alice on `fake` named `name` that answers PINGs (so its
/// deliveries are confirmed, as with any real client).
async fn client(s: &Setup, name: &str, caps: &[&str]) -> TestClient {
    let mut c = s.client(name, caps).await;
    c.set_auto_pong(true);
    c
}

/// Channel PRIVMSG texts among `lines`, in order.
fn texts(lines: &[Message], channel: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|m| m.command == "PRIVMSG" && m.param(0).is_some_and(|t| irc_eq(t, channel)))
        .filter_map(|m| m.param(1).map(str::to_string))
        .collect()
}

/// Quit a client and wait until the bouncer has closed it.
async fn quit(mut c: TestClient) {
    c.send("QUIT").await;
    c.expect_eof().await;
}

/// Reconnect client `name` and check that nothing is replayed to it.
async fn reconnect_expecting_nothing(s: &Setup, name: &str) -> TestClient {
    let mut c = client(s, name, BACKLOG_CAPS).await;
    c.sync_expect_none("a message replayed twice", |m| m.command == "PRIVMSG")
        .await;
    c
}

/// Upstream says `texts` in `channel` as bob; `watcher` sees all of them.
async fn say(s: &mut Setup, watcher: &mut TestClient, channel: &str, lines: &[String]) {
    for text in lines {
        s.conn
            .send(&format!(":bob!b@h.example PRIVMSG {channel} :{text}"))
            .await;
    }
    if let Some(last) = lines.last() {
        watcher
            .expect("the last message", |m| is_privmsg(m, channel, last))
            .await;
    }
    watcher.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_name_gets_exactly_what_it_missed_once() {
    let mut s = Setup::new().await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    phone.sync().await;
    laptop.sync().await;
    s.join(&mut phone, "#chan", None, &["bob"]).await;
    expect_own_join(&mut laptop, &s.conn.nick.clone(), "#chan").await;
    say(&mut s, &mut phone, "#chan", &["seen by both".to_string()]).await;
    laptop
        .expect("first message", |m| is_privmsg(m, "#chan", "seen by both"))
        .await;
    laptop.sync().await;
    quit(laptop).await;

    let missed: Vec<String> = (0..25).map(|i| format!("missed {i}")).collect();
    say(&mut s, &mut phone, "#chan", &missed).await;

    // The laptop comes back: exactly the 25 it missed, in order, in a
    // chathistory batch with server-time.
    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    let lines = laptop.sync().await;
    assert_eq!(texts(&lines, "#chan"), missed, "{}", laptop.transcript());
    let batch = lines
        .iter()
        .find(|m| m.command == "BATCH" && m.param(1) == Some("chathistory"))
        .unwrap_or_else(|| panic!("no chathistory batch\n{}", laptop.transcript()));
    assert!(
        batch.param(2).is_some_and(|t| irc_eq(t, "#chan")),
        "{batch}"
    );
    for m in lines.iter().filter(|m| m.command == "PRIVMSG") {
        assert!(m.tag("time").is_some(), "server-time on replayed {m}");
        assert!(m.tag("batch").is_some(), "batch tag on replayed {m}");
    }
    // The phone, which saw them live, gets nothing again.
    phone
        .sync_expect_none("a replayed message", |m| m.command == "PRIVMSG")
        .await;
    quit(laptop).await;

    // Reconnecting again right away: nothing to replay.
    let laptop = reconnect_expecting_nothing(&s, "laptop").await;
    quit(laptop).await;
    reconnect_expecting_nothing(&s, "laptop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_name_gets_no_flood_and_a_client_without_batch_still_gets_backlog() {
    let mut s = Setup::new().await;
    let mut phone = client(&s, "phone", &[]).await;
    phone.sync().await;
    s.join(&mut phone, "#chan", None, &["bob"]).await;
    let old: Vec<String> = (0..5).map(|i| format!("old {i}")).collect();
    say(&mut s, &mut phone, "#chan", &old).await;

    // A client name never seen before starts at the end.
    let mut tablet = client(&s, "tablet", BACKLOG_CAPS).await;
    tablet
        .sync_expect_none("old history for a new client", |m| m.command == "PRIVMSG")
        .await;
    quit(tablet).await;

    // The phone (no batch, no server-time) misses two and gets them bare.
    quit(phone).await;
    let missed = vec!["one".to_string(), "two".to_string()];
    let mut tablet = client(&s, "tablet", BACKLOG_CAPS).await;
    tablet.sync().await;
    say(&mut s, &mut tablet, "#chan", &missed).await;
    let mut phone = client(&s, "phone", &[]).await;
    let lines = phone.sync().await;
    assert_eq!(texts(&lines, "#chan"), missed, "{}", phone.transcript());
    assert!(
        lines
            .iter()
            .all(|m| m.command != "BATCH" && m.tags.is_empty()),
        "no batch or tags for a client without caps\n{}",
        phone.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_messages_are_replayed_under_the_peer() {
    let mut s = Setup::new().await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    phone.sync().await;
    quit(phone).await;
    let me = s.conn.nick.clone();
    s.conn
        .send(&format!(":carol!c@h.example PRIVMSG {me} :are you there?"))
        .await;
    s.conn.sync().await;
    let mut watcher = client(&s, "watcher", BACKLOG_CAPS).await;
    watcher.sync().await;
    s.conn
        .send(&format!(":carol!c@h.example PRIVMSG {me} :hello?"))
        .await;
    watcher
        .expect("carol's second message", |m| is_privmsg(m, &me, "hello?"))
        .await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    let lines = phone.sync().await;
    let got: Vec<&str> = lines
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(got, ["are you there?", "hello?"], "{}", phone.transcript());
    let batch = lines
        .iter()
        .find(|m| m.command == "BATCH")
        .unwrap_or_else(|| panic!("no batch\n{}", phone.transcript()));
    assert!(
        batch.param(2).is_some_and(|t| irc_eq(t, "carol")),
        "{batch}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_marker_is_shared_and_never_moves_back() {
    let mut s = Setup::new().await;
    let caps = ["draft/read-marker", "server-time"];
    let mut a = client(&s, "a", &caps).await;
    let mut b = client(&s, "b", &["soju.im/read"]).await;
    a.sync().await;
    b.sync().await;
    a.send("JOIN #chan").await;
    s.conn.expect_join("#chan", None, &["bob"]).await;
    // After the JOIN comes the (unset) marker.
    let m = a.expect_cmd("MARKREAD").await;
    assert_eq!(m.params, ["#chan", "*"], "{m}");
    let m = b.expect_cmd("READ").await;
    assert_eq!(m.params, ["#chan", "*"], "{m}");

    let t1 = "2026-01-02T03:04:05.678Z";
    a.send(&format!("MARKREAD #chan timestamp={t1}")).await;
    let m = a.expect_cmd("MARKREAD").await;
    assert_eq!(m.params, ["#chan", &format!("timestamp={t1}")], "{m}");
    let m = b.expect_cmd("READ").await;
    assert_eq!(m.params, ["#chan", &format!("timestamp={t1}")], "{m}");

    // An older marker does not move it back; the sender learns the newer.
    b.send("READ #chan timestamp=2025-01-01T00:00:00.000Z")
        .await;
    let m = b.expect_cmd("READ").await;
    assert_eq!(m.params, ["#chan", &format!("timestamp={t1}")], "{m}");
    a.sync_expect_none("a marker moved back", |m| m.command == "MARKREAD")
        .await;

    // Asking returns the marker; it is part of the burst after JOIN.
    a.send("MARKREAD #CHAN").await;
    let m = a.expect_cmd("MARKREAD").await;
    assert_eq!(m.param(1), Some(format!("timestamp={t1}").as_str()), "{m}");
    let mut c = client(&s, "c", &caps).await;
    let lines = c.sync().await;
    let join = lines.iter().position(|m| m.command == "JOIN");
    let marker = lines.iter().position(|m| m.command == "MARKREAD");
    let names_end = lines.iter().position(|m| m.command == "366");
    assert!(
        join < marker && marker < names_end && join.is_some(),
        "MARKREAD between JOIN and 366\n{}",
        c.transcript()
    );
    assert_eq!(
        lines[marker.unwrap_or(0)].param(1),
        Some(format!("timestamp={t1}").as_str())
    );

    // Errors.
    a.send("MARKREAD").await;
    let m = a.expect_cmd("FAIL").await;
    assert_eq!(m.param(1), Some("NEED_MORE_PARAMS"), "{m}");
    a.send("MARKREAD #chan timestamp=yesterday").await;
    let m = a.expect_cmd("FAIL").await;
    assert_eq!(m.param(1), Some("INVALID_PARAMS"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_messages_by_word_and_by_sender() {
    let mut s = Setup::new().await;
    let mut c = client(
        &s,
        "phone",
        &["batch", "server-time", "message-tags", "soju.im/search"],
    )
    .await;
    c.sync().await;
    s.join(&mut c, "#chan", None, &["bob", "dave"]).await;
    for (who, text) in [
        ("bob", "the quick brown fox"),
        ("dave", "a lazy dog sleeps"),
        ("bob", "another \x02fox\x02 appears"),
        ("dave", "nothing to see"),
    ] {
        s.conn
            .send(&format!(":{who}!u@h.example PRIVMSG #chan :{text}"))
            .await;
    }
    c.expect("last message", |m| is_privmsg(m, "#chan", "nothing to see"))
        .await;
    c.sync().await;

    let lines =
        send_until_batch_end(&mut c, "SEARCH in=#chan;text=fox", "end of search batch").await;
    let found: Vec<&str> = lines
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(
        found,
        ["the quick brown fox", "another \x02fox\x02 appears"]
    );
    assert!(
        lines
            .iter()
            .any(|m| m.command == "BATCH" && m.param(1) == Some("soju.im/search")),
        "{}",
        c.transcript()
    );

    let lines = send_until_batch_end(&mut c, "SEARCH from=dave", "end of search batch").await;
    let found: Vec<&str> = lines
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(found, ["a lazy dog sleeps", "nothing to see"]);

    c.send("SEARCH bogus=1").await;
    let m = c.expect_cmd("FAIL").await;
    assert_eq!(m.param(1), Some("INVALID_PARAMS"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_channel_is_hidden_then_reattached_with_what_was_missed() {
    let mut s = Setup::new().await;
    let mut c = client(&s, "phone", BACKLOG_CAPS).await;
    c.sync().await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();

    c.send("PART #chan :detach").await;
    let part = c.expect_cmd("PART").await;
    assert_eq!(part.param(0), Some("#chan"), "{part}");
    // The upstream stays joined: no PART goes out.
    s.conn
        .sync_expect_none("PART sent upstream", |m| m.command == "PART")
        .await;

    let missed: Vec<String> = (0..3).map(|i| format!("while detached {i}")).collect();
    for t in &missed {
        s.conn
            .send(&format!(":bob!b@h.example PRIVMSG #chan :{t}"))
            .await;
    }
    s.conn.sync().await;
    c.sync_expect_none("a message of a detached channel", |m| {
        m.command == "PRIVMSG"
    })
    .await;

    // Not in the burst of a new connection either.
    let mut other = client(&s, "other", BACKLOG_CAPS).await;
    other
        .sync_expect_none("a detached channel in the burst", |m| m.command == "JOIN")
        .await;

    // JOIN reattaches without a JOIN upstream, and replays the missed lines.
    c.send("JOIN #chan").await;
    let lines = collect_until(&mut c, "end of NAMES", |m| m.command == "366").await;
    assert!(
        lines
            .iter()
            .any(|m| m.command == "JOIN" && m.source_nick().is_some_and(|n| irc_eq(n, &nick))),
        "{}",
        c.transcript()
    );
    let lines = c.sync().await;
    assert_eq!(texts(&lines, "#chan"), missed, "{}", c.transcript());
    s.conn
        .sync_expect_none("JOIN sent upstream for an attached channel", |m| {
            m.command == "JOIN"
        })
        .await;
    let status = s
        .tether
        .admin_ok("user run alice channel status -network fake")
        .await;
    assert!(
        status
            .iter()
            .any(|l| l.contains("#chan") && !l.contains("detached")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_detached_highlight_sends_a_notice_for_highlights_only() {
    let mut s = Setup::new().await;
    let mut c = client(&s, "phone", BACKLOG_CAPS).await;
    c.sync().await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    service_command(
        &mut c,
        "channel update #chan -detached true -relay-detached highlight",
    )
    .await;
    c.expect_cmd("PART").await;
    expect_service_line(&mut c, "update confirmation", |l| l.contains("detached")).await;

    s.conn
        .send(":bob!b@h.example PRIVMSG #chan :no mention here")
        .await;
    s.conn
        .send(&format!(":bob!b@h.example PRIVMSG #chan :hey {nick}, look"))
        .await;
    s.conn
        .send(&format!(
            ":bob!b@h.example PRIVMSG #chan :{nick}ish is not a mention"
        ))
        .await;
    s.conn.sync().await;
    let lines = c.sync().await;
    let notices: Vec<&str> = lines
        .iter()
        .filter(|m| m.command == "NOTICE" && m.source.as_deref() == Some(SERVICE_SOURCE))
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(
        notices,
        [format!("highlight in #chan: <bob> hey {nick}, look").as_str()],
        "{}",
        c.transcript()
    );
    assert!(
        lines.iter().all(|m| m.command != "PRIVMSG"),
        "{}",
        c.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_after_detaches_an_idle_channel() {
    let mut s = Setup::new().await;
    let mut c = client(&s, "phone", BACKLOG_CAPS).await;
    c.sync().await;
    s.join(&mut c, "#quiet", None, &["bob"]).await;
    service_command(&mut c, "channel update #quiet -detach-after 300ms").await;
    // Nothing happens in the channel: the timer detaches it.
    let part = c.expect_cmd("PART").await;
    assert_eq!(part.params, ["#quiet", "Detach"], "{part}");
    s.conn
        .sync_expect_none("PART sent upstream", |m| m.command == "PART")
        .await;
    let status = s
        .tether
        .admin_ok("user run alice channel status -network fake")
        .await;
    assert!(
        status
            .iter()
            .any(|l| l.contains("#quiet") && l.contains("detached,")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_expired_messages_and_nothing_else() {
    let mut s = Setup::new().await;
    let mut c = s.client("web", HISTORY_CAPS).await;
    c.sync().await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    let recent = tether::proto::time::format_millis(tether::proto::time::now_millis() - 3_600_000);
    for (time, text) in [
        ("2020-01-01T00:00:00.000Z", "ancient"),
        ("2021-06-01T00:00:00.000Z", "old"),
        (recent.as_str(), "recent"),
    ] {
        s.conn
            .send(&format!(
                "@time={time} :bob!b@h.example PRIVMSG #chan :{text}"
            ))
            .await;
    }
    c.expect("the recent message", |m| is_privmsg(m, "#chan", "recent"))
        .await;
    c.sync().await;

    // Restart with a 30-day expiry: the job runs before clients are let in.
    let s = s.restart_with("message-expiry 30d\n").await;
    let mut c = s.client("web", HISTORY_CAPS).await;
    c.sync().await;
    let lines = send_until_batch_end(
        &mut c,
        "CHATHISTORY LATEST #chan * 100",
        "end of the history batch",
    )
    .await;
    assert_eq!(texts(&lines, "#chan"), ["recent"], "{}", c.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_channel_is_rejoined_upstream_but_stays_hidden_after_a_reconnect() {
    let mut s = Setup::new().await;
    let mut c = client(&s, "phone", BACKLOG_CAPS).await;
    c.sync().await;
    s.join(&mut c, "#hidden", Some("secret topic"), &["bob"])
        .await;
    c.send("PART #hidden :detach").await;
    c.expect_cmd("PART").await;
    c.sync().await;

    // The link drops; tether reconnects and rejoins the detached channel.
    s.conn.send("ERROR :Closing link").await;
    s.conn.shutdown_write().await;
    let mut conn = s.fake.accept().await;
    conn.expect_join("#hidden", Some("secret topic"), &["bob"])
        .await;
    conn.sync().await;
    let lines = c.sync().await;
    assert!(
        lines
            .iter()
            .all(|m| !m.params.iter().any(|p| irc_eq(p, "#hidden"))),
        "the detached channel showed up after the reconnect\n{}",
        c.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_replays_from_the_rings() {
    let mut s = Setup::with_config("message-store memory\n").await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    phone.sync().await;
    laptop.sync().await;
    s.join(&mut phone, "#chan", None, &["bob"]).await;
    laptop.sync().await;
    quit(laptop).await;
    let missed: Vec<String> = (0..4).map(|i| format!("mem {i}")).collect();
    say(&mut s, &mut phone, "#chan", &missed).await;
    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    let lines = laptop.sync().await;
    assert_eq!(texts(&lines, "#chan"), missed, "{}", laptop.transcript());
    quit(laptop).await;
    reconnect_expecting_nothing(&s, "laptop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_update_rejects_bad_values() {
    let mut s = Setup::new().await;
    let mut c = client(&s, "phone", &[]).await;
    c.sync().await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    for (line, want) in [
        ("channel update #nowhere -detached true", "unknown channel"),
        (
            "channel update #chan -relay-detached loud",
            "invalid -relay-detached",
        ),
        (
            "channel update #chan -detach-after -5m",
            "invalid -detach-after",
        ),
        (
            "channel update #chan -detach-after soon",
            "invalid -detach-after",
        ),
    ] {
        service_command(&mut c, line).await;
        let reply = expect_service_line(&mut c, line, |l| l.starts_with("error")).await;
        assert!(reply.contains(want), "{line}: {reply}");
    }
    // Nothing was changed.
    let status = s
        .tether
        .admin_ok("user run alice channel status -network fake")
        .await;
    assert!(status.iter().any(|l| l == "#chan [joined]"), "{status:?}");
}

/// Regression: a backlog larger than a client's send queue (2048 lines)
/// used to be queued all at once and the client disconnected for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_send_queue_streams_to_the_client() {
    let mut s = Setup::new().await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    phone.sync().await;
    laptop.sync().await;
    s.join(&mut phone, "#big", None, &["bob"]).await;
    laptop.sync().await;
    quit(laptop).await;

    const N: usize = 3000;
    let mut bytes = Vec::new();
    for i in 0..N {
        bytes.extend_from_slice(format!(":bob!b@h.example PRIVMSG #big :big {i}\r\n").as_bytes());
    }
    s.conn.send_raw(&bytes).await;
    let last = format!("big {}", N - 1);
    phone
        .expect("the last message", |m| is_privmsg(m, "#big", &last))
        .await;
    phone.sync().await;

    let mut laptop = client(&s, "laptop", BACKLOG_CAPS).await;
    let lines = laptop.sync().await;
    let want: Vec<String> = (0..N).map(|i| format!("big {i}")).collect();
    assert_eq!(texts(&lines, "#big"), want, "{}", laptop.transcript());
}

/// Delivery probes to one client are spaced out, but the client's own PING
/// brings its probe at once, ahead of the PONG: a client whose ping has
/// been answered has had everything before it confirmed, and reconnecting
/// replays none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_brings_the_delivery_probe_before_its_pong() {
    let mut s = Setup::new().await;
    let mut phone = client(&s, "phone", BACKLOG_CAPS).await;
    phone.sync().await;
    s.join(&mut phone, "#chan", None, &["bob"]).await;
    say(&mut s, &mut phone, "#chan", &["first".to_string()]).await;

    // A probe was answered just now (during the sync), so the probe for
    // this message waits for its spacing; the PING must not.
    s.conn.send(":bob!b@h.example PRIVMSG #chan :second").await;
    phone
        .expect("the second message", |m| is_privmsg(m, "#chan", "second"))
        .await;
    phone.set_auto_pong(false);
    phone.send("PING :mine").await;
    let mut probe = None;
    loop {
        let m = phone.recv().await.expect("connection open");
        if m.command == "PING" {
            probe = m.params.last().cloned();
            continue;
        }
        if m.command == "PONG" && m.params.last().map(String::as_str) == Some("mine") {
            break;
        }
    }
    let probe = probe.unwrap_or_else(|| panic!("no probe before the PONG\n{}", phone.transcript()));
    assert!(probe.starts_with("tether-ack-"), "{probe}");
    phone.send(&format!("PONG :{probe}")).await;
    phone.set_auto_pong(true);
    phone.sync().await;
    quit(phone).await;
    reconnect_expecting_nothing(&s, "phone").await;
}
