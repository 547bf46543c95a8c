//! Tests of the notifier task with paused time, an in-memory store and
//! scripted backends.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use super::*;
use crate::delivery::{WebhookConfig, WebhookFormat};

/// The `notify_pending` table, in memory.
#[derive(Clone, Default)]
struct MemStore(Arc<Mutex<Vec<PendingRow>>>);

impl MemStore {
    fn rows(&self) -> Vec<PendingRow> {
        self.0.lock().expect("lock").clone()
    }
}

impl PendingStore for MemStore {
    async fn insert(&self, row: NewPending) -> Result<Option<i64>, DbError> {
        let mut rows = self.0.lock().expect("lock");
        if row.msgid.is_some()
            && rows.iter().any(|r| {
                r.user_id == row.user_id
                    && r.dest_kind == row.dest_kind
                    && r.dest == row.dest
                    && r.msgid == row.msgid
            })
        {
            return Ok(None);
        }
        let id = rows.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        rows.push(PendingRow {
            id,
            user_id: row.user_id,
            dest_kind: row.dest_kind,
            dest: row.dest,
            payload: row.payload,
            msgid: row.msgid,
            created_at: row.created_at,
            attempts: 0,
            next_attempt_at: row.next_attempt_at,
            expires_at: row.expires_at,
        });
        Ok(Some(id))
    }
    async fn load(&self) -> Result<Vec<PendingRow>, DbError> {
        Ok(self.rows())
    }
    async fn reschedule(&self, id: i64, attempts: u32, next: i64) -> Result<(), DbError> {
        for r in self
            .0
            .lock()
            .expect("lock")
            .iter_mut()
            .filter(|r| r.id == id)
        {
            r.attempts = attempts;
            r.next_attempt_at = next;
        }
        Ok(())
    }
    async fn delete(&self, id: i64) -> Result<bool, DbError> {
        let mut rows = self.0.lock().expect("lock");
        let before = rows.len();
        rows.retain(|r| r.id != id);
        Ok(rows.len() < before)
    }
    async fn delete_destination(
        &self,
        user_id: i64,
        kind: String,
        dest: String,
    ) -> Result<usize, DbError> {
        let mut rows = self.0.lock().expect("lock");
        let before = rows.len();
        rows.retain(|r| !(r.user_id == user_id && r.dest_kind == kind && r.dest == dest));
        Ok(before - rows.len())
    }
}

/// One call of the scripted backend.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    url: String,
    msgid: Option<String>,
}

