//! WHO from the user cache: once the server has answered a channel's full
//! WHO, later WHO/WHOX queries are answered by tether when every field
//! they need is known and kept current (away-notify for the away flag,
//! account-notify for accounts); otherwise they go to the server.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

fn caps(list: &[&str]) -> FakeServerOptions {
    FakeServerOptions {
        caps: list.iter().map(|c| c.to_string()).collect(),
        ..FakeServerOptions::default()
    }
}

/// Send a WHO and read the replies up to 315; asserts tether answered it
/// itself (no WHO reached the server, replies from tether).
async fn who_local(s: &mut Setup, c: &mut TestClient, line: &str) -> Vec<Message> {
    c.send(line).await;
    let mut replies = collect_until(c, "315", |m| m.command == "315").await;
    let up = upstream_until_marker(c, &mut s.conn).await;
    assert!(
        up.iter().all(|m| m.command != "WHO"),
        "{line:?} was sent upstream: {up:?}"
    );
    replies.retain(|m| matches!(m.command.as_str(), "352" | "354" | "315"));
    for r in &replies {
        assert_eq!(r.source.as_deref(), Some("tether.test"), "{r}");
    }
    replies.pop();
    replies
}

/// Send a WHO that must reach the server; the server answers with
/// `lines` and 315; returns the WHO it received.
async fn who_forwarded(s: &mut Setup, c: &mut TestClient, line: &str, lines: &[&str]) -> Message {
    c.send(line).await;
    let who = s.conn.expect_cmd("WHO").await;
    for l in lines {
        s.conn.send(l).await;
    }
    let mask = who.param(0).unwrap_or("*").to_string();
    s.conn
        .send(&format!(":irc.fake 315 alice {mask} :End of WHO list"))
        .await;
    collect_until(c, "315", |m| m.command == "315").await;
    who
}

fn params(lines: &[Message]) -> Vec<Vec<String>> {
    lines.iter().map(|m| m.params.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_who_is_answered_from_the_cache_after_a_full_who() {
    let mut s =
        Setup::with_options(caps(&["away-notify", "account-notify", "extended-join"])).await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;

    // Not fresh yet: the server answers.
    who_forwarded(
        &mut s,
        &mut c,
        "WHO #chan",
        &[
            ":irc.fake 352 alice #chan ~a alice.host irc.fake alice H@ :0 Alice A",
            ":irc.fake 352 alice #chan ~b bob.host irc.fake bob G :0 Bob B",
        ],
    )
    .await;

    let lines = who_local(&mut s, &mut c, "WHO #chan").await;
    assert_eq!(
        params(&lines),
        [
            [
                "alice",
                "#chan",
                "~a",
                "alice.host",
                "irc.fake",
                "alice",
                "H@",
                "0 Alice A"
            ],
            [
                "alice", "#chan", "~b", "bob.host", "irc.fake", "bob", "G", "0 Bob B"
            ],
        ]
    );

    // Accounts are not known from a plain WHO: the server answers.
    let who = who_forwarded(
        &mut s,
        &mut c,
        "WHO #chan %tnfa,5",
        &[
            ":irc.fake 354 alice 5 alice H@ aliceacct",
            ":irc.fake 354 alice 5 bob G 0",
        ],
    )
    .await;
    assert_eq!(who.params, ["#chan", "%tnfa,5"]);
    let lines = who_local(&mut s, &mut c, "WHO bob %na").await;
    assert_eq!(params(&lines), [["alice", "bob", "0"]]);

    // account-notify and away-notify keep the cache current.
    s.conn.send(":bob!~b@bob.host ACCOUNT bobacct").await;
    s.conn.send(":bob!~b@bob.host AWAY").await;
    s.conn.sync().await;
    let lines = who_local(&mut s, &mut c, "WHO #chan %afnt,6").await;
    assert_eq!(
        params(&lines),
        [
            ["alice", "6", "alice", "H@", "aliceacct"],
            ["alice", "6", "bob", "H", "bobacct"],
        ]
    );

    // An extended JOIN brings everything WHO needs.
    s.conn
        .send(":carol!~c@carol.host JOIN #chan carolacct :Carol C")
        .await;
    s.conn.sync().await;
    let lines = who_local(&mut s, &mut c, "WHO carol %cuihsndlaor").await;
    assert_eq!(
        params(&lines),
        [[
            "alice",
            "*",
            "~c",
            "255.255.255.255",
            "carol.host",
            "*",
            "carol",
            "0",
            "0",
            "carolacct",
            "0",
            "Carol C"
        ]]
    );

    // A member whose realname is unknown makes the channel's WHO go to the
    // server again; so does an unknown nick.
    s.conn.send(":dave!~d@dave.host JOIN #chan").await;
    s.conn.sync().await;
    who_forwarded(&mut s, &mut c, "WHO #chan", &[]).await;
    who_forwarded(&mut s, &mut c, "WHO nobody", &[]).await;
    // Masks and operator-only queries are the server's.
    who_forwarded(&mut s, &mut c, "WHO b*", &[]).await;
    who_forwarded(&mut s, &mut c, "WHO bob o", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_away_notify_only_fields_without_flags_come_from_the_cache() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &["bob"]).await;
    who_forwarded(
        &mut s,
        &mut c,
        "WHO #chan %tcuhnfr,9",
        &[
            ":irc.fake 354 alice 9 #chan ~a alice.host alice H@ :Alice A",
            ":irc.fake 354 alice 9 #chan ~b bob.host bob H :Bob B",
        ],
    )
    .await;
    // The away flag may be stale: the server answers.
    who_forwarded(&mut s, &mut c, "WHO #chan", &[]).await;
    who_forwarded(&mut s, &mut c, "WHO #chan %nf", &[]).await;
    let lines = who_local(&mut s, &mut c, "WHO #chan %cnuhr").await;
    assert_eq!(
        params(&lines),
        [
            ["alice", "#chan", "~a", "alice.host", "alice", "Alice A"],
            ["alice", "#chan", "~b", "bob.host", "bob", "Bob B"],
        ]
    );
    // Accounts are never answered without account-notify.
    who_forwarded(&mut s, &mut c, "WHO bob %na", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userhost_in_names_fills_the_cache() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &["+bob!~b@bob.host"]).await;
    let lines = who_local(&mut s, &mut c, "WHO bob %uhn").await;
    assert_eq!(params(&lines), [["alice", "~b", "bob.host", "bob"]]);
    // bob leaves the only channel we share: he is forgotten.
    s.conn.send(":bob!~b@bob.host PART #chan").await;
    s.conn.sync().await;
    who_forwarded(&mut s, &mut c, "WHO bob %uhn", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bouncer_connection_knows_itself_and_the_service() {
    let s = Setup::new().await;
    let mut b = s
        .tether
        .connect_client("alice", None, Some("bnc"), "alice", &[])
        .await;
    b.send("WHO alice").await;
    let replies = collect_until(&mut b, "315", |m| m.command == "315").await;
    let me = replies
        .iter()
        .find(|m| m.command == "352")
        .expect("a 352 for the client");
    assert_eq!(me.param(5), Some("alice"), "{me}");
    b.send("WHO BouncerServ %na").await;
    let replies = collect_until(&mut b, "315", |m| m.command == "315").await;
    assert_eq!(replies[0].params, ["alice", "BouncerServ", "0"]);
    b.send("WHO bob").await;
    let replies = collect_until(&mut b, "315", |m| m.command == "315").await;
    assert_eq!(replies.len(), 1, "only the end: {replies:?}");
    assert_eq!(replies[0].param(1), Some("bob"));
}
