//! labeled-response and reply routing: labeled commands answered by the
//! network (one line, a `labeled-response` batch, `ACK`, echo-message
//! echoes) reach only the client that asked, with its own label; commands
//! tether answers itself carry the label too; without labels from the
//! network, LIST/WHO/WHOIS replies still find the asking client.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

/// What a client needs for labeled responses.
const LR: &[&str] = &["labeled-response", "batch", "message-tags"];

/// A fake server with labeled-response (and echo-message, which tether
/// then uses).
fn labeling_server() -> FakeServerOptions {
    FakeServerOptions {
        caps: ["labeled-response", "batch", "message-tags", "echo-message"]
            .map(String::from)
            .to_vec(),
        ..FakeServerOptions::default()
    }
}

/// A fake server with labeled-response but without echo-message (tether
/// makes the echoes). labeled-response is passed through: clients can
/// only use labels while the network has them.
fn labels_only() -> FakeServerOptions {
    FakeServerOptions {
        caps: ["labeled-response", "batch", "message-tags"]
            .map(String::from)
            .to_vec(),
        ..FakeServerOptions::default()
    }
}

/// `base` plus `more`.
fn caps_plus<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

/// Expect `command` on the fake server carrying a label of tether's own
/// (not the client's `client_label`); returns the message and that label.
async fn upstream_labeled(
    conn: &mut FakeConn,
    command: &str,
    client_label: &str,
) -> (Message, String) {
    let m = conn.expect_cmd(command).await;
    let label = match m.tag("label") {
        Some(l) => l.to_string(),
        None => panic!("{command} went upstream without a label: {m}"),
    };
    assert_ne!(label, client_label, "the client's label went upstream: {m}");
    (m, label)
}

/// Read one labeled-response batch: the `BATCH +` line (returned first)
/// through its `BATCH -` line (returned last). Panics on an `ACK` or on a
/// batch of another type.
async fn labeled_batch(c: &mut TestClient, label: &str) -> Vec<Message> {
    let start = c
        .expect("BATCH + or ACK", |m| {
            m.command == "ACK" || (m.command == "BATCH" && m.param(1) == Some("labeled-response"))
        })
        .await;
    assert_eq!(start.command, "BATCH", "expected a batch, got {start}");
    assert_eq!(start.tag("label"), Some(label), "{start}");
    let reference = start.params[0]
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("not a batch start: {start}"))
        .to_string();
    let end = format!("-{reference}");
    let mut lines = vec![start];
    lines.extend(
        collect_until(c, &format!("BATCH {end}"), |m| {
            m.command == "BATCH" && m.param(0) == Some(end.as_str())
        })
        .await,
    );
    lines
}

/// The reference of a batch start line.
fn batch_ref(start: &Message) -> String {
    start.params[0].trim_start_matches('+').to_string()
}

// ---------------------------------------------------------------------------
// Through a network with labeled-response.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn labeled_single_reply_reaches_only_the_asker() {
    let mut s = Setup::with_options(labeling_server()).await;
    let mut a = s.client("a", LR).await;
    let mut b = s.client("b", LR).await;
    a.sync().await;
    b.sync().await;
    let (sn, nick) = (s.conn.server_name.clone(), s.conn.nick.clone());

    a.send("@label=x USERHOST bob").await;
    let (up, l) = upstream_labeled(&mut s.conn, "USERHOST", "x").await;
    assert_eq!(up.params, ["bob"]);
    s.conn
        .send(&format!("@label={l} :{sn} 302 {nick} :bob=+b@h.example"))
        .await;
    let m = a.expect_cmd("302").await;
    assert_eq!(m.tag("label"), Some("x"), "{m}");
    assert_eq!(m.params, [nick.as_str(), "bob=+b@h.example"]);

    a.send("@label=y MODE #chan").await;
    let (_, l) = upstream_labeled(&mut s.conn, "MODE", "y").await;
    s.conn
        .send(&format!("@label={l} :{sn} 324 {nick} #chan +nt"))
        .await;
    let m = a.expect_cmd("324").await;
    assert_eq!(m.tag("label"), Some("y"), "{m}");
    a.sync().await;
    b.sync_expect_none("another client's reply", |m| {
        m.command == "302" || m.command == "324"
    })
    .await;
}

