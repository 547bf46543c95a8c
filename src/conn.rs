//! The reader and writer pumps of one connection.
//!
//! A connection is split in two halves. The reader half is read through a
//! [`LineReader`] (framing only); the writer half is owned by a writer task
//! fed by a bounded queue ([`Writer`]). No protocol logic lives here.
//!
//! Full-queue policy: the owner of a [`Writer`] uses [`Writer::try_send`],
//! which never waits. When it reports [`SendError::Full`] the owner decides
//! (the user actor disconnects a slow client). Writes that stall longer than
//! the write timeout end the connection.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::CounterRef;
use crate::proto::codec::{LineDecoder, encode_line};
use crate::proto::{Frame, Message};

mod input;

use input::InputBuffer;

/// A boxed read half of any transport (TCP, TLS, unix).
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// A boxed write half of any transport.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// How long one write may block before the peer is considered dead.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the final line (ERROR or QUIT) may take when closing.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads frames from a byte stream.
pub struct LineReader {
    inner: BoxRead,
    input: InputBuffer,
    decoder: LineDecoder,
    eof: bool,
    /// Counts every frame returned (see [`LineReader::counting`]).
    counter: Option<CounterRef>,
}

impl LineReader {
    /// A reader accepting lines of at most `max_len` bytes.
    pub fn new(inner: BoxRead, max_len: usize) -> LineReader {
        LineReader {
            inner,
            input: InputBuffer::new(),
            decoder: LineDecoder::new(max_len),
            eof: false,
            counter: None,
        }
    }

    /// Count every frame this reader returns (lines, and over-long lines)
    /// into `counter`.
    pub fn counting(mut self, counter: CounterRef) -> LineReader {
        self.counter = Some(counter);
        self
    }

    /// The next frame, or `None` at end of stream.
    ///
    /// Cancel safe: a read that has not completed has taken no bytes.
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            let frame = match self.decoder.decode(self.input.bytes()) {
                Some(frame) => Some(frame),
                None if self.eof => self.decoder.decode_eof(self.input.bytes()),
                None => None,
            };
            if frame.is_some() || self.eof {
                if frame.is_some()
                    && let Some(counter) = &self.counter
                {
                    counter.add(1);
                }
                return Ok(frame);
            }
            let n = self.inner.read_buf(self.input.for_read()).await?;
            self.input.after_read(n);
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

/// Why a line could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The queue is full: the peer is not reading fast enough.
    Full,
    /// The writer has stopped.
    Closed,
}

/// Token-bucket flood control for lines sent to an IRC server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodControl {
    /// Lines that may be sent back to back.
    pub burst: u32,
    /// Time to earn one more line.
    pub interval: Duration,
}

impl FloodControl {
    /// Conservative defaults that stay under common servers' flood limits.
    pub const UPSTREAM: FloodControl = FloodControl {
        burst: 10,
        interval: Duration::from_millis(1000),
    };
}

/// Options of a writer task.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Capacity of the queue, in lines.
    pub capacity: usize,
    /// Flood control applied to the normal queue (the priority queue is
    /// never throttled).
    pub flood: Option<FloodControl>,
}

/// Handle to a connection's writer task.
#[derive(Clone)]
pub struct Writer {
    normal: mpsc::Sender<Arc<str>>,
    priority: mpsc::Sender<Arc<str>>,
    cancel: CancellationToken,
    final_line: Arc<Mutex<Option<Closing>>>,
    /// Woken whenever the writer task has written bytes to the peer.
    progress: Arc<Notify>,
}

/// How a connection is to be closed.
struct Closing {
    final_line: Option<String>,
    /// Write the queued lines first.
    flush: bool,
}

impl Writer {
    /// Queue a line (without CRLF). Never waits.
    pub fn try_send(&self, line: impl Into<Arc<str>>) -> Result<(), SendError> {
        queue(&self.normal, line.into())
    }

