//! tether-bench: performance scenarios for tether, run in-process.
//!
//! Each subcommand starts tether from configuration text in a scratch
//! directory, connects it to a minimal fake upstream (see [`rig`]), drives
//! plain TCP clients and prints a small table plus the command line that
//! reproduces it:
//!
//! - `replay`: time for a client without chathistory to receive N missed
//!   messages after reconnecting (automatic backlog from the store).
//! - `history`: CHATHISTORY latency over a store pre-filled with ROWS
//!   messages for one channel.
//! - `ingest`: upstream-to-client throughput and added latency, with the
//!   `db` and the `memory` message store.
//! - `relay` ([`relay`]): channel messages from a publisher on a load
//!   server ([`ircd`]) to K clients, direct vs through tether.
//! - `idle-scale` ([`idle`]): memory and idle CPU of U users × M networks
//!   × C channels.
//! - `clients` ([`clients`]): N downstream connections held by one tether.
//!
//! The last three run tether as a child process ([`child`]) so that its
//! memory and CPU can be read from `/proc`.
//!
//! Not part of `cargo test`; run it with `cargo run --release --bin
//! tether-bench -- <scenario>`.

mod child;
mod clients;
mod idle;
mod ircd;
mod relay;
mod rig;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tokio::sync::mpsc;

use tether::db::{Db, NetworkRecord, UserRecord};
use tether::history::Entry;
use tether::proto::time::format_millis;

use rig::{Client, ScratchDir, Tether, UpstreamListener, config_text, is_command};

/// Performance scenarios for tether.
#[derive(Parser)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Reconnect a client without chathistory and time its backlog replay.
    Replay {
        /// Missed messages to replay; repeat for several rows.
        #[arg(short = 'n', long = "count", default_values_t = [1_000, 10_000])]
        counts: Vec<usize>,
    },
    /// CHATHISTORY latency over a pre-filled store.
    History {
        /// Stored messages for #bench.
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Queries of each kind.
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// Upstream-to-client throughput and latency, db vs memory store.
    Ingest {
        /// Messages sent as fast as possible.
        #[arg(short = 'n', long = "count", default_value_t = 20_000)]
        count: usize,
        /// Rate of the paced run, messages per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Messages of the paced run.
        #[arg(long, default_value_t = 10_000)]
        paced_count: usize,
    },
    /// Channel relay from a publisher on a load server to K clients,
    /// direct vs through tether (1 user, K users).
    Relay {
        /// Messages of the flood.
        #[arg(short = 'n', long = "count", default_value_t = 10_000)]
        count: usize,
        /// Receiving clients.
        #[arg(short = 'k', long = "clients", default_value_t = 10)]
        clients: usize,
        /// Rate of the paced run, messages per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// Messages of the paced run.
        #[arg(long, default_value_t = 3_000)]
        paced_count: usize,
        /// tether's `message-store` (db or memory).
        #[arg(long, default_value = "db")]
        message_store: String,
        /// Skip the K-users run (e.g. to profile the one-user run alone,
        /// since TETHER_BENCH_WRAP wraps every tether child).
        #[arg(long)]
        one_user_only: bool,
    },
    /// Memory and idle CPU of U users x M networks x C channels.
    IdleScale {
        /// Users; repeat for several rows.
        #[arg(short = 'u', long = "users", default_values_t = [100, 1_000])]
        users: Vec<usize>,
        /// Networks per user.
        #[arg(short = 'm', long = "networks", default_value_t = 1)]
        networks: usize,
        /// Channels per network.
        #[arg(short = 'c', long = "channels", default_value_t = 10)]
        channels: usize,
        /// Seconds of idle CPU measurement.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
    },
    /// N downstream connections to one tether.
    Clients {
        /// Connections.
        #[arg(short = 'n', long = "count", default_value_t = 10_000)]
        count: usize,
        /// Registrations in flight at once.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Seconds to hold all connections before the final PINGs.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
    },
    /// Internal: run tether from a configuration file as the bench's
    /// child process (prints its address, stops when stdin closes).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
}

const CLIENT_CAPS: &str = "batch server-time message-tags";
const HISTORY_CAPS: &str = "batch server-time message-tags draft/chathistory";

