//! Upstream connection loss: the bouncer reconnects and rejoins the saved
//! channels (with their keys); clients stay connected.

use crate::harness::{FakeServer, FakeServerOptions};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_channel_is_rejoined_after_upstream_reconnect() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", Some("topic"), &["bob"]).await;
    s.conn.sync().await;

    // Drop the upstream connection; the bouncer reconnects at once.
    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    let join = s.conn.expect_join("#chan", Some("topic"), &["bob"]).await;
    assert_eq!(join.param(0), Some("#chan"), "rejoin: {join}");
    s.conn.sync().await;

    // The client survived the upstream reconnect and gets channel traffic.
    s.conn
        .send(":bob!b@h.example PRIVMSG #chan :welcome back")
        .await;
    let m = c
        .expect("message after the reconnect", |m| {
            is_privmsg(m, "#chan", "welcome back")
        })
        .await;
    assert_eq!(m.source_nick(), Some("bob"), "{m}");
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_key_is_sent_again_when_rejoining_after_reconnect() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.sync().await;

    c.send("JOIN #k secret").await;
    let join = s.conn.expect_join("#k", None, &[]).await;
    assert_eq!(
        join.params,
        ["#k", "secret"],
        "the client's key must be relayed: {join}"
    );
    expect_own_join(&mut c, &s.conn.nick, "#k").await;
    s.join(&mut c, "#open", None, &[]).await;
    s.conn.sync().await;

    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    // Both channels come back, in one JOIN or two; #k with its key.
    let k = s.conn.expect_join("#k", None, &[]).await;
    assert_eq!(
        k.param(1),
        Some("secret"),
        "rejoin of #k without its key: {k}"
    );
    let open = s.conn.expect_join("#open", None, &[]).await;
    assert_eq!(open.param(1), None, "#open has no key: {open}");
    s.conn.sync().await;

    s.conn.send(":bob!b@h.example PRIVMSG #k :keyed").await;
    c.expect("message in #k after the reconnect", |m| {
        is_privmsg(m, "#k", "keyed")
    })
    .await;
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_is_reconnected_again_after_a_second_loss() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &[]).await;
    s.conn.sync().await;

    // First loss: immediate reconnect. Second loss: after a backoff that
    // must still fit in the harness TIMEOUT.
    for round in 0..2 {
        let old = s.conn;
        old.kill();
        s.conn = s.fake.accept().await;
        let join = s.conn.expect_join("#chan", None, &[]).await;
        assert_eq!(join.param(0), Some("#chan"), "round {round}: {join}");
        s.conn.sync().await;
    }
    let status = s.tether.network_status("alice").await;
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("fake (") && l.contains("connected as ")),
        "network status after reconnects: {status:?}"
    );
    c.sync().await;
}

/// A server that stops answering is probed with a PING, then dropped and
/// reconnected, and the channels are rejoined.
#[tokio::test]
async fn silent_server_is_probed_then_replaced_by_a_new_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tether = Tether::start_adjusted(dir, "", |config| {
        config.upstream_liveness = tether::config::Liveness {
            idle_probe: std::time::Duration::from_millis(300),
            ping_timeout: std::time::Duration::from_millis(300),
        };
    })
    .await;
    tether.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut conn = tether.create_network("alice", "fake", &fake).await;
    let mut client = tether
        .connect_client("alice", Some("fake"), Some("phone"), "alice", &[])
        .await;
    client.send("JOIN #quiet").await;
    conn.expect_join("#quiet", None, &[]).await;
    // The fake server now says nothing: tether's probe arrives and goes
    // unanswered (reading it does not answer it).
    let probe = conn.expect_cmd("PING").await;
    assert!(!probe.params.is_empty(), "{}", conn.transcript());
    let mut again = fake.accept().await;
    again.expect_join("#quiet", None, &[]).await;
    let status = tether.network_status("alice").await;
    assert!(status[0].contains("connected as"), "{status:?}");
    drop(conn);
}
