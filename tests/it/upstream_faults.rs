//! Faults of the upstream server: a link that goes silent, garbage and
//! over-long lines, a burst of 100,000 lines, connections dropped in the
//! middle of registration and a NAMES reply of 5,000 members. Each test
//! shows that the connection (or its replacement) keeps working and that
//! nothing reaching the bouncer is lost. The plain reconnect cases are in
//! `reconnect.rs`.

use std::time::Duration;

use crate::harness::*;
use crate::support::*;

/// The texts of the PRIVMSGs in the batch answering a CHATHISTORY command.
async fn history_texts(c: &mut TestClient, line: &str) -> Vec<String> {
    let (_, lines) = batch_reply(c, line).await;
    lines
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .map(|m| m.params.last().cloned().unwrap_or_default())
        .collect()
}

/// The id of alice's only network.
async fn alice_network_id(t: &Tether) -> i64 {
    let db = &t.server().shared().db;
    let user = db
        .get_user("alice")
        .await
        .expect("reading the user")
        .expect("alice exists");
    let nets = db.list_networks(user.id).await.expect("listing networks");
    assert_eq!(nets.len(), 1, "{nets:?}");
    nets[0].id
}

/// A server that stops answering is found dead by the liveness probe; the
/// client is told, tether reconnects and rejoins, and the history from
/// before the silence is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_is_replaced_and_channels_and_history_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tether = Tether::start_adjusted(dir, "", |config| {
        config.upstream_liveness = tether::config::Liveness {
            idle_probe: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(1),
        };
    })
    .await;
    tether.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut conn = tether.create_network("alice", "fake", &fake).await;
    // Until the silence starts, probes are answered whenever the fake
    // server reads.
    conn.set_auto_pong(true);
    // The fake server keeps reading (and answering probes) while the
    // client registers, however long that takes.
    let mut c = {
        let connect =
            tether.connect_client("alice", Some("fake"), Some("phone"), "alice", HISTORY_CAPS);
        tokio::pin!(connect);
        loop {
            tokio::select! {
                c = &mut connect => break c,
                m = conn.recv() => assert!(m.is_some(), "{}", conn.transcript()),
            }
        }
    };
    c.send("JOIN #chan").await;
    conn.expect_join("#chan", Some("topic"), &["bob"]).await;
    expect_own_join(&mut c, &conn.nick, "#chan").await;
    conn.send(":bob!b@h.example PRIVMSG #chan :before the silence")
        .await;
    c.expect("the message before the silence", |m| {
        is_privmsg(m, "#chan", "before the silence")
    })
    .await;
    c.sync().await;

    // Silence: the probe is read but not answered.
    conn.set_auto_pong(false);
    let probe = conn.expect_cmd("PING").await;
    assert!(!probe.params.is_empty(), "{}", conn.transcript());
    let mut again = fake.accept().await;
    let join = again.expect_join("#chan", Some("topic"), &["bob"]).await;
    assert_eq!(join.param(0), Some("#chan"), "{join}");
    // The dead link was closed by tether, not left open.
    expect_quit_or_close(&mut conn).await;

    c.expect("notice of the lost link", |m| {
        is_service_notice(m, "disconnected from fake: ping timeout")
    })
    .await;
    c.expect("notice of the new link", |m| {
        is_service_notice(m, "connected to fake")
    })
    .await;
    again.sync().await;
    again
        .send(":bob!b@h.example PRIVMSG #chan :after the reconnect")
        .await;
    c.expect("the message after the reconnect", |m| {
        is_privmsg(m, "#chan", "after the reconnect")
    })
    .await;
    let texts = history_texts(&mut c, "CHATHISTORY LATEST #chan * 10").await;
    assert_eq!(
        texts,
        ["before the silence", "after the reconnect"],
        "{}",
        c.transcript()
    );
    c.sync().await;
}

