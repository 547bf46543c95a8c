//! The Web Push extension (`soju.im/webpush`, `draft/webpush`): both caps
//! are offered, the `VAPID` ISUPPORT token carries the stored key (stable
//! across restarts), and `WEBPUSH REGISTER` / `UNREGISTER` store and remove
//! subscriptions per user and per network, with `FAIL WEBPUSH` for bad
//! input.

use tether::db::webpush::Subscription;
use tether::proto::Message;
use tether::push::ece::ReceiverKeys;
use tether::push::vapid::VapidKey;

use crate::harness::*;
use crate::support::*;

const SOJU: &str = "soju.im/webpush";
const DRAFT: &str = "draft/webpush";

/// The value of ISUPPORT token `token` in 005 lines.
fn isupport_value(seen: &[Message], token: &str) -> Option<String> {
    seen.iter()
        .filter(|m| m.command == "005")
        .flat_map(|m| m.params.iter())
        .find_map(|p| match p.split_once('=') {
            Some((k, v)) if k == token => Some(v.to_string()),
            _ => None,
        })
}

/// Fresh subscription keys in the `WEBPUSH REGISTER` form.
fn keys() -> String {
    let r = ReceiverKeys::generate().expect("generates keys");
    format!("p256dh={};auth={}", r.p256dh_base64(), r.auth_base64())
}

/// A client of `user` (bound to alice's network `fake` when `bound`) with
/// `cap`, and the burst after its 001.
async fn client_with(
    t: &Tether,
    user: &str,
    bound: bool,
    name: &str,
    caps: &[&str],
) -> (TestClient, Vec<Message>) {
    let network = bound.then_some("fake");
    let mut c = t
        .connect_client(user, network, Some(name), name, caps)
        .await;
    let burst = c.sync().await;
    (c, burst)
}

async fn user_id(t: &Tether, name: &str) -> i64 {
    t.server()
        .shared()
        .db
        .get_user(name)
        .await
        .expect("reads users")
        .expect("user exists")
        .id
}

async fn subscriptions(t: &Tether, user: &str) -> Vec<Subscription> {
    let id = user_id(t, user).await;
    t.server()
        .shared()
        .db
        .list_webpush(id)
        .await
        .expect("lists subscriptions")
}

/// Send a WEBPUSH line and wait for its echo or a FAIL / 421.
async fn webpush(c: &mut TestClient, line: &str) -> Message {
    c.send(line).await;
    c.expect("WEBPUSH reply", |m| {
        matches!(m.command.as_str(), "WEBPUSH" | "FAIL" | "421")
    })
    .await
}

fn is_echo(m: &Message, sub: &str, endpoint: &str) -> bool {
    m.command == "WEBPUSH" && m.param(0) == Some(sub) && m.param(1) == Some(endpoint)
}