fn main() -> Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Scenario::Serve { config } = &args.scenario {
        return child::serve(config);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.scenario {
            Scenario::Replay { counts } => replay(&counts).await,
            Scenario::History { rows, queries } => history(rows, queries).await,
            Scenario::Ingest {
                count,
                rate,
                paced_count,
            } => ingest(count, rate, paced_count).await,
            Scenario::Relay {
                count,
                clients,
                rate,
                paced_count,
                message_store,
                one_user_only,
            } => {
                let run = relay::Run {
                    count,
                    k: clients,
                    rate,
                    paced: paced_count,
                    store: &message_store,
                    one_user_only,
                };
                relay::relay(&run).await
            }
            Scenario::IdleScale {
                users,
                networks,
                channels,
                idle_secs,
            } => idle::idle_scale(&users, networks, channels, idle_secs).await,
            Scenario::Clients {
                count,
                parallel,
                hold_secs,
            } => clients::clients(count, parallel, hold_secs).await,
            Scenario::Serve { .. } => Ok(()),
        }
    })
}

/// Milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The `p`-th percentile (0..=100) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Print a markdown table.
fn table(header: &[&str], rows: &[Vec<String>]) {
    println!("| {} |", header.join(" | "));
    println!(
        "|{}|",
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

fn reproduce(args: &str) {
    println!();
    println!("reproduce: cargo run --release --bin tether-bench -- {args}");
}

/// `N` PRIVMSGs from bob to #bench with texts `<prefix> <i>`.
fn privmsgs(prefix: &str, range: std::ops::RangeInclusive<usize>) -> String {
    let mut out = String::with_capacity(range.size_hint().0 * 48);
    for i in range {
        out.push_str(&format!(":bob!b@bob.host PRIVMSG #bench :{prefix} {i}\r\n"));
    }
    out
}

// ---------------------------------------------------------------- replay

async fn replay(counts: &[usize]) -> Result<()> {
    let mut rows = Vec::new();
    for &n in counts {
        eprintln!("replay: {n} messages...");
        let (elapsed, got, closed) = replay_one(n).await?;
        rows.push(vec![
            n.to_string(),
            got.to_string(),
            ms(elapsed),
            format!("{:.0}", got as f64 / elapsed.as_secs_f64()),
            if closed {
                "disconnected by tether".to_string()
            } else {
                "ok".to_string()
            },
        ]);
    }
    println!("replay: client without chathistory reconnects (CAP END -> last backlog line)");
    println!();
    table(
        &["missed", "received", "time (ms)", "lines/s", "outcome"],
        &rows,
    );
    let flags: Vec<String> = counts.iter().map(|n| format!("-n {n}")).collect();
    reproduce(&format!("replay {}", flags.join(" ")));
    Ok(())
}

/// The replay time, the backlog lines received and whether tether closed
/// the connection before the last one.
async fn replay_one(n: usize) -> Result<(Duration, usize, bool)> {
    let dir = ScratchDir::new()?;
    let listener = UpstreamListener::bind().await?;
    let limit = n.max(tether::config::DEFAULT_BACKLOG_LIMIT);
    let tether = Tether::start(&config_text(
        dir.path(),
        &format!("backlog-limit {limit}\n"),
    ))
    .await?;
    let upstream = tether.create_alice(&listener).await?;

    let (mut watch, _) = Client::register(tether.addr, "watch", CLIENT_CAPS).await?;
    watch.join("#bench").await?;
    let (mut phone, _) = Client::register(tether.addr, "phone", CLIENT_CAPS).await?;
    phone.sync().await?;
    phone.quit().await?;
    // Let the actor see the detach before traffic starts.
    tokio::time::sleep(Duration::from_millis(200)).await;

    upstream.send(privmsgs("message", 1..=n))?;
    let last = format!(" :message {n}");
    watch.expect(|l| l.ends_with(&last)).await?;
    watch.sync().await?;

    let (mut phone, start) = Client::register(tether.addr, "phone", CLIENT_CAPS).await?;
    let mut got = 0;
    let closed = loop {
        let Some(line) = phone.next_line().await? else {
            break true;
        };
        if line.contains(" PRIVMSG #bench :message ") {
            got += 1;
            if line.ends_with(&last) {
                break false;
            }
        }
    };
    let elapsed = start.elapsed();
    tether.shutdown().await;
    Ok((elapsed, got, closed))
}

// ---------------------------------------------------------------- history

async fn history(rows: i64, queries: usize) -> Result<()> {
    if rows < 1 {
        bail!("--rows must be at least 1");
    }
    let dir = ScratchDir::new()?;
    let listener = UpstreamListener::bind().await?;
    let base = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - rows - 60_000;

    eprintln!("history: filling {rows} rows...");
    let fill_start = Instant::now();
    fill(&dir, &listener, rows, base).await?;
    let fill_time = fill_start.elapsed();
    let db_size = dir.db_size();

    eprintln!("history: starting tether...");
    let start = Instant::now();
    let tether = Tether::start(&config_text(dir.path(), "")).await?;
    let _upstream = listener.accept().await?;
    let startup = start.elapsed();

    let (mut client, _) = Client::register(tether.addr, "hist", HISTORY_CAPS).await?;
    client.join("#bench").await?;
    client.sync().await?;

    let mut latest = Vec::with_capacity(queries);
    let mut before_msgid = Vec::with_capacity(queries);
    let mut before_time = Vec::with_capacity(queries);
    let mut lines = 0usize;
    eprintln!("history: {queries} queries of each kind...");
    for _ in 0..queries {
        let (d, n) = query(&mut client, "CHATHISTORY LATEST #bench * 100").await?;
        latest.push(d);
        lines += n;
        let seq = fastrand::i64(1..=rows);
        let (d, n) = query(
            &mut client,
            &format!("CHATHISTORY BEFORE #bench msgid=b{seq} 100"),
        )
        .await?;
        before_msgid.push(d);
        lines += n;
        let seq = fastrand::i64(1..=rows);
        let (d, n) = query(
            &mut client,
            &format!(
                "CHATHISTORY BEFORE #bench timestamp={} 100",
                format_millis(base + seq)
            ),
        )
        .await?;
        before_time.push(d);
        lines += n;
    }
    tether.shutdown().await;

    println!(
        "history: {rows} rows for #bench; fill {:.1} s ({:.0} rows/s), DB {:.1} MiB, \
         tether start {} ms, {lines} lines returned",
        fill_time.as_secs_f64(),
        rows as f64 / fill_time.as_secs_f64(),
        db_size as f64 / (1024.0 * 1024.0),
        ms(startup)
    );
    println!();
    let mut out = Vec::new();
    for (kind, samples) in [
        ("LATEST * 100", &mut latest),
        ("BEFORE msgid= 100", &mut before_msgid),
        ("BEFORE timestamp= 100", &mut before_time),
    ] {
        samples.sort();
        out.push(vec![
            kind.to_string(),
            samples.len().to_string(),
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 99.0)),
            ms(percentile(samples, 100.0)),
        ]);
    }
    table(&["query", "n", "p50 (ms)", "p99 (ms)", "max (ms)"], &out);
    reproduce(&format!("history --rows {rows} --queries {queries}"));
    Ok(())
}

