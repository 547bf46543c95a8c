//! IRCv3 capabilities towards clients: for each capability a client with it
//! and a client without it get their own form of the same upstream event;
//! passthrough capabilities follow the network (CAP LS after registration,
//! CAP NEW / CAP DEL, the optimistic pre-registration list trimmed at
//! attach); what tether requests from the upstream.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

/// Fake server options offering exactly `caps`.
fn offering(caps: &[&str]) -> FakeServerOptions {
    FakeServerOptions {
        caps: caps.iter().map(|c| c.to_string()).collect(),
        ..FakeServerOptions::default()
    }
}

/// A client `with` the given caps and one `without` any, both of alice on
/// `fake` and both in `#chan` (with bob and carol).
async fn pair_in_chan(s: &mut Setup, caps: &[&str]) -> (TestClient, TestClient) {
    pair_in_chan_with(s, caps, &["bob", "carol"]).await
}

/// [`pair_in_chan`] with the members the server lists in `#chan`.
async fn pair_in_chan_with(
    s: &mut Setup,
    caps: &[&str],
    members: &[&str],
) -> (TestClient, TestClient) {
    let mut with = s.client("with", caps).await;
    let mut without = s.client("without", &[]).await;
    s.join(&mut with, "#chan", None, members).await;
    let nick = s.conn.nick.clone();
    expect_own_join(&mut without, &nick, "#chan").await;
    with.sync().await;
    without.sync().await;
    (with, without)
}

/// The fake server sends `line`: returns the first `command` the client
/// `with` gets, and every `command` the client `without` got by the time
/// it answers a PING (the event reached both in the same actor step).
async fn relay_both(
    s: &mut Setup,
    with: &mut TestClient,
    without: &mut TestClient,
    line: &str,
    command: &str,
) -> (Message, Vec<Message>) {
    s.conn.send(line).await;
    let got = with.expect(command, |m| m.command == command).await;
    let others = without
        .sync()
        .await
        .into_iter()
        .filter(|m| m.command == command)
        .collect();
    (got, others)
}

/// Like [`relay_both`] for an event the client `without` must not get at
/// all.
async fn relay_only_with(
    s: &mut Setup,
    with: &mut TestClient,
    without: &mut TestClient,
    line: &str,
    command: &str,
) -> Message {
    let (got, others) = relay_both(s, with, without, line, command).await;
    assert!(
        others.is_empty(),
        "a client without the capability got {others:?}\n{}",
        without.transcript()
    );
    got
}

