//! Listener limits: the connection cap and the registration timeout.

use crate::harness::*;
use tether::config::Config;
use tether::server::Server;

async fn start(extra: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "listen irc+insecure://127.0.0.1:0\ndb sqlite3 {}/t.db\nhostname tether.test\n{extra}\n",
        dir.path().display()
    );
    let server = Server::start(Config::parse_str(&cfg).expect("config"))
        .await
        .expect("start");
    (server, dir)
}

#[tokio::test]
async fn connections_over_the_limit_get_an_error() {
    let (server, _dir) = start("max-connections 1").await;
    let addr = server.irc_addr().expect("irc");
    let mut first = TestClient::connect(addr).await;
    // The first connection is served: a PING round trip proves it holds
    // its permit before the second one arrives.
    first.sync().await;
    let mut second = TestClient::connect(addr).await;
    let lines = second.expect_eof().await;
    assert!(
        lines
            .iter()
            .any(|m| m.command == "ERROR" && m.params[0].contains("Too many connections")),
        "{}",
        second.transcript()
    );
    // The first connection is unaffected.
    first.sync().await;
    drop(first);
    server.shutdown().await;
}

#[tokio::test]
async fn unregistered_connections_time_out() {
    let (server, _dir) = start("registration-timeout 1").await;
    let mut client = TestClient::connect(server.irc_addr().expect("irc")).await;
    client.send("NICK lurker").await;
    let lines = client.expect_eof().await;
    assert!(
        lines
            .iter()
            .any(|m| m.command == "ERROR" && m.params[0].contains("registration timed out")),
        "{}",
        client.transcript()
    );
    server.shutdown().await;
}