/// Fill the store directly through the library, before tether starts.
async fn fill(dir: &ScratchDir, listener: &UpstreamListener, rows: i64, base: i64) -> Result<()> {
    let db = Db::open(&dir.db_path())?;
    let hash = tether::auth::hash_password_async(rig::PASSWORD.to_string()).await?;
    let user = db
        .create_user(UserRecord {
            username: "alice".to_string(),
            password_hash: Some(hash),
            enabled: true,
            ..UserRecord::default()
        })
        .await?;
    let net = db
        .create_network(NetworkRecord {
            user_id: user.id,
            name: "fake".to_string(),
            addr: format!("irc+insecure://{}", listener.addr),
            enabled: true,
            ..NetworkRecord::default()
        })
        .await?;
    const BATCH: i64 = 5000;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut batches = 0;
    let mut seq = 1;
    while seq <= rows {
        let end = (seq + BATCH - 1).min(rows);
        let entries: Vec<Arc<Entry>> = (seq..=end)
            .map(|s| {
                let time = base + s;
                let text = format!("message {s} lorem ipsum");
                Arc::new(Entry {
                    seq: s,
                    target: "#bench".to_string(),
                    time,
                    msgid: format!("b{s}"),
                    sender: "bob".to_string(),
                    event: false,
                    raw: format!(
                        "@time={};msgid=b{s} :bob!b@h PRIVMSG #bench :{text}",
                        format_millis(time)
                    ),
                    text: Some(text),
                })
            })
            .collect();
        let tx = tx.clone();
        db.append_messages(net.id, entries, move |r| {
            let _ = tx.send(r);
        });
        batches += 1;
        seq = end + 1;
        // Keep a bounded number of batches in flight.
        if batches >= 8 {
            rx.recv().await.context("database thread stopped")??;
            batches -= 1;
        }
    }
    for _ in 0..batches {
        rx.recv().await.context("database thread stopped")??;
    }
    db.close().await;
    Ok(())
}