/// The client sends `NAMES <chan>`, the fake server answers with one 353
/// listing `entries`; returns the 353 list the client gets.
async fn asked_names(s: &mut Setup, c: &mut TestClient, chan: &str) -> Vec<String> {
    c.send(&format!("NAMES {chan}")).await;
    let reply = c.expect_cmd("353").await;
    assert_eq!(reply.param(2), Some(chan), "{reply}");
    c.expect_cmd("366").await;
    c.sync().await;
    // tether answers from what it tracks; the server is not asked.
    s.conn
        .sync_expect_none("NAMES sent upstream", |m| m.command == "NAMES")
        .await;
    let mut entries: Vec<String> = reply
        .params
        .last()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// A network offering `cap`, one client with it and one without, both in
/// `#chan`: the server sends `line`, and only the client with the cap gets
/// a `command` (returned).
async fn only_with_cap(cap: &str, line: &str, command: &str) -> Message {
    let mut s = Setup::with_options(offering(&[cap])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &[cap]).await;
    relay_only_with(&mut s, &mut with, &mut without, line, command).await
}

/// Read the `CAP <nick> <sub>` lines of one reply (continuations marked
/// with `*` included); returns the lines and every token they list.
async fn cap_reply(c: &mut TestClient, sub: &str) -> (Vec<Message>, Vec<String>) {
    let mut lines = Vec::new();
    loop {
        let m = c
            .expect(&format!("CAP {sub}"), |m| {
                m.command == "CAP" && m.param(1) == Some(sub)
            })
            .await;
        let more = m.params.len() == 4 && m.param(2) == Some("*");
        lines.push(m);
        if !more {
            break;
        }
    }
    let tokens = lines
        .iter()
        .flat_map(|m| {
            m.params
                .last()
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    (lines, tokens)
}

/// Every `CAP <sub>` token in `msgs` (e.g. the messages a sync returned).
fn cap_tokens(msgs: &[Message], sub: &str) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.command == "CAP" && m.param(1) == Some(sub))
        .flat_map(|m| {
            m.params
                .last()
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect()
}

/// Register a client of alice on `fake` by hand: `ls` (e.g. `CAP LS` or
/// `CAP LS 302`, or nothing), then `CAP REQ` of `req` if any, PASS, NICK,
/// USER, CAP END; waits for 001.
async fn register_custom(s: &Setup, name: &str, ls: Option<&str>, req: &[&str]) -> TestClient {
    let mut c = TestClient::connect(s.tether.addr).await;
    c.set_label(format!("client alice/fake@{name}"));
    if let Some(ls) = ls {
        c.send(ls).await;
        c.expect("CAP LS", |m| m.command == "CAP" && m.param(1) == Some("LS"))
            .await;
    }
    if !req.is_empty() {
        c.request_caps(req).await;
    }
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send(&format!("NICK {name}")).await;
    let login = login_name("alice", Some("fake"), Some(name));
    c.send(&format!("USER {login} 0 * :{name}")).await;
    if ls.is_some() || !req.is_empty() {
        c.send("CAP END").await;
    }
    c.expect_welcome().await;
    c.sync().await;
    c
}

// ---------------------------------------------------------------------------
// One capability at a time: the same event for a client with and without.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn server_time_tag_only_with_server_time() {
    let mut s = Setup::with_options(offering(&["server-time"])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["server-time"]).await;
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        "@time=2026-01-02T03:04:05.678Z :bob!b@h.example PRIVMSG #chan :timed",
        "PRIVMSG",
    )
    .await;
    assert_eq!(got.tag("time"), Some("2026-01-02T03:04:05.678Z"), "{got}");
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].tags.is_empty(), "{}", others[0]);
    // An event without a time tag gets tether's.
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        ":bob!b@h.example PRIVMSG #chan :untimed",
        "PRIVMSG",
    )
    .await;
    assert!(got.tag("time").is_some_and(|t| t.ends_with('Z')), "{got}");
    assert!(others[0].tags.is_empty(), "{}", others[0]);
}

#[tokio::test]
async fn message_tags_carry_msgid_and_client_tags_and_tagmsg() {
    // The fake server offers message-tags by default.
    let mut s = Setup::new().await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["message-tags"]).await;
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        "@msgid=abc;+draft/react=lol :bob!b@h.example PRIVMSG #chan :tagged",
        "PRIVMSG",
    )
    .await;
    assert_eq!(got.tag("msgid"), Some("abc"), "{got}");
    assert_eq!(got.tag("+draft/react"), Some("lol"), "{got}");
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].tags.is_empty(), "{}", others[0]);
    let tagmsg = relay_only_with(
        &mut s,
        &mut with,
        &mut without,
        "@+typing=active :bob!b@h.example TAGMSG #chan",
        "TAGMSG",
    )
    .await;
    assert_eq!(tagmsg.tag("+typing"), Some("active"), "{tagmsg}");
    assert_eq!(tagmsg.param(0), Some("#chan"), "{tagmsg}");
}

#[tokio::test]
async fn account_tag_only_with_account_tag() {
    let mut s = Setup::with_options(offering(&["message-tags", "account-tag"])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["account-tag"]).await;
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        "@account=bobacc;msgid=m1 :bob!b@h.example PRIVMSG #chan :who am i",
        "PRIVMSG",
    )
    .await;
    assert_eq!(got.tag("account"), Some("bobacc"), "{got}");
    assert_eq!(got.tag("msgid"), None, "msgid needs message-tags: {got}");
    assert_eq!(others[0].tag("account"), None, "{}", others[0]);
}

#[tokio::test]
async fn extended_join_is_shortened_without_the_cap() {
    let mut s = Setup::with_options(offering(&["extended-join"])).await;
    assert!(s.conn.caps.iter().any(|c| c == "extended-join"));
    let (mut with, mut without) = pair_in_chan(&mut s, &["extended-join"]).await;
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        ":dave!d@h.example JOIN #chan daveacc :Dave Real",
        "JOIN",
    )
    .await;
    assert_eq!(got.params, ["#chan", "daveacc", "Dave Real"], "{got}");
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others[0].params, ["#chan"], "{}", others[0]);
}

