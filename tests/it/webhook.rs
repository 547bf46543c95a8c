//! Webhook delivery end to end: the notifier on a real database posts to a
//! small HTTP server on loopback (allowed through the SSRF guard's
//! allowlist, plain http permitted for the test).

use std::time::Duration;

use tether::config::Cidr;
use tether::db::{Db, UserRecord};
use tether::delivery::queue::{AlwaysWanted, End, Job, Report};
use tether::delivery::{
    Destination, HttpBackends, Notification, Notifier, NotifierConfig, NotifierHandle,
    WebhookConfig, WebhookFormat,
};
use tether::outbound::{AddressPolicy, PostOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::http_endpoint::HttpEndpoint;

fn loopback_backends() -> HttpBackends {
    HttpBackends {
        policy: AddressPolicy::with_allowed(vec![Cidr::parse("127.0.0.0/8").expect("cidr")]),
        options: PostOptions {
            allow_plain_http: true,
            timeout: Duration::from_secs(10),
            ..PostOptions::default()
        },
        webpush: None,
    }
}

fn fast() -> NotifierConfig {
    NotifierConfig {
        grace: Duration::ZERO,
        backoff: tether::delivery::backoff::Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        },
        ..NotifierConfig::default()
    }
}

struct Running {
    handle: NotifierHandle,
    reports: mpsc::Receiver<Report>,
    task: JoinHandle<()>,
}

impl Running {
    async fn report(&mut self) -> Report {
        tokio::time::timeout(Duration::from_secs(20), self.reports.recv())
            .await
            .expect("a report within 20 s")
            .expect("the notifier runs")
    }
}

fn start(db: &Db, backends: HttpBackends) -> Running {
    let (tx, reports) = mpsc::channel(16);
    let (handle, task) = Notifier {
        store: db.clone(),
        backend: backends,
        wanted: AlwaysWanted,
        config: fast(),
        reports: Some(tx),
    }
    .spawn();
    Running {
        handle,
        reports,
        task,
    }
}

async fn db_with_user(path: &std::path::Path) -> (Db, i64) {
    let db = Db::open(path).expect("opens");
    let user = db
        .create_user(UserRecord {
            username: "alice".into(),
            enabled: true,
            ..Default::default()
        })
        .await
        .expect("user");
    (db, user.id)
}

fn hook(url: String, format: WebhookFormat, secret: Option<(&str, &str)>) -> Destination {
    Destination::Webhook(WebhookConfig {
        url,
        format,
        secret_header: secret.map(|(n, v)| (n.to_string(), v.to_string())),
    })
}

fn job(user_id: i64, msgid: &str, target: &str, destinations: Vec<Destination>) -> Job {
    Job {
        user_id,
        notification: Notification {
            network: "libera".into(),
            target: target.into(),
            sender: "bob".into(),
            text: "alice: are you there?".into(),
            time: 1_700_000_000_000,
            msgid: Some(msgid.into()),
            line: None,
            urgent: false,
        },
        destinations,
    }
}

#[tokio::test]
async fn json_webhook_gets_one_post_with_the_secret_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, user) = db_with_user(&dir.path().join("t.db")).await;
    let mut server = HttpEndpoint::start(&[], 200).await;
    let mut n = start(&db, loopback_backends());
    let dest = hook(
        server.url("/hook"),
        WebhookFormat::Json,
        Some(("X-Tether-Secret", "s3cret")),
    );
    assert!(
        n.handle
            .submit(job(user, "m1", "#rust", vec![dest.clone()]))
    );
    let report = n.report().await;
    assert_eq!((report.end, report.attempts), (End::Delivered, 1));
    let seen = server.next().await;
    assert_eq!(seen.request_line, "POST /hook HTTP/1.1");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-tether-secret"), Some("s3cret"));
    assert_eq!(
        seen.json(),
        serde_json::json!({
            "network": "libera", "target": "#rust", "sender": "bob",
            "text": "alice: are you there?", "time": "2023-11-14T22:13:20.000Z",
            "msgid": "m1",
        })
    );
    // A second notification, delivered after the first: the first was
    // posted exactly once.
    n.handle.submit(job(user, "m2", "#rust", vec![dest]));
    assert_eq!(n.report().await.end, End::Delivered);
    let second = server.next().await;
    assert_eq!(second.json()["msgid"], "m2");
    assert!(server.drain().is_empty());
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
}

