//! The admin socket protocol and `tetherctl` against the real `tether`
//! binary.

use std::net::SocketAddr;

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tetherctl_creates_users_that_can_log_in() {
    let (dir, config) = config_dir("tether-cli-");

    let mut tether = TetherProcess::spawn(&config, dir.path());
    let (addrs, password) = tether
        .wait_startup(&["irc+insecure", "unix+admin"], true)
        .await;
    let irc_addr: SocketAddr = addrs[0]
        .parse()
        .unwrap_or_else(|e| panic!("listener address {:?}: {e}", addrs[0]));
    assert_ne!(irc_addr.port(), 0, "the bound port must be logged");
    assert_eq!(
        std::path::Path::new(&addrs[1]),
        dir.path().join("admin.sock"),
        "admin socket path in the log"
    );
    let admin_password = password.expect("first-run password");

    let out = tetherctl(
        &config,
        &["user", "create", "-username", "bob", "-password", "pw"],
    )
    .await;
    assert!(out.success, "tetherctl user create failed: {out:?}");
    assert!(
        out.stdout.lines().any(|l| l == "created user \"bob\""),
        "tetherctl output: {out:?}"
    );

    let out = tetherctl(&config, &["user", "status"]).await;
    assert!(out.success, "tetherctl user status failed: {out:?}");
    assert!(
        out.stdout.lines().any(|l| l.starts_with("bob: 0 network")),
        "bob not listed: {out:?}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("admin (admin): 0 network")),
        "admin not listed: {out:?}"
    );

    // A command that needs a user context fails, with a message on stderr.
    let out = tetherctl(&config, &["network", "create", "-addr", "x"]).await;
    assert!(
        !out.success,
        "network create without a user succeeded: {out:?}"
    );
    assert!(!out.stderr.trim().is_empty(), "no error printed: {out:?}");

    // Words with spaces and quotes survive the trip (quoted by tetherctl).
    let out = tetherctl(
        &config,
        &[
            "user",
            "create",
            "-username",
            "carol",
            "-password",
            "it's a \"pw\"",
        ],
    )
    .await;
    assert!(out.success, "tetherctl user create carol failed: {out:?}");

    // The users work on the IRC listener.
    let mut bob = TestClient::register_pass(irc_addr, "bob", "pw", "bob", &[]).await;
    bob.sync().await;
    let mut carol =
        TestClient::register_pass(irc_addr, "carol", "it's a \"pw\"", "carol", &[]).await;
    carol.sync().await;
    let mut admin =
        TestClient::register_pass(irc_addr, "admin", &admin_password, "admin", &[]).await;
    admin.sync().await;

    // Graceful shutdown on SIGTERM: clients are told, exit status 0.
    let status = tether.terminate().await;
    let m = bob.expect_cmd("ERROR").await;
    assert_eq!(m.param(0), Some("Server shutting down"), "{m}");
    assert!(
        status.success(),
        "tether exited with {status}\n{:#?}",
        tether.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tetherctl_fails_cleanly_without_a_running_daemon() {
    let (_dir, config) = config_dir("tether-cli-");
    let out = tetherctl(&config, &["user", "status"]).await;
    assert!(!out.success, "tetherctl succeeded with no daemon: {out:?}");
    assert!(!out.stderr.trim().is_empty(), "no error printed: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_socket_refuses_irc_registration_commands() {
    let t = Tether::start().await;
    for line in [
        "CAP LS 302",
        "NICK alice",
        "USER alice 0 * :Alice",
        "PASS secret",
    ] {
        let mut irc = IrcStream::connect_unix(&t.admin_path).await;
        irc.set_label(format!("admin socket ({line})"));
        irc.send(line).await;
        let m = irc.expect_cmd("ERROR").await;
        assert_eq!(
            m.param(0),
            Some("This is not a regular IRC server"),
            "reply to {line:?}: {m}"
        );
        irc.expect_eof().await;
    }
    // The socket still serves BouncerServ afterwards.
    let lines = t.admin_ok("user status").await;
    assert!(
        lines.iter().any(|l| l.starts_with("admin (admin)")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_socket_keeps_quoted_words_intact() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let realname = "Alice \"Q\" O'Hara \\ the second";
    let conn = t
        .create_network_with("alice", "fake", &fake, &["-realname", realname])
        .await;
    let user = conn
        .transcript()
        .lines()
        .find(|l| l.starts_with("<- USER "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no USER received\n{}", conn.transcript()));
    assert!(
        user.ends_with(&format!(":{realname}")),
        "realname mangled on the way: {user:?}"
    );
}

/// tetherctl's exit status tells scripts what went wrong: 0 done, 1 the
/// command failed, 2 wrong usage, 3 configuration problem, 4 tether not
/// reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tetherctl_exit_codes() {
    let t = Tether::start().await;
    let config = t.dir.path().join("tether.conf");

    let out = tetherctl(&config, &["server", "status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("users loaded"), "{out:?}");

    for words in [
        &["user", "delete", "nobody"][..],
        &["frobnicate"],
        &["user", "create", "-username", "x"],
        &["network", "status"],
    ] {
        let out = tetherctl(&config, words).await;
        assert_eq!(out.code, Some(1), "{words:?}: {out:?}");
        assert!(!out.stderr.trim().is_empty(), "{words:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{words:?}: {out:?}");
    }

    let out = tetherctl(&config, &[]).await;
    assert_eq!(out.code, Some(2), "no command: {out:?}");

    let bad = t.dir.path().join("bad.conf");
    std::fs::write(&bad, "listen nonsense://x\n").expect("writing a config");
    let out = tetherctl(&bad, &["server", "status"]).await;
    assert_eq!(out.code, Some(3), "invalid config: {out:?}");
    let no_admin = t.dir.path().join("no-admin.conf");
    std::fs::write(&no_admin, "listen irc://localhost:0\n").expect("writing a config");
    let out = tetherctl(&no_admin, &["server", "status"]).await;
    assert_eq!(out.code, Some(3), "no admin socket: {out:?}");
    assert!(out.stderr.contains("unix+admin"), "{out:?}");

    let gone = t.dir.path().join("gone.conf");
    std::fs::write(
        &gone,
        format!(
            "listen unix+admin://{}/nobody.sock\n",
            t.dir.path().display()
        ),
    )
    .expect("writing a config");
    let out = tetherctl(&gone, &["server", "status"]).await;
    assert_eq!(out.code, Some(4), "nothing listening: {out:?}");
    assert!(out.stderr.contains("is tether running"), "{out:?}");
}

/// `server debug` switches the running daemon's log level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_debug_switches_debug_logging_at_run_time() {
    let (dir, config) = config_dir("tether-cli-debug-");
    let mut tether = TetherProcess::spawn(&config, dir.path());
    tether
        .wait_startup(&["irc+insecure", "unix+admin"], true)
        .await;
    let out = tetherctl(&config, &["server", "debug", "true"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "debug logging on");
    // A new user's actor logs its start at debug level only.
    let out = tetherctl(
        &config,
        &["user", "create", "-username", "dora", "-password", "pw"],
    )
    .await;
    assert!(out.success, "{out:?}");
    tether
        .wait_for_line("the debug line of dora's actor", |l| {
            l.contains("DEBUG") && l.contains("user actor started")
        })
        .await;
    let out = tetherctl(&config, &["server", "debug", "false"]).await;
    assert_eq!(out.stdout.trim(), "debug logging off", "{out:?}");
    let out = tetherctl(&config, &["server", "debug", "maybe"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("usage"), "{out:?}");
    tether.terminate().await;
}