#[tokio::test]
async fn multi_prefix_in_names_replies() {
    let mut s = Setup::with_options(offering(&["multi-prefix"])).await;
    assert!(s.conn.caps.iter().any(|c| c == "multi-prefix"));
    let (mut with, mut without) =
        pair_in_chan_with(&mut s, &["multi-prefix"], &["@+bob", "+carol"]).await;
    let nick = s.conn.nick.clone();
    let own = format!("@{nick}");
    let mut expected = vec!["+carol", own.as_str(), "@+bob"];
    expected.sort_unstable();
    let list = asked_names(&mut s, &mut with, "#chan").await;
    assert_eq!(list, expected);
    let mut expected = vec!["+carol", own.as_str(), "@bob"];
    expected.sort_unstable();
    let list = asked_names(&mut s, &mut without, "#chan").await;
    assert_eq!(list, expected);
}

#[tokio::test]
async fn userhost_in_names_only_with_the_cap() {
    let mut s = Setup::with_options(offering(&["userhost-in-names"])).await;
    assert!(s.conn.caps.iter().any(|c| c == "userhost-in-names"));
    let (mut with, mut without) = pair_in_chan_with(
        &mut s,
        &["userhost-in-names"],
        &["@bob!b@h.example", "carol!c@h.example"],
    )
    .await;
    let list = asked_names(&mut s, &mut with, "#chan").await;
    assert!(list.contains(&"@bob!b@h.example".to_string()), "{list:?}");
    assert!(list.contains(&"carol!c@h.example".to_string()), "{list:?}");
    let list = asked_names(&mut s, &mut without, "#chan").await;
    assert!(list.contains(&"@bob".to_string()), "{list:?}");
    assert!(list.contains(&"carol".to_string()), "{list:?}");
    assert!(list.iter().all(|e| !e.contains('!')), "{list:?}");
}

#[tokio::test]
async fn away_notify_relays_away_only_with_the_cap() {
    let mut s = Setup::with_options(offering(&["away-notify"])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["away-notify"]).await;
    let away = relay_only_with(
        &mut s,
        &mut with,
        &mut without,
        ":bob!b@h.example AWAY :gone fishing",
        "AWAY",
    )
    .await;
    assert_eq!(away.source_nick(), Some("bob"));
    assert_eq!(away.params, ["gone fishing"]);
    let back = relay_only_with(
        &mut s,
        &mut with,
        &mut without,
        ":bob!b@h.example AWAY",
        "AWAY",
    )
    .await;
    assert!(back.params.is_empty(), "{back}");
}

#[tokio::test]
async fn account_notify_relays_account_only_with_the_cap() {
    let m = only_with_cap(
        "account-notify",
        ":bob!b@h.example ACCOUNT bobacc",
        "ACCOUNT",
    )
    .await;
    assert_eq!(m.params, ["bobacc"]);
}

#[tokio::test]
async fn chghost_relayed_only_with_the_cap() {
    let m = only_with_cap(
        "chghost",
        ":bob!b@h.example CHGHOST newuser new.host.example",
        "CHGHOST",
    )
    .await;
    assert_eq!(m.params, ["newuser", "new.host.example"]);
}

#[tokio::test]
async fn setname_of_others_relayed_only_with_the_cap() {
    let m = only_with_cap(
        "setname",
        ":bob!b@h.example SETNAME :Bob The Builder",
        "SETNAME",
    )
    .await;
    assert_eq!(m.params, ["Bob The Builder"]);
}

#[tokio::test]
async fn invite_for_others_needs_invite_notify_ours_reaches_all() {
    let mut s = Setup::with_options(offering(&["invite-notify"])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["invite-notify"]).await;
    let m = relay_only_with(
        &mut s,
        &mut with,
        &mut without,
        ":op!o@h.example INVITE carol #chan",
        "INVITE",
    )
    .await;
    assert_eq!(m.params, ["carol", "#chan"]);
    let me = s.conn.nick.clone();
    let (got, others) = relay_both(
        &mut s,
        &mut with,
        &mut without,
        &format!(":op!o@h.example INVITE {me} #secret"),
        "INVITE",
    )
    .await;
    assert_eq!(got.params, [me.as_str(), "#secret"]);
    assert_eq!(others.len(), 1, "our own invite reaches everybody");
    assert_eq!(others[0].params, [me.as_str(), "#secret"]);
}

