//! Self-tests of the harness, run without the bouncer: a `TestClient`
//! talks directly to a `FakeServer`.

use crate::harness::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn opts_with_caps() -> FakeServerOptions {
    FakeServerOptions {
        caps: vec!["server-time".into(), "sasl=PLAIN".into()],
        nicks_in_use: vec!["taken".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn harness_fake_server_manual_registration() {
    let server = FakeServer::bind(opts_with_caps()).await;
    let client = async {
        let mut c = TestClient::connect(server.addr).await;
        c.send("CAP LS 302").await;
        let ls = c.expect_cmd("CAP").await;
        assert_eq!(ls.source.as_deref(), Some("irc.fake"));
        assert_eq!(ls.params, ["*", "LS", "server-time sasl=PLAIN"]);

        c.send("CAP REQ :server-time bogus").await;
        let nak = c.expect_cmd("CAP").await;
        assert_eq!(nak.params, ["*", "NAK", "server-time bogus"]);
        c.send("CAP REQ :server-time").await;
        let ack = c.expect_cmd("CAP").await;
        assert_eq!(ack.params, ["*", "ACK", "server-time"]);

        c.send("NICK taken").await;
        let in_use = c.expect_cmd("433").await;
        assert_eq!(in_use.param(1), Some("taken"));
        c.send("NICK alice").await;
        c.send("USER alice 0 * :Alice").await;
        c.send("PING :during registration").await;
        let pong = c.expect_cmd("PONG").await;
        assert_eq!(
            pong.params.last().map(String::as_str),
            Some("during registration")
        );

        c.send("CAP END").await;
        let welcome = c.expect_cmd("001").await;
        assert_eq!(welcome.param(0), Some("alice"));
        let isupport = c.expect_cmd("005").await;
        assert!(isupport.params.iter().any(|p| p == "NETWORK=FakeNet"));
        assert!(isupport.params.iter().any(|p| p == "CASEMAPPING=rfc1459"));
        c.expect_cmd("376").await;
        c
    };
    let (conn, _c) = tokio::join!(server.accept(), client);
    assert_eq!(conn.nick, "alice");
    assert_eq!(conn.user, "alice");
    assert_eq!(conn.caps, ["server-time"]);
    assert_eq!(conn.pass, None);
    assert_eq!(conn.sasl, None);
    assert!(!conn.rejected);
}

#[tokio::test]
async fn harness_register_helpers_against_fake_server() {
    let server = FakeServer::bind(opts_with_caps()).await;

    let (conn, c) = tokio::join!(
        server.accept(),
        TestClient::register_pass(
            server.addr,
            "alice/net@phone",
            "secret",
            "alice",
            &["server-time"]
        )
    );
    assert_eq!(c.nick, "alice");
    assert_eq!(conn.pass.as_deref(), Some("secret"));
    assert_eq!(conn.user, "alice/net@phone");
    assert_eq!(conn.caps, ["server-time"]);

    // 293 password bytes make a payload that encodes to exactly 400
    // characters (terminated by `AUTHENTICATE +`); 400 make two chunks.
    for password in ["pw".to_string(), "p".repeat(293), "p".repeat(400)] {
        let (conn, c) = tokio::join!(
            server.accept(),
            TestClient::register_sasl(server.addr, "alice", &password, "alice", &["server-time"])
        );
        assert_eq!(c.nick, "alice");
        assert_eq!(conn.sasl, Some(("alice".to_string(), password.clone())));
        assert_eq!(conn.caps, ["sasl", "server-time"]);
        assert_eq!(conn.pass, None);
    }
}

#[tokio::test]
async fn harness_fake_server_rejects_wrong_password() {
    let server = FakeServer::bind(FakeServerOptions {
        reject_password: true,
        expected_password: Some("right".into()),
        ..Default::default()
    })
    .await;
    let client = async {
        let mut c = TestClient::connect(server.addr).await;
        c.send("PASS wrong").await;
        c.send("NICK alice").await;
        c.send("USER alice 0 * :Alice").await;
        let rest = c.expect_eof().await;
        let cmds: Vec<&str> = rest.iter().map(|m| m.command.as_str()).collect();
        assert_eq!(cmds, ["464", "ERROR"]);
    };
    let (conn, ()) = tokio::join!(server.accept(), client);
    assert!(conn.rejected);
    assert_eq!(conn.pass.as_deref(), Some("wrong"));
}

#[tokio::test]
async fn harness_expect_join_answers_like_a_server() {
    let server = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut conn, mut c) = tokio::join!(
        server.accept(),
        TestClient::register_pass(server.addr, "alice", "pw", "alice", &[])
    );
    c.send("JOIN #a,#b key1").await;
    let b = conn
        .expect_join("#b", Some("the topic"), &["bob", "+carol"])
        .await;
    assert_eq!(b.params, ["#b"]);
    let a = conn.expect_join("#a", None, &[]).await;
    assert_eq!(a.params, ["#a", "key1"]);

    let join = c.expect_cmd("JOIN").await;
    assert_eq!(join.source.as_deref(), Some("alice!u@h"));
    assert_eq!(join.params, ["#b"]);
    assert_eq!(
        c.expect_cmd("332").await.params,
        ["alice", "#b", "the topic"]
    );
    assert_eq!(
        c.expect_cmd("353").await.params,
        ["alice", "=", "#b", "@alice bob +carol"]
    );
    assert_eq!(c.expect_cmd("366").await.param(1), Some("#b"));
    let seen = c.sync_then_collect(&mut conn).await;
    let cmds: Vec<&str> = seen.iter().map(|m| m.command.as_str()).collect();
    assert_eq!(cmds, ["JOIN", "353", "366"]);
    assert_eq!(seen[1].params, ["alice", "=", "#a", "@alice"]);
}

impl TestClient {
    /// Selftest helper: `sync` against a FakeConn, which does not answer
    /// PING by itself after registration.
    async fn sync_then_collect(&mut self, conn: &mut FakeConn) -> Vec<tether::proto::Message> {
        let answer = async {
            let ping = conn.expect_cmd("PING").await;
            let token = ping.param(0).unwrap().to_string();
            conn.send(&format!(":irc.fake PONG irc.fake :{token}"))
                .await;
        };
        let (seen, ()) = tokio::join!(self.sync(), answer);
        seen
    }
}

#[tokio::test]
async fn harness_sync_in_both_directions() {
    let server = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut conn, mut c) = tokio::join!(
        server.accept(),
        TestClient::register_pass(server.addr, "alice", "pw", "alice", &[])
    );
    // Drain the welcome burst so sync only sees what follows.
    c.expect_cmd("376").await;

    conn.send(":bob!b@h PRIVMSG alice :hello").await;
    let seen = c.sync_then_collect(&mut conn).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].source_nick(), Some("bob"));
    c.sync_then_collect(&mut conn).await;

    // The server side syncs; the client answers by hand.
    c.send("PRIVMSG bob :hi").await;
    let answer = async {
        let ping = c.expect_cmd("PING").await;
        c.send(&format!("PONG {}", ping.param(0).unwrap())).await;
    };
    let (seen, ()) = tokio::join!(conn.sync(), answer);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].command, "PRIVMSG");

    let answer = async {
        let ping = c.expect_cmd("PING").await;
        c.send(&format!("PONG :{}", ping.param(0).unwrap())).await;
    };
    let ((), ()) = tokio::join!(
        conn.sync_expect_none("PRIVMSG", |m| m.command == "PRIVMSG"),
        answer
    );
}