/// Junk from the server is skipped line by line: the link stays up, and the
/// next valid message reaches the client and the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_over_long_lines_from_the_server_are_skipped() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", HISTORY_CAPS).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    c.sync().await;

    // Binary junk, including NUL and bytes that are not UTF-8.
    s.conn
        .send_raw(b"\x00\x01\x02\xff\xfe\x80 junk \x1b[31m\r\n\xc3\x28\xa0\xa1\r\n")
        .await;
    // Invalid UTF-8 inside a real message: decoded lossily, never passed
    // on as invalid bytes (the client's reader would fail on them).
    s.conn
        .send_raw(b":bob!b@h.example PRIVMSG #chan :caf\xe9 \xff\r\n")
        .await;
    // 100 KB without a line ending, arriving in pieces, then its end.
    let chunk = vec![b'x'; 10 * 1024];
    for _ in 0..10 {
        s.conn.send_raw(&chunk).await;
    }
    s.conn.send_raw(b"\r\n").await;
    // An over-long line arriving whole, a valid line glued behind it.
    let mut whole = vec![b'@'; 9000];
    whole.extend_from_slice(b" PRIVMSG #chan :swallowed\r\n");
    whole.extend_from_slice(b":bob!b@h.example PRIVMSG #chan :after the long lines\r\n");
    s.conn.send_raw(&whole).await;
    // Malformed tags and prefixes, blank and space-only lines.
    for line in [
        "@",
        "@ ",
        "@a=b",
        "@=;=;; PRIVMSG #chan :empty tag names",
        "@+x=\\ :bob!b@h.example PRIVMSG #chan :trailing escape",
        ":",
        ": PRIVMSG #chan :empty source",
        ":irc.fake",
        "     ",
        " \t ",
        "",
    ] {
        s.conn.send_raw(format!("{line}\r\n").as_bytes()).await;
    }
    // Commands and numerics without the parameters they need.
    let sn = s.conn.server_name.clone();
    for cmd in [
        "001", "005", "221", "301", "311", "324", "329", "332", "333", "352", "353", "354", "366",
        "401", "432", "433", "442", "471", "473", "900", "903", "904", "ACCOUNT", "AWAY", "BATCH",
        "CAP", "CHGHOST", "FAIL", "INVITE", "JOIN", "KICK", "MODE", "NICK", "NOTICE", "PART",
        "PRIVMSG", "SETNAME", "TAGMSG", "TOPIC",
    ] {
        s.conn.send(&format!(":{sn} {cmd}")).await;
        s.conn.send(&format!(":bob!b@h.example {cmd}")).await;
    }
    // A second welcome on the same connection.
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(":{sn} 001 {nick} :Welcome again"))
        .await;
    // Everything above has been read: tether answers this PING after it.
    s.conn.sync().await;

    s.conn
        .send(":bob!b@h.example PRIVMSG #chan :still here")
        .await;
    let seen = collect_until(&mut c, "the valid message", |m| {
        is_privmsg(m, "#chan", "still here")
    })
    .await;
    // Only the usable messages got through; nothing else (a numeric
    // without a target, a message without a source, a second welcome).
    let texts: Vec<&str> = seen
        .iter()
        .map(|m| {
            assert!(
                m.command == "PRIVMSG" && m.source_nick() == Some("bob"),
                "a broken server message reached the client: {m}"
            );
            m.param(1).unwrap_or_default()
        })
        .collect();
    assert_eq!(
        texts,
        [
            "caf\u{fffd} \u{fffd}",
            "after the long lines",
            "trailing escape",
            "still here"
        ],
        "{}",
        c.transcript()
    );
    c.sync().await;

    let stored = history_texts(&mut c, "CHATHISTORY LATEST #chan * 50").await;
    assert_eq!(
        stored,
        [
            "caf\u{fffd} \u{fffd}",
            "after the long lines",
            "trailing escape",
            "still here"
        ],
        "nothing else was stored"
    );
    let status = s.tether.network_status("alice").await;
    assert!(status[0].contains("connected as"), "{status:?}");
}

/// How many PRIVMSGs the burst test sends back to back: 100,000 (about
/// 6 s in a debug build once the store indexed batches instead of rows;
/// 11 s before). Without flow control the client was dropped after about
/// 7,700 of them.
const BURST_LINES: usize = 100_000;
/// The burst is written in chunks of this many lines, each within the
/// harness's 10 s limit for one write; nothing is read from tether in
/// between, so to tether it is one burst.
const BURST_CHUNK: usize = 20_000;
/// Padding of each burst line; 100,000 lines of this size are several
/// megabytes, far beyond the socket buffers and the client queue.
const BURST_PAD: usize = 20;

fn burst_text(i: usize) -> String {
    format!("line {i} {}", "x".repeat(BURST_PAD))
}