    /// Queue a line, waiting for room. Only for tasks that serve this one
    /// connection (the admin socket), never for the user actor.
    pub async fn send_wait(&self, line: impl Into<Arc<str>>) -> Result<(), SendError> {
        self.normal
            .send(line.into())
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Queue a line that skips flood control and the normal queue (PONG).
    pub fn try_send_priority(&self, line: impl Into<Arc<str>>) -> Result<(), SendError> {
        queue(&self.priority, line.into())
    }

    /// Serialize and queue a message.
    pub fn send_msg(&self, msg: &Message) -> Result<(), SendError> {
        self.try_send(msg.to_string())
    }

    /// Close after writing what is already queued and then `final_line`
    /// (such as `ERROR :reason` or `QUIT :bye`), within a short time; the
    /// connection's reader is cancelled too.
    pub fn close(&self, final_line: Option<String>) {
        self.shutdown(final_line, true);
    }

    /// Close now, dropping whatever is queued (the peer is not reading);
    /// `final_line` is still attempted.
    pub fn abort(&self, final_line: Option<String>) {
        self.shutdown(final_line, false);
    }

    fn shutdown(&self, final_line: Option<String>, flush: bool) {
        if let Ok(mut slot) = self.final_line.lock()
            && slot.is_none()
        {
            *slot = Some(Closing { final_line, flush });
        }
        self.cancel.cancel();
    }

    /// The token cancelled when this connection closes; the reader watches it.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// True once the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.cancel.is_cancelled() || self.normal.is_closed()
    }

    /// Lines in the normal queue, not yet taken by the writer task.
    pub fn queued(&self) -> usize {
        self.normal.max_capacity() - self.normal.capacity()
    }

    /// Wait until at most `below` lines are queued (or the connection is
    /// closed): `true`. `false` when the peer took no byte at all for
    /// `stall` meanwhile.
    pub async fn wait_drained(&self, below: usize, stall: Duration) -> bool {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.is_closed() || self.queued() <= below {
                return true;
            }
            if tokio::time::timeout(stall, progress).await.is_err() {
                return false;
            }
        }
    }
}

fn queue(tx: &mpsc::Sender<Arc<str>>, line: Arc<str>) -> Result<(), SendError> {
    tx.try_send(line).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => SendError::Full,
        mpsc::error::TrySendError::Closed(_) => SendError::Closed,
    })
}

/// Start the writer task for `sink`.
pub fn spawn_writer(sink: BoxWrite, opts: WriterOptions) -> (Writer, JoinHandle<()>) {
    spawn_counted_writer(sink, opts, None)
}

