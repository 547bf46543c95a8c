//! The "while you were away" summary: what notified (highlights, direct
//! messages) while the user was away reaches the next client to attach as
//! BouncerServ NOTICEs, once, capped, and without what was read meanwhile.

use crate::harness::*;
use crate::support::*;

const HEADER: &str = "While you were away";

/// Quit a client and wait until the bouncer has closed it.
async fn quit(mut c: TestClient) {
    c.send("QUIT").await;
    c.expect_eof().await;
}

/// The BouncerServ NOTICE texts a client has received up to a sync.
async fn service_notices(c: &mut TestClient) -> Vec<String> {
    c.sync()
        .await
        .iter()
        .filter(|m| is_service_notice(m, ""))
        .filter_map(|m| m.params.last().cloned())
        .collect()
}

/// A client attaches and is told nothing about a time away.
async fn attach_expecting_no_summary(s: &Setup, name: &str) -> TestClient {
    let mut c = s.client(name, &[]).await;
    let notices = service_notices(&mut c).await;
    assert!(
        notices.iter().all(|n| !n.contains(HEADER)),
        "{notices:?}\n{}",
        c.transcript()
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highlights_and_direct_messages_are_summarised_once() {
    let mut s = Setup::new().await;
    let nick = s.conn.nick.clone();
    // No client is attached: everything that notifies is recorded.
    for line in [
        format!(":bob!b@h.example PRIVMSG #rust :{nick}: are you there?"),
        ":bob!b@h.example PRIVMSG #rust :just chatting".to_string(),
        format!(":carol!c@h.example PRIVMSG {nick} :\u{2}hello\u{2} there"),
        format!(":dave!d@h.example NOTICE {nick} :a notice is not a DM"),
    ] {
        s.conn.send(&line).await;
    }
    s.conn.sync().await;

    let mut phone = s.client("phone", &[]).await;
    let notices = service_notices(&mut phone).await;
    assert_eq!(
        notices,
        [
            "While you were away: 2 messages for you".to_string(),
            format!("[fake] <bob> in #rust: {nick}: are you there?"),
            "[fake] <carol> (direct message): hello there".to_string(),
        ],
        "{}",
        phone.transcript()
    );
    // The first client took it: the next one is told nothing.
    attach_expecting_no_summary(&s, "laptop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_absence_is_capped() {
    let mut s = Setup::new().await;
    let nick = s.conn.nick.clone();
    let phone = s.client("phone", &[]).await;
    quit(phone).await;
    for i in 0..53 {
        s.conn
            .send(&format!(":bob!b@h.example PRIVMSG #rust :{nick}: ping {i}"))
            .await;
    }
    s.conn.sync().await;
    let mut phone = s.client("phone", &[]).await;
    let notices = service_notices(&mut phone).await;
    assert_eq!(notices.len(), 52, "{notices:?}");
    assert_eq!(notices[0], "While you were away: 53 messages for you");
    assert_eq!(notices[1], format!("[fake] <bob> in #rust: {nick}: ping 0"));
    assert_eq!(
        notices[50],
        format!("[fake] <bob> in #rust: {nick}: ping 49")
    );
    assert_eq!(notices[51], "… and 3 more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_read_meanwhile_is_left_out() {
    let mut s = Setup::new().await;
    let nick = s.conn.nick.clone();
    // An attached client that is away counts as away: it does not see
    // for the user, so what notifies is recorded.
    let mut phone = s.client("phone", &["draft/read-marker"]).await;
    phone.send("AWAY :on the train").await;
    s.conn.expect_cmd("AWAY").await;
    phone.sync().await;
    s.conn
        .send(&format!(
            ":bob!b@h.example PRIVMSG #rust :{nick}: seen already"
        ))
        .await;
    s.conn
        .send(&format!(
            ":bob!b@h.example PRIVMSG #tether :{nick}: not read"
        ))
        .await;
    phone
        .expect("the second highlight", |m| {
            is_privmsg(m, "#tether", &format!("{nick}: not read"))
        })
        .await;
    // Read on the phone (a marker in the future is clamped to now).
    phone
        .send("MARKREAD #RUST timestamp=2099-01-01T00:00:00.000Z")
        .await;
    phone.expect_cmd("MARKREAD").await;
    let notices = service_notices(&mut phone).await;
    assert!(notices.is_empty(), "{notices:?}");

    let mut laptop = s.client("laptop", &[]).await;
    let notices = service_notices(&mut laptop).await;
    assert_eq!(
        notices,
        [
            "While you were away: 1 message for you".to_string(),
            format!("[fake] <bob> in #tether: {nick}: not read"),
        ],
        "{}",
        laptop.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_said_when_nothing_happened() {
    let mut s = Setup::new().await;
    let nick = s.conn.nick.clone();
    let mut phone = attach_expecting_no_summary(&s, "phone").await;
    // A highlight seen by a present client is not kept for later.
    s.conn
        .send(&format!(":bob!b@h.example PRIVMSG #rust :{nick}: hello"))
        .await;
    phone
        .expect("the highlight", |m| {
            is_privmsg(m, "#rust", &format!("{nick}: hello"))
        })
        .await;
    // Neither are plain messages while nobody is attached.
    quit(phone).await;
    s.conn
        .send(":bob!b@h.example PRIVMSG #rust :nothing for you")
        .await;
    s.conn.sync().await;
    attach_expecting_no_summary(&s, "laptop").await;
}