#[tokio::test]
async fn ntfy_and_gotify_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, user) = db_with_user(&dir.path().join("t.db")).await;
    let mut server = HttpEndpoint::start(&[], 200).await;
    let mut n = start(&db, loopback_backends());
    let ntfy = hook(server.url("/alerts"), WebhookFormat::Ntfy, None);
    let gotify = hook(
        server.url("/message?token=AppTok"),
        WebhookFormat::Gotify,
        Some(("X-Gotify-Key", "AppTok")),
    );
    n.handle
        .submit(job(user, "m1", "#rust", vec![ntfy, gotify]));
    for _ in 0..2 {
        assert_eq!(n.report().await.end, End::Delivered);
    }
    let mut seen = [server.next().await, server.next().await];
    seen.sort_by(|a, b| a.request_line.cmp(&b.request_line));
    let (ntfy, gotify) = (&seen[0], &seen[1]);
    assert_eq!(ntfy.request_line, "POST /alerts HTTP/1.1");
    assert_eq!(ntfy.body, b"alice: are you there?");
    assert_eq!(ntfy.header("title"), Some("bob in #rust"));
    assert_eq!(ntfy.header("priority"), Some("default"));
    assert!(ntfy.header("tags").is_some());
    assert_eq!(gotify.request_line, "POST /message?token=AppTok HTTP/1.1");
    assert_eq!(gotify.header("x-gotify-key"), Some("AppTok"));
    assert_eq!(
        gotify.json(),
        serde_json::json!({"title": "bob in #rust", "message": "alice: are you there?", "priority": 5})
    );
}

#[tokio::test]
async fn a_503_is_retried_and_delivered_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, user) = db_with_user(&dir.path().join("t.db")).await;
    let mut server = HttpEndpoint::start(&[503], 200).await;
    let mut n = start(&db, loopback_backends());
    let dest = hook(server.url("/hook"), WebhookFormat::Json, None);
    n.handle.submit(job(user, "m1", "#rust", vec![dest]));
    let report = n.report().await;
    assert_eq!((report.end, report.attempts), (End::Delivered, 2));
    let (first, second) = (server.next().await, server.next().await);
    assert_eq!((first.status, second.status), (503, 200));
    assert_eq!(first.body, second.body);
    assert!(server.drain().is_empty());
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
}

#[tokio::test]
async fn a_410_is_gone_and_not_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, user) = db_with_user(&dir.path().join("t.db")).await;
    let mut gone = HttpEndpoint::start(&[], 410).await;
    let mut other = HttpEndpoint::start(&[], 200).await;
    let mut n = start(&db, loopback_backends());
    let dest = hook(gone.url("/hook"), WebhookFormat::Json, None);
    n.handle
        .submit(job(user, "m1", "#rust", vec![dest.clone()]));
    let report = n.report().await;
    assert_eq!(report.end, End::Gone(410));
    assert_eq!(report.destination, dest);
    // Its row is gone, so nothing is left to retry; another delivery
    // completes in the meantime and the gone server saw one request only.
    n.handle.submit(job(
        user,
        "m2",
        "#rust",
        vec![hook(other.url("/"), WebhookFormat::Json, None)],
    ));
    assert_eq!(n.report().await.end, End::Delivered);
    other.next().await;
    gone.next().await;
    assert!(gone.drain().is_empty(), "no retry after 410");
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
}

#[tokio::test]
async fn a_restart_mid_retry_still_delivers_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let (db, user) = db_with_user(&path).await;
    let mut server = HttpEndpoint::start(&[], 503).await;
    let n = start(&db, loopback_backends());
    let dest = hook(server.url("/hook"), WebhookFormat::Json, None);
    n.handle
        .submit(job(user, "m1", "#rust", vec![dest.clone()]));
    assert_eq!(server.next().await.status, 503);
    // tether goes down mid-retry.
    n.task.abort();
    assert!(n.task.await.expect_err("aborted").is_cancelled());
    db.close().await;
    server.set_default(200);

    let db = Db::open(&path).expect("reopens");
    let pending = db.load_notify_pending().await.expect("loads");
    assert_eq!(pending.len(), 1, "the delivery survived");
    assert_eq!(pending[0].msgid.as_deref(), Some("m1"));
    let mut n = start(&db, loopback_backends());
    let report = n.report().await;
    assert_eq!(
        (report.end, report.msgid.as_deref()),
        (End::Delivered, Some("m1"))
    );
    assert_eq!(report.destination, dest);
    let mut answered_ok = 0;
    loop {
        let seen = server.next().await;
        assert_eq!(seen.json()["msgid"], "m1");
        if seen.status == 200 {
            answered_ok += 1;
            break;
        }
    }
    assert!(server.drain().iter().all(|s| s.status != 200));
    assert_eq!(answered_ok, 1);
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
    drop(n.handle);
    n.task.await.expect("stops when its handles are gone");
}

#[tokio::test]
async fn the_ssrf_guard_refuses_loopback_without_the_allowlist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, user) = db_with_user(&dir.path().join("t.db")).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let backends = HttpBackends {
        policy: AddressPolicy::default(),
        ..loopback_backends()
    };
    let mut n = start(&db, backends);
    let dest = hook(
        format!("http://127.0.0.1:{port}/hook"),
        WebhookFormat::Json,
        None,
    );
    n.handle.submit(job(user, "m1", "#rust", vec![dest]));
    let report = n.report().await;
    match &report.end {
        End::Failed(why) => assert!(why.contains("refusing to connect"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.attempts, 1, "a refusal is not retried");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was made: {other:?}"),
    }
    assert!(db.load_notify_pending().await.expect("loads").is_empty());
}
