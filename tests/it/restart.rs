//! Graceful shutdown and restart with the same database: users, networks
//! and saved channels persist.

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_network_and_channel_survive_a_restart() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut conn = t.create_network("alice", "fake", &fake).await;
    let mut c = t
        .connect_client("alice", Some("fake"), Some("phone"), "phone", &[])
        .await;
    c.send("JOIN #persist").await;
    conn.expect_join("#persist", Some("kept across restarts"), &["bob"])
        .await;
    expect_own_join(&mut c, &conn.nick, "#persist").await;
    conn.sync().await;
    c.sync().await;

    // Graceful shutdown: the upstream gets QUIT, the client an ERROR.
    let upstream = async {
        let quit = conn.expect_cmd("QUIT").await;
        conn.send("ERROR :Closing link (Quit)").await;
        conn.shutdown_write().await;
        quit
    };
    let client = async {
        let m = c.expect_cmd("ERROR").await;
        assert_eq!(m.param(0), Some("Server shutting down"), "{m}");
        c.expect_eof().await;
    };
    let (dir, _quit, ()) = tokio::join!(t.shutdown(), upstream, client);
    drop(conn);

    // Same config, same DB.
    let t = Tether::start_in(dir).await;
    assert_eq!(
        t.first_run_password, None,
        "the admin user must not be created again on restart"
    );
    let mut conn = fake.accept().await;
    let join = conn
        .expect_join("#persist", Some("kept across restarts"), &["bob"])
        .await;
    assert_eq!(join.param(0), Some("#persist"));
    conn.sync().await;

    let mut c = t
        .connect_client("alice", Some("fake"), Some("phone"), "phone", &[])
        .await;
    assert!(
        irc_eq(&c.nick, &conn.nick),
        "001 nick {} vs upstream {}",
        c.nick,
        conn.nick
    );
    collect_until(&mut c, "#persist in the burst (366)", |m| {
        m.command == "366" && m.param(1).is_some_and(|ch| irc_eq(ch, "#persist"))
    })
    .await;
    c.sync().await;

    let status = t.network_status("alice").await;
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(
        status[0].starts_with("fake (") && status[0].contains("connected as "),
        "{status:?}"
    );
    let users = t.admin_ok("user status").await;
    assert!(
        users.iter().any(|l| l.starts_with("alice: 1 network")),
        "{users:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_admin_password_is_printed_once_and_keeps_working() {
    let t = Tether::start().await;
    let password = t
        .first_run_password
        .clone()
        .expect("a fresh DB creates the admin user");
    assert!(!password.is_empty());
    let dir = t.shutdown().await;

    let t = Tether::start_in(dir).await;
    assert_eq!(t.first_run_password, None);
    let mut admin = TestClient::register_pass(t.addr, "admin", &password, "admin", &[]).await;
    admin.sync().await;
    let dir = t.shutdown().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_clients_and_closes_listeners() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let addr = t.addr;
    let admin_path = t.admin_path.clone();
    let mut c = t.connect_client("alice", None, None, "alice", &[]).await;
    c.sync().await;
    let client = async {
        let m = c.expect_cmd("ERROR").await;
        assert_eq!(m.param(0), Some("Server shutting down"), "{m}");
        c.expect_eof().await;
    };
    let (_dir, ()) = tokio::join!(t.shutdown(), client);
    // Nobody listens any more (the temp dir, and so the socket path, still
    // exists: `_dir` is alive).
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the IRC listener still accepts after shutdown"
    );
    assert!(
        tokio::net::UnixStream::connect(&admin_path).await.is_err(),
        "the admin socket still accepts after shutdown"
    );
}
