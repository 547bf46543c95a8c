//! The notifier task: takes notifications from a bounded channel, stores
//! one pending delivery per destination, and delivers each once, retrying
//! with backoff until it succeeds or expires.
//!
//! # Life of a delivery
//!
//! 1. The user actor calls [`NotifierHandle::submit`] with a [`Job`]: a
//!    notification and the user's destinations. It never waits.
//! 2. The task stores one row per distinct destination in the
//!    [`PendingStore`] (the `notify_pending` table), due at
//!    `created + grace` ([`NotifierConfig::grace`]) and expiring at
//!    `created + ttl`. A msgid already pending for the same user and
//!    destination is not stored or delivered again.
//! 3. When a delivery is due, the [`StillWanted`] check is consulted
//!    first: a read marker that moved past the message, or an active
//!    client, drops it. Otherwise the [`Deliver`] backend sends it.
//! 4. Delivered, gone (and with it every other pending delivery to that
//!    destination), permanently failed, no longer wanted or expired: the
//!    row is deleted and a [`Report`] is sent. A temporary failure
//!    reschedules it by [`Backoff`]; the new attempt count and time are
//!    stored, so a restart resumes the schedule.
//!
//! # When the input channel is full
//!
//! The channel holds [`NotifierConfig::capacity`] jobs that the task has
//! not yet stored. A submit that finds it full drops that newest job:
//! jobs already in the channel keep their order, and everything stored is
//! never dropped for load. Drops are counted ([`NotifierHandle::dropped`])
//! and logged (the first, then every 1000th). Under such a flood, a lost
//! notification matters less than blocking the user actor.
//!
//! # Time
//!
//! Rows carry wall-clock Unix milliseconds; the task schedules on tokio's
//! clock, and reads the wall clock as its start time plus tokio's elapsed
//! time, so tests with paused time control both.
//!
//! # Stopping
//!
//! The task ends when every [`NotifierHandle`] is dropped, or when it is
//! aborted. Attempts in flight are abandoned; their rows remain and are
//! tried again by the next task, so across a crash delivery is at least
//! once (exactly once otherwise).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::backoff::Backoff;
use super::stored::{self, StoredError};
use super::{Deliver, Destination, Notification, Outcome};
use crate::db::notify_pending::{NewPending, PendingRow};
use crate::db::{Db, DbError};

/// Decides, when a delivery is due, whether it is still worth sending.
///
/// The notification rules' part plugs in here: a read marker on any
/// client moved past the message, or a client of the user is attached and
/// active, means no.
pub trait StillWanted: Send + Sync + 'static {
    fn still_wanted(
        &self,
        user_id: i64,
        notification: &Notification,
    ) -> impl Future<Output = bool> + Send;
}

/// Wants everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysWanted;

impl StillWanted for AlwaysWanted {
    async fn still_wanted(&self, _user_id: i64, _notification: &Notification) -> bool {
        true
    }
}

/// Where pending deliveries are kept; [`Db`] in production.
pub trait PendingStore: Send + Sync + 'static {
    /// Stores a delivery; `None` if its msgid is already pending for that
    /// user and destination.
    fn insert(&self, row: NewPending) -> impl Future<Output = Result<Option<i64>, DbError>> + Send;
    fn load(&self) -> impl Future<Output = Result<Vec<PendingRow>, DbError>> + Send;
    fn reschedule(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_at: i64,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    fn delete(&self, id: i64) -> impl Future<Output = Result<bool, DbError>> + Send;
    fn delete_destination(
        &self,
        user_id: i64,
        dest_kind: String,
        dest: String,
    ) -> impl Future<Output = Result<usize, DbError>> + Send;
}

impl PendingStore for Db {
    async fn insert(&self, row: NewPending) -> Result<Option<i64>, DbError> {
        self.insert_notify_pending(row).await
    }
    async fn load(&self) -> Result<Vec<PendingRow>, DbError> {
        self.load_notify_pending().await
    }
    async fn reschedule(&self, id: i64, attempts: u32, next: i64) -> Result<(), DbError> {
        self.reschedule_notify_pending(id, attempts, next).await
    }
    async fn delete(&self, id: i64) -> Result<bool, DbError> {
        self.delete_notify_pending(id).await
    }
    async fn delete_destination(
        &self,
        user_id: i64,
        dest_kind: String,
        dest: String,
    ) -> Result<usize, DbError> {
        self.delete_notify_destination(user_id, dest_kind, dest)
            .await
    }
}