#[tokio::test]
#[should_panic(expected = "expected no NOTICE")]
async fn harness_sync_expect_none_detects_a_message() {
    let server = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut conn, mut c) = tokio::join!(
        server.accept(),
        TestClient::register_pass(server.addr, "alice", "pw", "alice", &[])
    );
    c.send("NOTICE bob :oops").await;
    let answer = async {
        let ping = c.expect_cmd("PING").await;
        c.send(&format!("PONG {}", ping.param(0).unwrap())).await;
    };
    tokio::join!(
        conn.sync_expect_none("NOTICE", |m| m.command == "NOTICE"),
        answer
    );
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "timed out after")]
async fn harness_expect_times_out_with_transcript() {
    let server = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut conn, _c) = tokio::join!(
        server.accept(),
        TestClient::register_pass(server.addr, "alice", "pw", "alice", &[])
    );
    conn.expect_cmd("NEVER").await;
}

#[tokio::test]
async fn harness_unix_stream_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("irc.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let peer = async {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        assert_eq!(line, "PING :a b");
        w.write_all(b":srv PONG srv :a b\r\n").await.unwrap();
    };
    let client = async {
        let mut s = IrcStream::connect_unix(&path).await;
        s.send("PING :a b").await;
        let pong = s.expect_cmd("PONG").await;
        assert_eq!(pong.params, ["srv", "a b"]);
        assert_eq!(s.expect_eof().await, []);
        assert!(s.transcript().contains("<- :srv PONG srv :a b"));
    };
    tokio::join!(peer, client);
}