#[tokio::test]
async fn labeled_batch_reply_reaches_only_the_asker() {
    let mut s = Setup::with_options(labeling_server()).await;
    let mut a = s.client("a", LR).await;
    let mut b = s.client("b", LR).await;
    a.sync().await;
    b.sync().await;
    let (sn, nick) = (s.conn.server_name.clone(), s.conn.nick.clone());

    a.send("@label=w WHOIS bob").await;
    let (_, l) = upstream_labeled(&mut s.conn, "WHOIS", "w").await;
    for line in [
        format!("@label={l} :{sn} BATCH +r1 labeled-response"),
        format!("@batch=r1 :{sn} 311 {nick} bob b h.example * :Bob"),
        format!("@batch=r1 :{sn} 318 {nick} bob :End of /WHOIS list."),
        format!(":{sn} BATCH -r1"),
    ] {
        s.conn.send(&line).await;
    }
    let got = labeled_batch(&mut a, "w").await;
    let reference = batch_ref(&got[0]);
    let inner: Vec<&str> = got[1..got.len() - 1]
        .iter()
        .map(|m| m.command.as_str())
        .collect();
    assert_eq!(inner, ["311", "318"], "{got:?}");
    for m in &got[1..got.len() - 1] {
        assert_eq!(m.tag("batch"), Some(reference.as_str()), "{m}");
        assert_eq!(m.tag("label"), None, "{m}");
    }
    b.sync_expect_none("another client's WHOIS reply", |m| {
        matches!(m.command.as_str(), "BATCH" | "311" | "318")
    })
    .await;

    // The WHOIS is over: b's goes out at once, and its reply (b did not
    // label it) reaches b alone, without the upstream batch.
    b.send("WHOIS carol").await;
    let (_, l) = upstream_labeled(&mut s.conn, "WHOIS", "").await;
    for line in [
        format!("@label={l} :{sn} BATCH +r2 labeled-response"),
        format!("@batch=r2 :{sn} 311 {nick} carol c h.example * :Carol"),
        format!("@batch=r2 :{sn} 318 {nick} carol :End of /WHOIS list."),
        format!(":{sn} BATCH -r2"),
    ] {
        s.conn.send(&line).await;
    }
    let m = b.expect_cmd("311").await;
    assert!(m.tags.is_empty(), "{m}");
    let m = b.expect_cmd("318").await;
    assert!(m.tags.is_empty(), "{m}");
    b.sync_expect_none("the upstream batch", |m| m.command == "BATCH")
        .await;
    a.sync_expect_none("another client's WHOIS reply", |m| {
        matches!(m.command.as_str(), "BATCH" | "311" | "318")
    })
    .await;
}

#[tokio::test]
async fn labeled_ack_reaches_only_the_asker() {
    let mut s = Setup::with_options(labeling_server()).await;
    let mut a = s.client("a", LR).await;
    let mut b = s.client("b", LR).await;
    a.sync().await;
    b.sync().await;
    let sn = s.conn.server_name.clone();
    a.send("@label=k KNOCK #chan").await;
    let (_, l) = upstream_labeled(&mut s.conn, "KNOCK", "k").await;
    s.conn.send(&format!("@label={l} :{sn} ACK")).await;
    let m = a.expect_cmd("ACK").await;
    assert_eq!(m.tag("label"), Some("k"), "{m}");
    b.sync_expect_none("another client's ACK", |m| m.command == "ACK")
        .await;
}