#[tokio::test]
async fn upstream_batch_forwarded_with_batch_unwrapped_without() {
    let mut s = Setup::with_options(offering(&["batch"])).await;
    assert!(s.conn.caps.iter().any(|c| c == "batch"));
    let (mut with, mut without) = pair_in_chan(&mut s, &["batch"]).await;
    for line in [
        ":irc.fake BATCH +ns1 netsplit irc.a.example irc.b.example",
        "@batch=ns1 :bob!b@h.example QUIT :irc.a.example irc.b.example",
        "@batch=ns1 :carol!c@h.example QUIT :irc.a.example irc.b.example",
        ":irc.fake BATCH -ns1",
    ] {
        s.conn.send(line).await;
    }
    let got = collect_until(&mut with, "BATCH -ns1", |m| {
        m.command == "BATCH" && m.param(0) == Some("-ns1")
    })
    .await;
    let got: Vec<&Message> = got
        .iter()
        .filter(|m| matches!(m.command.as_str(), "BATCH" | "QUIT"))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got[0].params,
        ["+ns1", "netsplit", "irc.a.example", "irc.b.example"]
    );
    for quit in &got[1..3] {
        assert_eq!(quit.command, "QUIT");
        assert_eq!(quit.tag("batch"), Some("ns1"), "{quit}");
    }
    let seen = without.sync().await;
    assert!(
        !seen.iter().any(|m| m.command == "BATCH"),
        "BATCH without the batch cap: {seen:?}"
    );
    let quits: Vec<&Message> = seen.iter().filter(|m| m.command == "QUIT").collect();
    assert_eq!(quits.len(), 2, "{seen:?}");
    for quit in quits {
        assert!(quit.tags.is_empty(), "unwrapped QUIT keeps tags: {quit}");
    }
}

#[tokio::test]
async fn echo_message_only_for_the_sender_that_asked() {
    let mut s = Setup::new().await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["echo-message"]).await;
    with.send("PRIVMSG #chan :from with").await;
    s.conn.expect_cmd("PRIVMSG").await;
    let own = with
        .expect("own echo", |m| is_privmsg(m, "#chan", "from with"))
        .await;
    assert!(own.source_nick().is_some_and(|n| irc_eq(n, &s.conn.nick)));
    without
        .expect("the other client's message", |m| {
            is_privmsg(m, "#chan", "from with")
        })
        .await;
    without.send("PRIVMSG #chan :from without").await;
    s.conn.expect_cmd("PRIVMSG").await;
    with.expect("the other client's message", |m| {
        is_privmsg(m, "#chan", "from without")
    })
    .await;
    without
        .sync_expect_none("an echo without echo-message", |m| {
            is_privmsg(m, "#chan", "from without")
        })
        .await;
}

