//! `soju.im/bouncer-networks`: `BOUNCER BIND` during registration, the
//! network management subcommands, `BOUNCER NETWORK` notifications and
//! `BOUNCER_NETID`.

use std::collections::BTreeMap;

use tether::proto::Message;
use tether::proto::message::unescape_tag_value;

use crate::harness::*;
use crate::support::*;

const NETWORKS: &str = "soju.im/bouncer-networks";
const NOTIFY: &str = "soju.im/bouncer-networks-notify";

/// Attributes of a `BOUNCER NETWORK` line, unescaped.
fn attrs(raw: &str) -> BTreeMap<String, String> {
    raw.split(';')
        .filter(|i| !i.is_empty())
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), unescape_tag_value(v)),
            None => (i.to_string(), String::new()),
        })
        .collect()
}

fn is_network_line(m: &Message, id: i64) -> bool {
    m.command == "BOUNCER"
        && m.param(0) == Some("NETWORK")
        && m.param(1) == Some(id.to_string().as_str())
}

fn is_fail(m: &Message, code: &str) -> bool {
    m.command == "FAIL" && m.param(0) == Some("BOUNCER") && m.param(1) == Some(code)
}

/// `BOUNCER LISTNETWORKS`: the network lines (id and attributes) and every
/// line received, up to the end of the batch.
async fn list_networks(c: &mut TestClient) -> (Vec<(i64, BTreeMap<String, String>)>, Vec<Message>) {
    let seen = send_until_batch_end(c, "BOUNCER LISTNETWORKS", "end of the network batch").await;
    let networks = seen
        .iter()
        .filter(|m| m.command == "BOUNCER" && m.param(0) == Some("NETWORK"))
        .map(|m| {
            let id = m.param(1).and_then(|i| i.parse().ok()).expect("numeric id");
            (id, attrs(m.param(2).unwrap_or_default()))
        })
        .collect();
    (networks, seen)
}

/// The id of the network named `name`.
async fn network_id(c: &mut TestClient, name: &str) -> i64 {
    let (networks, _) = list_networks(c).await;
    networks
        .iter()
        .find(|(_, a)| a.get("name").map(String::as_str) == Some(name))
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no network {name:?} in {networks:?}"))
}

/// A bouncer connection of alice that manages networks and gets
/// notifications (its initial network list is read).
async fn manager(t: &Tether, nick: &str) -> TestClient {
    let mut c = t
        .connect_client("alice", None, None, nick, &["batch", NETWORKS, NOTIFY])
        .await;
    c.set_label(format!("manager {nick}"));
    collect_until(&mut c.irc, "initial network list", |m| {
        m.command == "BATCH" && m.param(0).is_some_and(|r| r.starts_with('-'))
    })
    .await;
    c.sync().await;
    c
}

/// Start registering as alice and authenticate with SASL, stopping before
/// `CAP END`.
async fn sasl_authenticated(addr: std::net::SocketAddr, nick: &str) -> TestClient {
    let mut c = TestClient::connect(addr).await;
    c.send("CAP LS 302").await;
    c.send(&format!("NICK {nick}")).await;
    c.send(&format!("USER alice 0 * :{nick}")).await;
    c.request_caps(&["sasl", NETWORKS]).await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect("AUTHENTICATE +", |m| m.command == "AUTHENTICATE")
        .await;
    c.authenticate_plain("", "alice", PASSWORD).await;
    c.expect_cmd("903").await;
    c
}

/// The value of an ISUPPORT token in the 005 lines among `seen`.
fn isupport_value(seen: &[Message], token: &str) -> Option<String> {
    seen.iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params.iter())
        .find_map(|p| match p.split_once('=') {
            Some((k, v)) if k == token => Some(v.to_string()),
            None if p == token => Some(String::new()),
            _ => None,
        })
}