/// Settings of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Jobs waiting to be stored before submits are dropped.
    pub capacity: usize,
    /// Delay between a notification and its first attempt, during which it
    /// may become unwanted.
    pub grace: Duration,
    /// How long a notification is tried before it is given up.
    pub ttl: Duration,
    pub backoff: Backoff,
    /// Attempts running at the same time.
    pub max_in_flight: usize,
}

impl Default for NotifierConfig {
    fn default() -> NotifierConfig {
        NotifierConfig {
            capacity: 256,
            grace: Duration::from_secs(5),
            ttl: Duration::from_secs(24 * 3600),
            backoff: Backoff::default(),
            max_in_flight: 8,
        }
    }
}

/// A notification for one user and the destinations it goes to.
#[derive(Debug, Clone)]
pub struct Job {
    pub user_id: i64,
    pub notification: Notification,
    pub destinations: Vec<Destination>,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Delivered,
    /// The destination answered 404 or 410: the subscription should be
    /// removed (the caller's job).
    Gone(u16),
    Failed(String),
    /// Still failing when its time to live ran out.
    Expired,
    /// The [`StillWanted`] check said no.
    Unwanted,
}

/// Sent when a delivery ends, if the notifier has a report channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub user_id: i64,
    pub destination: Destination,
    pub msgid: Option<String>,
    /// Attempts made, the last included.
    pub attempts: u32,
    pub end: End,
}

/// The submitting side of a notifier; cheap to clone.
#[derive(Debug, Clone)]
pub struct NotifierHandle {
    tx: mpsc::Sender<Job>,
    dropped: Arc<AtomicU64>,
}

impl NotifierHandle {
    /// Queues a job without waiting. If the channel is full the job is
    /// dropped and counted (see the module docs); returns whether it was
    /// queued.
    pub fn submit(&self, job: Job) -> bool {
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(job)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(
                        user_id = job.user_id,
                        dropped = n,
                        "notification queue full: notification dropped"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("notifier stopped: notification dropped");
                false
            }
        }
    }

    /// Jobs dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A notifier, ready to be spawned.
pub struct Notifier<S, D, W> {
    pub store: S,
    pub backend: D,
    pub wanted: W,
    pub config: NotifierConfig,
    /// Receives a [`Report`] for every delivery that ends. The task waits
    /// for room, so the receiver must keep draining it.
    pub reports: Option<mpsc::Sender<Report>>,
}

impl<S: PendingStore, D: Deliver, W: StillWanted> Notifier<S, D, W> {
    /// Starts the task: it loads the stored deliveries, then serves.
    pub fn spawn(self) -> (NotifierHandle, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(self.config.capacity.max(1));
        let handle = NotifierHandle {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let task = Task {
            store: self.store,
            backend: Arc::new(self.backend),
            wanted: Arc::new(self.wanted),
            config: self.config,
            reports: self.reports,
            clock: Clock::start(),
            rng: fastrand::Rng::new(),
            entries: HashMap::new(),
            schedule: BTreeSet::new(),
            in_flight: JoinSet::new(),
            next_local_id: -1,
        };
        (handle, tokio::spawn(task.run(rx)))
    }
}

/// Wall-clock milliseconds that follow tokio's clock.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: Instant,
    base_ms: i64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            base: Instant::now(),
            base_ms: crate::proto::time::now_millis(),
        }
    }

    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.base.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }

    /// The instant of a wall-clock time; now if it is past.
    fn instant_at(&self, ms: i64) -> Instant {
        let ahead = ms.saturating_sub(self.now_ms());
        let ahead = u64::try_from(ahead).unwrap_or(0);
        Instant::now() + Duration::from_millis(ahead)
    }
}

