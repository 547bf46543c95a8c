//! CHATHISTORY: every subcommand with both selector kinds, limits, errors,
//! event-playback and TARGETS; answered from the rings, from the store
//! after a restart, and with `message-store memory`.

use crate::harness::*;
use crate::support::*;
use tether::proto::Message;

/// `2026-01-01T00:00:<s>.000Z`, with tenths.
fn at(tenths: u32) -> String {
    format!("2026-01-01T00:00:{:02}.{}00Z", tenths / 10, tenths % 10)
}

/// Fill history: m1..m10 in #chan at seconds 1..10 with msgids id1..id10,
/// dave's JOIN at 5.5 s, carol's DM at 11 s and one message in #other at
/// 12 s.
async fn fill(s: &mut Setup, c: &mut TestClient) {
    s.join(c, "#chan", None, &["bob"]).await;
    s.join(c, "#other", None, &["bob"]).await;
    for i in 1..=10u32 {
        s.conn
            .send(&format!(
                "@time={};msgid=id{i} :bob!b@h.example PRIVMSG #chan :m{i}",
                at(i * 10)
            ))
            .await;
        if i == 5 {
            s.conn
                .send(&format!(
                    "@time={};msgid=join1 :dave!d@h.example JOIN #chan",
                    at(55)
                ))
                .await;
        }
    }
    let me = s.conn.nick.clone();
    s.conn
        .send(&format!(
            "@time={};msgid=dm1 :carol!c@h.example PRIVMSG {me} :psst",
            at(110)
        ))
        .await;
    s.conn
        .send(&format!(
            "@time={};msgid=o1 :bob!b@h.example PRIVMSG #other :elsewhere",
            at(120)
        ))
        .await;
    c.expect("the last message", |m| is_privmsg(m, "#other", "elsewhere"))
        .await;
    c.sync().await;
}

/// Send a CHATHISTORY command and return the lines of its batch (without
/// the BATCH lines), checking that each carries the batch's tag.
async fn query(c: &mut TestClient, line: &str) -> Vec<Message> {
    let (reference, lines) = batch_reply(c, line).await;
    for m in &lines {
        assert_eq!(m.tag("batch"), Some(reference.as_str()), "{line}: {m}");
    }
    lines
}

/// The `m<N>` texts (and event commands) of a batch.
fn names(lines: &[Message]) -> Vec<String> {
    lines
        .iter()
        .map(|m| match m.command.as_str() {
            "PRIVMSG" | "NOTICE" => m.param(1).unwrap_or("").to_string(),
            other => other.to_string(),
        })
        .collect()
}

async fn expect_fail(c: &mut TestClient, line: &str, code: &str) -> Message {
    c.send(line).await;
    let m = c.expect("FAIL", |m| m.command == "FAIL").await;
    assert_eq!(m.param(0), Some("CHATHISTORY"), "{line}: {m}");
    assert_eq!(m.param(1), Some(code), "{line}: {m}");
    m
}

