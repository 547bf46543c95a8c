//! `upstream-connect-spacing` over real sockets: connection attempts to one
//! host wait their turn, in the order they were asked for, and a queued
//! attempt is called off when its network is deleted or updated. Exact
//! timings are tested with paused time in `upstream::schedule`; these
//! tests assert order and that a queued attempt has not connected.

use crate::harness::*;
use crate::support::*;

/// Networks of several users on one host connect one per spacing, in
/// the order they were created. Deleting a queued one calls its attempt
/// off (the one behind it takes its turn), moving another to a different
/// host name lets it connect at once (hosts do not wait for each other),
/// and shutting down with attempts still queued does not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_attempts_wait_for_their_host_and_are_called_off() {
    // Long enough that nothing below the first accept depends on speed.
    let t = Tether::start_with(temp_dir("tether-it-"), "upstream-connect-spacing 5s\n").await;
    for user in ["alice", "bob", "carol", "dave", "eve"] {
        t.create_user(user).await;
    }
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let first = t.create_network("alice", "fake", &fake).await;
    let uri = format!("irc+insecure://{}", fake.addr);
    // Their turns: bob, then carol, then dave, 5s apart.
    for user in ["bob", "carol", "dave"] {
        t.create_network_at(user, "fake", &uri, &[])
            .await
            .unwrap_or_else(|e| panic!("network of {user}: {e}"));
        let status = t.network_status(user).await;
        assert_eq!(status.len(), 1, "{status:?}");
        assert!(status[0].contains("connecting"), "{user}: {status:?}");
    }
    fake.assert_no_pending_connection("bob, carol and dave must wait for their turn");

    t.admin_ok("user run bob network delete fake").await;
    let moved = format!("irc+insecure://localhost:{}", fake.addr.port());
    let update = format!("user run dave network update fake -addr {moved}");
    let (updated, dave) = tokio::join!(t.admin(&update), fake.accept());
    updated.expect("network update");
    assert_eq!(dave.nick, "dave", "{}", dave.transcript());
    // bob's turn went to carol.
    let mut carol = fake.accept().await;
    assert_eq!(carol.nick, "carol", "{}", carol.transcript());
    carol.sync().await;
    let status = t.network_status("carol").await;
    assert!(status[0].contains("connected as carol"), "{status:?}");

    // A user whose attempt is queued is stopped with the server.
    t.create_network_at("eve", "fake", &uri, &[])
        .await
        .expect("network of eve");
    drop((first, dave));
    t.shutdown().await;
}

/// Two networks of one user on the same server: their reconnections start
/// in the order the links were lost, one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnections_to_one_host_come_in_order_one_at_a_time() {
    let t = Tether::start_with(temp_dir("tether-it-"), "upstream-connect-spacing 2s\n").await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let one = t
        .create_network_with("alice", "first", &fake, &["-nick", "one"])
        .await;
    // Waits for its turn, 2s after the first.
    let two = t
        .create_network_with("alice", "second", &fake, &["-nick", "two"])
        .await;
    let mut watch = t
        .connect_client("alice", None, Some("watch"), "alice", &[])
        .await;
    watch.sync().await;

    // Lose "second" first, then "first".
    for (conn, name) in [(two, "second"), (one, "first")] {
        conn.kill();
        watch
            .expect(&format!("{name} disconnected"), |m| {
                is_service_notice(m, &format!("disconnected from {name}"))
            })
            .await;
    }
    let irc = fake.accept_raw().await;
    fake.assert_no_pending_connection("the second reconnection must wait for the spacing");
    let again = register_fake_conn(&fake.opts, irc).await;
    assert_eq!(again.nick, "two", "{}", again.transcript());
    let later = fake.accept().await;
    assert_eq!(later.nick, "one", "{}", later.transcript());
    drop((again, later));
}
