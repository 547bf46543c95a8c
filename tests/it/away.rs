//! Away aggregation: the upstream is away exactly when every client of
//! the network is away (or none is attached), with the most recent client
//! message; `AWAY *` (draft/pre-away) counts as away without a message;
//! the server's 305/306 answers are not shown to clients; the state comes
//! back after an upstream reconnect.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

fn away_lines(lines: &[Message]) -> Vec<&Message> {
    lines.iter().filter(|m| m.command == "AWAY").collect()
}

/// Read the next AWAY the bouncer sends upstream and answer it like a
/// server would (306/305); returns its message, `None` for "back".
async fn next_away(conn: &mut FakeConn) -> Option<String> {
    let m = conn.expect_cmd("AWAY").await;
    let nick = conn.nick.clone();
    match m.param(0).filter(|t| !t.is_empty()) {
        Some(text) => {
            conn.send(&format!(
                ":irc.fake 306 {nick} :You have been marked as being away"
            ))
            .await;
            Some(text.to_string())
        }
        None => {
            conn.send(&format!(
                ":irc.fake 305 {nick} :You are no longer marked as being away"
            ))
            .await;
            None
        }
    }
}

/// A client of alice on `fake` that registers with draft/pre-away and
/// sends `away_line` before CAP END.
async fn pre_away_client(s: &Setup, name: &str, away_line: &str) -> TestClient {
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("CAP LS 302").await;
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send(&format!("NICK {name}")).await;
    c.send(&format!("USER alice/fake@{name} 0 * :{name}")).await;
    c.request_caps(&["draft/pre-away"]).await;
    c.send(away_line).await;
    c.send("CAP END").await;
    c.expect_welcome().await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_is_away_only_when_every_client_is() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions::default()).await;
    // Nobody is attached yet.
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    let mut phone = s.client("phone", &[]).await;
    assert_eq!(next_away(&mut s.conn).await, None, "a client is present");
    let mut laptop = s.client("laptop", &[]).await;
    laptop.sync().await;

    phone.send("AWAY :on the train").await;
    let r = phone.expect_cmd("306").await;
    assert_eq!(
        r.source.as_deref(),
        Some("tether.test"),
        "answered locally: {r}"
    );
    let up = upstream_until_marker(&mut phone, &mut s.conn).await;
    assert!(away_lines(&up).is_empty(), "laptop is present: {up:?}");

    laptop.send("AWAY :asleep").await;
    laptop.expect_cmd("306").await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("asleep"));
    // The server's 306 is tether's business.
    s.conn.sync().await;
    for c in [&mut phone, &mut laptop] {
        c.sync_expect_none("the server's 306", |m| m.command == "306")
            .await;
    }

    phone.send("AWAY").await;
    phone.expect_cmd("305").await;
    assert_eq!(next_away(&mut s.conn).await, None);
    s.conn.sync().await;
    for c in [&mut phone, &mut laptop] {
        c.sync_expect_none("the server's 305", |m| m.command == "305")
            .await;
    }

    // The present client leaves: the laptop (away) is all that is left.
    phone.send("QUIT").await;
    phone.expect_eof().await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("asleep"));
    laptop.send("AWAY").await;
    assert_eq!(next_away(&mut s.conn).await, None);
    // The last client leaves.
    drop(laptop);
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_away_star_counts_as_away_without_a_message() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions::default()).await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    let mut phone = s.client("phone", &[]).await;
    assert_eq!(next_away(&mut s.conn).await, None);
    phone.send("AWAY :reading").await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("reading"));

    // A background client connecting with AWAY * does not bring the user
    // back, and its `*` does not replace the phone's message.
    let mut bg = pre_away_client(&s, "bg", "AWAY *").await;
    let up = upstream_until_marker(&mut bg, &mut s.conn).await;
    assert!(away_lines(&up).is_empty(), "still away: {up:?}");

    // Only `*` left: the default message, never a literal `*`.
    phone.send("QUIT").await;
    phone.expect_eof().await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    bg.send("AWAY *").await;
    let up = upstream_until_marker(&mut bg, &mut s.conn).await;
    assert!(away_lines(&up).is_empty(), "no change: {up:?}");
    bg.send("AWAY :later").await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("later"));
    bg.send("AWAY *").await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));

    // A client registering without pre-away AWAY is present.
    let mut plain = pre_away_client(&s, "plain", "AWAY").await;
    assert_eq!(next_away(&mut s.conn).await, None);
    plain.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn away_state_is_restored_after_an_upstream_reconnect() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions::default()).await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    let mut phone = s.client("phone", &[]).await;
    assert_eq!(next_away(&mut s.conn).await, None);
    phone.send("AWAY :gone fishing").await;
    phone.expect_cmd("306").await;
    assert_eq!(
        next_away(&mut s.conn).await.as_deref(),
        Some("gone fishing")
    );

    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    assert_eq!(
        next_away(&mut s.conn).await.as_deref(),
        Some("gone fishing")
    );
    s.conn.sync().await;
    phone
        .sync_expect_none("the server's 306 after the reconnect", |m| {
            m.command == "306"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_present_user_stays_present_after_an_upstream_reconnect() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions::default()).await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    let mut phone = s.client("phone", &[]).await;
    assert_eq!(next_away(&mut s.conn).await, None);

    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    // A new connection starts present: there is nothing to send.
    let mut up = s.conn.sync().await;
    up.extend(upstream_until_marker(&mut phone, &mut s.conn).await);
    assert!(away_lines(&up).is_empty(), "{up:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncer_connection_away_does_not_touch_networks() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions::default()).await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("Auto away"));
    let mut phone = s.client("phone", &[]).await;
    assert_eq!(next_away(&mut s.conn).await, None);
    let mut bnc = s
        .tether
        .connect_client("alice", None, Some("bnc"), "alice", &[])
        .await;
    bnc.send("AWAY :elsewhere").await;
    bnc.expect_cmd("306").await;
    phone.send("AWAY :here too").await;
    assert_eq!(next_away(&mut s.conn).await.as_deref(), Some("here too"));
    drop(bnc);
    let up = upstream_until_marker(&mut phone, &mut s.conn).await;
    assert!(away_lines(&up).is_empty(), "{up:?}");
}