#[tokio::test]
async fn no_implicit_names_under_all_three_names() {
    let mut s = Setup::new().await;
    let names = [
        "no-implicit-names",
        "draft/no-implicit-names",
        "soju.im/no-implicit-names",
    ];
    let mut quiet = Vec::new();
    for (i, cap) in names.iter().enumerate() {
        quiet.push(s.client(&format!("quiet{i}"), &[cap]).await);
    }
    let mut plain = s.client("plain", &[]).await;
    s.join(&mut plain, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    for (c, cap) in quiet.iter_mut().zip(names) {
        c.expect("own JOIN", |m| m.command == "JOIN").await;
        let seen = c.sync().await;
        assert!(
            !seen
                .iter()
                .any(|m| m.command == "353" || m.command == "366"),
            "NAMES after JOIN with {cap}: {seen:?}"
        );
    }
    // An explicit NAMES is still answered.
    for (c, cap) in quiet.iter_mut().zip(names) {
        let list = asked_names(&mut s, c, "#chan").await;
        assert_eq!(list, [format!("@{nick}"), "bob".to_string()], "{cap}");
    }
    // Nor in the attach burst.
    for (i, cap) in names.iter().enumerate() {
        let mut late = s.client(&format!("late{i}"), &[cap]).await;
        let seen = late.sync().await;
        assert!(
            seen.iter().any(|m| m.command == "JOIN"),
            "no JOIN in the burst: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|m| m.command == "353" || m.command == "366"),
            "NAMES in the burst with {cap}: {seen:?}"
        );
    }
    let mut late = s.client("lateplain", &[]).await;
    let seen = late.sync().await;
    assert!(
        seen.iter().any(|m| m.command == "366"),
        "no NAMES in the burst without no-implicit-names: {seen:?}"
    );
}

#[tokio::test]
async fn message_redaction_relayed_only_with_the_cap() {
    let mut s = Setup::with_options(offering(&["message-tags", "draft/message-redaction"])).await;
    let (mut with, mut without) = pair_in_chan(&mut s, &["draft/message-redaction"]).await;
    let m = relay_only_with(
        &mut s,
        &mut with,
        &mut without,
        ":bob!b@h.example REDACT #chan msg123 :oops",
        "REDACT",
    )
    .await;
    assert_eq!(m.params, ["#chan", "msg123", "oops"]);
}

#[tokio::test]
async fn cap_notify_only_reaches_clients_that_have_it() {
    let mut s = Setup::new().await;
    // 302 implies cap-notify; an older client asks for it or not.
    let mut v302 = s.client("v302", &[]).await;
    let mut asked = register_custom(&s, "asked", Some("CAP LS"), &["cap-notify"]).await;
    let mut old = register_custom(&s, "old", Some("CAP LS"), &[]).await;
    let mut none = register_custom(&s, "none", None, &[]).await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(":irc.fake CAP {nick} NEW :away-notify"))
        .await;
    assert_eq!(s.conn.ack_cap_req().await, ["away-notify"]);
    for c in [&mut v302, &mut asked] {
        let m = c
            .expect("CAP NEW", |m| {
                m.command == "CAP" && m.param(1) == Some("NEW")
            })
            .await;
        assert_eq!(m.params, [nick.as_str(), "NEW", "away-notify"], "{m}");
    }
    for c in [&mut old, &mut none] {
        c.sync_expect_none("CAP NEW without cap-notify", |m| m.command == "CAP")
            .await;
    }
    s.conn
        .send(&format!(":irc.fake CAP {nick} DEL :away-notify"))
        .await;
    for c in [&mut v302, &mut asked] {
        let m = c
            .expect("CAP DEL", |m| {
                m.command == "CAP" && m.param(1) == Some("DEL")
            })
            .await;
        assert_eq!(m.params, [nick.as_str(), "DEL", "away-notify"], "{m}");
    }
    for c in [&mut old, &mut none] {
        c.sync_expect_none("CAP DEL without cap-notify", |m| m.command == "CAP")
            .await;
    }
}

// ---------------------------------------------------------------------------
// Passthrough capabilities follow the network.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn passthrough_cap_withheld_after_registration_when_upstream_lacks_it() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.send("CAP LS 302").await;
    let (_, tokens) = cap_reply(&mut c, "LS").await;
    assert!(tokens.iter().any(|t| t == "message-tags"), "{tokens:?}");
    assert!(tokens.iter().any(|t| t == "sasl=PLAIN"), "{tokens:?}");
    assert!(!tokens.iter().any(|t| t == "away-notify"), "{tokens:?}");
    c.send("CAP REQ :away-notify").await;
    let m = c.expect_cmd("CAP").await;
    assert_eq!(m.params[1..], ["NAK", "away-notify"], "{m}");
    c.send("CAP REQ :server-time away-notify").await;
    let m = c.expect_cmd("CAP").await;
    assert_eq!(m.param(1), Some("NAK"), "atomic REQ: {m}");
    c.send("CAP REQ :message-tags").await;
    let m = c.expect_cmd("CAP").await;
    assert_eq!(m.params[1..], ["ACK", "message-tags"], "{m}");
    c.send("CAP LIST").await;
    let m = c.expect_cmd("CAP").await;
    let list = m.params.last().cloned().unwrap_or_default();
    assert!(list.split(' ').any(|t| t == "message-tags"), "{m}");
    assert!(!list.split(' ').any(|t| t == "server-time"), "{m}");
}

