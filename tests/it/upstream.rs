//! Upstream registration: nick fallback and refused logins.

use crate::harness::*;
use crate::support::*;

#[tokio::test]
async fn nick_in_use_falls_back_to_an_underscore() {
    let opts = FakeServerOptions {
        nicks_in_use: vec!["alice".to_string()],
        ..FakeServerOptions::default()
    };
    let setup = Setup::with_options(opts).await;
    assert_eq!(setup.conn.nick, "alice_");
    let client = setup.client("phone", &[]).await;
    assert_eq!(client.nick, "alice_", "{}", client.transcript());
}

#[tokio::test]
async fn refused_password_stops_reconnecting_and_says_why() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions {
        reject_password: true,
        expected_password: Some("right".to_string()),
        ..FakeServerOptions::default()
    })
    .await;
    let uri = format!("irc+insecure://{}", fake.addr);
    let words = [
        "user", "run", "alice", "network", "create", "-addr", &uri, "-name", "fake", "-pass",
        "wrong",
    ];
    let create = t.admin_words(&words);
    let (created, mut conn) = tokio::join!(create, fake.accept());
    created.expect("network created");
    assert!(conn.rejected, "{}", conn.transcript());
    // tether answers the 464 by closing the link itself, so once the fake
    // server sees the end of the stream, the refusal has been handled.
    conn.expect_eof().await;
    let status = t.network_status("alice").await;
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(status[0].contains("not retrying"), "{status:?}");
    assert!(status[0].contains("refused the password"), "{status:?}");
}