#[tokio::test]
async fn upstream_echo_carries_the_senders_label_and_is_stored_once() {
    let mut s = Setup::with_options(labeling_server()).await;
    let mut a = s
        .client("a", &caps_plus(LR, &["echo-message", "draft/chathistory"]))
        .await;
    let mut b = s.client("b", LR).await;
    let mut c = s.client("c", LR).await;
    s.join(&mut a, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    for other in [&mut b, &mut c] {
        expect_own_join(other, &nick, "#chan").await;
    }
    let mask = s.conn.hostmask();

    a.send("@label=e PRIVMSG #chan :hello").await;
    let (up, l) = upstream_labeled(&mut s.conn, "PRIVMSG", "e").await;
    assert_eq!(up.params, ["#chan", "hello"]);
    s.conn
        .send(&format!(
            "@label={l};msgid=srv1;time=2026-03-01T00:00:00.000Z :{mask} PRIVMSG #chan :hello"
        ))
        .await;
    let m = a
        .expect("own echo", |m| is_privmsg(m, "#chan", "hello"))
        .await;
    assert_eq!(m.tag("label"), Some("e"), "{m}");
    assert_eq!(m.tag("msgid"), Some("srv1"), "the server's echo: {m}");
    let m = b
        .expect("a's message", |m| is_privmsg(m, "#chan", "hello"))
        .await;
    assert_eq!(m.tag("label"), None, "{m}");
    assert_eq!(m.tag("msgid"), Some("srv1"), "{m}");
    for x in [&mut a, &mut b] {
        x.sync_expect_none("a second copy", |m| is_privmsg(m, "#chan", "hello"))
            .await;
    }

    // Unlabeled, the echo still finds its sender (without a label).
    a.send("PRIVMSG #chan :plain").await;
    let (_, l) = upstream_labeled(&mut s.conn, "PRIVMSG", "").await;
    s.conn
        .send(&format!(
            "@label={l};msgid=srv2 :{mask} PRIVMSG #chan :plain"
        ))
        .await;
    let m = a
        .expect("own echo", |m| is_privmsg(m, "#chan", "plain"))
        .await;
    assert_eq!(m.tag("label"), None, "{m}");
    b.expect("a's message", |m| is_privmsg(m, "#chan", "plain"))
        .await;

    // A sender without echo-message gets an ACK for its labeled message.
    c.send("@label=n PRIVMSG #chan :quiet").await;
    let (_, l) = upstream_labeled(&mut s.conn, "PRIVMSG", "n").await;
    s.conn
        .send(&format!(
            "@label={l};msgid=srv3 :{mask} PRIVMSG #chan :quiet"
        ))
        .await;
    let m = c
        .expect("ACK or the echo", |m| {
            m.command == "ACK" || is_privmsg(m, "#chan", "quiet")
        })
        .await;
    assert_eq!(m.command, "ACK", "{m}");
    assert_eq!(m.tag("label"), Some("n"), "{m}");
    c.sync_expect_none("its own message", |m| is_privmsg(m, "#chan", "quiet"))
        .await;
    for x in [&mut a, &mut b] {
        let m = x
            .expect("c's message", |m| is_privmsg(m, "#chan", "quiet"))
            .await;
        assert_eq!(m.tag("label"), None, "{m}");
    }

    // History holds the server's echo, once.
    let lines = send_until_batch_end(
        &mut a,
        "CHATHISTORY LATEST #chan * 10",
        "end of the history batch",
    )
    .await;
    let hello: Vec<&Message> = lines
        .iter()
        .filter(|m| is_privmsg(m, "#chan", "hello"))
        .collect();
    assert_eq!(hello.len(), 1, "{lines:?}");
    assert_eq!(hello[0].tag("msgid"), Some("srv1"));
    assert_eq!(hello[0].tag("label"), None);
}

#[tokio::test]
async fn echoes_are_emulated_again_when_labeled_response_goes_away() {
    let mut s = Setup::with_options(labeling_server()).await;
    let mut a = s.client("a", &caps_plus(LR, &["echo-message"])).await;
    let mut b = s.client("b", &[]).await;
    s.join(&mut a, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    expect_own_join(&mut b, &nick, "#chan").await;
    s.conn
        .send(&format!(":irc.fake CAP {nick} DEL :labeled-response"))
        .await;
    // Without labels echoes cannot be told apart: tether turns them off.
    assert_eq!(s.conn.ack_cap_req().await, ["-echo-message"]);
    s.conn.sync().await;
    // Clients lose labeled-response with the network.
    let m = a
        .expect("CAP DEL", |m| {
            m.command == "CAP" && m.param(1) == Some("DEL")
        })
        .await;
    assert_eq!(m.params[2], "labeled-response", "{m}");
    a.send("PRIVMSG #chan :emulated").await;
    let up = s.conn.expect_cmd("PRIVMSG").await;
    assert_eq!(up.tag("label"), None, "{up}");
    let m = a
        .expect("own echo", |m| is_privmsg(m, "#chan", "emulated"))
        .await;
    assert!(m.source_nick().is_some_and(|n| irc_eq(n, &nick)), "{m}");
    b.expect("a's message", |m| is_privmsg(m, "#chan", "emulated"))
        .await;
}

// ---------------------------------------------------------------------------
// Commands tether answers itself.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn local_single_replies_and_acks_are_labeled() {
    let s = Setup::with_options(labels_only()).await;
    let mut c = s.client("c", LR).await;
    let mut plain = s.client("plain", &[]).await;
    c.sync().await;

    c.send("@label=p PING x").await;
    let m = c.expect_cmd("PONG").await;
    assert_eq!(m.tag("label"), Some("p"), "{m}");
    assert_eq!(m.params.last().map(String::as_str), Some("x"));

    c.send("@label=a PONG x").await;
    let m = c.expect_cmd("ACK").await;
    assert_eq!(m.tag("label"), Some("a"), "{m}");
    assert!(m.params.is_empty(), "{m}");

    // Unlabeled commands are not affected.
    c.send("PING y").await;
    let m = c.expect_cmd("PONG").await;
    assert_eq!(m.tag("label"), None, "{m}");
    c.sync_expect_none("an ACK", |m| m.command == "ACK").await;
    // Nor are labels of clients without labeled-response.
    plain.send("@label=z PING q").await;
    let m = plain.expect_cmd("PONG").await;
    assert_eq!(m.tag("label"), None, "{m}");
    plain
        .sync_expect_none("an ACK", |m| m.command == "ACK")
        .await;
}

#[tokio::test]
async fn local_echo_is_labeled_or_acked() {
    let mut s = Setup::with_options(labels_only()).await;
    let mut echo = s.client("echo", &caps_plus(LR, &["echo-message"])).await;
    let mut quiet = s.client("quiet", LR).await;
    s.join(&mut echo, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    expect_own_join(&mut quiet, &nick, "#chan").await;

    // The network answers a labeled PRIVMSG without echo-message with
    // ACK; the echo tether makes is the answer the sender sees.
    let sn = s.conn.server_name.clone();
    echo.send("@label=m PRIVMSG #chan :echoed").await;
    let (_, l) = upstream_labeled(&mut s.conn, "PRIVMSG", "m").await;
    s.conn.send(&format!("@label={l} :{sn} ACK")).await;
    let m = echo
        .expect("own echo", |m| is_privmsg(m, "#chan", "echoed"))
        .await;
    assert_eq!(m.tag("label"), Some("m"), "{m}");
    let m = quiet
        .expect("the other client's message", |m| {
            is_privmsg(m, "#chan", "echoed")
        })
        .await;
    assert_eq!(m.tag("label"), None, "{m}");

    echo.sync_expect_none("an ACK besides the echo", |m| m.command == "ACK")
        .await;

    // Without echo-message the network's ACK is the answer.
    quiet.send("@label=n PRIVMSG #chan :not echoed").await;
    let (_, l) = upstream_labeled(&mut s.conn, "PRIVMSG", "n").await;
    s.conn.send(&format!("@label={l} :{sn} ACK")).await;
    let m = quiet
        .expect("ACK or the echo", |m| {
            m.command == "ACK" || is_privmsg(m, "#chan", "not echoed")
        })
        .await;
    assert_eq!(m.command, "ACK", "{m}");
    assert_eq!(m.tag("label"), Some("n"), "{m}");
    let m = echo
        .expect("the other client's message", |m| {
            is_privmsg(m, "#chan", "not echoed")
        })
        .await;
    assert_eq!(m.tag("label"), None, "{m}");
    quiet
        .sync_expect_none("its own message", |m| is_privmsg(m, "#chan", "not echoed"))
        .await;
}

#[tokio::test]
async fn local_multi_line_replies_come_in_a_labeled_batch() {
    // Enough ISUPPORT tokens for more than one 005 line.
    let mut opts = labels_only();
    opts.isupport.extend(
        [
            "AWAYLEN=200",
            "CHANLIMIT=#:50",
            "CHANNELLEN=64",
            "ELIST=U",
            "EXCEPTS",
            "HOSTLEN=64",
            "INVEX",
            "KICKLEN=300",
            "MAXLIST=b:100",
            "MODES=4",
            "NICKLEN=30",
            "SAFELIST",
            "STATUSMSG=@+",
            "TOPICLEN=300",
            "USERLEN=10",
        ]
        .map(String::from),
    );
    let mut s = Setup::with_options(opts).await;
    let mut c = s
        .client("c", &caps_plus(LR, &["draft/chathistory", "server-time"]))
        .await;
    c.sync().await;

    // ISUPPORT: several 005 lines.
    c.send("@label=i ISUPPORT").await;
    let got = labeled_batch(&mut c, "i").await;
    let reference = batch_ref(&got[0]);
    let inner = &got[1..got.len() - 1];
    assert!(!inner.is_empty(), "{got:?}");
    for m in inner {
        assert_eq!(m.command, "005", "{m}");
        assert_eq!(m.tag("batch"), Some(reference.as_str()), "{m}");
    }
    c.send("ISUPPORT").await;
    let seen = c.sync().await;
    assert!(seen.iter().any(|m| m.command == "005"), "{seen:?}");
    assert!(
        seen.iter()
            .all(|m| m.tag("batch").is_none() && m.tag("label").is_none()),
        "{seen:?}"
    );

    // CHATHISTORY from the rings: its own batch nests inside ours.
    s.join(&mut c, "#chan", None, &["bob"]).await;
    for i in 1..=3 {
        s.conn
            .send(&format!(":bob!b@h.example PRIVMSG #chan :m{i}"))
            .await;
    }
    c.expect("the last message", |m| is_privmsg(m, "#chan", "m3"))
        .await;
    c.send("@label=h CHATHISTORY LATEST #chan * 10").await;
    let got = labeled_batch(&mut c, "h").await;
    let outer = batch_ref(&got[0]);
    let inner_start = &got[1];
    assert_eq!(inner_start.command, "BATCH", "{got:?}");
    assert_eq!(inner_start.param(1), Some("chathistory"), "{inner_start}");
    assert_eq!(
        inner_start.tag("batch"),
        Some(outer.as_str()),
        "{inner_start}"
    );
    let inner = batch_ref(inner_start);
    let texts: Vec<&str> = got
        .iter()
        .filter(|m| m.command == "PRIVMSG")
        .inspect(|m| assert_eq!(m.tag("batch"), Some(inner.as_str()), "{m}"))
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(texts, ["m1", "m2", "m3"], "{got:?}");
}

#[tokio::test]
async fn answers_from_background_tasks_keep_the_label() {
    let mut s = Setup::with_options(labels_only()).await;
    let mut c = s.client("c", &caps_plus(LR, &["draft/chathistory"])).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;

    // A msgid the rings do not know sends CHATHISTORY to the store; the
    // answer arrives in a later event and still carries the label.
    c.send("@label=s CHATHISTORY BEFORE #chan msgid=nosuchmessage 10")
        .await;
    let m = c
        .expect("the labeled reply", |m| {
            !matches!(m.command.as_str(), "PING" | "NOTICE" | "PRIVMSG")
        })
        .await;
    assert_ne!(m.command, "ACK", "ACK before the reply: {m}");
    assert_eq!(m.tag("label"), Some("s"), "{m}");
    c.sync_expect_none("an ACK", |m| m.command == "ACK").await;

    // BouncerServ's help runs outside the user's task: several PRIVMSGs.
    c.send("@label=b PRIVMSG BouncerServ :help").await;
    let got = labeled_batch(&mut c, "b").await;
    let inner = &got[1..got.len() - 1];
    assert!(inner.len() > 1, "{got:?}");
    assert!(inner.iter().all(is_from_service), "{got:?}");
    c.sync_expect_none("an ACK", |m| m.command == "ACK").await;
}

// ---------------------------------------------------------------------------
// Without labels from the network: LIST/WHO/WHOIS routing.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn whois_reply_reaches_only_the_asker() {
    let mut s = Setup::new().await;
    let mut a = s.client("a", &[]).await;
    let mut b = s.client("b", &[]).await;
    a.sync().await;
    b.sync().await;
    let (sn, nick) = (s.conn.server_name.clone(), s.conn.nick.clone());
    a.send("WHOIS bob").await;
    let up = s.conn.expect_cmd("WHOIS").await;
    assert_eq!(up.tag("label"), None, "{up}");
    s.conn
        .send(&format!(":{sn} 311 {nick} bob b h.example * :Bob"))
        .await;
    s.conn
        .send(&format!(":{sn} 318 {nick} bob :End of /WHOIS list."))
        .await;
    a.expect_cmd("311").await;
    a.expect_cmd("318").await;
    b.sync_expect_none("another client's WHOIS reply", |m| {
        m.command == "311" || m.command == "318"
    })
    .await;
}

#[tokio::test]
async fn list_commands_are_serialised_and_routed() {
    let mut s = Setup::new().await;
    let mut a = s.client("a", &[]).await;
    let mut b = s.client("b", &[]).await;
    let (sn, nick) = (s.conn.server_name.clone(), s.conn.nick.clone());
    a.send("LIST").await;
    a.sync().await;
    b.send("LIST").await;
    b.sync().await;
    s.conn.expect_cmd("LIST").await;
    s.conn
        .sync_expect_none("a second LIST before the first ended", |m| {
            m.command == "LIST"
        })
        .await;
    for line in [
        format!(":{sn} 321 {nick} Channel :Users Name"),
        format!(":{sn} 322 {nick} #first 5 :for a"),
        format!(":{sn} 323 {nick} :End of /LIST"),
    ] {
        s.conn.send(&line).await;
    }
    let got = collect_until(&mut a, "323", |m| m.command == "323").await;
    assert!(
        got.iter()
            .any(|m| m.command == "322" && m.param(1) == Some("#first")),
        "{got:?}"
    );
    // Now the second one goes out.
    s.conn.expect_cmd("LIST").await;
    for line in [
        format!(":{sn} 321 {nick} Channel :Users Name"),
        format!(":{sn} 322 {nick} #second 7 :for b"),
        format!(":{sn} 323 {nick} :End of /LIST"),
    ] {
        s.conn.send(&line).await;
    }
    let got = collect_until(&mut b, "323", |m| m.command == "323").await;
    let chans: Vec<&str> = got
        .iter()
        .filter(|m| m.command == "322")
        .filter_map(|m| m.param(1))
        .collect();
    assert_eq!(chans, ["#second"], "{got:?}");
    a.sync_expect_none("b's LIST reply", |m| {
        matches!(m.command.as_str(), "321" | "322" | "323")
    })
    .await;
}

#[tokio::test]
async fn whois_is_aborted_when_the_upstream_drops() {
    let mut s = Setup::new().await;
    let mut a = s.client("a", &[]).await;
    let mut b = s.client("b", &[]).await;
    let (sn, nick) = (s.conn.server_name.clone(), s.conn.nick.clone());
    a.send("WHOIS bob").await;
    a.sync().await;
    // b's WHOIS waits behind a's.
    b.send("WHOIS carol").await;
    b.sync().await;
    s.conn.expect_cmd("WHOIS").await;
    s.conn
        .send(&format!(":{sn} 311 {nick} bob b h.example * :Bob"))
        .await;
    a.expect_cmd("311").await;
    let old = s.conn;
    old.kill();
    let m = a.expect_cmd("318").await;
    assert_eq!(m.params, [nick.as_str(), "bob", "Command aborted"], "{m}");
    let m = b.expect_cmd("318").await;
    assert_eq!(m.params, [nick.as_str(), "carol", "Command aborted"], "{m}");
    // The next connection starts with nothing owed.
    s.conn = s.fake.accept().await;
    s.conn.sync().await;
    a.send("WHOIS dave").await;
    let up = s.conn.expect_cmd("WHOIS").await;
    assert_eq!(up.params, ["dave"]);
}