#[tokio::test]
async fn optimistic_pre_registration_ls_is_trimmed_at_attach() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.set_label("client alice/fake@early");
    c.send("CAP LS 302").await;
    let (lines, tokens) = cap_reply(&mut c, "LS").await;
    // The list is long enough to need continuation lines.
    assert!(lines.len() > 1, "{lines:?}");
    for l in &lines[..lines.len() - 1] {
        assert_eq!(l.param(2), Some("*"), "continuation line: {l}");
    }
    assert_eq!(lines.last().map(|l| l.params.len()), Some(3));
    for cap in ["away-notify", "message-tags", "account-tag", "sasl=PLAIN"] {
        assert!(tokens.iter().any(|t| t == cap), "{cap} in {tokens:?}");
    }
    c.request_caps(&["away-notify", "message-tags"]).await;
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send("NICK early").await;
    c.send("USER alice/fake@early 0 * :early").await;
    c.send("CAP END").await;
    let before = collect_until(&mut c, "001", |m| m.command == "001").await;
    let del = cap_tokens(&before, "DEL");
    assert!(del.iter().any(|t| t == "away-notify"), "{before:?}");
    assert!(del.iter().any(|t| t == "account-tag"), "{before:?}");
    assert!(!del.iter().any(|t| t == "message-tags"), "{before:?}");
    c.sync().await;
    c.send("CAP LIST").await;
    let m = c.expect_cmd("CAP").await;
    let list = m.params.last().cloned().unwrap_or_default();
    assert!(list.split(' ').any(|t| t == "message-tags"), "{m}");
    assert!(!list.split(' ').any(|t| t == "away-notify"), "{m}");
    // A client that never said CAP LS 302 hears of no passthrough cap.
    let mut old = register_custom(&s, "old", Some("CAP LS"), &[]).await;
    old.send("CAP LS").await;
    let (lines, tokens) = cap_reply(&mut old, "LS").await;
    assert!(lines.iter().all(|l| l.params.len() == 3), "{lines:?}");
    assert!(tokens.iter().any(|t| t == "sasl"), "{tokens:?}");
}

#[tokio::test]
async fn cap_new_and_del_follow_the_upstream_mid_session() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(":irc.fake CAP {nick} NEW :away-notify"))
        .await;
    assert_eq!(s.conn.ack_cap_req().await, ["away-notify"]);
    let m = c
        .expect("CAP NEW", |m| {
            m.command == "CAP" && m.param(1) == Some("NEW")
        })
        .await;
    assert_eq!(m.params, [nick.as_str(), "NEW", "away-notify"], "{m}");
    c.request_caps(&["away-notify"]).await;
    s.conn.send(":bob!b@h.example AWAY :lunch").await;
    let away = c.expect_cmd("AWAY").await;
    assert_eq!(away.params, ["lunch"]);

    s.conn
        .send(&format!(":irc.fake CAP {nick} DEL :away-notify"))
        .await;
    let m = c
        .expect("CAP DEL", |m| {
            m.command == "CAP" && m.param(1) == Some("DEL")
        })
        .await;
    assert_eq!(m.params, [nick.as_str(), "DEL", "away-notify"], "{m}");
    s.conn.send(":bob!b@h.example AWAY :dinner").await;
    c.sync_expect_none("AWAY after CAP DEL", |m| m.command == "AWAY")
        .await;
    c.send("CAP LIST").await;
    let m = c.expect_cmd("CAP").await;
    assert!(!m.params[2].split(' ').any(|t| t == "away-notify"), "{m}");
    c.send("CAP REQ :away-notify").await;
    let m = c.expect_cmd("CAP").await;
    assert_eq!(m.param(1), Some("NAK"), "{m}");
}

#[tokio::test]
async fn upstream_disconnect_dels_passthrough_caps_and_reconnect_news_them() {
    let mut s = Setup::with_options(offering(&["message-tags", "away-notify"])).await;
    let mut c = s.client("phone", &["away-notify"]).await;
    c.sync().await;
    let old = s.conn;
    old.kill();
    expect_cap_change(&mut c, "DEL", &["away-notify", "message-tags"]).await;
    s.conn = s.fake.accept().await;
    expect_cap_change(&mut c, "NEW", &["away-notify", "message-tags"]).await;
    s.conn.sync().await;
    // The client has to ask again for what was withdrawn.
    c.request_caps(&["away-notify"]).await;

    // A reconnect after the network's settings changed does the same.
    let (updated, conn) = tokio::join!(
        s.tether.admin("user run alice network update fake"),
        s.fake.accept()
    );
    updated.expect("network update");
    s.conn = conn;
    expect_cap_change(&mut c, "DEL", &["away-notify", "message-tags"]).await;
    expect_cap_change(&mut c, "NEW", &["away-notify", "message-tags"]).await;
}

