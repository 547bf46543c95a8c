//! Bans stop the retries: a `465`, or an `ERROR` whose reason says the
//! connection is banned, halts the network until it is updated, and the
//! user is told through BouncerServ and the bouncer-networks state. An
//! ordinary `ERROR` (ping timeout) still reconnects.
//!
//! "No second attempt" is shown without waiting for time to pass: after
//! the halt, a second network is created on another fake server on the
//! same host. Connection attempts to one host start in the order they were
//! asked for, spaced apart, so once that second network's connection has
//! arrived, a reconnection of the halted network (which would have been
//! asked for first) would already be in the first fake server's backlog.

use std::collections::BTreeMap;

use tether::downstream::bouncer_attrs::parse_attrs;
use tether::proto::Message;

use crate::harness::*;
use crate::support::*;

const NETWORKS: &str = "soju.im/bouncer-networks";
const NOTIFY: &str = "soju.im/bouncer-networks-notify";

/// The attributes of a `BOUNCER NETWORK` line about the network `name`
/// (or about any network when the line does not name one).
fn network_line(m: &Message) -> Option<(String, BTreeMap<String, String>)> {
    if m.command != "BOUNCER" || m.param(0) != Some("NETWORK") {
        return None;
    }
    let id = m.param(1)?.to_string();
    let attrs = parse_attrs(m.param(2).unwrap_or_default())
        .into_iter()
        .collect();
    Some((id, attrs))
}

/// A bouncer with user alice and her bouncer connection that follows
/// networks with `soju.im/bouncer-networks-notify` (so it gets both the
/// `BOUNCER NETWORK` lines and BouncerServ's notices).
async fn watched() -> (Tether, TestClient) {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let mut mgr = t
        .connect_client("alice", None, Some("mgr"), "alice", &[NETWORKS, NOTIFY])
        .await;
    mgr.set_label("client alice@mgr (bouncer-networks)");
    mgr.sync().await;
    (t, mgr)
}

/// Create network `name` on `fake` and accept its connection up to the
/// `USER` line, unanswered. Returns the connection and the network's id
/// as announced to `mgr`.
async fn create_unanswered(
    t: &Tether,
    mgr: &mut TestClient,
    name: &str,
    fake: &FakeServer,
) -> (IrcStream, String) {
    let uri = format!("irc+insecure://{}", fake.addr);
    let create = async {
        t.create_network_at("alice", name, &uri, &[])
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"))
    };
    let accept = async {
        let mut irc = fake.accept_raw().await;
        irc.expect_cmd("USER").await;
        irc
    };
    let (_, irc) = tokio::join!(create, accept);
    let announced = mgr
        .expect(&format!("BOUNCER NETWORK of {name}"), |m| {
            network_line(m).is_some_and(|(_, a)| a.get("name").map(String::as_str) == Some(name))
        })
        .await;
    let (id, _) = network_line(&announced).expect("a network line");
    (irc, id)
}

/// Wait for the halt to be reported to `mgr`: `BOUNCER NETWORK <id>
/// state=disconnected;error=<..banned..>` (the last state change before),
/// then BouncerServ's notice.
/// Returns the error attribute.
async fn expect_halt_reported(mgr: &mut TestClient, id: &str, name: &str) -> String {
    let notice = format!("not reconnecting to {name}: the server banned this connection");
    let seen = collect_until(&mut mgr.irc, "BouncerServ's halt notice", |m| {
        is_service_notice(m, &notice)
    })
    .await;
    let text = seen.last().and_then(|m| m.param(1)).unwrap_or_default();
    assert!(
        text.ends_with("(update the network to retry)"),
        "notice: {text:?}"
    );
    let state = seen
        .iter()
        .filter_map(network_line)
        .filter(|(i, _)| i == id)
        .rfind(|(_, a)| a.contains_key("state"))
        .map(|(_, a)| a)
        .unwrap_or_else(|| panic!("no state change of network {id}: {seen:?}"));
    assert_eq!(
        state.get("state").map(String::as_str),
        Some("disconnected"),
        "{state:?}"
    );
    let error = state.get("error").cloned().unwrap_or_default();
    assert!(
        error.starts_with("the server banned this connection ("),
        "error attribute: {error:?}"
    );
    error
}

