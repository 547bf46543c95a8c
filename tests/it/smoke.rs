//! End-to-end smoke test: admin socket → user and network → client →
//! channel traffic both ways.

use crate::harness::*;
use tether::config::Config;
use tether::server::Server;

async fn admin(path: &std::path::Path, line: &str) -> Vec<String> {
    let mut s = IrcStream::connect_unix(path).await;
    s.send(&format!("BOUNCERSERV :{line}")).await;
    let mut out = Vec::new();
    loop {
        let m = s.recv().await.expect("admin reply");
        match m.command.as_str() {
            "PRIVMSG" => out.push(m.params[1].clone()),
            "BOUNCERSERV" => return out,
            _ => panic!("admin failed: {m}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = format!(
        "listen irc+insecure://127.0.0.1:0\nlisten unix+admin://{0}/admin.sock\ndb sqlite3 {0}/t.db\nhostname tether.test\n",
        dir.path().display()
    );
    let server = Server::start(Config::parse_str(&cfg).expect("config"))
        .await
        .expect("start");
    let adm = server.admin_path().expect("admin");
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    admin(&adm, "user create -username alice -password pw").await;
    let out = admin(
        &adm,
        &format!(
            "user run alice network create -addr irc+insecure://{} -name fake",
            fake.addr
        ),
    )
    .await;
    assert_eq!(out, vec!["created network \"fake\""]);
    let mut up = fake.accept().await;
    let mut c = TestClient::register_pass(
        server.irc_addr().expect("irc"),
        "alice/fake@phone",
        "pw",
        "alice",
        &[],
    )
    .await;
    c.send("JOIN #a").await;
    up.expect_join("#a", Some("hello"), &["bob"]).await;
    c.expect_cmd("366").await;
    up.send(":bob!b@h PRIVMSG #a :hi alice").await;
    let m = c.expect_cmd("PRIVMSG").await;
    assert_eq!(m.params, vec!["#a", "hi alice"]);
    c.send("PRIVMSG #a :hi bob").await;
    let m = up.expect_cmd("PRIVMSG").await;
    assert_eq!(m.params, vec!["#a", "hi bob"]);
    c.sync().await;
    server.shutdown().await;
}