fn is_fail(m: &Message, code: &str, sub: &str) -> bool {
    m.command == "FAIL"
        && m.param(0) == Some("WEBPUSH")
        && m.param(1) == Some(code)
        && m.param(2) == Some(sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_cap_names_are_offered() {
    let s = Setup::new().await;
    let mut c = TestClient::connect(s.tether.addr).await;
    c.send("CAP LS 302").await;
    let mut offered = Vec::new();
    loop {
        let m = c
            .expect("CAP LS", |m| m.command == "CAP" && m.param(1) == Some("LS"))
            .await;
        let more = m.param(2) == Some("*");
        let list = if more { m.param(3) } else { m.param(2) };
        offered.extend(
            list.unwrap_or_default()
                .split(' ')
                .map(|c| c.split('=').next().unwrap_or_default().to_string()),
        );
        if !more {
            break;
        }
    }
    for cap in [SOJU, DRAFT] {
        assert!(
            offered.iter().any(|c| c == cap),
            "{cap} not offered\n{}",
            c.transcript()
        );
    }
    // Either name can be negotiated and unlocks the command.
    for cap in [SOJU, DRAFT] {
        let (mut c, _) = client_with(&s.tether, "alice", true, "phone", &[cap]).await;
        let url = format!("https://push.example/{}", cap.replace('/', "-"));
        let reply = webpush(&mut c, &format!("WEBPUSH REGISTER {url} {}", keys())).await;
        assert!(is_echo(&reply, "REGISTER", &url), "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapid_is_advertised_stored_and_stable_across_a_restart() {
    let s = Setup::new().await;
    let (_, bound) = client_with(&s.tether, "alice", true, "a", &[]).await;
    let (_, bouncer) = client_with(&s.tether, "alice", false, "b", &[]).await;
    let key = isupport_value(&bound, "VAPID").expect("VAPID in the bound 005");
    assert_eq!(isupport_value(&bouncer, "VAPID").as_deref(), Some(&*key));
    // The advertised key is the public half of the stored private key.
    let stored = s
        .tether
        .server()
        .shared()
        .db
        .vapid_key()
        .await
        .expect("reads")
        .expect("a key is stored");
    let public = VapidKey::from_private_base64(&stored)
        .expect("stored key parses")
        .public_base64();
    assert_eq!(public, key);
    // 65-byte uncompressed point in base64url.
    let raw = tether::push::b64url_decode(&key).expect("base64url");
    assert_eq!((raw.len(), raw[0]), (65, 4));

    let s = s.restart_with("").await;
    let (_, again) = client_with(&s.tether, "alice", true, "a", &[]).await;
    assert_eq!(isupport_value(&again, "VAPID").as_deref(), Some(&*key));
    // ISUPPORT (draft/extended-isupport) repeats it.
    let (mut c, _) =
        client_with(&s.tether, "alice", false, "c", &["draft/extended-isupport"]).await;
    c.send("ISUPPORT").await;
    let lines = c.sync().await;
    assert_eq!(isupport_value(&lines, "VAPID").as_deref(), Some(&*key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_stores_refreshes_and_unregister_removes() {
    let s = Setup::new().await;
    let (mut phone, _) = client_with(&s.tether, "alice", true, "phone", &[SOJU]).await;
    let url = "https://push.example/sub/1?token=abc";
    let first = keys();
    let reply = webpush(&mut phone, &format!("WEBPUSH REGISTER {url} {first}")).await;
    assert!(is_echo(&reply, "REGISTER", url), "{reply}");
    let subs = subscriptions(&s.tether, "alice").await;
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0].endpoint, url);
    assert!(subs[0].network_id.is_some(), "bound to the network");
    assert_eq!(
        format!("p256dh={};auth={}", subs[0].p256dh, subs[0].auth),
        first
    );

    // Registering again (new keys, from another client of the same network)
    // refreshes the one subscription.
    let (mut laptop, _) = client_with(&s.tether, "alice", true, "laptop", &[DRAFT]).await;
    let second = keys();
    let reply = webpush(&mut laptop, &format!("WEBPUSH REGISTER {url} {second}")).await;
    assert!(is_echo(&reply, "REGISTER", url), "{reply}");
    let subs = subscriptions(&s.tether, "alice").await;
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(
        format!("p256dh={};auth={}", subs[0].p256dh, subs[0].auth),
        second
    );

    let reply = webpush(&mut phone, &format!("WEBPUSH UNREGISTER {url}")).await;
    assert!(is_echo(&reply, "UNREGISTER", url), "{reply}");
    assert!(subscriptions(&s.tether, "alice").await.is_empty());
    // Unknown endpoints unregister silently.
    let reply = webpush(&mut phone, &format!("WEBPUSH UNREGISTER {url}")).await;
    assert!(is_echo(&reply, "UNREGISTER", url), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_fail() {
    let s = Setup::new().await;
    let (mut c, _) = client_with(&s.tether, "alice", true, "phone", &[SOJU]).await;
    let good = keys();
    let r = ReceiverKeys::generate().expect("generates keys");
    let short_auth = tether::push::b64url_encode(&[1u8; 8]);
    let not_a_point = tether::push::b64url_encode(&[4u8; 65]);
    let cases = [
        (
            format!("WEBPUSH REGISTER http://push.example/x {good}"),
            "REGISTER",
        ),
        (format!("WEBPUSH REGISTER push.example {good}"), "REGISTER"),
        (
            format!(
                "WEBPUSH REGISTER https://push.example/x p256dh={}",
                r.p256dh_base64()
            ),
            "REGISTER",
        ),
        (
            format!(
                "WEBPUSH REGISTER https://push.example/x p256dh={};auth={short_auth}",
                r.p256dh_base64()
            ),
            "REGISTER",
        ),
        (
            format!(
                "WEBPUSH REGISTER https://push.example/x p256dh={not_a_point};auth={}",
                r.auth_base64()
            ),
            "REGISTER",
        ),
        (
            "WEBPUSH REGISTER https://push.example/x".to_string(),
            "REGISTER",
        ),
        ("WEBPUSH UNREGISTER".to_string(), "UNREGISTER"),
        ("WEBPUSH FROB x".to_string(), "FROB"),
    ];
    for (line, sub) in &cases {
        let reply = webpush(&mut c, line).await;
        assert!(
            is_fail(&reply, "INVALID_PARAMS", sub),
            "{line}: {reply}\n{}",
            c.transcript()
        );
    }
    c.send("WEBPUSH").await;
    let reply = c.expect("FAIL", |m| m.command == "FAIL").await;
    assert_eq!(
        (reply.param(0), reply.param(1)),
        (Some("WEBPUSH"), Some("INVALID_PARAMS")),
        "{reply}"
    );
    assert!(subscriptions(&s.tether, "alice").await.is_empty());

    // Without the capability the command does not exist.
    let (mut plain, _) = client_with(&s.tether, "alice", true, "plain", &[]).await;
    let reply = webpush(
        &mut plain,
        &format!("WEBPUSH REGISTER https://push.example/x {good}"),
    )
    .await;
    assert_eq!(reply.command, "421", "{reply}");
    assert_eq!(reply.param(1), Some("WEBPUSH"), "{reply}");
    assert!(subscriptions(&s.tether, "alice").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_capped_per_user() {
    let s = Setup::new().await;
    let (mut c, _) = client_with(&s.tether, "alice", true, "phone", &[SOJU]).await;
    let k = keys();
    for i in 0..25 {
        let url = format!("https://push.example/{i}");
        let reply = webpush(&mut c, &format!("WEBPUSH REGISTER {url} {k}")).await;
        assert!(is_echo(&reply, "REGISTER", &url), "{reply}");
    }
    let reply = webpush(
        &mut c,
        &format!("WEBPUSH REGISTER https://push.example/25 {k}"),
    )
    .await;
    assert!(is_fail(&reply, "INVALID_PARAMS", "REGISTER"), "{reply}");
    // Re-registering a known endpoint still works at the cap.
    let reply = webpush(
        &mut c,
        &format!("WEBPUSH REGISTER https://push.example/3 {k}"),
    )
    .await;
    assert!(
        is_echo(&reply, "REGISTER", "https://push.example/3"),
        "{reply}"
    );
    assert_eq!(subscriptions(&s.tether, "alice").await.len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_bouncer_connection_and_users_are_kept_apart() {
    let s = Setup::new().await;
    s.tether.create_user("bob").await;
    let url = "https://push.example/shared";
    let k = keys();
    let (mut bound, _) = client_with(&s.tether, "alice", true, "phone", &[SOJU]).await;
    let (mut bouncer, _) = client_with(&s.tether, "alice", false, "phone2", &[SOJU]).await;
    let (mut bob, _) = client_with(&s.tether, "bob", false, "bob", &[SOJU]).await;

    for c in [&mut bound, &mut bouncer] {
        let reply = webpush(c, &format!("WEBPUSH REGISTER {url} {k}")).await;
        assert!(is_echo(&reply, "REGISTER", url), "{reply}");
    }
    let subs = subscriptions(&s.tether, "alice").await;
    let mut scopes: Vec<bool> = subs.iter().map(|s| s.network_id.is_some()).collect();
    scopes.sort();
    assert_eq!(scopes, [false, true], "{subs:?}");

    // Bob unregistering the same endpoint touches nothing of alice's.
    let reply = webpush(&mut bob, &format!("WEBPUSH UNREGISTER {url}")).await;
    assert!(is_echo(&reply, "UNREGISTER", url), "{reply}");
    assert_eq!(subscriptions(&s.tether, "alice").await.len(), 2);
    let reply = webpush(&mut bob, &format!("WEBPUSH REGISTER {url} {k}")).await;
    assert!(is_echo(&reply, "REGISTER", url), "{reply}");
    assert_eq!(subscriptions(&s.tether, "bob").await.len(), 1);
    assert_eq!(subscriptions(&s.tether, "alice").await.len(), 2);

    // Unregistering on the bouncer connection leaves the network's.
    let reply = webpush(&mut bouncer, &format!("WEBPUSH UNREGISTER {url}")).await;
    assert!(is_echo(&reply, "UNREGISTER", url), "{reply}");
    let subs = subscriptions(&s.tether, "alice").await;
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert!(subs[0].network_id.is_some(), "{subs:?}");
    assert_eq!(subscriptions(&s.tether, "bob").await.len(), 1);
}
