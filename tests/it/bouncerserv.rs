//! BouncerServ commands, from an IRC client (the bouncer connection) and
//! through the admin socket.

use crate::harness::*;
use crate::support::*;

/// Send a command to BouncerServ and wait for the reply line matching
/// `pred`.
async fn ask(
    c: &mut TestClient,
    command_line: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    service_command(c, command_line).await;
    expect_service_line(c, what, pred).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_create_status_delete_from_the_bouncer_connection() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    // `alice` without a network: the bouncer connection.
    let mut c = t.connect_client("alice", None, None, "alice", &[]).await;
    c.sync().await;

    ask(&mut c, "network status", "no networks", |l| {
        l == "no networks"
    })
    .await;

    let create = format!(
        "network create -addr irc+insecure://{} -name fake",
        fake.addr
    );
    let (created, mut conn) = tokio::join!(
        ask(&mut c, &create, "created network", |l| l
            .starts_with("created network")),
        fake.accept()
    );
    assert_eq!(created, "created network \"fake\"");
    conn.sync().await;

    let status = ask(&mut c, "network status", "fake's status", |l| {
        l.starts_with("fake (")
    })
    .await;
    assert!(
        status.contains(&fake.addr.port().to_string()),
        "status should show the address: {status:?}"
    );
    assert!(
        status.contains(&format!("): connected as {}", conn.nick)),
        "status should be connected as {}: {status:?}",
        conn.nick
    );

    let deleted = ask(&mut c, "network delete fake", "deleted network", |l| {
        l.starts_with("deleted network")
    })
    .await;
    assert_eq!(deleted, "deleted network \"fake\"");
    expect_quit_or_close(&mut conn).await;
    ask(&mut c, "network status", "no networks", |l| {
        l == "no networks"
    })
    .await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_create_status_delete_via_admin_socket_user_run() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;

    assert_eq!(t.network_status("alice").await, ["no networks"]);
    let mut conn = t
        .create_network_with("alice", "fake", &fake, &["-nick", "alicenick"])
        .await;
    assert_eq!(conn.nick, "alicenick", "-nick not used upstream");

    let status = t.network_status("alice").await;
    assert_eq!(status.len(), 1, "one network: {status:?}");
    assert!(
        status[0].starts_with("fake (") && status[0].ends_with("): connected as alicenick"),
        "unexpected status line: {:?}",
        status[0]
    );
    let user_status = t.admin_ok("user status").await;
    assert!(
        user_status
            .iter()
            .any(|l| l.starts_with("alice: 1 network")),
        "user status should count alice's network: {user_status:?}"
    );

    let deleted = t.admin_ok("user run alice network delete fake").await;
    assert!(
        deleted.iter().any(|l| l == "deleted network \"fake\""),
        "{deleted:?}"
    );
    expect_quit_or_close(&mut conn).await;
    assert_eq!(t.network_status("alice").await, ["no networks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_socket_needs_user_run_for_user_commands() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    for cmd in [
        "network status",
        "network create -addr irc+insecure://127.0.0.1:1 -name nowhere",
        "channel status",
    ] {
        match t.admin(cmd).await {
            Err(e) => assert!(!e.is_empty(), "{cmd:?}: empty error"),
            Ok(lines) => panic!("{cmd:?} without a user context succeeded: {lines:?}"),
        }
    }
    // `user run` with an unknown user fails too.
    assert!(
        t.admin("user run nobody network status").await.is_err(),
        "user run with an unknown user succeeded"
    );
    // Nothing was created for alice.
    assert_eq!(t.network_status("alice").await, ["no networks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_status_and_delete_with_confirmation_token() {
    let t = Tether::start().await;
    assert!(
        t.first_run_password.is_some(),
        "the first start should create user admin"
    );
    t.create_user("bob").await;
    let lines = t
        .admin_words(&[
            "user",
            "create",
            "-username",
            "root2",
            "-password",
            "pw2",
            "-admin",
        ])
        .await
        .expect("creating an admin user");
    assert!(
        lines.iter().any(|l| l == "created user \"root2\""),
        "{lines:?}"
    );

    let status = t.admin_ok("user status").await;
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("admin (admin): 0 network")),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("root2 (admin): 0 network")),
        "{status:?}"
    );
    assert!(
        status.iter().any(|l| l.starts_with("bob: 0 network")),
        "{status:?}"
    );
    // Creating the same user again fails.
    assert!(
        t.admin_words(&["user", "create", "-username", "bob", "-password", "x"])
            .await
            .is_err(),
        "duplicate user created"
    );

    // bob gets a network, to see it torn down with him.
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut conn = t.create_network("bob", "fake", &fake).await;
    let mut bob = t
        .connect_client("bob", Some("fake"), None, "bob", &[])
        .await;
    bob.sync().await;

    let ask = t.admin_ok("user delete bob").await;
    let prefix = "To confirm, send \"user delete bob ";
    let token = ask
        .iter()
        .find_map(|l| l.strip_prefix(prefix)?.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no confirmation request in {ask:?}"))
        .to_string();
    assert!(!token.is_empty() && !token.contains(' '), "token {token:?}");

    // A wrong token deletes nothing.
    let _ = t.admin("user delete bob not-the-token").await;
    let status = t.admin_ok("user status").await;
    assert!(
        status.iter().any(|l| l.starts_with("bob: 1 network")),
        "bob deleted with a wrong token: {status:?}"
    );

    let done = t
        .admin_words(&["user", "delete", "bob", &token])
        .await
        .expect("confirmed delete");
    assert!(done.iter().any(|l| l == "deleted user \"bob\""), "{done:?}");
    let status = t.admin_ok("user status").await;
    assert!(
        !status.iter().any(|l| l.starts_with("bob")),
        "bob still listed: {status:?}"
    );
    // His upstream connection goes away and he can no longer log in.
    expect_quit_or_close(&mut conn).await;
    drop(bob);
    let mut again = TestClient::connect(t.addr).await;
    again.send(&format!("PASS :{PASSWORD}")).await;
    again.send("NICK bob").await;
    again.send("USER bob/fake 0 * :Bob").await;
    again.expect_cmd("464").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regular_user_cannot_create_users() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut c = t.connect_client("alice", None, None, "alice", &[]).await;
    c.sync().await;
    ask(
        &mut c,
        "user create -username eve -password pw",
        "an error",
        |l| l.starts_with("error: "),
    )
    .await;
    let status = t.admin_ok("user status").await;
    assert!(
        !status.iter().any(|l| l.starts_with("eve")),
        "a regular user created eve: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_user_can_create_users_from_irc() {
    let t = Tether::start().await;
    let pw = t.first_run_password.clone().expect("first-run password");
    let mut c = TestClient::register_pass(t.addr, "admin", &pw, "admin", &[]).await;
    c.sync().await;
    let created = ask(
        &mut c,
        "user create -username carol -password pw3",
        "created user",
        |l| l.starts_with("created user") || l.starts_with("error: "),
    )
    .await;
    assert_eq!(created, "created user \"carol\"");
    let mut carol = TestClient::register_pass(t.addr, "carol", "pw3", "carol", &[]).await;
    carol.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_available_commands() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut c = t.connect_client("alice", None, None, "alice", &[]).await;
    ask(&mut c, "help", "available commands:", |l| {
        l.contains("available commands:")
    })
    .await;
    let lines = t.admin_ok("help").await;
    assert!(
        lines.iter().any(|l| l.contains("available commands:")),
        "help on the admin socket: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_command_is_an_error() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut c = t.connect_client("alice", None, None, "alice", &[]).await;
    ask(&mut c, "frobnicate now", "an error", |l| {
        l.starts_with("error: ")
    })
    .await;
    assert!(t.admin("frobnicate now").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_status_lists_saved_channels() {
    let mut s = Setup::new().await;
    let mut phone = s.client("phone", &[]).await;
    s.join(&mut phone, "#chan", None, &[]).await;
    s.conn.sync().await;

    // Bound to the network: no suffix.
    let line = ask(&mut phone, "channel status", "#chan", |l| {
        l.starts_with("#chan")
    })
    .await;
    assert_eq!(line, "#chan [joined]");

    // The bouncer connection: /network suffix, unless -network is given.
    let mut b = s
        .tether
        .connect_client("alice", None, None, "alice", &[])
        .await;
    let line = ask(&mut b, "channel status", "#chan/fake", |l| {
        l.starts_with("#chan")
    })
    .await;
    assert_eq!(line, "#chan/fake [joined]");
    let line = ask(&mut b, "channel status -network fake", "#chan", |l| {
        l.starts_with("#chan")
    })
    .await;
    assert_eq!(line, "#chan [joined]");

    let lines = s
        .tether
        .admin_ok("user run alice channel status -network fake")
        .await;
    assert_eq!(lines, ["#chan [joined]"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_update_is_acknowledged_and_kept() {
    let s = Setup::new().await;
    let lines = s
        .tether
        .admin_words(&[
            "user",
            "run",
            "alice",
            "network",
            "update",
            "fake",
            "-realname",
            "Alice Liddell",
        ])
        .await
        .expect("network update");
    assert!(
        lines.iter().any(|l| l == "updated network \"fake\""),
        "{lines:?}"
    );
    assert!(
        s.tether
            .admin("user run alice network update nosuchnet -realname x")
            .await
            .is_err(),
        "updating a missing network succeeded"
    );
    let status = s.tether.network_status("alice").await;
    assert!(status.iter().any(|l| l.starts_with("fake (")), "{status:?}");
}

/// Regression: a disabled user's networks were connected anyway.
#[tokio::test]
async fn disabled_users_do_not_connect_their_networks() {
    let t = Tether::start().await;
    t.admin_ok("user create -username sleeper -password pw -enabled false")
        .await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let create = format!(
        "user run sleeper network create -addr irc+insecure://{} -name fake",
        fake.addr
    );
    t.admin_ok(&create).await;
    let status = t.admin_ok("user run sleeper network status").await;
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(
        status[0].ends_with(": disabled (the account is disabled)"),
        "{status:?}"
    );
}
