//! Relaying between clients and the upstream: JOIN, channel messages, and
//! echoes between the clients of one user.

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_join_is_relayed_upstream_and_answered() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.sync().await;
    c.send("JOIN #chan").await;
    let join = s.conn.expect_join("#chan", Some("hello"), &["bob"]).await;
    assert_eq!(join.param(0), Some("#chan"), "JOIN sent upstream: {join}");
    expect_own_join(&mut c, &s.conn.nick, "#chan").await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_channel_traffic_and_echo_each_other() {
    // The upstream offers echo-message; the bouncer must not use it.
    let mut s = Setup::with_options(FakeServerOptions {
        caps: vec!["echo-message".into(), "server-time".into()],
        ..Default::default()
    })
    .await;
    // phone: no echo-message; laptop: echo-message.
    let mut phone = s.client("phone", &[]).await;
    let mut laptop = s.client("laptop", &["echo-message"]).await;
    phone.sync().await;
    laptop.sync().await;

    s.join(&mut phone, "#chan", None, &["bob"]).await;
    let nick = s.conn.nick.clone();
    expect_own_join(&mut laptop, &nick, "#chan").await;

    // Upstream -> both clients.
    s.conn
        .send(":bob!b@h.example PRIVMSG #chan :hello both")
        .await;
    for c in [&mut phone, &mut laptop] {
        let m = c
            .expect("bob's message", |m| is_privmsg(m, "#chan", "hello both"))
            .await;
        assert_eq!(m.source_nick(), Some("bob"), "{m}");
    }

    // phone -> upstream, echoed to laptop only (phone has no echo-message).
    phone.send("PRIVMSG #chan :from phone").await;
    let up = s
        .conn
        .expect("PRIVMSG from phone", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(up.params, ["#chan", "from phone"], "relayed upstream: {up}");
    let echo = laptop
        .expect("phone's message echoed", |m| {
            is_privmsg(m, "#chan", "from phone")
        })
        .await;
    assert!(
        echo.source_nick().is_some_and(|n| irc_eq(n, &nick)),
        "echo to the other client should come from {nick}: {echo}"
    );
    phone
        .sync_expect_none("echo of its own message without echo-message", |m| {
            is_privmsg(m, "#chan", "from phone")
        })
        .await;

    // laptop -> upstream, echoed to phone and (echo-message) to laptop.
    laptop.send("PRIVMSG #chan :from laptop").await;
    let up = s
        .conn
        .expect("PRIVMSG from laptop", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(
        up.params,
        ["#chan", "from laptop"],
        "relayed upstream: {up}"
    );
    let echo = phone
        .expect("laptop's message echoed", |m| {
            is_privmsg(m, "#chan", "from laptop")
        })
        .await;
    assert!(
        echo.source_nick().is_some_and(|n| irc_eq(n, &nick)),
        "echo to the other client should come from {nick}: {echo}"
    );
    let own = laptop
        .expect("own message echoed (echo-message)", |m| {
            is_privmsg(m, "#chan", "from laptop")
        })
        .await;
    assert!(
        own.source_nick().is_some_and(|n| irc_eq(n, &nick)),
        "echo-message echo should come from {nick}: {own}"
    );

    // Nothing is relayed twice upstream, and no echo-message is requested
    // from the upstream (the bouncer emulates echoes).
    s.conn
        .sync_expect_none("a duplicate PRIVMSG", |m| m.command == "PRIVMSG")
        .await;
    assert!(
        !s.conn.caps.iter().any(|c| c == "echo-message"),
        "echo-message negotiated upstream: {:?}",
        s.conn.caps
    );
    phone.sync().await;
    laptop.sync().await;
}

#[tokio::test]
async fn tagmsg_reaches_only_networks_with_message_tags() {
    for (offered, relayed) in [(false, false), (true, true)] {
        let caps = if offered {
            vec!["message-tags".to_string()]
        } else {
            Vec::new()
        };
        let mut setup = Setup::with_options(FakeServerOptions {
            caps,
            ..FakeServerOptions::default()
        })
        .await;
        let mut client = setup.client("phone", &["message-tags"]).await;
        client.send("@+typing=active TAGMSG #a").await;
        client.sync().await;
        if relayed {
            let m = setup.conn.expect_cmd("TAGMSG").await;
            assert_eq!(m.tag("+typing"), Some("active"));
        } else {
            setup
                .conn
                .sync_expect_none("TAGMSG without message-tags", |m| m.command == "TAGMSG")
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_for_a_joined_channel_is_answered_by_tether_for_the_asker_only() {
    let mut s = Setup::with_options(FakeServerOptions {
        caps: vec!["multi-prefix".into()],
        ..Default::default()
    })
    .await;
    let mut phone = s.client("phone", &["multi-prefix"]).await;
    let mut laptop = s.client("laptop", &[]).await;
    s.join(&mut phone, "#chan", None, &["@+op", "bob"]).await;
    let nick = s.conn.nick.clone();
    expect_own_join(&mut laptop, &nick, "#chan").await;
    laptop.sync().await;

    phone.send("NAMES #chan").await;
    let names = phone
        .expect("353 for #chan", |m| {
            m.command == "353" && m.param(2) == Some("#chan")
        })
        .await;
    let entries: Vec<&str> = names.params[3].split(' ').collect();
    assert!(
        entries.contains(&"@+op"),
        "all prefixes with multi-prefix: {names}"
    );
    assert!(entries.contains(&"bob"), "{names}");
    phone
        .expect("366 for #chan", |m| {
            m.command == "366" && m.param(1) == Some("#chan")
        })
        .await;
    // Neither the server nor the other client hears of it.
    s.conn
        .sync_expect_none("NAMES sent upstream", |m| m.command == "NAMES")
        .await;
    laptop
        .sync_expect_none("NAMES reply on the other client", |m| {
            m.command == "353" || m.command == "366"
        })
        .await;
    // A channel tether is not in is the server's business.
    phone.send("NAMES #elsewhere").await;
    let up = s
        .conn
        .expect("NAMES upstream", |m| m.command == "NAMES")
        .await;
    assert_eq!(up.param(0), Some("#elsewhere"), "{up}");
    // Its answer goes only to the asker.
    let (sn, me) = (s.conn.server_name.clone(), s.conn.nick.clone());
    s.conn
        .send(&format!(":{sn} 353 {me} = #elsewhere :dave erin"))
        .await;
    s.conn
        .send(&format!(":{sn} 366 {me} #elsewhere :End of /NAMES list."))
        .await;
    phone
        .expect("366 for #elsewhere", |m| {
            m.command == "366" && m.param(1) == Some("#elsewhere")
        })
        .await;
    laptop
        .sync_expect_none("someone else's NAMES reply", |m| {
            m.command == "353" || m.command == "366"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_carry_userhosts_only_for_clients_with_userhost_in_names() {
    let mut s = Setup::new().await;
    let mut phone = s.client("phone", &["userhost-in-names"]).await;
    s.join(&mut phone, "#chan", None, &["bob"]).await;
    // carol joins after us: tether learns her user@host from the JOIN.
    s.conn.send(":carol!cu@carol.example JOIN #chan").await;
    phone
        .expect("carol's JOIN", |m| {
            m.command == "JOIN" && m.source_nick() == Some("carol")
        })
        .await;

    phone.send("NAMES #chan").await;
    let names = phone
        .expect("353 for #chan", |m| {
            m.command == "353" && m.param(2) == Some("#chan")
        })
        .await;
    let entries: Vec<&str> = names.params[3].split(' ').collect();
    assert!(entries.contains(&"carol!cu@carol.example"), "{names}");
    assert!(
        entries.contains(&"bob"),
        "unknown userhost stays bare: {names}"
    );

    // A client without the capability, attaching now, gets bare nicks in
    // its burst.
    let mut laptop = s.client("laptop", &[]).await;
    let names = laptop
        .expect("353 for #chan in the burst", |m| {
            m.command == "353" && m.param(2) == Some("#chan")
        })
        .await;
    let entries: Vec<&str> = names.params[3].split(' ').collect();
    assert!(entries.contains(&"carol"), "{names}");
    assert!(!names.params[3].contains('!'), "{names}");
}