/// A burst in one write, several times what the socket buffers and the
/// client's send queue hold: every line reaches the attached client, in
/// order (tether stops reading the server while the client catches up,
/// instead of dropping it), and is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_100000_lines_reaches_the_client_in_order_and_is_stored() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", HISTORY_CAPS).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    c.sync().await;
    let net_id = alice_network_id(&s.tether).await;
    let db = s.tether.server().shared().db.clone();
    let before = db.max_seq(net_id).await.expect("max_seq");

    let chunks: Vec<Vec<u8>> = (0..BURST_LINES)
        .collect::<Vec<_>>()
        .chunks(BURST_CHUNK)
        .map(|lines| {
            let mut chunk = Vec::with_capacity(lines.len() * (BURST_PAD + 48));
            for i in lines {
                chunk.extend_from_slice(
                    format!(":bob!b@h.example PRIVMSG #chan :{}\r\n", burst_text(*i)).as_bytes(),
                );
            }
            chunk
        })
        .collect();
    // The client reads while the server writes.
    let write = async {
        for chunk in &chunks {
            s.conn.send_raw(chunk).await;
        }
    };
    let read = async {
        let mut next = 0usize;
        while next < BURST_LINES {
            let Some(m) = c.recv().await else {
                panic!("client EOF after {next} lines\n{}", c.transcript());
            };
            if m.command != "PRIVMSG" {
                continue;
            }
            assert!(
                m.param(1) == Some(burst_text(next).as_str()),
                "out of order or lost, expected line {next}: {m}\n{}",
                c.transcript()
            );
            next += 1;
        }
        next
    };
    let ((), received) = tokio::join!(write, read);
    assert_eq!(received, BURST_LINES);
    c.sync().await;

    // Relaying waits for the store, so everything received is committed.
    let after = db.max_seq(net_id).await.expect("max_seq");
    assert_eq!(after - before, BURST_LINES as i64, "stored lines");
    let last = history_texts(&mut c, "CHATHISTORY LATEST #chan * 2").await;
    assert_eq!(
        last,
        [burst_text(BURST_LINES - 2), burst_text(BURST_LINES - 1)]
    );
    let first = history_texts(
        &mut c,
        "CHATHISTORY AFTER #chan timestamp=1970-01-01T00:00:00.000Z 1",
    )
    .await;
    assert_eq!(first, [burst_text(0)]);
    s.conn.sync().await;
}

/// Reads the connection until the bouncer has sent both NICK and USER.
async fn expect_nick_and_user(conn: &mut IrcStream) {
    let mut nick = false;
    let mut user = false;
    while !(nick && user) {
        let m = conn
            .expect("NICK and USER", |m| {
                m.command == "NICK" || m.command == "USER"
            })
            .await;
        nick |= m.command == "NICK";
        user |= m.command == "USER";
    }
}

/// The server drops the connection after NICK/USER (before 001), then again
/// during capability negotiation (after CAP LS, before CAP END): tether
/// keeps retrying, with a backoff, and registers on the third connection;
/// the attached client sees the network come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_registration_is_retried_until_registered() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let uri = format!("irc+insecure://{}", fake.addr);
    let (created, mut first) = tokio::join!(
        t.create_network_at("alice", "fake", &uri, &[]),
        fake.accept_raw()
    );
    created.expect("network created");
    let mut c = t
        .connect_client("alice", Some("fake"), Some("phone"), "alice", &[])
        .await;
    c.sync().await;

    expect_nick_and_user(&mut first).await;
    drop(first);

    let mut second = fake.accept_raw().await;
    let ls = second
        .expect("CAP LS", |m| {
            m.command == "CAP" && m.param(0).is_some_and(|s| s.eq_ignore_ascii_case("LS"))
        })
        .await;
    assert!(!ls.params.is_empty(), "{ls}");
    second.send(":irc.fake CAP * LS :message-tags").await;
    second
        .expect("CAP REQ", |m| {
            m.command == "CAP" && m.param(0).is_some_and(|s| s.eq_ignore_ascii_case("REQ"))
        })
        .await;
    drop(second);

    // The third attempt comes after a backoff of a few seconds, within the
    // harness timeout.
    let mut conn = fake.accept().await;
    assert_eq!(conn.nick, "alice", "{}", conn.transcript());
    assert!(
        conn.caps.iter().any(|c| c == "message-tags"),
        "{}",
        conn.transcript()
    );
    conn.sync().await;
    c.expect("notice that the network is up", |m| {
        is_service_notice(m, "connected to fake")
    })
    .await;
    let status = t.network_status("alice").await;
    assert!(status[0].contains("connected as alice"), "{status:?}");

    // And the link works.
    c.send("JOIN #chan").await;
    conn.expect_join("#chan", None, &[]).await;
    expect_own_join(&mut c, &conn.nick, "#chan").await;
    c.sync().await;
}