/// Expect a `CAP <sub>` listing (at least) `caps`.
async fn expect_cap_change(c: &mut TestClient, sub: &str, caps: &[&str]) {
    let m = c
        .expect(&format!("CAP {sub}"), |m| {
            m.command == "CAP" && m.param(1) == Some(sub)
        })
        .await;
    let tokens = cap_tokens(std::slice::from_ref(&m), sub);
    for cap in caps {
        assert!(tokens.iter().any(|t| t == cap), "{cap} in {m}");
    }
}

#[tokio::test]
async fn account_registration_value_loses_before_connect() {
    for (offered, shown) in [
        (
            "draft/account-registration=before-connect,email-required",
            "draft/account-registration=email-required",
        ),
        (
            "draft/account-registration=before-connect",
            "draft/account-registration",
        ),
    ] {
        let s = Setup::with_options(offering(&["message-tags", offered])).await;
        let mut c = s.client("phone", &[]).await;
        c.send("CAP LS 302").await;
        let (_, tokens) = cap_reply(&mut c, "LS").await;
        let got: Vec<&String> = tokens
            .iter()
            .filter(|t| t.starts_with("draft/account-registration"))
            .collect();
        assert_eq!(got, [shown], "offered {offered}");
    }
}

// ---------------------------------------------------------------------------
// What tether asks the upstream for.
// ---------------------------------------------------------------------------

/// The capabilities of every `CAP REQ` the fake server got during
/// registration, from its transcript.
fn requested_upstream(conn: &FakeConn) -> Vec<String> {
    conn.transcript()
        .lines()
        .filter_map(|l| l.strip_prefix("<- "))
        .filter_map(|l| l.parse::<Message>().ok())
        .filter(|m| m.command == "CAP" && m.param(0) == Some("REQ"))
        .flat_map(|m| {
            m.params
                .last()
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn echo_message_requested_upstream_only_with_labeled_response() {
    let s = Setup::with_options(offering(&["message-tags", "echo-message", "server-time"])).await;
    let req = requested_upstream(&s.conn);
    assert!(req.iter().any(|c| c == "server-time"), "{req:?}");
    assert!(!req.iter().any(|c| c == "echo-message"), "{req:?}");
    assert!(!s.conn.caps.iter().any(|c| c == "echo-message"));

    let s = Setup::with_options(offering(&[
        "message-tags",
        "echo-message",
        "labeled-response",
        "batch",
    ]))
    .await;
    let req = requested_upstream(&s.conn);
    for cap in ["echo-message", "labeled-response", "batch", "message-tags"] {
        assert!(req.iter().any(|c| c == cap), "{cap} in {req:?}");
    }
    assert!(s.conn.caps.iter().any(|c| c == "echo-message"));
}

// ---------------------------------------------------------------------------
// SETNAME, ISUPPORT, REGISTER.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn setname_goes_upstream_when_the_network_supports_it() {
    let mut s = Setup::with_options(offering(&["setname"])).await;
    assert!(s.conn.caps.iter().any(|c| c == "setname"));
    let mut with = s.client("with", &["setname"]).await;
    let mut without = s.client("without", &[]).await;
    with.sync().await;
    without.sync().await;
    with.send("SETNAME :New Real Name").await;
    let up = s.conn.expect_cmd("SETNAME").await;
    assert_eq!(up.params, ["New Real Name"]);
    let mask = s.conn.hostmask();
    s.conn
        .send(&format!(":{mask} SETNAME :New Real Name"))
        .await;
    let m = with.expect_cmd("SETNAME").await;
    assert_eq!(m.params, ["New Real Name"]);
    assert!(m.source_nick().is_some_and(|n| irc_eq(n, &s.conn.nick)));
    without
        .sync_expect_none("SETNAME without the cap", |m| m.command == "SETNAME")
        .await;
    with.sync_expect_none("a FAIL", |m| m.command == "FAIL")
        .await;
}

#[tokio::test]
async fn setname_without_network_support_applies_from_the_next_connection() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &["setname"]).await;
    c.sync().await;
    c.send("SETNAME :Later Name").await;
    let m = c.expect_cmd("FAIL").await;
    assert_eq!(m.params[..2], ["SETNAME", "CANNOT_CHANGE_REALNAME"], "{m}");
    s.conn
        .sync_expect_none("SETNAME without the cap", |m| m.command == "SETNAME")
        .await;
    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    assert_eq!(s.conn.realname, "Later Name", "{}", s.conn.transcript());
}

