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

#[tokio::test]
async fn sasl_plain_credentials_are_used_after_set_plain() {
    let opts = FakeServerOptions {
        caps: vec!["sasl=PLAIN".to_string(), "server-time".to_string()],
        ..FakeServerOptions::default()
    };
    let setup = Setup::with_options(opts).await;
    assert_eq!(setup.conn.sasl, None, "no SASL before it is configured");
    let t = &setup.tether;
    t.admin_ok("user run alice sasl set-plain -network fake acct 's3cret pw'")
        .await;
    let status = t.admin_ok("user run alice sasl status -network fake").await;
    assert!(
        status[0].contains("SASL PLAIN enabled") && status[0].contains("\"acct\""),
        "{status:?}"
    );
    let (updated, conn) = tokio::join!(
        t.admin("user run alice network update fake"),
        setup.fake.accept()
    );
    updated.expect("network update");
    assert!(
        conn.caps.iter().any(|c| c == "sasl"),
        "{}",
        conn.transcript()
    );
    assert_eq!(
        conn.sasl,
        Some(("acct".to_string(), "s3cret pw".to_string()))
    );
    t.admin_ok("user run alice sasl reset -network fake").await;
    let status = t.admin_ok("user run alice sasl status -network fake").await;
    assert!(status[0].contains("disabled"), "{status:?}");
}
