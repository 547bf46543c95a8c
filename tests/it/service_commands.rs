//! BouncerServ commands beyond the basics of `bouncerserv.rs`: `network
//! quote`, `channel create|delete`, `user update`, `server status|notice`,
//! and what a user who is not an administrator may see and do.

use crate::harness::*;
use crate::support::*;

/// Send a command and return the first reply line (`error: …` included).
async fn reply(c: &mut TestClient, command_line: &str) -> String {
    service_command(c, command_line).await;
    expect_service_line(c, "a reply", |_| true).await
}

/// The error text of a command that must fail.
async fn refused(c: &mut TestClient, command_line: &str) -> String {
    let line = reply(c, command_line).await;
    line.strip_prefix("error: ")
        .unwrap_or_else(|| panic!("{command_line:?} succeeded: {line:?}"))
        .to_string()
}

/// The bouncer connection of `user`.
async fn bouncer_connection(t: &Tether, user: &str) -> TestClient {
    t.connect_client(user, None, None, user, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_quote_sends_a_raw_line() {
    let mut s = Setup::new().await;
    let mut phone = s.client("phone", &[]).await;
    // Bound to the network: the name may be left out. Quoting keeps the
    // line one argument.
    let sent = reply(&mut phone, "network quote 'PRIVMSG #ops :two words'").await;
    assert_eq!(sent, "sent to \"fake\": PRIVMSG");
    let m = s
        .conn
        .expect("the quoted PRIVMSG", |m| m.command == "PRIVMSG")
        .await;
    assert_eq!(m.params, ["#ops", "two words"]);

    let mut b = bouncer_connection(&s.tether, "alice").await;
    let sent = reply(&mut b, "network quote fake \"MODE alice +i\"").await;
    assert_eq!(sent, "sent to \"fake\": MODE");
    let m = s
        .conn
        .expect("the quoted MODE", |m| m.command == "MODE")
        .await;
    assert_eq!(m.params, ["alice", "+i"]);

    assert!(
        refused(&mut b, "network quote 'PING x'")
            .await
            .contains("name the network")
    );
    assert!(
        refused(&mut b, "network quote nowhere 'PING x'")
            .await
            .contains("no network named")
    );
    assert!(
        refused(&mut b, "network quote fake ''")
            .await
            .contains("not an IRC line")
    );
    assert!(
        refused(&mut b, "network quote fake 'PING x' extra")
            .await
            .contains("usage")
    );

    // Not connected: refused, nothing queued for later.
    s.tether
        .admin_ok("user run alice network update fake -enabled false")
        .await;
    expect_quit_or_close(&mut s.conn).await;
    assert!(
        refused(&mut b, "network quote fake 'PING x'")
            .await
            .contains("not connected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_create_joins_and_channel_delete_parts() {
    let mut s = Setup::new().await;
    let mut b = bouncer_connection(&s.tether, "alice").await;

    let created = reply(
        &mut b,
        "channel create #new/fake -detached true -detach-after 1h",
    )
    .await;
    assert_eq!(created, "created channel #new: detached, detach-after 1h");
    s.conn.expect_join("#new", None, &[]).await;
    s.conn.sync().await;
    let status = reply(&mut b, "channel status").await;
    assert_eq!(status, "#new/fake [joined, detached, detach-after 1h]");

    // With -network, and with a key.
    let created = reply(&mut b, "channel create #keyed -network fake -key sesame").await;
    assert_eq!(created, "created channel #keyed");
    let join = s.conn.expect_join("#keyed", None, &[]).await;
    assert_eq!(join.params, ["#keyed", "sesame"]);

    for (command, why) in [
        ("channel create #new/fake", "already exists"),
        ("channel create #other", "#channel/network"),
        ("channel create nochan/fake", "invalid channel name"),
        ("channel create #x/nowhere", "no network named"),
        (
            "channel create #x/fake -detach-on sometimes",
            "invalid -detach-on",
        ),
        ("channel delete #never/fake", "unknown channel"),
    ] {
        let e = refused(&mut b, command).await;
        assert!(e.contains(why), "{command}: {e:?}");
    }

    let deleted = reply(&mut b, "channel delete #new/fake").await;
    assert_eq!(deleted, "deleted channel #new");
    let part = s.conn.expect("PART #new", |m| m.command == "PART").await;
    assert_eq!(part.param(0), Some("#new"));
    // Forgotten: it is not rejoined after a reconnection.
    let status = reply(&mut b, "channel status").await;
    assert!(!status.contains("#new/"), "{status:?}");

    // Created while disconnected: joined on the next connection.
    s.tether
        .admin_ok("user run alice network update fake -enabled false")
        .await;
    expect_quit_or_close(&mut s.conn).await;
    reply(&mut b, "channel create #later/fake").await;
    let (_, mut conn) = tokio::join!(
        s.tether
            .admin_ok("user run alice network update fake -enabled true"),
        s.fake.accept()
    );
    let join = conn
        .expect("JOIN with #later", |m| {
            m.command == "JOIN" && m.param(0).is_some_and(|c| c.contains("#later"))
        })
        .await;
    assert!(!join.params[0].contains("#new"), "{join}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_update_on_yourself() {
    let mut s = Setup::new().await;
    let mut b = bouncer_connection(&s.tether, "alice").await;

    // A new default nick reaches networks without a nick of their own.
    let updated = reply(&mut b, "user update -nick alicia").await;
    assert_eq!(updated, "updated user \"alice\": nick");
    let nick = s.conn.expect("NICK", |m| m.command == "NICK").await;
    assert_eq!(nick.params, ["alicia"]);

    for (command, why) in [
        ("user update -admin", "your own account"),
        ("user update -admin=true", "your own account"),
        ("user update -enabled false", "your own account"),
        ("user update -max-networks 9", "only administrators"),
        ("user update", "nothing to change"),
        ("user update -password ''", "must not be empty"),
        (
            "user update -password x -disable-password",
            "cannot be used together",
        ),
        ("user update -nick 'bad nick'", "invalid nick"),
    ] {
        let e = refused(&mut b, command).await;
        assert!(e.contains(why), "{command}: {e:?}");
    }

    // A new password: the old one stops working, this client stays.
    let updated = reply(&mut b, "user update -password \"new secret\"").await;
    assert_eq!(updated, "updated user \"alice\": password");
    b.sync().await;
    let c = TestClient::register_pass(s.tether.addr, "alice", "new secret", "alice", &[]).await;
    drop(c);
    let mut old = TestClient::connect(s.tether.addr).await;
    old.send(&format!("PASS {PASSWORD}")).await;
    old.send("NICK alice").await;
    old.send("USER alice 0 * :alice").await;
    old.expect_cmd("464").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_update_by_an_administrator() {
    let mut s = Setup::new().await;
    let mut phone = s.client("phone", &[]).await;

    // Another user's nick is theirs.
    let e = s
        .tether
        .admin("user update alice -nick x")
        .await
        .unwrap_err();
    assert!(e.contains("theirs to change"), "{e:?}");
    assert!(
        s.tether
            .admin("user update nobody -admin")
            .await
            .unwrap_err()
            .contains("no user named")
    );
    assert!(
        s.tether
            .admin("user update")
            .await
            .unwrap_err()
            .contains("usage")
    );
    // ... but `user run` acts as the user.
    s.tether
        .admin_ok("user run alice user update -realname 'Alice L.'")
        .await;

    // A password set by an administrator logs the user's clients out.
    let lines = s
        .tether
        .admin_ok("user update alice -password reset-by-admin")
        .await;
    assert_eq!(lines, ["updated user \"alice\": password"]);
    let closed = phone.expect_eof().await;
    assert!(
        closed.iter().any(|m| m.command == "ERROR"
            && m.param(0)
                .is_some_and(|t| t.contains("changed by an administrator"))),
        "{closed:?}"
    );

    // Disabling closes the network and refuses logins; enabling reconnects.
    s.tether.admin_ok("user update alice -enabled false").await;
    expect_quit_or_close(&mut s.conn).await;
    let status = s.tether.network_status("alice").await;
    assert!(
        status[0].ends_with(": disabled (the account is disabled)"),
        "{status:?}"
    );
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("PASS reset-by-admin").await;
    c.send("NICK alice").await;
    c.send("USER alice 0 * :alice").await;
    let closed = c.expect_eof().await;
    assert!(
        closed
            .iter()
            .any(|m| m.command == "ERROR" && m.param(0).is_some_and(|t| t.contains("disabled"))),
        "{closed:?}"
    );
    let (lines, mut conn) = tokio::join!(
        s.tether.admin_ok("user update alice -enabled=true"),
        s.fake.accept()
    );
    assert_eq!(lines, ["updated user \"alice\": enabled"]);
    conn.sync().await;

    // -admin in each spelling; the new administrator sees admin commands.
    for flag in ["-admin true", "-admin=false", "-admin"] {
        s.tether
            .admin_ok(&format!("user update alice {flag}"))
            .await;
    }
    let mut b =
        TestClient::register_pass(s.tether.addr, "alice", "reset-by-admin", "alice", &[]).await;
    let help = reply(&mut b, "help").await;
    assert!(help.contains("server status"), "{help:?}");
    expect_service_line(&mut b, "help's second line", |l| l.starts_with("send")).await;
    let status = s.tether.admin_ok("user status alice").await;
    assert_eq!(status, ["alice (admin): 1 networks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_status_and_notice() {
    let s = Setup::new().await;
    let mut phone = s.client("phone", &[]).await;
    let mut b = bouncer_connection(&s.tether, "alice").await;
    s.tether.create_user("bob").await;
    let mut bob = bouncer_connection(&s.tether, "bob").await;

    let status = s.tether.admin_ok("server status").await;
    assert_eq!(
        status,
        [
            "3 users loaded, 3 in the database",
            "3 client connections, 1 of 1 networks connected, 0 channels joined",
        ]
    );

    let sent = s
        .tether
        .admin_ok("server notice 'maintenance at 10:00'")
        .await;
    assert_eq!(sent, ["notice sent to 3 users"]);
    for c in [&mut phone, &mut b, &mut bob] {
        let m = c
            .expect("the server notice", |m| {
                m.command == "NOTICE" && m.param(1) == Some("maintenance at 10:00")
            })
            .await;
        assert_eq!(m.param(0), Some("$tether.test"));
        assert_eq!(m.source.as_deref(), Some(SERVICE_SOURCE), "{m}");
    }
    assert!(
        s.tether
            .admin("server notice")
            .await
            .unwrap_err()
            .contains("usage")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_who_are_not_administrators_see_only_their_own() {
    let s = Setup::new().await;
    s.tether.create_user("bob").await;
    let fake_b = FakeServer::bind(FakeServerOptions::default()).await;
    let _bob_conn = s.tether.create_network("bob", "bobnet", &fake_b).await;
    let mut bob = bouncer_connection(&s.tether, "bob").await;

    let help = reply(&mut bob, "help").await;
    expect_service_line(&mut bob, "help's second line", |l| l.starts_with("send")).await;
    for admin_only in [
        "user create",
        "user status",
        "user run",
        "server status",
        "server notice",
    ] {
        assert!(!help.contains(admin_only), "{admin_only} in {help:?}");
    }
    for command in [
        "user create -username eve -password x",
        "user status",
        "user run alice network status",
        "server status",
        "server notice hi",
        "help server",
    ] {
        let line = reply(&mut bob, command).await;
        assert!(
            line.starts_with("error: unknown command") || line.starts_with("no command matches"),
            "{command}: {line:?}"
        );
    }
    let e = refused(&mut bob, "user delete alice").await;
    assert!(e.contains("only administrators"), "{e:?}");
    let e = refused(&mut bob, "user update alice -password x").await;
    assert!(e.contains("only administrators"), "{e:?}");

    // Network and channel commands only reach bob's own networks.
    let networks = reply(&mut bob, "network status").await;
    assert!(networks.starts_with("bobnet ("), "{networks:?}");
    bob.sync_expect_none("alice's network", |m| {
        m.params.last().is_some_and(|t| t.starts_with("fake ("))
    })
    .await;
    for command in [
        "network delete fake",
        "network update fake -nick x",
        "network quote fake 'PRIVMSG #x :y'",
        "channel status -network fake",
        "sasl status -network fake",
        "certfp fingerprint -network fake",
    ] {
        let e = refused(&mut bob, command).await;
        assert!(e.contains("no network named"), "{command}: {e:?}");
    }
    assert_eq!(s.tether.network_status("alice").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abbreviations_and_quoting() {
    let s = Setup::new().await;
    let mut b = bouncer_connection(&s.tether, "alice").await;
    let status = reply(&mut b, "net st").await;
    assert!(status.starts_with("fake ("), "{status:?}");
    let e = refused(&mut b, "c status").await;
    assert!(e.contains("ambiguous"), "{e:?}");
    let e = refused(&mut b, "network 'status").await;
    assert!(e.contains("quote"), "{e:?}");
    let created = reply(&mut b, r##"ch cr "#spaced\ name/fake""##).await;
    assert!(
        created.starts_with("error: invalid channel name"),
        "{created:?}"
    );
    let ok = reply(&mut b, "dev st").await;
    assert_eq!(ok, "no device certificates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_sasl_certfp_and_help_refuse_bad_input() {
    let s = Setup::new().await;
    let mut b = bouncer_connection(&s.tether, "alice").await;
    for (command, why) in [
        ("network create", "-addr is required"),
        ("network create -addr gopher://x", "scheme"),
        (
            "network create -addr irc+insecure://127.0.0.1:1 -name fake",
            "already exists",
        ),
        (
            "network create -addr irc+insecure://127.0.0.1:1 -name a/b",
            "invalid network name",
        ),
        (
            "network create -addr irc+insecure://127.0.0.1:1 extra",
            "unexpected argument",
        ),
        (
            "network create -addr irc+insecure://127.0.0.1:1 -bogus x",
            "bogus",
        ),
        ("network update nowhere -nick x", "no network named"),
        ("network update fake -nick BouncerServ", "reserved"),
        ("network delete", "usage"),
        ("network delete nowhere", "no network named"),
        ("sasl status", "-network"),
        ("sasl set-plain -network fake onlyuser", "usage"),
        ("sasl reset -network nowhere", "no network named"),
        ("certfp generate -network fake -key-type dsa", "key"),
        ("certfp fingerprint -network fake", "certificate"),
        ("channel status -network nowhere", "no network named"),
        ("channel update #x", "-network"),
    ] {
        let e = refused(&mut b, command).await;
        assert!(
            e.to_ascii_lowercase().contains(&why.to_ascii_lowercase()),
            "{command}: {e:?}"
        );
    }
    // help: one command, a family, and nothing.
    let one = reply(&mut b, "help network quote").await;
    assert!(one.starts_with("network quote [name] <line>: "), "{one:?}");
    service_command(&mut b, "help channel").await;
    let mut family = Vec::new();
    for _ in 0..4 {
        family.push(expect_service_line(&mut b, "help channel", |_| true).await);
    }
    for name in [
        "channel status",
        "channel create",
        "channel update",
        "channel delete",
    ] {
        assert!(
            family.iter().any(|l| l.starts_with(name)),
            "{name}: {family:?}"
        );
    }
    assert_eq!(
        reply(&mut b, "help nosuch").await,
        "no command matches \"nosuch\""
    );
    // Nothing was created or changed by the refused commands.
    let status = s.tether.network_status("alice").await;
    assert_eq!(status.len(), 1, "{status:?}");
}
