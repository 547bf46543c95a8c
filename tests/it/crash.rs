//! Durability: tether killed with SIGKILL in the middle of an upstream
//! flood loses nothing a client was shown, and a reconnecting client
//! resumes from its last confirmed position; the database opens cleanly
//! afterwards, without running its migrations again.

use std::net::SocketAddr;

use crate::harness::*;
use crate::support::*;
use tether::proto::Message;

/// Index of a `m<N>` message text.
fn index(m: &Message) -> Option<usize> {
    if m.command != "PRIVMSG" {
        return None;
    }
    m.param(1)?.strip_prefix('m')?.parse().ok()
}

async fn start(config: &std::path::Path, dir: &std::path::Path) -> (TetherProcess, SocketAddr) {
    let mut tether = TetherProcess::spawn(config, dir);
    let (addrs, _) = tether
        .wait_startup(&["irc+insecure", "unix+admin"], false)
        .await;
    let addr = addrs[0]
        .parse()
        .unwrap_or_else(|e| panic!("listener address {:?}: {e}", addrs[0]));
    (tether, addr)
}

async fn phone(addr: SocketAddr, caps: &[&str]) -> TestClient {
    let mut c = TestClient::register_pass(
        addr,
        &login_name("alice", Some("fake"), Some("phone")),
        PASSWORD,
        "phone",
        caps,
    )
    .await;
    c.set_auto_pong(true);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_flood_loses_nothing_shown_and_resumes_without_gaps() {
    let (dir, config) = config_dir("tether-crash-");
    let fake = FakeServer::bind(FakeServerOptions::default()).await;

    let (mut tether, addr) = start(&config, dir.path()).await;
    // A fresh database is migrated (the check below can see migrations).
    assert!(
        tether.log.iter().any(|l| l.contains("applied migration")),
        "{:?}",
        tether.log
    );
    let out = tetherctl(
        &config,
        &[
            "user",
            "create",
            "-username",
            "alice",
            "-password",
            PASSWORD,
        ],
    )
    .await;
    assert!(out.success, "{out:?}");
    let uri = format!("irc+insecure://{}", fake.addr);
    let words = [
        "user", "run", "alice", "network", "create", "-addr", &uri, "-name", "fake",
    ];
    let create = tetherctl(&config, &words);
    let (out, mut conn) = tokio::join!(create, fake.accept());
    assert!(out.success, "{out:?}");
    conn.sync().await;

    let mut c = phone(addr, &["batch", "server-time", "message-tags"]).await;
    c.sync().await;
    c.send("JOIN #flood").await;
    conn.expect_join("#flood", None, &["bob"]).await;
    expect_own_join(&mut c, &conn.nick, "#flood").await;

    // Phase 1: 50 messages, seen and confirmed (two round trips make sure
    // the answer to the delivery probe has been processed).
    for i in 0..50 {
        conn.send(&format!(":bob!b@h.example PRIVMSG #flood :m{i}"))
            .await;
    }
    c.expect("m49", |m| index(m) == Some(49)).await;
    c.sync().await;
    c.sync().await;

    // Phase 2: a flood; kill tether once the client has seen m300.
    const TOTAL: usize = 800;
    let flood = async {
        for i in 50..TOTAL {
            conn.send(&format!(":bob!b@h.example PRIVMSG #flood :m{i}"))
                .await;
        }
    };
    let mut received = Vec::new();
    let watch = async {
        loop {
            let m = c.expect("a flood message", |m| index(m).is_some()).await;
            let i = index(&m).unwrap_or_default();
            received.push(i);
            if i >= 300 {
                break;
            }
        }
    };
    tokio::join!(flood, watch);
    tether.signal("KILL");
    tether.wait_exit().await;
    // The client may still read lines that were in flight.
    while let Some(m) = c.recv().await {
        if let Some(i) = index(&m) {
            received.push(i);
        }
    }
    let expected: Vec<usize> = (50..50 + received.len()).collect();
    assert_eq!(
        received, expected,
        "live delivery was in order and complete"
    );
    let last_seen = *received.last().unwrap_or(&49);
    drop(conn);

    // Restart on the same database: it opens cleanly at the latest schema
    // version, so no migration runs again.
    let (restarted, addr) = start(&config, dir.path()).await;
    assert!(
        !restarted
            .log
            .iter()
            .any(|l| l.contains("migration") || l.contains("ERROR")),
        "{:?}",
        restarted.log
    );
    let mut conn = fake.accept().await;
    conn.expect_join("#flood", None, &["bob"]).await;
    conn.sync().await;

    // Every message the client was shown is in history.
    let mut history = TestClient::register_pass(
        addr,
        &login_name("alice", Some("fake"), Some("history")),
        PASSWORD,
        "history",
        HISTORY_CAPS,
    )
    .await;
    history.sync().await;
    let lines = send_until_batch_end(
        &mut history,
        "CHATHISTORY LATEST #flood * 1000",
        "end of the history batch",
    )
    .await;
    let stored: Vec<usize> = lines.iter().filter_map(index).collect();
    assert!(
        stored.len() > last_seen,
        "history holds {} messages, the client saw up to m{last_seen}",
        stored.len()
    );
    assert_eq!(
        stored,
        (0..stored.len()).collect::<Vec<_>>(),
        "history is complete and in order"
    );

    // The client resumes after what it confirmed (m49 at least), with no
    // gap, up to the end of what was stored.
    let mut c = phone(addr, &["batch", "server-time", "message-tags"]).await;
    let lines = c.sync().await;
    let replayed: Vec<usize> = lines.iter().filter_map(index).collect();
    let first = *replayed
        .first()
        .unwrap_or_else(|| panic!("no replay\n{}", c.transcript()));
    assert!(
        first >= 50,
        "m{first} was confirmed before the crash and replayed again"
    );
    assert!(
        first <= last_seen + 1,
        "gap: replay starts at m{first}, seen up to m{last_seen}"
    );
    assert_eq!(
        replayed,
        (first..stored.len()).collect::<Vec<_>>(),
        "replay is contiguous up to the last stored message"
    );
}