#[tokio::test]
async fn isupport_command_repeats_the_005_lines() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
    c.send("ISUPPORT").await;
    let seen = c.sync().await;
    let tokens: Vec<&str> = seen
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params[1..m.params.len() - 1].iter().map(String::as_str))
        .collect();
    for want in ["NETWORK=FakeNet", "CASEMAPPING=rfc1459"] {
        assert!(tokens.contains(&want), "{want} in {tokens:?}");
    }
    assert!(
        tokens.iter().any(|t| t.starts_with("CHATHISTORY=")),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn register_fails_without_network_support() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
    c.send("REGISTER acc * s3cret").await;
    let m = c.expect_cmd("FAIL").await;
    assert_eq!(
        m.params[..2],
        ["REGISTER", "TEMPORARILY_UNAVAILABLE"],
        "{m}"
    );
}

#[tokio::test]
async fn registered_account_becomes_the_sasl_login() {
    let mut s = Setup::with_options(offering(&[
        "message-tags",
        "sasl=PLAIN",
        "draft/account-registration=email-required",
    ]))
    .await;
    assert_eq!(s.conn.sasl, None);
    let mut c = s.client("phone", &["draft/account-registration"]).await;
    c.sync().await;
    c.send("REGISTER acc bob@example.org s3cret").await;
    let up = s.conn.expect_cmd("REGISTER").await;
    assert_eq!(up.params, ["acc", "bob@example.org", "s3cret"]);
    let sn = s.conn.server_name.clone();
    s.conn
        .send(&format!(":{sn} REGISTER SUCCESS acc :Account created"))
        .await;
    let m = c.expect_cmd("REGISTER").await;
    assert_eq!(m.params[..2], ["SUCCESS", "acc"], "{m}");
    s.conn.sync().await;
    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    assert_eq!(
        s.conn.sasl,
        Some(("acc".to_string(), "s3cret".to_string())),
        "{}",
        s.conn.transcript()
    );
}

#[tokio::test]
async fn verified_account_becomes_the_sasl_login() {
    let mut s = Setup::with_options(offering(&[
        "message-tags",
        "sasl=PLAIN",
        "draft/account-registration",
    ]))
    .await;
    let mut c = s.client("phone", &["draft/account-registration"]).await;
    c.sync().await;
    let sn = s.conn.server_name.clone();
    // `*` as the account name means the current nick.
    c.send("REGISTER * * pw2").await;
    let up = s.conn.expect_cmd("REGISTER").await;
    assert_eq!(up.params, ["*", "*", "pw2"]);
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(
            ":{sn} REGISTER VERIFICATION_REQUIRED {nick} :Check your email"
        ))
        .await;
    c.expect_cmd("REGISTER").await;
    c.send(&format!("VERIFY {nick} 12345")).await;
    let up = s.conn.expect_cmd("VERIFY").await;
    assert_eq!(up.params, [nick.as_str(), "12345"]);
    s.conn
        .send(&format!(":{sn} VERIFY SUCCESS {nick} :Account verified"))
        .await;
    let m = c.expect_cmd("VERIFY").await;
    assert_eq!(m.params[..2], ["SUCCESS", nick.as_str()], "{m}");
    s.conn.sync().await;
    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    assert_eq!(
        s.conn.sasl,
        Some((nick, "pw2".to_string())),
        "{}",
        s.conn.transcript()
    );
}

#[tokio::test]
async fn isupport_before_registration_with_extended_isupport() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("CAP LS 302").await;
    c.send("ISUPPORT").await;
    c.expect("451 without the cap", |m| m.command == "451")
        .await;
    c.request_caps(&["draft/extended-isupport"]).await;
    c.send("ISUPPORT").await;
    let line = c.expect_cmd("005").await;
    let tokens = &line.params[1..line.params.len() - 1];
    assert!(tokens.iter().any(|t| t.starts_with("NETWORK=")), "{line}");
    assert!(tokens.iter().any(|t| t == "CASEMAPPING=ascii"), "{line}");
}