/// Every query of the spec against the filled history.
async fn check_queries(c: &mut TestClient) {
    let q = |s: &str| s.to_string();
    assert_eq!(
        names(&query(c, "CHATHISTORY LATEST #chan * 3").await),
        ["m8", "m9", "m10"]
    );
    assert_eq!(
        names(
            &query(
                c,
                &format!("CHATHISTORY LATEST #chan timestamp={} 10", at(70))
            )
            .await
        ),
        ["m8", "m9", "m10"]
    );
    assert_eq!(
        names(&query(c, "CHATHISTORY LATEST #chan msgid=id8 10").await),
        ["m9", "m10"]
    );
    assert_eq!(
        names(&query(c, "CHATHISTORY BEFORE #chan msgid=id5 2").await),
        ["m3", "m4"]
    );
    assert_eq!(
        names(
            &query(
                c,
                &format!("CHATHISTORY BEFORE #chan timestamp={} 2", at(50))
            )
            .await
        ),
        ["m3", "m4"]
    );
    assert_eq!(
        names(&query(c, "CHATHISTORY AFTER #chan msgid=id8 5").await),
        ["m9", "m10"]
    );
    assert_eq!(
        names(
            &query(
                c,
                &format!("CHATHISTORY AFTER #chan timestamp={} 2", at(25))
            )
            .await
        ),
        ["m3", "m4"]
    );
    assert_eq!(
        names(&query(c, "CHATHISTORY AROUND #chan msgid=id5 3").await),
        ["m4", "m5", "m6"]
    );
    assert_eq!(
        names(
            &query(
                c,
                &format!("CHATHISTORY AROUND #chan timestamp={} 4", at(55))
            )
            .await
        ),
        ["m4", "m5", "m6", "m7"]
    );
    assert_eq!(
        names(
            &query(
                c,
                &format!(
                    "CHATHISTORY BETWEEN #chan timestamp={} timestamp={} 10",
                    at(20),
                    at(60)
                )
            )
            .await
        ),
        ["m3", "m4", "m5"]
    );
    // Backwards: counted from the first selector, i.e. the newest.
    assert_eq!(
        names(&query(c, "CHATHISTORY BETWEEN #chan msgid=id6 msgid=id2 2").await),
        ["m4", "m5"]
    );
    // Mixed selector kinds.
    assert_eq!(
        names(
            &query(
                c,
                &format!(
                    "CHATHISTORY BETWEEN #chan msgid=id2 timestamp={} 10",
                    at(45)
                )
            )
            .await
        ),
        ["m3", "m4"]
    );
    // Case-insensitive target; the batch names the channel.
    assert_eq!(
        names(&query(c, "CHATHISTORY LATEST #CHAN * 1").await),
        ["m10"]
    );
    // Private messages are under the other party.
    assert_eq!(
        names(&query(c, "CHATHISTORY LATEST carol * 10").await),
        ["psst"]
    );
    // A limit above the maximum is clamped, not refused.
    assert_eq!(query(c, "CHATHISTORY LATEST #chan * 5000").await.len(), 10);
    // Nothing matches: an empty batch.
    assert!(
        query(c, "CHATHISTORY AFTER #chan msgid=id10 10")
            .await
            .is_empty()
    );
    assert!(
        query(c, "CHATHISTORY LATEST #nowhere * 10")
            .await
            .is_empty()
    );
    assert!(
        query(c, "CHATHISTORY BEFORE #chan msgid=unknown 10")
            .await
            .is_empty()
    );
    // Replayed lines keep their original tags.
    let lines = query(c, "CHATHISTORY LATEST #chan * 1").await;
    assert_eq!(lines[0].tag("msgid"), Some("id10"), "{}", lines[0]);
    assert_eq!(lines[0].tag("time"), Some(at(100).as_str()), "{}", lines[0]);

    // TARGETS, in the order of each target's latest message.
    let targets = query(
        c,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 10",
            at(0),
            at(200)
        ),
    )
    .await;
    let got: Vec<(String, String)> = targets
        .iter()
        .map(|m| {
            assert_eq!(m.command, "CHATHISTORY", "{m}");
            assert_eq!(m.param(0), Some("TARGETS"), "{m}");
            (
                m.param(1).unwrap_or("").to_lowercase(),
                m.param(2).unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (q("#chan"), at(100)),
            (q("carol"), at(110)),
            (q("#other"), at(120))
        ]
    );
    let targets = query(
        c,
        &format!(
            "CHATHISTORY TARGETS timestamp={} timestamp={} 1",
            at(0),
            at(200)
        ),
    )
    .await;
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].param(1).map(str::to_lowercase).as_deref(),
        Some("#chan")
    );

    // Errors, with the codes of the spec.
    expect_fail(c, "CHATHISTORY FROBNICATE #chan * 10", "INVALID_PARAMS").await;
    expect_fail(c, "CHATHISTORY LATEST #chan", "NEED_MORE_PARAMS").await;
    expect_fail(c, "CHATHISTORY LATEST #chan * many", "INVALID_PARAMS").await;
    expect_fail(
        c,
        "CHATHISTORY BEFORE #chan timestamp=yesterday 10",
        "INVALID_PARAMS",
    )
    .await;
    expect_fail(
        c,
        "CHATHISTORY BEFORE #chan foo=bar 10",
        "INVALID_MSGREFTYPE",
    )
    .await;
    expect_fail(c, "CHATHISTORY LATEST #a,#b * 10", "INVALID_TARGET").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chathistory_from_rings_and_then_from_the_store_after_a_restart() {
    let mut s = Setup::new().await;
    let mut c = s.client("web", HISTORY_CAPS).await;
    c.sync().await;
    fill(&mut s, &mut c).await;
    check_queries(&mut c).await;

    // Restart: the rings are empty, everything comes from the store.
    let s = s.restart_with("").await;
    let mut c = s.client("web", HISTORY_CAPS).await;
    c.sync().await;
    check_queries(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chathistory_with_the_memory_store() {
    let mut s = Setup::with_config("message-store memory\n").await;
    let mut c = s.client("web", HISTORY_CAPS).await;
    c.sync().await;
    fill(&mut s, &mut c).await;
    check_queries(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_playback_adds_events_and_isupport_advertises_limits() {
    let mut s = Setup::new().await;
    let mut plain = s.client("plain", HISTORY_CAPS).await;
    let mut caps = HISTORY_CAPS.to_vec();
    caps.push("draft/event-playback");
    let mut events = s.client("events", &caps).await;
    let burst = events.sync().await;
    let tokens: Vec<&str> = burst
        .iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params.iter().map(String::as_str))
        .collect();
    assert!(tokens.contains(&"CHATHISTORY=1000"), "{tokens:?}");
    assert!(
        tokens.contains(&"MSGREFTYPES=timestamp,msgid"),
        "{tokens:?}"
    );
    plain.sync().await;
    fill(&mut s, &mut plain).await;
    events.sync().await;

    let without = names(&query(&mut plain, "CHATHISTORY AROUND #chan msgid=id5 4").await);
    assert_eq!(without, ["m4", "m5", "m6", "m7"]);
    let with = names(&query(&mut events, "CHATHISTORY AROUND #chan msgid=id5 4").await);
    assert_eq!(with, ["m4", "m5", "JOIN", "m6"]);
    // Our own JOIN is there too, as the first event of the channel.
    let first = query(
        &mut events,
        "CHATHISTORY AFTER #chan timestamp=2000-01-01T00:00:00.000Z 1",
    )
    .await;
    assert_eq!(first[0].command, "JOIN", "{}", first[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chathistory_on_the_bouncer_connection_is_refused() {
    let s = Setup::new().await;
    let mut c = s
        .tether
        .connect_client("alice", None, Some("web"), "web", HISTORY_CAPS)
        .await;
    c.sync().await;
    let m = expect_fail(&mut c, "CHATHISTORY LATEST #chan * 10", "INVALID_TARGET").await;
    assert_eq!(m.param(2), Some("LATEST"), "{m}");
    assert!(query(&mut c, "CHATHISTORY TARGETS timestamp=2026-01-01T00:00:00.000Z timestamp=2027-01-01T00:00:00.000Z 10").await.is_empty());
}