/// Finish registration (`CAP END`) and return the welcome burst.
async fn finish_registration(c: &mut TestClient) -> Vec<Message> {
    c.send("CAP END").await;
    let welcome = c.expect_welcome().await;
    let mut burst = vec![welcome];
    burst.extend(c.sync().await);
    burst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_with_sasl_lands_on_the_chosen_network() {
    let mut s = Setup::new().await;
    let other_fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut other = s.tether.create_network("alice", "other", &other_fake).await;
    let mut phone = s.client("phone", &[]).await;
    s.join(&mut phone, "#one", None, &[]).await;
    // #two is joined on the other network, through a client bound there.
    let mut on_other = s
        .tether
        .connect_client("alice", Some("other"), None, "x", &[])
        .await;
    on_other.send("JOIN #two").await;
    other.expect_join("#two", None, &[]).await;
    expect_own_join(&mut on_other, &other.nick, "#two").await;

    let mut m = manager(&s.tether, "mgr").await;
    let fake_id = network_id(&mut m, "fake").await;
    let other_id = network_id(&mut m, "other").await;

    for (id, want, not) in [(fake_id, "#one", "#two"), (other_id, "#two", "#one")] {
        let mut c = sasl_authenticated(s.tether.addr, "binder").await;
        c.send(&format!("BOUNCER BIND {id}")).await;
        let burst = finish_registration(&mut c).await;
        let joined = |chan: &str| {
            burst
                .iter()
                .any(|m| m.command == "JOIN" && m.param(0) == Some(chan))
        };
        assert!(
            joined(want),
            "BIND {id}: no JOIN {want} in the burst\n{}",
            c.transcript()
        );
        assert!(
            !joined(not),
            "BIND {id}: JOIN {not} in the burst\n{}",
            c.transcript()
        );
        assert_eq!(
            isupport_value(&burst, "BOUNCER_NETID"),
            Some(id.to_string()),
            "BOUNCER_NETID of a client bound to {id}\n{}",
            c.transcript()
        );
    }
    s.conn.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_needs_authentication_and_a_known_id() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("CAP LS 302").await;
    c.send("BOUNCER BIND 1").await;
    let fail = c
        .expect("FAIL ACCOUNT_REQUIRED", |m| m.command == "FAIL")
        .await;
    assert!(is_fail(&fail, "ACCOUNT_REQUIRED"), "{fail}");
    assert_eq!(fail.param(2), Some("BIND"), "{fail}");

    c.send("NICK binder").await;
    c.send("USER alice 0 * :binder").await;
    c.request_caps(&["sasl"]).await;
    c.send("AUTHENTICATE PLAIN").await;
    c.expect("AUTHENTICATE +", |m| m.command == "AUTHENTICATE")
        .await;
    c.authenticate_plain("", "alice", PASSWORD).await;
    c.expect_cmd("903").await;
    for bad in ["999", "abc"] {
        c.send(&format!("BOUNCER BIND {bad}")).await;
        let fail = c
            .expect("FAIL INVALID_NETID", |m| m.command == "FAIL")
            .await;
        assert!(is_fail(&fail, "INVALID_NETID"), "{fail}");
        assert_eq!(fail.param(2), Some("BIND"), "{fail}");
        assert_eq!(fail.param(3), Some(bad), "{fail}");
    }
    // A refused BIND leaves the connection unbound: the bouncer connection.
    let burst = finish_registration(&mut c).await;
    assert_eq!(isupport_value(&burst, "BOUNCER_NETID"), None);
    assert_eq!(isupport_value(&burst, "CHANTYPES").as_deref(), Some(""));
}

/// Register as alice with PASS and `BOUNCER BIND <net>`, up to `CAP END`.
async fn register_pass_bind(addr: std::net::SocketAddr, net: &str) -> TestClient {
    let mut c = TestClient::connect(addr).await;
    c.send("CAP LS 302").await;
    c.send_msg(&Message::new("PASS", [PASSWORD])).await;
    c.send("NICK binder").await;
    c.send("USER alice 0 * :binder").await;
    c.send(&format!("BOUNCER BIND {net}")).await;
    c.send("CAP END").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_with_pass_is_checked_when_registration_ends() {
    let s = Setup::new().await;
    let mut m = manager(&s.tether, "mgr").await;
    let id = network_id(&mut m, "fake").await;

    let mut good = register_pass_bind(s.tether.addr, &id.to_string()).await;
    good.expect_welcome().await;
    let burst = good.sync().await;
    assert_eq!(
        isupport_value(&burst, "BOUNCER_NETID"),
        Some(id.to_string())
    );

    let mut bad = register_pass_bind(s.tether.addr, "999").await;
    let seen = bad.expect_eof().await;
    assert!(
        seen.iter()
            .any(|m| is_fail(m, "INVALID_NETID") && m.param(3) == Some("999")),
        "no INVALID_NETID for 999\n{}",
        bad.transcript()
    );
    assert!(
        seen.iter().any(|m| m.command == "ERROR"),
        "{}",
        bad.transcript()
    );
    assert!(
        !seen.iter().any(|m| m.command == "001"),
        "{}",
        bad.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_after_registration_is_refused() {
    let s = Setup::new().await;
    let mut c = s.client("phone", &[NETWORKS]).await;
    c.send("BOUNCER BIND 1").await;
    let fail = c.expect("FAIL", |m| m.command == "FAIL").await;
    assert!(is_fail(&fail, "REGISTRATION_IS_COMPLETED"), "{fail}");
    assert_eq!(fail.param(2), Some("BIND"), "{fail}");
    c.sync().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listnetworks_reports_attributes_in_a_batch() {
    let s = Setup::new().await;
    let mut c = s
        .tether
        .connect_client("alice", None, None, "lister", &["batch", NETWORKS])
        .await;
    c.sync().await;
    let (networks, seen) = list_networks(&mut c).await;
    let start = &seen[0];
    assert_eq!(start.command, "BATCH", "{start}");
    let reference = start
        .param(0)
        .and_then(|r| r.strip_prefix('+'))
        .expect("BATCH +ref");
    assert_eq!(start.param(1), Some(NETWORKS), "{start}");
    for m in seen.iter().filter(|m| m.command == "BOUNCER") {
        assert_eq!(m.tag("batch"), Some(reference), "{m}");
    }
    assert_eq!(networks.len(), 1, "{networks:?}");
    let a = &networks[0].1;
    let get = |k: &str| a.get(k).map(String::as_str);
    assert_eq!(get("name"), Some("fake"));
    assert_eq!(get("state"), Some("connected"));
    assert_eq!(get("host"), Some("127.0.0.1"));
    assert_eq!(get("port"), Some(s.fake.addr.port().to_string().as_str()));
    assert_eq!(get("tls"), Some("0"));
    assert_eq!(get("nickname"), Some(s.conn.nick.as_str()));
    assert_eq!(get("username"), Some(s.conn.user.as_str()));
    assert_eq!(get("pass"), None);
    assert_eq!(get("error"), None);

    // Without `batch` the same lines come bare.
    let mut plain = s
        .tether
        .connect_client("alice", None, None, "plain", &[NETWORKS])
        .await;
    plain.send("BOUNCER LISTNETWORKS").await;
    let line = plain.expect_cmd("BOUNCER").await;
    assert_eq!(line.param(0), Some("NETWORK"), "{line}");
    assert_eq!(line.tag("batch"), None, "{line}");
    plain
        .sync_expect_none("BATCH without the batch cap", |m| m.command == "BATCH")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addnetwork_connects_and_notifies_connecting_then_connected() {
    let t = Tether::start().await;
    t.create_user("alice").await;
    let fake = FakeServer::bind(FakeServerOptions::default()).await;
    let mut m = manager(&t, "alicephone").await;
    // A client that follows BouncerServ notices, not BOUNCER lines.
    let mut plain = t.connect_client("alice", None, None, "plain", &[]).await;
    plain.sync().await;

    let port = fake.addr.port();
    m.send(&format!(
        "BOUNCER ADDNETWORK name=new;host=127.0.0.1;port={port};tls=0"
    ))
    .await;
    let (seen, mut conn) = tokio::join!(
        collect_until(&mut m.irc, "BOUNCER ADDNETWORK", |m| {
            m.command == "BOUNCER" && m.param(0) == Some("ADDNETWORK")
        }),
        fake.accept()
    );
    let id: i64 = seen
        .last()
        .and_then(|m| m.param(1))
        .and_then(|i| i.parse().ok())
        .expect("ADDNETWORK <id>");
    let created = seen
        .iter()
        .find(|m| is_network_line(m, id))
        .unwrap_or_else(|| {
            panic!(
                "no BOUNCER NETWORK {id} before the reply\n{}",
                m.transcript()
            )
        });
    let a = attrs(created.param(2).unwrap_or_default());
    let get = |k: &str| a.get(k).map(String::as_str);
    assert_eq!(get("name"), Some("new"), "{created}");
    assert_eq!(get("state"), Some("connecting"), "{created}");
    assert_eq!(get("host"), Some("127.0.0.1"), "{created}");
    assert_eq!(get("port"), Some(port.to_string().as_str()), "{created}");
    assert_eq!(get("tls"), Some("0"), "{created}");
    assert_eq!(get("nickname"), Some("alicephone"), "{created}");
    // The nick defaults to the client's.
    assert_eq!(conn.nick, "alicephone");
    conn.sync().await;

    let connected = m
        .expect("state=connected", |msg| is_network_line(msg, id))
        .await;
    let a = attrs(connected.param(2).unwrap_or_default());
    assert_eq!(
        a.get("state").map(String::as_str),
        Some("connected"),
        "{connected}"
    );
    m.sync_expect_none("BouncerServ link notice", |msg| {
        msg.command == "NOTICE" && msg.param(1).is_some_and(|t| t.contains("connected to"))
    })
    .await;
    plain
        .expect("connected notice", |msg| {
            msg.command == "NOTICE" && msg.param(1) == Some("connected to new")
        })
        .await;
    plain
        .sync_expect_none("BOUNCER lines without the cap", |msg| {
            msg.command == "BOUNCER"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_subcommands_get_their_fail_codes() {
    let s = Setup::new().await;
    let mut m = manager(&s.tether, "mgr").await;
    let port = s.fake.addr.port();
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (
            "BOUNCER ADDNETWORK name=x".into(),
            "NEED_ATTRIBUTE",
            vec!["ADDNETWORK", "host"],
        ),
        (
            "BOUNCER ADDNETWORK host=h;colour=red".into(),
            "UNKNOWN_ATTRIBUTE",
            vec!["ADDNETWORK", "*", "colour"],
        ),
        (
            "BOUNCER ADDNETWORK host=h;state=connected".into(),
            "READ_ONLY_ATTRIBUTE",
            vec!["ADDNETWORK", "*", "state"],
        ),
        (
            "BOUNCER ADDNETWORK host=h;port=abc".into(),
            "INVALID_ATTRIBUTE",
            vec!["ADDNETWORK", "*", "port"],
        ),
        (
            "BOUNCER ADDNETWORK host=h;tls=yes".into(),
            "INVALID_ATTRIBUTE",
            vec!["ADDNETWORK", "*", "tls"],
        ),
        (
            format!("BOUNCER ADDNETWORK name=fake;host=127.0.0.1;port={port}"),
            "UNKNOWN_ERROR",
            vec!["ADDNETWORK"],
        ),
        (
            "BOUNCER CHANGENETWORK 999 name=x".into(),
            "INVALID_NETID",
            vec!["CHANGENETWORK", "999"],
        ),
        (
            "BOUNCER DELNETWORK 999".into(),
            "INVALID_NETID",
            vec!["DELNETWORK", "999"],
        ),
        (
            "BOUNCER DELNETWORK nope".into(),
            "INVALID_NETID",
            vec!["DELNETWORK", "nope"],
        ),
        (
            "BOUNCER FROBNICATE".into(),
            "UNKNOWN_COMMAND",
            vec!["FROBNICATE"],
        ),
    ];
    for (line, code, context) in cases {
        m.send(&line).await;
        let fail = m
            .expect(&format!("FAIL for {line}"), |m| m.command == "FAIL")
            .await;
        assert!(is_fail(&fail, code), "{line}: {fail}");
        assert_eq!(
            &fail.params[2..2 + context.len()],
            context.as_slice(),
            "{line}: {fail}"
        );
    }
    let id = network_id(&mut m, "fake").await;
    for line in [
        "BOUNCER".to_string(),
        "BOUNCER ADDNETWORK".to_string(),
        format!("BOUNCER CHANGENETWORK {id}"),
        "BOUNCER DELNETWORK".to_string(),
    ] {
        m.send(&line).await;
        let reply = m
            .expect(&format!("461 for {line}"), |m| m.command == "461")
            .await;
        assert_eq!(reply.param(1), Some("BOUNCER"), "{reply}");
    }
    let (networks, _) = list_networks(&mut m).await;
    assert_eq!(
        networks.len(),
        1,
        "nothing may have been created: {networks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changenetwork_renames_reconnects_and_notifies() {
    let mut s = Setup::new().await;
    let mut m = manager(&s.tether, "mgr").await;
    let id = network_id(&mut m, "fake").await;

    m.send(&format!(
        "BOUNCER CHANGENETWORK {id} name=renamed;nickname=newnick;realname=Real\\sName"
    ))
    .await;
    let seen = collect_until(&mut m.irc, "BOUNCER CHANGENETWORK", |msg| {
        msg.command == "BOUNCER" && msg.param(0) == Some("CHANGENETWORK")
    })
    .await;
    assert_eq!(
        seen.last().and_then(|r| r.param(1)),
        Some(id.to_string().as_str())
    );
    let note = seen
        .iter()
        .find(|msg| is_network_line(msg, id))
        .unwrap_or_else(|| panic!("no notification\n{}", m.transcript()));
    let a = attrs(note.param(2).unwrap_or_default());
    let get = |k: &str| a.get(k).map(String::as_str);
    assert_eq!(get("name"), Some("renamed"), "{note}");
    assert_eq!(get("nickname"), Some("newnick"), "{note}");
    assert_eq!(get("realname"), Some("Real Name"), "{note}");
    assert_eq!(get("state"), Some("connecting"), "{note}");
    // Only what changed is sent.
    assert_eq!(get("host"), None, "{note}");

    expect_quit_or_close(&mut s.conn).await;
    s.conn = s.fake.accept().await;
    assert_eq!(s.conn.nick, "newnick");
    s.conn.sync().await;
    let connected = m
        .expect("state=connected", |msg| is_network_line(msg, id))
        .await;
    assert_eq!(
        attrs(connected.param(2).unwrap_or_default())
            .get("state")
            .map(String::as_str),
        Some("connected"),
        "{connected}"
    );
    let (networks, _) = list_networks(&mut m).await;
    assert_eq!(
        networks[0].1.get("name").map(String::as_str),
        Some("renamed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delnetwork_notifies_and_closes_bound_clients() {
    let mut s = Setup::new().await;
    let mut m = manager(&s.tether, "mgr").await;
    let id = network_id(&mut m, "fake").await;
    let mut requester = s.client("phone", &["batch", NETWORKS, NOTIFY]).await;
    requester.sync().await;
    let mut bystander = s.client("laptop", &[]).await;
    bystander.sync().await;

    requester.send(&format!("BOUNCER DELNETWORK {id}")).await;
    let seen = requester.expect_eof().await;
    let pos = |pred: &dyn Fn(&Message) -> bool| seen.iter().position(pred);
    let star = pos(&|msg| is_network_line(msg, id) && msg.param(2) == Some("*"));
    let ack = pos(&|msg| msg.command == "BOUNCER" && msg.param(0) == Some("DELNETWORK"));
    let error = pos(&|msg| msg.command == "ERROR");
    assert!(
        star.is_some() && ack.is_some() && error.is_some() && star < ack && ack < error,
        "want NETWORK * then DELNETWORK then ERROR\n{}",
        requester.transcript()
    );
    let seen = bystander.expect_eof().await;
    assert!(
        seen.iter().any(|msg| msg.command == "ERROR"),
        "{}",
        bystander.transcript()
    );
    let note = m
        .expect("BOUNCER NETWORK * ", |msg| is_network_line(msg, id))
        .await;
    assert_eq!(note.param(2), Some("*"), "{note}");
    expect_quit_or_close(&mut s.conn).await;
    let (networks, _) = list_networks(&mut m).await;
    assert!(networks.is_empty(), "{networks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_loss_is_a_state_change_not_a_notice() {
    let mut s = Setup::new().await;
    let mut m = manager(&s.tether, "mgr").await;
    let id = network_id(&mut m, "fake").await;
    let mut plain = s
        .tether
        .connect_client("alice", None, None, "plain", &[])
        .await;
    plain.sync().await;

    // The server says why and closes; tether reconnects at once.
    s.conn.send("ERROR :Closing link (test)").await;
    s.conn.irc.shutdown_write().await;
    let down = m
        .expect("state=disconnected", |msg| is_network_line(msg, id))
        .await;
    let a = attrs(down.param(2).unwrap_or_default());
    assert_eq!(
        a.get("state").map(String::as_str),
        Some("disconnected"),
        "{down}"
    );
    assert_eq!(
        a.get("error").map(String::as_str),
        Some("Closing link (test)"),
        "{down}"
    );
    let retry = m
        .expect("state=connecting", |msg| is_network_line(msg, id))
        .await;
    let a = attrs(retry.param(2).unwrap_or_default());
    assert_eq!(
        a.get("state").map(String::as_str),
        Some("connecting"),
        "{retry}"
    );
    let old = std::mem::replace(&mut s.conn, s.fake.accept().await);
    old.kill();
    s.conn.sync().await;
    let up = m
        .expect("state=connected", |msg| is_network_line(msg, id))
        .await;
    let a = attrs(up.param(2).unwrap_or_default());
    assert_eq!(
        a.get("state").map(String::as_str),
        Some("connected"),
        "{up}"
    );
    assert_eq!(
        a.get("error").map(String::as_str),
        Some(""),
        "error cleared: {up}"
    );
    m.sync_expect_none("BouncerServ link notices", |msg| msg.command == "NOTICE")
        .await;

    plain
        .expect("disconnected notice", |msg| {
            msg.command == "NOTICE"
                && msg
                    .param(1)
                    .is_some_and(|t| t.starts_with("disconnected from fake"))
        })
        .await;
    plain
        .expect("connected notice", |msg| {
            msg.command == "NOTICE" && msg.param(1) == Some("connected to fake")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_enabled_after_registration_starts_with_the_list() {
    let s = Setup::new().await;
    let mut c = s
        .tether
        .connect_client("alice", None, None, "late", &["batch"])
        .await;
    c.sync_expect_none("BOUNCER lines before -notify", |m| m.command == "BOUNCER")
        .await;
    c.request_caps(&[NOTIFY]).await;
    let seen = collect_until(&mut c.irc, "end of the network batch", |m| {
        m.command == "BATCH" && m.param(0).is_some_and(|r| r.starts_with('-'))
    })
    .await;
    let names: Vec<String> = seen
        .iter()
        .filter(|m| m.command == "BOUNCER" && m.param(0) == Some("NETWORK"))
        .filter_map(|m| attrs(m.param(2).unwrap_or_default()).remove("name"))
        .collect();
    assert_eq!(names, ["fake"], "{}", c.transcript());
    c.sync().await;
}