/// A backend answering from a script (per URL), then with a default.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<HashMap<String, VecDeque<Outcome>>>>,
    default: Outcome,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Scripted {
    fn new(default: Outcome) -> Scripted {
        Scripted {
            script: Arc::default(),
            default,
            calls: Arc::default(),
        }
    }

    fn then(self, url: &str, outcomes: impl IntoIterator<Item = Outcome>) -> Scripted {
        self.script
            .lock()
            .expect("lock")
            .entry(url.to_string())
            .or_default()
            .extend(outcomes);
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Deliver for Scripted {
    async fn deliver(&self, destination: &Destination, n: &Notification) -> Outcome {
        let url = match destination {
            Destination::Webhook(config) => config.url.clone(),
            Destination::WebPush(sub) => sub.endpoint.clone(),
        };
        self.calls.lock().expect("lock").push(Call {
            at: Instant::now(),
            url: url.clone(),
            msgid: n.msgid.clone(),
        });
        self.script
            .lock()
            .expect("lock")
            .get_mut(&url)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| self.default.clone())
    }
}

/// A check that refuses the msgids it was told about, and records when it
/// was asked.
#[derive(Clone, Default)]
struct FakeWanted {
    read: Arc<Mutex<HashSet<String>>>,
    asked: Arc<Mutex<Vec<Instant>>>,
}

impl StillWanted for FakeWanted {
    async fn still_wanted(&self, _user_id: i64, n: &Notification) -> bool {
        self.asked.lock().expect("lock").push(Instant::now());
        n.msgid
            .as_ref()
            .is_none_or(|m| !self.read.lock().expect("lock").contains(m))
    }
}

fn hook(url: &str) -> Destination {
    Destination::Webhook(WebhookConfig {
        url: url.to_string(),
        format: WebhookFormat::Json,
        secret_header: None,
    })
}

fn job(msgid: &str, destinations: Vec<Destination>) -> Job {
    Job {
        user_id: 1,
        notification: Notification {
            network: "net".into(),
            target: "#chan".into(),
            sender: "alice".into(),
            text: "bob: ping".into(),
            time: 0,
            msgid: Some(msgid.to_string()),
            line: None,
            urgent: false,
        },
        destinations,
    }
}

struct Running {
    handle: NotifierHandle,
    reports: mpsc::Receiver<Report>,
    _task: JoinHandle<()>,
}

fn start<W: StillWanted>(
    store: MemStore,
    backend: Scripted,
    wanted: W,
    config: NotifierConfig,
) -> Running {
    let (tx, reports) = mpsc::channel(64);
    let (handle, task) = Notifier {
        store,
        backend,
        wanted,
        config,
        reports: Some(tx),
    }
    .spawn();
    Running {
        handle,
        reports,
        _task: task,
    }
}

async fn next_report(r: &mut Running) -> Report {
    r.reports.recv().await.expect("the notifier reports")
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_backoff_schedule() {
    let backend = Scripted::new(Outcome::Delivered).then(
        "https://a/",
        (0..3).map(|i| Outcome::Retry(format!("HTTP 503 #{i}"))),
    );
    let store = MemStore::default();
    let mut r = start(
        store.clone(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig::default(),
    );
    let t0 = Instant::now();
    assert!(r.handle.submit(job("m1", vec![hook("https://a/")])));
    let report = next_report(&mut r).await;
    assert_eq!(report.end, End::Delivered);
    assert_eq!(report.attempts, 4);
    let at: Vec<Duration> = backend.calls().iter().map(|c| c.at - t0).collect();
    assert_eq!(at.len(), 4, "{at:?}");
    assert_eq!(
        at[0],
        Duration::from_secs(5),
        "first attempt after the grace period"
    );
    let secs = |s| Duration::from_secs(s);
    for (i, (lo, hi)) in [(5, 10), (10, 20), (20, 40)].into_iter().enumerate() {
        let gap = at[i + 1] - at[i];
        assert!(gap >= secs(lo) && gap <= secs(hi), "retry {i}: {gap:?}");
    }
    assert!(store.rows().is_empty(), "delivered rows are deleted");
}

#[tokio::test(start_paused = true)]
async fn a_failing_destination_is_given_up_after_the_time_to_live() {
    let backend = Scripted::new(Outcome::Retry("HTTP 500".into()));
    let store = MemStore::default();
    let mut r = start(
        store.clone(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig::default(),
    );
    let t0 = Instant::now();
    r.handle.submit(job("m1", vec![hook("https://a/")]));
    let report = next_report(&mut r).await;
    assert_eq!(report.end, End::Expired);
    let elapsed = t0.elapsed();
    let day = Duration::from_secs(24 * 3600);
    assert!(elapsed <= day, "{elapsed:?}");
    // Delays are capped at an hour, so the last try was within the last hour.
    assert!(elapsed > day - Duration::from_secs(3600), "{elapsed:?}");
    let calls = backend.calls();
    assert_eq!(calls.len() as u32, report.attempts);
    // 5 s grace, then 10 s doubling (jittered to at least half) to 1 h.
    assert!((20..=60).contains(&calls.len()), "{}", calls.len());
    assert!(store.rows().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_lets_a_read_marker_cancel_a_notification() {
    let backend = Scripted::new(Outcome::Delivered);
    let wanted = FakeWanted::default();
    let store = MemStore::default();
    let mut r = start(
        store.clone(),
        backend.clone(),
        wanted.clone(),
        NotifierConfig::default(),
    );
    let t0 = Instant::now();
    r.handle.submit(job("read", vec![hook("https://a/")]));
    r.handle.submit(job("unread", vec![hook("https://a/")]));
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert!(
        backend.calls().is_empty(),
        "nothing is sent during the grace"
    );
    assert!(wanted.asked.lock().expect("lock").is_empty());
    assert_eq!(store.rows().len(), 2, "both are stored meanwhile");
    // Another client reads the first message.
    wanted.read.lock().expect("lock").insert("read".into());
    let mut ends = [next_report(&mut r).await, next_report(&mut r).await];
    ends.sort_by(|a, b| a.msgid.cmp(&b.msgid));
    assert_eq!(
        (ends[0].msgid.as_deref(), &ends[0].end, ends[0].attempts),
        (Some("read"), &End::Unwanted, 0)
    );
    assert_eq!(
        (ends[1].msgid.as_deref(), &ends[1].end),
        (Some("unread"), &End::Delivered)
    );
    let calls = backend.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].msgid.as_deref(), Some("unread"));
    let asked = wanted.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|&at| at - t0 == Duration::from_secs(5)));
    assert!(store.rows().is_empty());
}

#[tokio::test(start_paused = true)]
async fn each_notification_goes_once_to_each_destination() {
    let backend = Scripted::new(Outcome::Delivered);
    let mut r = start(
        MemStore::default(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig::default(),
    );
    let (a, b) = (hook("https://a/"), hook("https://b/"));
    r.handle
        .submit(job("m", vec![a.clone(), a.clone(), b.clone()]));
    // The same message again (e.g. seen twice): already pending.
    r.handle.submit(job("m", vec![a.clone()]));
    r.handle.submit(job("last", vec![a.clone()]));
    for _ in 0..3 {
        assert_eq!(next_report(&mut r).await.end, End::Delivered);
    }
    let mut seen: Vec<(String, Option<String>)> = backend
        .calls()
        .into_iter()
        .map(|c| (c.url, c.msgid))
        .collect();
    seen.sort();
    let s = |u: &str, m: &str| (u.to_string(), Some(m.to_string()));
    assert_eq!(
        seen,
        vec![
            s("https://a/", "last"),
            s("https://a/", "m"),
            s("https://b/", "m")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_channel_drops_the_newest_job() {
    let backend = Scripted::new(Outcome::Delivered);
    let mut r = start(
        MemStore::default(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig {
            capacity: 2,
            ..NotifierConfig::default()
        },
    );
    // The task has not run yet: the channel fills up.
    let accepted: Vec<bool> = ["1", "2", "3", "4"]
        .into_iter()
        .map(|m| r.handle.submit(job(m, vec![hook("https://a/")])))
        .collect();
    assert_eq!(accepted, [true, true, false, false]);
    assert_eq!(r.handle.dropped(), 2);
    let mut got = vec![
        next_report(&mut r).await.msgid,
        next_report(&mut r).await.msgid,
    ];
    got.sort();
    assert_eq!(got, [Some("1".to_string()), Some("2".to_string())]);
    // Room again.
    assert!(r.handle.submit(job("5", vec![hook("https://a/")])));
    assert_eq!(next_report(&mut r).await.msgid.as_deref(), Some("5"));
    assert_eq!(backend.calls().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn stored_deliveries_resume_their_schedule() {
    let store = MemStore::default();
    let now = crate::proto::time::now_millis();
    let (kind, dest) = stored::encode_destination(&hook("https://a/"));
    let payload = stored::encode_notification(&job("x", vec![]).notification);
    let row = |id: i64, dest_kind: &str, next: i64| PendingRow {
        id,
        user_id: 1,
        dest_kind: dest_kind.to_string(),
        dest: dest.clone(),
        payload: payload.clone(),
        msgid: Some(format!("m{id}")),
        created_at: now - 1000,
        attempts: 2,
        next_attempt_at: next,
        expires_at: now + 3_600_000,
    };
    store.0.lock().expect("lock").extend([
        row(1, kind, now + 60_000),
        // A kind this build does not know: dropped.
        row(2, "carrier-pigeon", now),
        // Expired while tether was down: given up without a try.
        PendingRow {
            expires_at: now - 1,
            ..row(3, kind, now - 10)
        },
    ]);
    let backend = Scripted::new(Outcome::Delivered);
    let t0 = Instant::now();
    let mut r = start(
        store.clone(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig::default(),
    );
    let first = next_report(&mut r).await;
    assert_eq!(
        (first.msgid.as_deref(), &first.end),
        (Some("m3"), &End::Expired)
    );
    let second = next_report(&mut r).await;
    assert_eq!(
        (second.msgid.as_deref(), &second.end, second.attempts),
        (Some("m1"), &End::Delivered, 3)
    );
    let calls = backend.calls();
    assert_eq!(calls.len(), 1);
    let waited = calls[0].at - t0;
    // Due a minute after it was stored (give or take the real clock's
    // progress while the test set up).
    assert!(
        waited > Duration::from_secs(59) && waited <= Duration::from_secs(60),
        "{waited:?}"
    );
    assert!(store.rows().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_gone_destination_is_dropped_with_its_other_deliveries() {
    let backend = Scripted::new(Outcome::Delivered).then("https://a/", [Outcome::Gone(410)]);
    let store = MemStore::default();
    let mut r = start(
        store.clone(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig {
            max_in_flight: 1,
            ..NotifierConfig::default()
        },
    );
    r.handle.submit(job("1", vec![hook("https://a/")]));
    r.handle.submit(job("2", vec![hook("https://a/")]));
    let report = next_report(&mut r).await;
    assert_eq!(report.end, End::Gone(410));
    assert_eq!(report.destination, hook("https://a/"));
    // Something to wait for: the next report comes after any other
    // attempt at the gone destination would have been made.
    r.handle.submit(job("3", vec![hook("https://b/")]));
    let report = next_report(&mut r).await;
    assert_eq!(
        (report.msgid.as_deref(), report.end),
        (Some("3"), End::Delivered)
    );
    let to_a = backend
        .calls()
        .iter()
        .filter(|c| c.url == "https://a/")
        .count();
    assert_eq!(to_a, 1);
    assert!(store.rows().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_not_retried() {
    let backend = Scripted::new(Outcome::Failed("HTTP 400".into()));
    let mut r = start(
        MemStore::default(),
        backend.clone(),
        AlwaysWanted,
        NotifierConfig::default(),
    );
    r.handle.submit(job("1", vec![hook("https://a/")]));
    let report = next_report(&mut r).await;
    assert_eq!(report.end, End::Failed("HTTP 400".into()));
    assert_eq!(report.attempts, 1);
    // An hour on, still a single attempt.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(backend.calls().len(), 1);
}