/// The halted network `name` on `fake` makes no new attempt, shown with a
/// later connection to another fake server on the same host; then
/// `network update` (without flags) reconnects it.
async fn halted_until_updated(
    t: &Tether,
    mgr: &mut TestClient,
    fake: &FakeServer,
    id: &str,
    name: &str,
) {
    // A round trip with the client: the actor has finished with the close.
    mgr.sync_expect_none("a reconnection of the halted network", |m| {
        network_line(m).is_some_and(|(i, a)| {
            i == id && a.get("state").map(String::as_str) == Some("connecting")
        })
    })
    .await;
    let status = t.network_status("alice").await;
    let line = status
        .iter()
        .find(|l| l.starts_with(&format!("{name} (")))
        .unwrap_or_else(|| panic!("no status of {name}: {status:?}"));
    assert!(
        line.contains("disconnected, not retrying: the server banned this connection"),
        "{status:?}"
    );

    let canary = FakeServer::bind(FakeServerOptions::default()).await;
    t.create_network("alice", "canary", &canary).await;
    fake.assert_no_pending_connection(
        "the halted network connected again (seen after a later connection to the same host)",
    );

    let update = format!("user run alice network update {name}");
    let (updated, mut again) = tokio::join!(t.admin(&update), fake.accept());
    updated.expect("network update");
    again.sync().await;
    mgr.expect(&format!("network {id} connected again"), |m| {
        network_line(m).is_some_and(|(i, a)| {
            i == id && a.get("state").map(String::as_str) == Some("connected")
        })
    })
    .await;
    let status = t.network_status("alice").await;
    assert!(
        status
            .iter()
            .any(|l| l.starts_with(&format!("{name} (")) && l.contains("connected as")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_with_465_stops_retrying_until_updated() {
    let (t, mut mgr) = watched().await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut irc, id) = create_unanswered(&t, &mut mgr, "fake", &fake).await;
    irc.send(":irc.fake 465 alice :You are banned from this server (spam)")
        .await;
    // tether answers the 465 by closing the link itself.
    irc.expect_eof().await;
    let error = expect_halt_reported(&mut mgr, &id, "fake").await;
    assert!(
        error.contains("You are banned from this server"),
        "{error:?}"
    );
    halted_until_updated(&t, &mut mgr, &fake, &id, "fake").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_lined_error_at_registration_stops_retrying_until_updated() {
    let (t, mut mgr) = watched().await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let (mut irc, id) = create_unanswered(&t, &mut mgr, "fake", &fake).await;
    irc.send("ERROR :Closing Link: 127.0.0.1 (K-Lined)").await;
    drop(irc);
    let error = expect_halt_reported(&mut mgr, &id, "fake").await;
    assert!(error.contains("(K-Lined)"), "{error:?}");
    halted_until_updated(&t, &mut mgr, &fake, &id, "fake").await;
}

/// A K-line placed while connected: the client bound to the network is
/// told it was disconnected and why there is no reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_line_while_connected_tells_bound_clients_and_stops_retrying() {
    let (t, mut mgr) = watched().await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let conn = t.create_network("alice", "fake", &fake).await;
    let id = mgr
        .expect("BOUNCER NETWORK of fake", |m| {
            network_line(m).is_some_and(|(_, a)| a.get("name").map(String::as_str) == Some("fake"))
        })
        .await;
    let (id, _) = network_line(&id).expect("a network line");
    let mut phone = t
        .connect_client("alice", Some("fake"), Some("phone"), "alice", &[])
        .await;
    phone.sync().await;

    let mut conn = conn;
    conn.send(
        "ERROR :Closing Link: alice[127.0.0.1] (G-Lined: botnet, see https://example.org/kline)",
    )
    .await;
    conn.kill();
    phone
        .expect("the disconnection notice", |m| {
            is_service_notice(m, "disconnected from fake")
        })
        .await;
    let notice = phone
        .expect("the halt notice", |m| {
            is_service_notice(
                m,
                "not reconnecting to fake: the server banned this connection",
            )
        })
        .await;
    assert!(
        notice
            .param(1)
            .is_some_and(|t| t.contains("G-Lined: botnet")),
        "{notice}"
    );
    expect_halt_reported(&mut mgr, &id, "fake").await;
    halted_until_updated(&t, &mut mgr, &fake, &id, "fake").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_timeout_error_reconnects() {
    let mut s = Setup::new().await;
    let mut c = s.client("phone", &[]).await;
    s.join(&mut c, "#chan", None, &[]).await;
    s.conn
        .send("ERROR :Closing Link: 127.0.0.1 (Ping timeout: 240 seconds)")
        .await;
    let old = s.conn;
    old.kill();
    s.conn = s.fake.accept().await;
    s.conn.expect_join("#chan", None, &[]).await;
    s.conn.sync().await;
    let status = s.tether.network_status("alice").await;
    assert!(status[0].contains("connected as"), "{status:?}");
    c.sync_expect_none("a halt notice", |m| {
        is_service_notice(m, "not reconnecting")
    })
    .await;
}
