//! Notifications end to end: a message from the fake upstream, decided by
//! the user's rules in the actor, handed to the server's notifier and
//! delivered to a push endpoint (or webhook) served by the test on
//! loopback. The endpoint decrypts each push with the subscription's
//! private key and checks the VAPID token (RFC 8291, RFC 8292).
//!
//! The user's client stays attached but away (`AWAY`): an attached, present
//! client would suppress every notification. Each AWAY is synchronised
//! with a PING round trip, so the actor has published the state before the
//! upstream message arrives.

use std::time::Duration;

use tether::proto::Message;
use tether::push::ece::{ReceiverKeys, decrypt};
use tether::push::vapid::verify_vapid;

use crate::harness::*;
use crate::support::http_endpoint::{HttpEndpoint, Seen};
use crate::support::*;

/// Config for tests: loopback allowed, plain http, a short grace.
fn config(grace: &str) -> String {
    format!(
        "notify-allow-address 127.0.0.0/8\nnotify-allow-plain-http true\nnotify-grace {grace}\n"
    )
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Registers a subscription at `url` from `c`; returns its receiver keys.
async fn subscribe(c: &mut TestClient, url: &str) -> ReceiverKeys {
    let keys = ReceiverKeys::generate().expect("keys");
    c.send(&format!(
        "WEBPUSH REGISTER {url} p256dh={};auth={}",
        keys.p256dh_base64(),
        keys.auth_base64()
    ))
    .await;
    let m = c
        .expect("WEBPUSH reply", |m| {
            matches!(m.command.as_str(), "WEBPUSH" | "FAIL")
        })
        .await;
    assert_eq!(m.command, "WEBPUSH", "{m}");
    keys
}

/// A bouncer with a push endpoint answering `script` (then 201), and a
/// client that subscribed at `path` and went away: what a push test starts
/// from.
async fn away_with_subscription(
    grace: &str,
    script: &[u16],
    path: &str,
) -> (Setup, HttpEndpoint, TestClient, ReceiverKeys) {
    let s = Setup::with_config(&config(grace)).await;
    let ep = HttpEndpoint::start(script, 201).await;
    let mut phone = s.client("phone", &["soju.im/webpush"]).await;
    phone.sync().await;
    let keys = subscribe(&mut phone, &ep.url(path)).await;
    go_away(&mut phone).await;
    (s, ep, phone, keys)
}

/// The client goes away (and the actor has seen it).
async fn go_away(c: &mut TestClient) {
    c.send("AWAY :phone in pocket").await;
    c.expect_cmd("306").await;
    c.sync().await;
}

/// Checks a push request fully and returns the IRC line it carried.
fn open_push(s: &Setup, ep: &HttpEndpoint, seen: &Seen, keys: &ReceiverKeys) -> Message {
    assert_eq!(seen.header("Content-Encoding"), Some("aes128gcm"));
    assert_eq!(seen.header("TTL"), Some("86400"));
    let auth = seen.header("Authorization").expect("VAPID authorization");
    let claims = verify_vapid(auth, &ep.origin(), now_secs()).expect("valid VAPID token");
    assert!(
        claims
            .sub
            .as_deref()
            .is_some_and(|s| s.starts_with("mailto:admin@")),
        "{claims:?}"
    );
    assert!(
        auth.contains(&format!("k={}", s.tether.server().shared().vapid_public)),
        "signed with the advertised key: {auth}"
    );
    let plain = decrypt(keys, &seen.body).expect("decrypts with the subscription's key");
    let line = String::from_utf8(plain).expect("utf-8");
    let msg: Message = line.parse().expect("an IRC line");
    for (tag, _) in &msg.tags {
        assert!(tag == "msgid" || tag == "time", "tag {tag} kept: {line}");
    }
    msg
}

fn server_time(offset_ms: i64) -> String {
    tether::proto::time::format_millis(tether::proto::time::now_millis() + offset_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_highlight_is_pushed_once_per_subscription_and_a_plain_message_never() {
    let mut s = Setup::with_config(&config("300ms")).await;
    let mut ep = HttpEndpoint::start(&[], 201).await;
    let mut phone = s.client("phone", &["soju.im/webpush"]).await;
    phone.sync().await;
    let k1 = subscribe(&mut phone, &ep.url("/sub/one")).await;
    let k2 = subscribe(&mut phone, &ep.url("/sub/two")).await;
    go_away(&mut phone).await;

    let nick = s.conn.nick.clone();
    let t = server_time(-1000);
    s.conn
        .send(&format!(
            "@msgid=hl1;time={t} :bob!b@example.org PRIVMSG #rust :{nick}: ping"
        ))
        .await;
    let mut got = [ep.next().await, ep.next().await];
    got.sort_by(|a, b| a.path().cmp(b.path()));
    assert_eq!(got[0].path(), "/sub/one");
    assert_eq!(got[1].path(), "/sub/two");
    for (seen, keys) in got.iter().zip([&k1, &k2]) {
        assert_eq!(seen.header("Urgency"), Some("high"));
        let msg = open_push(&s, &ep, seen, keys);
        assert_eq!(msg.command, "PRIVMSG");
        assert_eq!(msg.source.as_deref(), Some("bob!b@example.org"));
        assert_eq!(msg.params, ["#rust", &format!("{nick}: ping")]);
        assert_eq!(msg.tag("msgid"), Some("hl1"));
        assert_eq!(msg.tag("time"), Some(t.as_str()));
    }

    // A plain channel message notifies nobody; the DM after it is the next
    // push each endpoint sees (the plain one would have been due first).
    s.conn
        .send(":bob!b@example.org PRIVMSG #rust :just chatting")
        .await;
    s.conn
        .send("@msgid=dm1 :carol!c@example.org PRIVMSG alice :are you there?")
        .await;
    let mut got = [ep.next().await, ep.next().await];
    got.sort_by(|a, b| a.path().cmp(b.path()));
    for (seen, keys) in got.iter().zip([&k1, &k2]) {
        let msg = open_push(&s, &ep, seen, keys);
        assert_eq!(msg.tag("msgid"), Some("dm1"), "{msg}");
        assert_eq!(msg.source.as_deref(), Some("carol!c@example.org"));
        assert_eq!(msg.params[1], "are you there?");
    }
    drop(phone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_within_the_grace_period_cancels_the_push() {
    let mut s = Setup::with_config(&config("2s")).await;
    let mut ep = HttpEndpoint::start(&[], 201).await;
    let mut phone = s
        .client("phone", &["soju.im/webpush", "draft/read-marker"])
        .await;
    phone.sync().await;
    let keys = subscribe(&mut phone, &ep.url("/p")).await;
    go_away(&mut phone).await;

    let nick = s.conn.nick.clone();
    let t1 = server_time(-5000);
    s.conn
        .send(&format!(
            "@msgid=read1;time={t1} :bob!b@example.org PRIVMSG #rust :{nick}: seen this?"
        ))
        .await;
    // Another client reads it within the grace period.
    let mut laptop = s.client("laptop", &["draft/read-marker"]).await;
    laptop.sync().await;
    go_away(&mut laptop).await;
    laptop.send(&format!("MARKREAD #rust timestamp={t1}")).await;
    laptop.expect_cmd("MARKREAD").await;
    laptop.sync().await;

    let t2 = server_time(-1000);
    s.conn
        .send(&format!(
            "@msgid=unread2;time={t2} :bob!b@example.org PRIVMSG #rust :{nick}: and this?"
        ))
        .await;
    let seen = ep.next().await;
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(
        msg.tag("msgid"),
        Some("unread2"),
        "the read message is not pushed"
    );
    drop((phone, laptop));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_client_gets_no_push() {
    let mut s = Setup::with_config(&config("200ms")).await;
    let mut ep = HttpEndpoint::start(&[], 201).await;
    let mut phone = s.client("phone", &["soju.im/webpush"]).await;
    phone.sync().await;
    let keys = subscribe(&mut phone, &ep.url("/p")).await;
    let nick = s.conn.nick.clone();
    // Present: no push.
    s.conn
        .send(&format!("@msgid=here :bob!b@h PRIVMSG #rust :{nick}: hi"))
        .await;
    phone
        .expect("the highlight", |m| m.command == "PRIVMSG")
        .await;
    go_away(&mut phone).await;
    s.conn
        .send(&format!(
            "@msgid=gone :bob!b@h PRIVMSG #rust :{nick}: hi again"
        ))
        .await;
    let seen = ep.next().await;
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(msg.tag("msgid"), Some("gone"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_subscription_is_removed_from_the_database() {
    let (mut s, mut ep, mut phone, _) = away_with_subscription("100ms", &[410], "/old").await;
    let user_id = s
        .tether
        .server()
        .shared()
        .db
        .get_user("alice")
        .await
        .expect("reads")
        .expect("alice")
        .id;
    let db = s.tether.server().shared().db.clone();
    assert_eq!(db.list_webpush(user_id).await.expect("lists").len(), 1);
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!("@msgid=x1 :bob!b@h PRIVMSG {nick} :hello"))
        .await;
    assert_eq!(ep.next().await.status, 410);
    // The delivery's end is handled (the subscription removed) before it
    // is counted.
    let mut ended = s.tether.server().shared().notify_ended.subscribe();
    tokio::time::timeout(Duration::from_secs(10), ended.wait_for(|n| *n >= 1))
        .await
        .expect("the delivery ends within 10 s")
        .expect("server running");
    assert!(db.list_webpush(user_id).await.expect("lists").is_empty());
    // The actor forgot it too: a new subscription is the only one pushed.
    let keys = subscribe(&mut phone, &ep.url("/new")).await;
    s.conn
        .send(&format!("@msgid=x2 :bob!b@h PRIVMSG {nick} :hello again"))
        .await;
    let seen = ep.next().await;
    assert_eq!(seen.path(), "/new");
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(msg.tag("msgid"), Some("x2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_delivered_once() {
    let (mut s, mut ep, _phone, keys) = away_with_subscription("100ms", &[503], "/p").await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(
            "@msgid=retry1 :bob!b@h PRIVMSG {nick} :knock knock"
        ))
        .await;
    let first = ep.next().await;
    assert_eq!(first.status, 503);
    // Backoff: the retry comes 5 to 10 s later.
    let second = ep.next().await;
    assert_eq!(second.status, 201);
    let msg = open_push(&s, &ep, &second, &keys);
    assert_eq!(msg.tag("msgid"), Some("retry1"));
    // Delivered once: the next push is the next message.
    s.conn
        .send(&format!("@msgid=retry2 :bob!b@h PRIVMSG {nick} :again"))
        .await;
    let seen = ep.next().await;
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(msg.tag("msgid"), Some("retry2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_set_by_bouncerserv_gets_the_json_shape() {
    let mut s = Setup::with_config(&config("100ms")).await;
    let mut ep = HttpEndpoint::start(&[], 201).await;
    let mut phone = s.client("phone", &[]).await;
    phone.sync().await;
    service_command(
        &mut phone,
        &format!(
            "notify webhook set {} -secret-header 'X-Hook-Secret: s3cret'",
            ep.url("/hook")
        ),
    )
    .await;
    let reply = expect_service_line(&mut phone, "webhook set", |_| true).await;
    assert!(reply.contains("webhook: "), "{reply}");
    go_away(&mut phone).await;
    let nick = s.conn.nick.clone();
    let t = server_time(-2000);
    s.conn
        .send(&format!(
            "@msgid=wh1;time={t} :bob!b@h PRIVMSG #rust :{nick}: webhook?"
        ))
        .await;
    let seen = ep.next().await;
    assert_eq!(seen.path(), "/hook");
    assert_eq!(seen.header("X-Hook-Secret"), Some("s3cret"));
    let v: serde_json::Value = serde_json::from_slice(&seen.body).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!({
            "network": "fake",
            "target": "#rust",
            "sender": "bob",
            "text": format!("{nick}: webhook?"),
            "time": t,
            "msgid": "wh1",
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_address_is_refused_without_the_allowlist() {
    // Plain http, but no allowlist: 127.0.0.1 is refused by the SSRF guard.
    let mut s = Setup::with_config("notify-allow-plain-http true\nnotify-grace 100ms\n").await;
    let mut refused_ep = HttpEndpoint::start(&[], 201).await;
    let mut phone = s.client("phone", &["soju.im/webpush"]).await;
    phone.sync().await;
    subscribe(&mut phone, &refused_ep.url("/p")).await;
    go_away(&mut phone).await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!("@msgid=ssrf :bob!b@h PRIVMSG {nick} :hi"))
        .await;
    // The delivery ends (refused, not retried) and its pending row goes.
    let mut ended = s.tether.server().shared().notify_ended.subscribe();
    tokio::time::timeout(Duration::from_secs(10), ended.wait_for(|n| *n >= 1))
        .await
        .expect("the delivery ends within 10 s")
        .expect("server running");
    let db = s.tether.server().shared().db.clone();
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
    assert!(
        refused_ep.drain().is_empty(),
        "no request reached the private address"
    );
}

/// A push that failed is retried after a restart of tether (the pending
/// delivery is stored), and delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_push_is_delivered_after_a_restart() {
    let (mut s, mut ep, phone, keys) = away_with_subscription("100ms", &[503], "/p").await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!(
            "@msgid=restart1 :bob!b@h PRIVMSG {nick} :are you there"
        ))
        .await;
    assert_eq!(ep.next().await.status, 503);
    drop(phone);
    let mut s = s.restart_with(&config("100ms")).await;
    let seen = ep.next().await;
    assert_eq!(seen.status, 201);
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(msg.tag("msgid"), Some("restart1"));
    // Once: the next push is the next message.
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!("@msgid=restart2 :bob!b@h PRIVMSG {nick} :hello?"))
        .await;
    let seen = ep.next().await;
    let msg = open_push(&s, &ep, &seen, &keys);
    assert_eq!(msg.tag("msgid"), Some("restart2"));
}

/// A webhook answering 410 is removed, and the user is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_webhook_is_removed_and_the_user_told() {
    let mut s = Setup::with_config(&config("100ms")).await;
    let mut ep = HttpEndpoint::start(&[410], 201).await;
    let mut phone = s.client("phone", &[]).await;
    phone.sync().await;
    service_command(
        &mut phone,
        &format!("notify webhook set {}", ep.url("/hook")),
    )
    .await;
    expect_service_line(&mut phone, "webhook set", |_| true).await;
    go_away(&mut phone).await;
    let nick = s.conn.nick.clone();
    s.conn
        .send(&format!("@msgid=gone1 :bob!b@h PRIVMSG {nick} :anyone?"))
        .await;
    assert_eq!(ep.next().await.status, 410);
    let notice = phone
        .expect("the notice about the webhook", |m| {
            m.command == "NOTICE" && m.params.last().is_some_and(|t| t.contains("webhook"))
        })
        .await;
    assert!(
        notice.params.last().is_some_and(|t| t.contains("410")),
        "{notice}"
    );
    service_command(&mut phone, "notify status").await;
    expect_service_line(&mut phone, "webhook: none", |l| l == "webhook: none").await;
}
