//! The message store failing under a running bouncer: the write connection
//! is made read-only through the `Db::set_read_only_fault` test hook
//! (`PRAGMA query_only`, so SQLite itself refuses every write with "attempt
//! to write a readonly database"), or the disk made full through
//! `Db::set_disk_full_fault` (`PRAGMA max_page_count` at the current size:
//! "database or disk is full"). Tests run as root here, where taking
//! write permission away from the file has no effect, and a small tmpfs
//! cannot be mounted, hence the hook.

use crate::harness::*;
use crate::support::*;
use tether::proto::Message;

fn chan_text(m: &Message) -> Option<&str> {
    (m.command == "PRIVMSG" && m.param(0) == Some("#chan"))
        .then(|| m.param(1))
        .flatten()
}

/// The texts of `CHATHISTORY LATEST #chan * 1000`.
async fn history(c: &mut TestClient) -> Vec<String> {
    let (_, lines) = batch_reply(c, "CHATHISTORY LATEST #chan * 1000").await;
    lines
        .iter()
        .filter_map(chan_text)
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_store_holds_messages_notifies_once_and_recovers() {
    let mut s = Setup::new().await;
    let mut c = s.client("pc", HISTORY_CAPS).await;
    s.join(&mut c, "#chan", None, &[]).await;
    s.conn.send(":bob!b@h PRIVMSG #chan :before").await;
    c.expect("before", |m| chan_text(m) == Some("before")).await;

    let db = s.tether.server().shared().db.clone();
    db.set_read_only_fault(true).await.expect("fault on");
    const N: usize = 5;
    for i in 0..N {
        s.conn
            .send(&format!(":bob!b@h PRIVMSG #chan :during {i}"))
            .await;
    }
    s.conn.sync().await;
    c.expect("the fault notice", |m| {
        is_service_notice(m, "store is failing")
    })
    .await;
    // Held, not relayed as if stored: a BouncerServ reply (which does not
    // wait for the store) overtakes them. And told once, not per message.
    service_command(&mut c, "help").await;
    let seen = collect_until(&mut c, "a BouncerServ reply", is_from_service).await;
    assert!(
        !seen
            .iter()
            .any(|m| chan_text(m).is_some() || is_service_notice(m, "store is failing")),
        "{}",
        c.transcript()
    );

    db.set_read_only_fault(false).await.expect("fault off");
    let mut during = Vec::new();
    let mut recovered = false;
    while during.len() < N || !recovered {
        let m = c.recv().await.expect("connection open");
        assert!(!is_service_notice(&m, "store is failing"), "{m}");
        if is_service_notice(&m, "has recovered") {
            recovered = true;
        } else if let Some(text) = chan_text(&m) {
            during.push(text.to_string());
        }
    }
    let want: Vec<String> = (0..N).map(|i| format!("during {i}")).collect();
    assert_eq!(during, want);

    // Everything is in the store: after a restart (empty rings) the history
    // has the message from before the fault and those from during it.
    let s = s.restart_with("").await;
    let mut c = s.client("pc", HISTORY_CAPS).await;
    c.sync().await;
    let mut all = vec!["before".to_string()];
    all.extend(want);
    assert_eq!(history(&mut c).await, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_loses_nothing_and_recovers() {
    let mut s = Setup::new().await;
    let mut c = s.client("pc", HISTORY_CAPS).await;
    s.join(&mut c, "#chan", None, &[]).await;
    let db = s.tether.server().shared().db.clone();
    db.set_disk_full_fault(true).await.expect("fault on");
    // Enough text that new pages are needed: where exactly the disk fills
    // up does not matter, every line must come through, in order.
    const N: usize = 200;
    let pad = "x".repeat(300);
    for i in 0..N {
        s.conn
            .send(&format!(":bob!b@h PRIVMSG #chan :m{i} {pad}"))
            .await;
    }
    s.conn.sync().await;
    // Lines stored before the disk filled up are relayed before the notice.
    let mut got = Vec::new();
    loop {
        let m = c.recv().await.expect("connection open");
        if is_service_notice(&m, "store is failing") {
            break;
        }
        if let Some(text) = chan_text(&m) {
            got.push(text.split(' ').next().unwrap_or("").to_string());
        }
    }
    db.set_disk_full_fault(false).await.expect("fault off");
    let mut recovered = false;
    while got.len() < N || !recovered {
        let m = c.recv().await.expect("connection open");
        if is_service_notice(&m, "has recovered") {
            recovered = true;
        } else if let Some(text) = chan_text(&m) {
            got.push(text.split(' ').next().unwrap_or("").to_string());
        }
    }
    let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);

    let s = s.restart_with("").await;
    let mut c = s.client("pc", HISTORY_CAPS).await;
    c.sync().await;
    let stored: Vec<String> = history(&mut c)
        .await
        .iter()
        .map(|t| t.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(stored, want);
}

/// A round trip through BouncerServ (`network status`: one line for the
/// one network). During a fault a PONG waits behind the held messages, so
/// as not to overtake them; a BouncerServ reply does not. Returns what
/// came before the reply.
async fn service_sync(c: &mut TestClient) -> Vec<Message> {
    service_command(c, "network status").await;
    let mut seen = collect_until(c, "the network status", |m| {
        is_from_service(m) && m.param(1).is_some_and(|t| t.starts_with("fake ("))
    })
    .await;
    seen.pop();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_attaching_during_a_fault_is_told_once_and_of_the_recovery() {
    let mut s = Setup::new().await;
    let mut pc = s.client("pc", HISTORY_CAPS).await;
    s.join(&mut pc, "#chan", None, &[]).await;
    let db = s.tether.server().shared().db.clone();
    db.set_read_only_fault(true).await.expect("fault on");
    s.conn.send(":bob!b@h PRIVMSG #chan :during").await;
    s.conn.sync().await;
    // Once pc has its notice, alice's actor knows of the fault.
    pc.expect("the fault notice", |m| {
        is_service_notice(m, "store is failing")
    })
    .await;

    let mut phone = s.client("phone", HISTORY_CAPS).await;
    let seen = service_sync(&mut phone).await;
    let failing = |m: &Message| is_service_notice(m, "store is failing");
    let notices: Vec<usize> = (0..seen.len()).filter(|&i| failing(&seen[i])).collect();
    assert_eq!(notices.len(), 1, "{}", phone.transcript());
    // After the welcome burst, which ends with the channel's NAMES.
    let end_of_burst = seen
        .iter()
        .position(|m| m.command == "366" && m.param(1) == Some("#chan"))
        .expect("366 for #chan in the welcome burst");
    assert!(notices[0] > end_of_burst, "{}", phone.transcript());
    assert!(!seen.iter().any(|m| chan_text(m).is_some()), "held");
    // Told once: phone not again, and pc not again for phone's sake.
    for c in [&mut phone, &mut pc] {
        let seen = service_sync(c).await;
        assert!(!seen.iter().any(failing), "{}", c.transcript());
    }

    db.set_read_only_fault(false).await.expect("fault off");
    for c in [&mut pc, &mut phone] {
        // The held message may come before or after the recovery notice:
        // the actor hears of the commit and of the recovery separately.
        let (mut recovered, mut held) = (false, false);
        while !recovered || !held {
            let m = c.recv().await.expect("connection open");
            assert!(!failing(&m), "{}", c.transcript());
            if is_service_notice(&m, "has recovered") {
                recovered = true;
            } else if chan_text(&m) == Some("during") {
                held = true;
            }
        }
        // Now a PONG is no longer held: nothing more about the store.
        c.sync_expect_none("another store notice", |m| {
            is_service_notice(m, "message store")
        })
        .await;
    }
}