/// Send a CHATHISTORY command; the time until the closing `BATCH -` and
/// the number of lines in between.
async fn query(client: &mut Client, command: &str) -> Result<(Duration, usize)> {
    let start = Instant::now();
    client.send(command).await?;
    let mut lines = 0;
    loop {
        let Some(line) = client.next_line().await? else {
            bail!("tether closed the connection during {command:?}");
        };
        if is_command(line, "BATCH") {
            if line.contains(" BATCH -") {
                return Ok((start.elapsed(), lines));
            }
        } else if is_command(line, "FAIL") {
            bail!("{command:?} failed: {line}");
        } else {
            lines += 1;
        }
    }
}

// ---------------------------------------------------------------- ingest

async fn ingest(count: usize, rate: u64, paced_count: usize) -> Result<()> {
    if rate == 0 {
        bail!("--rate must be positive");
    }
    let mut out = Vec::new();
    for store in ["db", "memory"] {
        eprintln!("ingest: message-store {store}...");
        let r = ingest_one(store, count, rate, paced_count).await?;
        out.push(vec![
            store.to_string(),
            format!("{:.0}", count as f64 / r.burst.as_secs_f64()),
            ms(r.burst),
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
        ]);
    }
    println!(
        "ingest: burst of {count} messages (upstream send -> client has the last), \
         then {paced_count} paced at {rate}/s (added latency per message)"
    );
    println!();
    table(
        &[
            "message-store",
            "burst msg/s",
            "burst time (ms)",
            "paced p50 (ms)",
            "paced p99 (ms)",
            "paced max (ms)",
        ],
        &out,
    );
    reproduce(&format!(
        "ingest -n {count} --rate {rate} --paced-count {paced_count}"
    ));
    Ok(())
}

struct IngestResult {
    burst: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

async fn ingest_one(store: &str, count: usize, rate: u64, paced: usize) -> Result<IngestResult> {
    let dir = ScratchDir::new()?;
    let listener = UpstreamListener::bind().await?;
    let tether = Tether::start(&config_text(
        dir.path(),
        &format!("message-store {store}\n"),
    ))
    .await?;
    let upstream = tether.create_alice(&listener).await?;
    let (mut watch, _) = Client::register(tether.addr, "watch", CLIENT_CAPS).await?;
    watch.join("#bench").await?;
    watch.sync().await?;

    // (a) as fast as possible.
    let lines = privmsgs("burst", 1..=count);
    let last = format!(" :burst {count}");
    let start = Instant::now();
    upstream.send(lines)?;
    let mut got = 0;
    loop {
        let Some(line) = watch.next_line().await? else {
            bail!("tether closed the client during the burst");
        };
        if line.contains(" PRIVMSG #bench :burst ") {
            got += 1;
            if line.ends_with(&last) {
                break;
            }
        }
    }
    let burst = start.elapsed();
    if got != count {
        eprintln!("ingest: burst delivered {got} of {count} messages");
    }
    watch.sync().await?;

    // (b) paced; each text carries its send instant, in microseconds
    // since `origin`.
    let origin = Instant::now();
    let sender = tokio::spawn(async move {
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let mut sent = 0usize;
        while sent < paced {
            let due = origin + interval * sent as u32;
            tokio::time::sleep_until(due.into()).await;
            // Everything due by now goes out together.
            let now = origin.elapsed();
            let mut chunk = String::new();
            while sent < paced && interval * sent as u32 <= now {
                sent += 1;
                let t = origin.elapsed().as_micros();
                chunk.push_str(&format!(
                    ":bob!b@bob.host PRIVMSG #bench :paced {sent} {t}\r\n"
                ));
            }
            upstream.send(chunk)?;
        }
        anyhow::Ok(upstream)
    });
    let mut samples = Vec::with_capacity(paced);
    let last = format!(" :paced {paced} ");
    loop {
        let Some(line) = watch.next_line().await? else {
            bail!("tether closed the client during the paced run");
        };
        let received = origin.elapsed();
        let Some((_, rest)) = line.split_once(" PRIVMSG #bench :paced ") else {
            continue;
        };
        let done = line.contains(&last);
        if let Some(sent) = rest.split(' ').nth(1).and_then(|t| t.parse::<u64>().ok()) {
            samples.push(received.saturating_sub(Duration::from_micros(sent)));
        }
        if done {
            break;
        }
    }
    let _upstream = sender.await??;
    tether.shutdown().await;
    samples.sort();
    Ok(IngestResult {
        burst,
        p50: percentile(&samples, 50.0),
        p99: percentile(&samples, 99.0),
        max: percentile(&samples, 100.0),
    })
}
