//! MONITOR: each client has its own list, the upstream gets the
//! reference-counted union, statuses go only to the clients monitoring a
//! nick, `L` and `S` are answered locally, the union survives an upstream
//! reconnect, and tether monitors the nick it wants back.

use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

fn options(monitor: Option<&str>) -> FakeServerOptions {
    let mut opts = FakeServerOptions::default();
    if let Some(token) = monitor {
        opts.isupport.push(token.to_string());
    }
    opts
}

fn is_monitor(m: &Message, op: &str) -> bool {
    m.command == "MONITOR" && m.param(0) == Some(op)
}

/// The targets of a MONITOR line or 73x numeric (last parameter), folded
/// and sorted.
fn targets(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .params
        .last()
        .map(|l| l.split(',').map(|t| t.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The MONITOR lines among `lines`.
fn monitor_lines(lines: &[Message]) -> Vec<&Message> {
    lines.iter().filter(|m| m.command == "MONITOR").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_share_one_upstream_list() {
    let mut s = Setup::with_options(options(Some("MONITOR=100"))).await;
    let mut phone = s.client("phone", &[]).await;
    let mut laptop = s.client("laptop", &[]).await;

    phone.send("MONITOR + bob,carol").await;
    let up = upstream_until_marker(&mut phone, &mut s.conn).await;
    let lines = monitor_lines(&up);
    assert_eq!(lines.len(), 1, "one MONITOR line: {up:?}");
    assert!(is_monitor(lines[0], "+"), "{}", lines[0]);
    assert_eq!(targets(lines[0]), ["bob", "carol"]);
    s.conn.send(":irc.fake 730 alice :bob!b@bob.host").await;
    s.conn.send(":irc.fake 731 alice :carol").await;
    let on = phone.expect_cmd("730").await;
    assert_eq!(on.params, ["alice", "bob!b@bob.host"]);
    let off = phone.expect_cmd("731").await;
    assert_eq!(targets(&off), ["carol"]);
    laptop
        .sync_expect_none("statuses of nicks it does not monitor", |m| {
            m.command == "730" || m.command == "731"
        })
        .await;

    // The laptop's overlapping list: only dave is new upstream, and bob's
    // known status is answered at once.
    laptop.send("MONITOR + BOB,dave").await;
    let on = laptop.expect_cmd("730").await;
    assert_eq!(on.params, ["alice", "bob!b@bob.host"]);
    let up = upstream_until_marker(&mut laptop, &mut s.conn).await;
    let lines = monitor_lines(&up);
    assert_eq!(lines.len(), 1, "only the new nick goes upstream: {up:?}");
    assert_eq!(targets(lines[0]), ["dave"]);
    s.conn.send(":irc.fake 731 alice :dave").await;
    let off = laptop.expect_cmd("731").await;
    assert_eq!(targets(&off), ["dave"]);
    phone
        .sync_expect_none("dave's status (not monitored by the phone)", |m| {
            m.command == "731"
        })
        .await;

    // A status change reaches both watchers of bob, each with its own nick.
    s.conn.send(":irc.fake 731 * :bob").await;
    for c in [&mut phone, &mut laptop] {
        let off = c.expect_cmd("731").await;
        assert_eq!(targets(&off), ["bob"]);
        assert_eq!(off.param(0), Some("alice"), "{off}");
    }

    // L and S are answered locally.
    phone.send("MONITOR L").await;
    let list = phone.expect_cmd("732").await;
    assert_eq!(targets(&list), ["bob", "carol"]);
    phone.expect_cmd("733").await;
    laptop.send("MONITOR S").await;
    let off = laptop.expect_cmd("731").await;
    assert_eq!(targets(&off), ["bob", "dave"]);
    let up = upstream_until_marker(&mut laptop, &mut s.conn).await;
    assert!(monitor_lines(&up).is_empty(), "L/S forwarded: {up:?}");

    // bob keeps a watcher; carol loses her only one.
    phone.send("MONITOR - bob").await;
    phone.send("MONITOR - carol").await;
    let up = upstream_until_marker(&mut phone, &mut s.conn).await;
    let lines = monitor_lines(&up);
    assert_eq!(lines.len(), 1, "{up:?}");
    assert!(is_monitor(lines[0], "-"), "{}", lines[0]);
    assert_eq!(targets(lines[0]), ["carol"]);

    // The laptop goes away: its nicks lose their last watcher.
    laptop.send("QUIT").await;
    laptop.expect_eof().await;
    let m = s
        .conn
        .expect("MONITOR - after the client left", |m| is_monitor(m, "-"))
        .await;
    assert_eq!(targets(&m), ["bob", "dave"]);
    phone.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_and_disconnect_remove_only_unwatched_nicks() {
    let mut s = Setup::with_options(options(Some("MONITOR"))).await;
    let mut phone = s.client("phone", &[]).await;
    let mut laptop = s.client("laptop", &[]).await;
    phone.send("MONITOR + bob,carol").await;
    phone.sync().await;
    laptop.send("MONITOR + carol").await;
    laptop.sync().await;
    phone.send("MONITOR C").await;
    let up = upstream_until_marker(&mut phone, &mut s.conn).await;
    let lines = monitor_lines(&up);
    assert_eq!(lines.len(), 2, "{up:?}");
    assert!(is_monitor(lines[1], "-"));
    assert_eq!(targets(lines[1]), ["bob"], "carol is still monitored");
    phone.send("MONITOR L").await;
    let end = phone.expect_cmd("733").await;
    assert_eq!(end.param(1), Some("End of MONITOR list"));

    // A client connection that just drops counts as leaving.
    drop(laptop);
    let m = s
        .conn
        .expect("MONITOR - carol", |m| is_monitor(m, "-"))
        .await;
    assert_eq!(targets(&m), ["carol"]);
    phone.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_gets_monlistfull() {
    let mut s = Setup::with_options(options(Some("MONITOR=2"))).await;
    let mut c = s.client("phone", &[]).await;
    c.send("MONITOR + a,b,c").await;
    let full = c.expect_cmd("734").await;
    assert_eq!(full.params[..3], ["alice", "2", "c"], "{full}");
    let up = upstream_until_marker(&mut c, &mut s.conn).await;
    let lines = monitor_lines(&up);
    assert_eq!(lines.len(), 1, "{up:?}");
    assert_eq!(targets(lines[0]), ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_monitor_token_the_command_fails() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    c.send("MONITOR + bob").await;
    let err = c.expect_cmd("421").await;
    assert_eq!(err.param(1), Some("MONITOR"), "{err}");
    assert!(
        err.param(2).is_some_and(|t| t.contains("not supported")),
        "{err}"
    );
    let up = upstream_until_marker(&mut c, &mut s.conn).await;
    assert!(monitor_lines(&up).is_empty(), "{up:?}");

    // The bouncer connection has no network to monitor on.
    let mut b = s
        .tether
        .connect_client("alice", None, Some("bnc"), "alice", &[])
        .await;
    b.send("MONITOR + bob").await;
    let err = b.expect_cmd("421").await;
    assert_eq!(err.param(1), Some("MONITOR"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_union_is_sent_again_after_an_upstream_reconnect() {
    let mut s = Setup::with_options(options(Some("MONITOR=100"))).await;
    let mut c = s.client("phone", &[]).await;
    c.send("MONITOR + bob,carol").await;
    s.conn.expect("MONITOR +", |m| is_monitor(m, "+")).await;
    s.conn.send(":irc.fake 730 alice :bob!b@h").await;
    c.expect_cmd("730").await;

    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    let m = s
        .conn
        .expect("MONITOR + after the reconnect", |m| is_monitor(m, "+"))
        .await;
    assert_eq!(targets(&m), ["bob", "carol"]);
    // Statuses from the old connection are forgotten until the server
    // answers again.
    c.send("MONITOR S").await;
    c.sync_expect_none("a stale status", |m| m.command == "730")
        .await;
    s.conn.send(":irc.fake 731 alice :bob,carol").await;
    let off = c.expect_cmd("731").await;
    assert_eq!(targets(&off), ["bob", "carol"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_about_monitored_users_reach_only_their_watchers() {
    let mut s = Setup::with_options(FakeServerOptions {
        caps: vec!["setname".into(), "extended-monitor".into()],
        ..options(Some("MONITOR=100"))
    })
    .await;
    let mut phone = s.client("phone", &["setname", "extended-monitor"]).await;
    let mut laptop = s.client("laptop", &["setname"]).await;
    let mut tablet = s.client("tablet", &["setname"]).await;
    s.join(&mut phone, "#chan", None, &["carol"]).await;
    expect_own_join(&mut laptop, &s.conn.nick.clone(), "#chan").await;
    expect_own_join(&mut tablet, &s.conn.nick.clone(), "#chan").await;
    phone.send("MONITOR + bob").await;
    s.conn.expect("MONITOR +", |m| is_monitor(m, "+")).await;
    // The tablet watches bob too, but without extended-monitor.
    tablet.send("MONITOR + bob").await;
    tablet.sync().await;

    // bob shares no channel: only the phone monitors him with
    // extended-monitor.
    s.conn.send(":bob!b@h SETNAME :Bob Two").await;
    let m = phone.expect_cmd("SETNAME").await;
    assert_eq!(m.params, ["Bob Two"]);
    for c in [&mut laptop, &mut tablet] {
        c.sync_expect_none("SETNAME of a user it does not follow", |m| {
            m.command == "SETNAME"
        })
        .await;
    }
    // carol shares a channel: everyone sees her.
    s.conn.send(":carol!c@h SETNAME :Carol Two").await;
    for c in [&mut phone, &mut laptop, &mut tablet] {
        let m = c.expect_cmd("SETNAME").await;
        assert_eq!(m.source_nick(), Some("carol"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wanted_nick_is_regained_when_it_goes_offline() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions {
        nicks_in_use: vec!["alice".into()],
        ..options(Some("MONITOR=100"))
    })
    .await;
    assert_eq!(s.conn.nick, "alice_");
    let m = s
        .conn
        .expect("MONITOR + alice", |m| is_monitor(m, "+"))
        .await;
    assert_eq!(targets(&m), ["alice"]);
    let mut c = s.client("phone", &[]).await;
    assert_eq!(c.nick, "alice_");

    // alice leaves the network: tether asks for the nick.
    s.conn.send(":irc.fake 731 alice_ :alice").await;
    let nick = s.conn.expect_cmd("NICK").await;
    assert_eq!(nick.params, ["alice"]);
    c.sync_expect_none("tether's own monitor reply", |m| m.command == "731")
        .await;
    s.conn.send(":alice_!u@h NICK alice").await;
    s.conn.nick = "alice".into();
    let change = c.expect_cmd("NICK").await;
    assert_eq!(change.params, ["alice"]);
    // Regained: tether stops monitoring it.
    let m = s
        .conn
        .expect("MONITOR - alice", |m| is_monitor(m, "-"))
        .await;
    assert_eq!(targets(&m), ["alice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_regain_is_not_shown_and_a_client_watch_survives_it() {
    let mut s = Setup::with_options_unsynced(FakeServerOptions {
        nicks_in_use: vec!["alice".into()],
        ..options(Some("MONITOR=100"))
    })
    .await;
    s.conn
        .expect("MONITOR + alice", |m| is_monitor(m, "+"))
        .await;
    let mut c = s.client("phone", &[]).await;
    // The client monitors the same nick: it is already on the union.
    c.send("MONITOR + alice").await;
    let up = upstream_until_marker(&mut c, &mut s.conn).await;
    assert!(monitor_lines(&up).is_empty(), "{up:?}");

    s.conn.send(":irc.fake 731 alice_ :alice").await;
    let off = c.expect_cmd("731").await;
    assert_eq!(targets(&off), ["alice"]);
    s.conn.expect_cmd("NICK").await;
    // Someone else was quicker.
    s.conn
        .send(":irc.fake 433 alice_ alice :Nickname is already in use")
        .await;
    s.conn.sync().await;
    c.sync_expect_none("the 433 of tether's regain attempt", |m| m.command == "433")
        .await;
    s.conn.send(":irc.fake 730 alice_ :alice!x@y").await;
    c.expect_cmd("730").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_nick_is_regained_when_free() {
    let mut s = Setup::with_options(options(Some("MONITOR=100"))).await;
    let mut c = s.client("phone", &[]).await;
    c.send("NICK bobby").await;
    s.conn.expect_cmd("NICK").await;
    s.conn
        .send(":irc.fake 433 alice bobby :Nickname is already in use")
        .await;
    // The client's own NICK failed: it sees the error.
    let err = c.expect_cmd("433").await;
    assert_eq!(err.param(1), Some("bobby"));
    let m = s
        .conn
        .expect("MONITOR + bobby", |m| is_monitor(m, "+"))
        .await;
    assert_eq!(targets(&m), ["bobby"]);
    s.conn.send(":irc.fake 731 alice :bobby").await;
    let nick = s.conn.expect_cmd("NICK").await;
    assert_eq!(nick.params, ["bobby"]);
    s.conn.send(":alice!u@h NICK bobby").await;
    let change = c.expect_cmd("NICK").await;
    assert_eq!(change.params, ["bobby"]);
    let m = s
        .conn
        .expect("MONITOR - bobby", |m| is_monitor(m, "-"))
        .await;
    assert_eq!(targets(&m), ["bobby"]);
}