/// Members of the NAMES flood.
const FLOOD_MEMBERS: usize = 5000;

fn flood_member(i: usize) -> String {
    let prefix = match i % 50 {
        0 => "@",
        1..=5 => "+",
        _ => "",
    };
    format!("{prefix}member{i:05}")
}

/// The 353 entries of a NAMES reply read from `client` up to its 366.
async fn read_names(client: &mut TestClient, channel: &str) -> Vec<String> {
    let lines = collect_until(client, &format!("366 for {channel}"), |m| {
        m.command == "366" && m.param(1) == Some(channel)
    })
    .await;
    let mut names = Vec::new();
    for m in lines.iter().filter(|m| m.command == "353") {
        assert_eq!(m.param(2), Some(channel), "{m}");
        let line = m.to_string();
        assert!(line.len() + 2 <= 512, "{} bytes: {line}", line.len() + 2);
        names.extend(
            m.params
                .last()
                .map(String::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string),
        );
    }
    names
}

fn assert_flood_names(names: &[String], own: &str) {
    let mut want: Vec<String> = (0..FLOOD_MEMBERS).map(flood_member).collect();
    want.push(format!("@{own}"));
    want.sort();
    let mut got = names.to_vec();
    got.sort();
    assert_eq!(got.len(), want.len(), "member count");
    assert!(got == want, "member lists differ");
}

/// A channel of 5,000 members: tracked whole, answered and replayed in
/// lines that fit in 512 bytes, and the client stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_flood_of_5000_members_is_tracked_and_replayed() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
    c.send("JOIN #big").await;
    s.conn.expect("JOIN #big", |m| m.command == "JOIN").await;
    let (sn, nick, mask) = (
        s.conn.server_name.clone(),
        s.conn.nick.clone(),
        s.conn.hostmask(),
    );
    s.conn.send(&format!(":{mask} JOIN #big")).await;
    // Split like a server: as many names as fit in a 512-byte line.
    let head = format!(":{sn} 353 {nick} = #big :");
    let mut entries: Vec<String> = (0..FLOOD_MEMBERS).map(flood_member).collect();
    entries.insert(0, format!("@{nick}"));
    let mut line = String::new();
    let mut flood = Vec::new();
    for entry in entries {
        if !line.is_empty() && head.len() + line.len() + 1 + entry.len() + 2 > 512 {
            flood.extend_from_slice(format!("{head}{line}\r\n").as_bytes());
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&entry);
    }
    flood.extend_from_slice(format!("{head}{line}\r\n").as_bytes());
    flood.extend_from_slice(format!(":{sn} 366 {nick} #big :End of /NAMES list.\r\n").as_bytes());
    s.conn.send_raw(&flood).await;
    s.conn.sync().await;

    // The server's reply, passed on.
    c.expect("own JOIN", |m| m.command == "JOIN").await;
    let relayed = read_names(&mut c, "#big").await;
    assert_flood_names(&relayed, &nick);

    // NAMES answered by tether from what it tracks, not by the server.
    c.send("NAMES #big").await;
    let answered = read_names(&mut c, "#big").await;
    assert_flood_names(&answered, &nick);
    let upstream = upstream_until_marker(&mut c, &mut s.conn).await;
    assert!(
        !upstream.iter().any(|m| m.command == "NAMES"),
        "NAMES went to the server: {upstream:?}"
    );

    // A newly attaching client gets the whole list in its burst.
    let mut laptop = s.client("laptop", &[]).await;
    laptop
        .expect("JOIN #big in the burst", |m| {
            m.command == "JOIN" && m.param(0) == Some("#big")
        })
        .await;
    let burst = read_names(&mut laptop, "#big").await;
    assert_flood_names(&burst, &nick);
    laptop.sync().await;
    c.sync().await;
}