/// [`spawn_writer`], counting every line handed to the peer's socket into
/// `sent` (lines dropped from the queue by [`Writer::abort`] are not).
pub fn spawn_counted_writer(
    sink: BoxWrite,
    opts: WriterOptions,
    sent: Option<CounterRef>,
) -> (Writer, JoinHandle<()>) {
    let (normal_tx, normal_rx) = mpsc::channel(opts.capacity.max(1));
    let (priority_tx, priority_rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let final_line = Arc::new(Mutex::new(None));
    let progress = Arc::new(Notify::new());
    let writer = Writer {
        normal: normal_tx,
        priority: priority_tx,
        cancel: cancel.clone(),
        final_line: final_line.clone(),
        progress: progress.clone(),
    };
    let task = WriterTask {
        sink,
        normal: normal_rx,
        priority: priority_rx,
        cancel,
        final_line,
        bucket: opts.flood.map(Bucket::new),
        progress,
        sent,
    };
    let handle = tokio::spawn(task.run());
    (writer, handle)
}

struct Bucket {
    flood: FloodControl,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(flood: FloodControl) -> Bucket {
        Bucket {
            flood,
            tokens: f64::from(flood.burst),
            last: Instant::now(),
        }
    }

    /// Time to wait before one line may be sent (zero if a token is there).
    fn wait_time(&mut self) -> Duration {
        let now = Instant::now();
        let earned =
            now.duration_since(self.last).as_secs_f64() / self.flood.interval.as_secs_f64();
        self.tokens = (self.tokens + earned).min(f64::from(self.flood.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            self.flood.interval.mul_f64(1.0 - self.tokens)
        }
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

struct WriterTask {
    sink: BoxWrite,
    normal: mpsc::Receiver<Arc<str>>,
    priority: mpsc::Receiver<Arc<str>>,
    cancel: CancellationToken,
    final_line: Arc<Mutex<Option<Closing>>>,
    bucket: Option<Bucket>,
    progress: Arc<Notify>,
    /// Counts the lines handed to the socket.
    sent: Option<CounterRef>,
}

enum Next {
    Cancelled,
    Line(Arc<str>),
    Priority(Arc<str>),
    Done,
}

impl WriterTask {
    async fn run(mut self) {
        // Allocated by the first line and let go whenever the queues run
        // dry (below): an idle connection holds no output buffer.
        let mut out = BytesMut::new();
        // Bytes taken from the queue but unwritten when the close came, and
        // whether the peer has half a line of them already.
        let mut leftover = BytesMut::new();
        let mut mid_line = false;
        loop {
            let wait = self
                .bucket
                .as_mut()
                .map_or(Duration::ZERO, Bucket::wait_time);
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => Next::Cancelled,
                line = self.priority.recv() => line.map_or(Next::Done, Next::Priority),
                line = self.normal.recv(), if wait.is_zero() => line.map_or(Next::Done, Next::Line),
                _ = tokio::time::sleep(wait), if !wait.is_zero() => continue,
            };
            // Lines in `out` this round. They are counted as sent when
            // handed to the socket, so that a peer that has read them never
            // sees them uncounted.
            let mut lines = 1;
            match next {
                Next::Cancelled => break,
                Next::Done => {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.sink.shutdown()).await;
                    return;
                }
                Next::Priority(line) => encode_line(&line, &mut out),
                Next::Line(line) => {
                    encode_line(&line, &mut out);
                    if let Some(bucket) = self.bucket.as_mut() {
                        bucket.take();
                    } else {
                        // Without flood control, batch whatever else is
                        // already queued into one write.
                        while out.len() < 64 * 1024 {
                            match self.normal.try_recv() {
                                Ok(line) => {
                                    encode_line(&line, &mut out);
                                    lines += 1;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
            self.count_sent(lines);
            let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
            let mut written = 0;
            let mut cancelled = false;
            let write: Result<std::io::Result<()>, tokio::time::error::Elapsed> = loop {
                if written == out.len() {
                    break Ok(Ok(()));
                }
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => {
                        cancelled = true;
                        break Ok(Ok(()));
                    }
                    r = tokio::time::timeout_at(deadline, self.sink.write(&out[written..])) => match r {
                        Ok(Ok(0)) => break Ok(Err(std::io::ErrorKind::WriteZero.into())),
                        Ok(Ok(n)) => {
                            written += n;
                            self.progress.notify_waiters();
                        }
                        Ok(Err(e)) => break Ok(Err(e)),
                        Err(elapsed) => break Err(elapsed),
                    },
                }
            };
            if cancelled {
                // Lines taken from the queue but not (fully) written yet
                // are dealt with at closing time, like the queued ones.
                mid_line = written > 0 && out.get(written - 1) != Some(&b'\n');
                leftover = out.split_off(written);
                break;
            }
            out.clear();
            if self.normal.is_empty() && self.priority.is_empty() {
                out = BytesMut::new();
            }
            match write {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    self.cancel.cancel();
                    return;
                }
                Err(_) => {
                    tracing::info!("write timed out, closing connection");
                    self.cancel.cancel();
                    return;
                }
            }
        }
        let closing = self.final_line.lock().ok().and_then(|mut s| s.take());
        out.clear();
        let flush = closing.as_ref().is_some_and(|c| c.flush);
        if flush {
            out.extend_from_slice(&leftover);
        } else if mid_line && let Some(end) = leftover.iter().position(|b| *b == b'\n') {
            // Finish a line cut in half, so the closing line is not glued
            // to a torn one.
            out.extend_from_slice(&leftover[..=end]);
        }
        // The lines taken from the queues before were counted then.
        let mut lines = 0;
        if let Some(closing) = closing {
            if closing.flush {
                while let Ok(line) = self.priority.try_recv() {
                    encode_line(&line, &mut out);
                    lines += 1;
                }
                while let Ok(line) = self.normal.try_recv() {
                    encode_line(&line, &mut out);
                    lines += 1;
                }
            }
            if let Some(line) = closing.final_line {
                encode_line(&line, &mut out);
                lines += 1;
            }
        }
        if !out.is_empty() {
            self.count_sent(lines);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.sink.write_all(&out)).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.sink.shutdown()).await;
    }

    fn count_sent(&self, lines: u64) {
        if let Some(sent) = &self.sent {
            sent.add(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    /// Regression: an abort while a line was half written left the peer
    /// with a torn line glued to the closing `ERROR`.
    #[tokio::test]
    async fn abort_mid_line_finishes_the_line_before_the_final_one() {
        let (a, b) = tokio::io::duplex(64);
        let (writer, task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 8,
                flood: None,
            },
        );
        let long = format!("PRIVMSG #c :{}", "x".repeat(300));
        writer.try_send(long.clone()).expect("queued");
        // Let the writer fill the 64-byte pipe and block mid-line.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        writer.abort(Some("ERROR :bye".into()));
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(b).lines();
            let mut got = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                got.push(l);
            }
            got
        });
        task.await.expect("writer ends");
        let got = reader.await.expect("reader ends");
        assert_eq!(got, [long.as_str(), "ERROR :bye"], "{got:?}");
    }

    /// Regression: lines the writer had taken from the queue but not yet
    /// written were lost when the connection was closed (a client got the
    /// closing `ERROR` without the replies queued just before it).
    #[tokio::test]
    async fn close_keeps_lines_taken_but_not_yet_written() {
        let (a, b) = tokio::io::duplex(64);
        let (writer, task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 8,
                flood: None,
            },
        );
        let lines: Vec<String> = (0..4)
            .map(|i| format!("PRIVMSG #c :{i} {}", "x".repeat(100)))
            .collect();
        for line in &lines {
            writer.try_send(line.clone()).expect("queued");
        }
        // The writer batches all four into one write and blocks on the
        // 64-byte pipe partway through the first.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        writer.close(Some("ERROR :bye".into()));
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(b).lines();
            let mut got = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                got.push(l);
            }
            got
        });
        task.await.expect("writer ends");
        let got = reader.await.expect("reader ends");
        let mut want: Vec<&str> = lines.iter().map(String::as_str).collect();
        want.push("ERROR :bye");
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn close_flushes_queued_lines_but_abort_drops_them() {
        for (flush, expect_queued) in [(true, true), (false, false)] {
            let (a, b) = tokio::io::duplex(1 << 16);
            let (writer, task) = spawn_writer(
                Box::new(a),
                WriterOptions {
                    capacity: 8,
                    flood: Some(FloodControl {
                        burst: 1,
                        interval: Duration::from_secs(3600),
                    }),
                },
            );
            // With a one-line burst and an hour per token, the second line
            // stays queued until the close.
            writer.try_send("LINE 1").expect("queued");
            writer.try_send("LINE 2").expect("queued");
            tokio::task::yield_now().await;
            if flush {
                writer.close(Some("ERROR :bye".into()));
            } else {
                writer.abort(Some("ERROR :bye".into()));
            }
            task.await.expect("writer ends");
            let mut lines = tokio::io::BufReader::new(b).lines();
            let mut got = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                got.push(l);
            }
            assert_eq!(
                got.contains(&"LINE 2".to_string()),
                expect_queued,
                "{got:?}"
            );
            assert_eq!(got.last().map(String::as_str), Some("ERROR :bye"));
        }
    }

    #[tokio::test]
    async fn writer_writes_lines_and_final_line_on_close() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 8,
                flood: None,
            },
        );
        writer.try_send("PING x").expect("queued");
        writer.close(Some("ERROR :bye".into()));
        task.await.expect("writer ends");
        let mut lines = tokio::io::BufReader::new(b).lines();
        let mut got = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            got.push(l);
        }
        assert_eq!(got.last().map(String::as_str), Some("ERROR :bye"));
    }

    /// Regression: admin replies longer than the queue were dropped.
    #[tokio::test]
    async fn send_wait_delivers_more_lines_than_the_queue_holds() {
        let (a, b) = tokio::io::duplex(64);
        let (writer, task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 2,
                flood: None,
            },
        );
        let reading = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(b).lines();
            let mut n = 0;
            while let Ok(Some(_)) = lines.next_line().await {
                n += 1;
            }
            n
        });
        for i in 0..500 {
            writer
                .send_wait(format!("PRIVMSG * :line {i}"))
                .await
                .expect("sent");
        }
        writer.close(None);
        task.await.expect("writer ends");
        assert_eq!(reading.await.expect("reader"), 500);
    }

    /// Runs on tokio's paused clock, so the timings are exact and the test
    /// takes no real time.
    #[tokio::test(start_paused = true)]
    async fn flood_control_sends_a_burst_then_one_line_per_interval_and_pong_skips_it() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, _task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 16,
                flood: Some(FloodControl {
                    burst: 3,
                    interval: Duration::from_secs(1),
                }),
            },
        );
        let start = Instant::now();
        for i in 0..6 {
            writer.try_send(format!("PRIVMSG #c :{i}")).expect("queued");
        }
        let mut lines = tokio::io::BufReader::new(b).lines();
        let mut arrivals = Vec::new();
        for _ in 0..3 {
            lines.next_line().await.expect("read").expect("line");
            arrivals.push(start.elapsed());
        }
        // The burst is spent; a PONG still goes out at once.
        writer.try_send_priority("PONG :x").expect("queued");
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("PONG :x")
        );
        assert!(start.elapsed() < Duration::from_millis(100));
        for _ in 0..3 {
            lines.next_line().await.expect("read").expect("line");
            arrivals.push(start.elapsed());
        }
        assert!(arrivals[2] < Duration::from_millis(100), "{arrivals:?}");
        for (n, at) in arrivals[3..].iter().enumerate() {
            let want = Duration::from_secs(n as u64 + 1);
            assert!(
                *at >= want && *at < want + Duration::from_millis(100),
                "{arrivals:?}"
            );
        }
    }

    #[tokio::test]
    async fn full_queue_is_reported_not_awaited() {
        // A duplex with a tiny buffer that nobody reads.
        let (a, _b) = tokio::io::duplex(8);
        let (writer, _task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 2,
                flood: None,
            },
        );
        let mut full = false;
        for _ in 0..100 {
            if writer.try_send("PRIVMSG #a :some text") == Err(SendError::Full) {
                full = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(full);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_drained_reports_a_stalled_peer_and_a_draining_one() {
        let (a, mut b) = tokio::io::duplex(64);
        let (writer, _task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 16,
                flood: None,
            },
        );
        // The writer task takes the first lines into its buffer and is
        // stuck writing them, since nobody reads; the next ones stay queued.
        writer
            .try_send(format!("PRIVMSG #a :{}", "x".repeat(200)))
            .expect("room");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        for i in 0..8 {
            writer
                .try_send(format!("PRIVMSG #a :line {i}"))
                .expect("room");
        }
        assert_eq!(writer.queued(), 8);
        assert!(!writer.wait_drained(0, Duration::from_secs(5)).await);
        // A reader appears: the queue drains.
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = b.read_to_end(&mut sink).await;
        });
        assert!(writer.wait_drained(0, Duration::from_secs(5)).await);
        assert_eq!(writer.queued(), 0);
        writer.close(None);
        drain.await.expect("reader task");
    }

    /// A peer that never sends a newline: 10 MB go through, the buffer
    /// stays within one line limit plus one read, and the next line is read.
    #[tokio::test]
    async fn endless_line_keeps_the_buffer_bounded() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let max = 512;
        let feeding = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..160 {
                a.write_all(&chunk).await.expect("write");
            }
            a.write_all(b"\r\nPING ok\r\n").await.expect("write");
        });
        let mut r = LineReader::new(Box::new(b), max);
        let first = r.next_frame().await.expect("read");
        assert!(
            r.input.capacity() <= max + 2 * 64 * 1024 + 4096,
            "{}",
            r.input.capacity()
        );
        assert_eq!(first, Some(Frame::TooLong));
        assert!(matches!(
            r.next_frame().await.expect("read"),
            Some(Frame::Line { text, .. }) if text == "PING ok"
        ));
        feeding.await.expect("feeder");
    }

    /// Regression: every reader kept 4 KiB or more of buffer while its
    /// peer was silent, and whatever a long line had grown it to.
    #[tokio::test]
    async fn the_read_buffer_shrinks_back_after_a_long_line() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let mut r = LineReader::new(Box::new(b), 16 * 1024);
        let long = format!("PRIVMSG #c :{}\r\n", "x".repeat(12 * 1024));
        a.write_all(long.as_bytes()).await.expect("write");
        let frame = r.next_frame().await.expect("read");
        assert!(matches!(frame, Some(Frame::Line { text, .. }) if text.len() > 12 * 1024));
        assert!(r.input.capacity() > 12 * 1024);
        // Quiet traffic afterwards: one short line, then the reader waits.
        a.write_all(b"PING :x\r\n").await.expect("write");
        let frame = r.next_frame().await.expect("read");
        assert!(matches!(frame, Some(Frame::Line { text, .. }) if text == "PING :x"));
        let waiting = tokio::time::timeout(Duration::from_millis(20), r.next_frame()).await;
        assert!(waiting.is_err(), "nothing more was sent");
        assert!(
            r.input.capacity() <= 2 * input::MIN_ROOM,
            "{}",
            r.input.capacity()
        );
        // And it still reads what comes next.
        a.write_all(b"PING :y\r\n").await.expect("write");
        let frame = r.next_frame().await.expect("read");
        assert!(matches!(frame, Some(Frame::Line { text, .. }) if text == "PING :y"));
    }

    /// Lines split across many reads of a fast peer arrive whole and in
    /// order while the read size grows and shrinks.
    #[tokio::test]
    async fn lines_survive_read_size_changes() {
        let (mut a, b) = tokio::io::duplex(1000);
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("PRIVMSG #c :{i} {}", "y".repeat(i % 700)))
            .collect();
        let sent = lines.clone();
        let feeding = tokio::spawn(async move {
            for (i, line) in sent.iter().enumerate() {
                a.write_all(line.as_bytes()).await.expect("write");
                a.write_all(b"\r\n").await.expect("write");
                if i % 97 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let mut r = LineReader::new(Box::new(b), 4096);
        for want in &lines {
            match r.next_frame().await.expect("read") {
                Some(Frame::Line { text, .. }) => assert_eq!(&text, want),
                other => panic!("unexpected frame {other:?}"),
            }
        }
        feeding.await.expect("feeder");
        assert_eq!(r.next_frame().await.expect("read"), None);
    }

    /// The writer lets go of its buffer between lines; lines written after
    /// a quiet spell, long or short, still arrive whole.
    #[tokio::test]
    async fn the_writer_writes_after_idle_spells() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, task) = spawn_writer(
            Box::new(a),
            WriterOptions {
                capacity: 8,
                flood: None,
            },
        );
        let mut lines = tokio::io::BufReader::new(b).lines();
        for len in [10, 9000, 3, 600] {
            let line = format!("PRIVMSG #c :{}", "z".repeat(len));
            writer.try_send(line.clone()).expect("queued");
            assert_eq!(lines.next_line().await.expect("read"), Some(line));
        }
        writer.close(None);
        task.await.expect("writer ends");
    }

    #[tokio::test]
    async fn reader_yields_frames_and_eof() {
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(b"PING 1\r\nfoo\xff\nlast")
            .await
            .expect("write");
        drop(a);
        let mut r = LineReader::new(Box::new(b), 512);
        assert!(matches!(
            r.next_frame().await,
            Ok(Some(Frame::Line { lossy: false, .. }))
        ));
        assert!(matches!(
            r.next_frame().await,
            Ok(Some(Frame::Line { lossy: true, .. }))
        ));
        assert!(matches!(r.next_frame().await, Ok(Some(Frame::Line { .. }))));
        assert!(matches!(r.next_frame().await, Ok(None)));
    }

    #[tokio::test]
    async fn counted_reader_and_writer_count_lines() {
        use crate::metrics::{CounterRef, Metrics};
        let metrics = Metrics::new();
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(b"PING 1\r\nPING 2\r\npartial")
            .await
            .expect("write");
        drop(a);
        let mut r = LineReader::new(Box::new(b), 512)
            .counting(CounterRef::new(&metrics, |m| &m.downstream_received));
        let mut frames = 0;
        while let Ok(Some(_)) = r.next_frame().await {
            frames += 1;
        }
        assert_eq!(frames, 3);
        assert_eq!(metrics.downstream_received.get(), 3);
        // EOF is asked for again without counting anything.
        assert!(matches!(r.next_frame().await, Ok(None)));
        assert_eq!(metrics.downstream_received.get(), 3);

        let (a, b) = tokio::io::duplex(1 << 16);
        let (writer, task) = spawn_counted_writer(
            Box::new(a),
            WriterOptions {
                capacity: 8,
                flood: None,
            },
            Some(CounterRef::new(&metrics, |m| &m.downstream_sent)),
        );
        for i in 0..5 {
            writer.try_send(format!("PRIVMSG #c :{i}")).expect("queued");
        }
        writer.try_send_priority("PONG x").expect("queued");
        writer.close(Some("ERROR :bye".into()));
        task.await.expect("writer ends");
        let mut lines = tokio::io::BufReader::new(b).lines();
        let mut got = 0;
        while let Ok(Some(_)) = lines.next_line().await {
            got += 1;
        }
        assert_eq!(got, 7);
        assert_eq!(metrics.downstream_sent.get(), 7);
    }
}