/// A delivery known to the task.
#[derive(Debug, Clone)]
struct Entry {
    user_id: i64,
    destination: Destination,
    notification: Notification,
    attempts: u32,
    expires_at: i64,
    /// Whether the row is in the store (ids of rows the store refused are
    /// negative and local).
    stored: bool,
}

/// What an attempt came to.
enum Attempt {
    /// Its time to live ran out before it was due (after a long downtime).
    Expired,
    Unwanted,
    Sent(Outcome),
}

struct Task<S, D, W> {
    store: S,
    backend: Arc<D>,
    wanted: Arc<W>,
    config: NotifierConfig,
    reports: Option<mpsc::Sender<Report>>,
    clock: Clock,
    rng: fastrand::Rng,
    /// Every delivery, scheduled or in flight, by id.
    entries: HashMap<i64, Entry>,
    /// Deliveries waiting for their time (not in flight).
    schedule: BTreeSet<(Instant, i64)>,
    in_flight: JoinSet<(i64, Attempt)>,
    next_local_id: i64,
}

impl<S: PendingStore, D: Deliver, W: StillWanted> Task<S, D, W> {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        self.load().await;
        loop {
            let next = self.schedule.first().map(|&(at, _)| at);
            let room = self.in_flight.len() < self.config.max_in_flight.max(1);
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => self.accept(job).await,
                    None => break,
                },
                () = sleep_until(next), if room && next.is_some() => self.start_due(),
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok((id, attempt)) => self.finish(id, attempt).await,
                        Err(e) => tracing::error!(error = %e, "notification attempt panicked"),
                    }
                }
            }
        }
        tracing::debug!(pending = self.entries.len(), "notifier stopped");
    }

    /// Resumes the stored deliveries.
    async fn load(&mut self) {
        let rows = match self.store.load().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot load pending notifications");
                return;
            }
        };
        let count = rows.len();
        for row in rows {
            match decode(&row) {
                Ok((destination, notification)) => {
                    let due = self.clock.instant_at(row.next_attempt_at);
                    self.entries.insert(
                        row.id,
                        Entry {
                            user_id: row.user_id,
                            destination,
                            notification,
                            attempts: row.attempts,
                            expires_at: row.expires_at,
                            stored: true,
                        },
                    );
                    self.schedule.insert((due, row.id));
                }
                Err(e) => {
                    tracing::warn!(id = row.id, error = %e, "dropping unreadable pending notification");
                    self.delete_row(row.id).await;
                }
            }
        }
        if count > 0 {
            tracing::info!(count, "resumed pending notifications");
        }
    }

    /// Stores and schedules a new job, once per distinct destination.
    async fn accept(&mut self, job: Job) {
        let now = self.clock.now_ms();
        let grace = duration_ms(self.config.grace);
        let due_ms = now.saturating_add(grace);
        let expires_at = now.saturating_add(duration_ms(self.config.ttl));
        let payload = stored::encode_notification(&job.notification);
        let mut seen: Vec<&Destination> = Vec::new();
        for destination in &job.destinations {
            if seen.contains(&destination) {
                continue;
            }
            seen.push(destination);
            let (kind, dest) = stored::encode_destination(destination);
            let row = NewPending {
                user_id: job.user_id,
                dest_kind: kind.to_string(),
                dest,
                payload: payload.clone(),
                msgid: job.notification.msgid.clone(),
                created_at: now,
                next_attempt_at: due_ms,
                expires_at,
            };
            let (id, stored) = match self.store.insert(row).await {
                Ok(Some(id)) => (id, true),
                Ok(None) => {
                    tracing::debug!(
                        msgid = ?job.notification.msgid,
                        "notification already pending for this destination"
                    );
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store a pending notification; it will not survive a restart");
                    let id = self.next_local_id;
                    self.next_local_id -= 1;
                    (id, false)
                }
            };
            self.entries.insert(
                id,
                Entry {
                    user_id: job.user_id,
                    destination: destination.clone(),
                    notification: job.notification.clone(),
                    attempts: 0,
                    expires_at,
                    stored,
                },
            );
            self.schedule
                .insert((Instant::now() + self.config.grace, id));
        }
    }

    /// Starts every due delivery there is room for.
    fn start_due(&mut self) {
        let now = Instant::now();
        while self.in_flight.len() < self.config.max_in_flight.max(1) {
            let Some(&(at, id)) = self.schedule.first() else {
                break;
            };
            if at > now {
                break;
            }
            self.schedule.remove(&(at, id));
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            let backend = Arc::clone(&self.backend);
            let wanted = Arc::clone(&self.wanted);
            let user_id = entry.user_id;
            let destination = entry.destination.clone();
            let notification = entry.notification.clone();
            let expired = self.clock.now_ms() >= entry.expires_at;
            self.in_flight.spawn(async move {
                if expired {
                    return (id, Attempt::Expired);
                }
                if !wanted.still_wanted(user_id, &notification).await {
                    return (id, Attempt::Unwanted);
                }
                let outcome = backend.deliver(&destination, &notification).await;
                (id, Attempt::Sent(outcome))
            });
        }
    }

    /// Acts on the result of an attempt.
    async fn finish(&mut self, id: i64, attempt: Attempt) {
        let Some(mut entry) = self.entries.remove(&id) else {
            return;
        };
        let end = match attempt {
            Attempt::Expired => End::Expired,
            Attempt::Unwanted => End::Unwanted,
            Attempt::Sent(Outcome::Delivered) => {
                entry.attempts += 1;
                End::Delivered
            }
            Attempt::Sent(Outcome::Gone(status)) => {
                entry.attempts += 1;
                self.drop_destination(&entry).await;
                End::Gone(status)
            }
            Attempt::Sent(Outcome::Failed(why)) => {
                entry.attempts += 1;
                End::Failed(why)
            }
            Attempt::Sent(Outcome::Retry(why)) => {
                let now = self.clock.now_ms();
                entry.attempts += 1;
                let delay = self.config.backoff.delay(entry.attempts, &mut self.rng);
                let next = now.saturating_add(duration_ms(delay));
                if next < entry.expires_at {
                    tracing::debug!(id, attempts = entry.attempts, error = %why, ?delay, "notification attempt failed, will retry");
                    if entry.stored
                        && let Err(e) = self.store.reschedule(id, entry.attempts, next).await
                    {
                        tracing::warn!(id, error = %e, "cannot store a notification's retry time");
                    }
                    self.schedule.insert((Instant::now() + delay, id));
                    self.entries.insert(id, entry);
                    return;
                }
                End::Expired
            }
        };
        if entry.stored {
            self.delete_row(id).await;
        }
        tracing::debug!(
            id,
            user_id = entry.user_id,
            kind = entry.destination.kind(),
            ?end,
            "notification delivery ended"
        );
        if let Some(reports) = &self.reports {
            let report = Report {
                user_id: entry.user_id,
                destination: entry.destination,
                msgid: entry.notification.msgid,
                attempts: entry.attempts,
                end,
            };
            // A closed receiver only means nobody listens any more.
            let _ = reports.send(report).await;
        }
    }

    /// Forgets every scheduled delivery to a gone destination (those in
    /// flight find out for themselves).
    async fn drop_destination(&mut self, gone: &Entry) {
        let doomed: Vec<(Instant, i64)> = self
            .schedule
            .iter()
            .filter(|(_, id)| {
                self.entries
                    .get(id)
                    .is_some_and(|e| e.user_id == gone.user_id && e.destination == gone.destination)
            })
            .copied()
            .collect();
        for key in doomed {
            self.schedule.remove(&key);
            self.entries.remove(&key.1);
        }
        let (kind, dest) = stored::encode_destination(&gone.destination);
        if let Err(e) = self
            .store
            .delete_destination(gone.user_id, kind.to_string(), dest)
            .await
        {
            tracing::warn!(error = %e, "cannot drop the pending notifications of a gone destination");
        }
    }

    async fn delete_row(&self, id: i64) {
        if let Err(e) = self.store.delete(id).await {
            tracing::warn!(id, error = %e, "cannot delete a pending notification");
        }
    }
}

fn decode(row: &PendingRow) -> Result<(Destination, Notification), StoredError> {
    Ok((
        stored::decode_destination(&row.dest_kind, &row.dest)?,
        stored::decode_notification(&row.payload, row.msgid.clone())?,
    ))
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
