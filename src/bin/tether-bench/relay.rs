//! The `relay` scenario: a publisher connected straight to the load
//! server ([`crate::ircd`]) sends channel messages that K clients receive,
//! either connected directly to the server or through tether (K clients
//! of one user, or K users with one upstream link each).
//!
//! Every message text carries its send instant (microseconds since
//! [`origin`]), so each receipt gives one publish-to-receipt latency.
//! A flood (as fast as the publisher can write) gives throughput; a
//! paced run at a fixed rate gives the latency tether adds.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::child::{Seed, TetherChild, seed, wait_until};
use crate::ircd::LoadServer;
use crate::rig::{Client, ScratchDir};
use crate::{CLIENT_CAPS, ms, percentile, reproduce, table};

/// Give up on a receiver after this long without a line.
const STALL: Duration = Duration::from_secs(15);

/// Messages per write in the flood.
const FLOOD_CHUNK: usize = 50;

/// Where the clients connect.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    SameUser,
    SeparateUsers,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Direct => "direct to server",
            Path::SameUser => "tether, 1 user",
            Path::SeparateUsers => "tether, K users",
        }
    }
}

/// The instant message timestamps count from.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    origin().elapsed().as_micros() as u64
}

/// Results of one phase over all receivers.
struct Phase {
    /// First send to the last receipt on any client.
    elapsed: Duration,
    received: usize,
    /// Clients whose connection closed or stalled before the last message.
    lost: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

struct Row {
    path: Path,
    flood: Phase,
    paced: Phase,
    /// tether's CPU time (user + system) during the flood and the paced
    /// run; steadier than the rates when other work shares the cores.
    cpu: Option<(Duration, Duration)>,
}

/// The parameters of one `relay` invocation.
pub struct Run<'a> {
    pub count: usize,
    pub k: usize,
    pub rate: u64,
    pub paced: usize,
    pub store: &'a str,
    pub one_user_only: bool,
}

pub async fn relay(run: &Run<'_>) -> Result<()> {
    let Run {
        count,
        k,
        rate,
        paced,
        store,
        one_user_only,
    } = *run;
    let paced_count = paced;
    if count == 0 || k == 0 || rate == 0 || paced == 0 {
        bail!("-n, -k, --rate and --paced-count must be positive");
    }
    if store != "db" && store != "memory" {
        bail!("--message-store must be db or memory");
    }
    origin();
    let mut rows = Vec::new();
    for path in [Path::Direct, Path::SameUser, Path::SeparateUsers] {
        if one_user_only && path == Path::SeparateUsers {
            continue;
        }
        eprintln!("relay: {}...", path.label());
        rows.push(relay_one(path, count, k, rate, paced, store).await?);
    }
    let direct_rate = count as f64 / rows[0].flood.elapsed.as_secs_f64();
    let direct_p99 = rows[0].paced.p99;
    println!(
        "relay: publisher on the server floods #bench with {count} messages, {k} clients \
         receive (msg/s = messages / time until every client has the last one); \
         then {paced} messages paced at {rate}/s; tether with message-store {store}"
    );
    println!();
    let mut out = Vec::new();
    for r in &rows {
        let rate_here = count as f64 / r.flood.elapsed.as_secs_f64();
        out.push(vec![
            r.path.label().to_string(),
            format!("{rate_here:.0}"),
            format!("{:.0}%", 100.0 * rate_here / direct_rate),
            format!("{}/{}", r.flood.received, count * k),
            ms(r.flood.p50),
            ms(r.flood.p99),
            ms(r.paced.p50),
            ms(r.paced.p99),
            ms(r.paced.max),
            if r.path == Path::Direct {
                "-".to_string()
            } else {
                ms(r.paced.p99.saturating_sub(direct_p99))
            },
            (r.flood.lost + r.paced.lost).to_string(),
            match r.cpu {
                Some((flood, paced)) => format!(
                    "{:.1} / {:.1}",
                    flood.as_secs_f64() * 1e6 / count as f64,
                    paced.as_secs_f64() * 1e6 / paced_count as f64
                ),
                None => "-".to_string(),
            },
        ]);
    }
    table(
        &[
            "clients",
            "flood msg/s",
            "vs direct",
            "delivered",
            "flood p50 (ms)",
            "flood p99 (ms)",
            "paced p50 (ms)",
            "paced p99 (ms)",
            "paced max (ms)",
            "added p99 (ms)",
            "lost clients",
            "tether CPU us/msg (flood / paced)",
        ],
        &out,
    );
    let only = if one_user_only {
        " --one-user-only"
    } else {
        ""
    };
    reproduce(&format!(
        "relay -n {count} -k {k} --rate {rate} --paced-count {paced} --message-store {store}{only}"
    ));
    Ok(())
}

async fn relay_one(
    path: Path,
    count: usize,
    k: usize,
    rate: u64,
    paced: usize,
    store: &str,
) -> Result<Row> {
    let dir = ScratchDir::new()?;
    let server = LoadServer::start().await?;
    let mut tether = None;
    let mut clients = Vec::with_capacity(k);
    match path {
        Path::Direct => {
            for i in 0..k {
                let mut c = Client::register_direct(server.addr, &format!("d{i}")).await?;
                c.join("#bench").await?;
                clients.push(c);
            }
        }
        Path::SameUser | Path::SeparateUsers => {
            let users: Vec<String> = if path == Path::SameUser {
                vec!["alice".to_string()]
            } else {
                (0..k).map(|i| format!("user{i}")).collect()
            };
            let seeded = Seed {
                users: &users,
                networks: 1,
                channels: 1,
                upstream: server.addr,
            };
            seed(&dir, &seeded, |_, _, _| "#bench".to_string()).await?;
            let child = TetherChild::start(&dir, &format!("message-store {store}\n")).await?;
            wait_until("tether's upstream joins", || server.joins() >= users.len()).await?;
            for i in 0..k {
                let user = if path == Path::SameUser {
                    format!("alice/fake@c{i}")
                } else {
                    format!("user{i}/fake@c")
                };
                let (mut c, _) =
                    Client::register_as(child.addr, &user, CLIENT_CAPS, 64 * 1024).await?;
                c.sync().await?;
                clients.push(c);
            }
            tether = Some(child);
        }
    }
    let mut publisher = Client::register_direct(server.addr, "pub").await?;
    publisher.join("#bench").await?;
    for c in &mut clients {
        c.sync().await?;
    }

    let cpu_now = || tether.as_ref().map(TetherChild::cpu).transpose();
    let cpu_before = cpu_now()?;

    // Flood.
    let receivers = spawn_receivers(clients, "f", count);
    let start = Instant::now();
    let mut i = 0;
    while i < count {
        let mut chunk = String::with_capacity(FLOOD_CHUNK * 48);
        let stamp = now_us();
        for _ in 0..FLOOD_CHUNK.min(count - i) {
            i += 1;
            chunk.push_str(&format!("PRIVMSG #bench :f {i} {stamp}\r\n"));
        }
        publisher.send_raw(&chunk).await?;
    }
    let (clients, flood) = collect(receivers, start).await?;
    let cpu_flood = cpu_now()?;

    // Paced.
    let receivers = spawn_receivers(clients, "p", paced);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent = 0usize;
    while sent < paced {
        tokio::time::sleep_until((start + interval * sent as u32).into()).await;
        let now = start.elapsed();
        let mut chunk = String::new();
        while sent < paced && interval * sent as u32 <= now {
            sent += 1;
            chunk.push_str(&format!("PRIVMSG #bench :p {sent} {}\r\n", now_us()));
        }
        publisher.send_raw(&chunk).await?;
    }
    let (_clients, paced) = collect(receivers, start).await?;
    let cpu_paced = cpu_now()?;
    let cpu = match (cpu_before, cpu_flood, cpu_paced) {
        (Some(a), Some(b), Some(c)) => Some((b.saturating_sub(a), c.saturating_sub(b))),
        _ => None,
    };

    if let Some(child) = tether {
        child.stop().await?;
    }
    Ok(Row {
        path,
        flood,
        paced,
        cpu,
    })
}

/// What one receiver saw.
struct Received {
    client: Option<Client>,
    samples: Vec<Duration>,
    last_at: Option<Instant>,
}

type Receivers = Vec<tokio::task::JoinHandle<Received>>;

fn spawn_receivers(clients: Vec<Client>, prefix: &'static str, last: usize) -> Receivers {
    clients
        .into_iter()
        .map(|c| tokio::spawn(receive(c, prefix, last)))
        .collect()
}

/// Read `<prefix> <i> <stamp>` messages until `i == last`; the client is
/// dropped (`None`) if it closed or stalled first.
async fn receive(mut client: Client, prefix: &'static str, last: usize) -> Received {
    let marker = format!(" PRIVMSG #bench :{prefix} ");
    let mut samples = Vec::with_capacity(last);
    loop {
        let line = match tokio::time::timeout(STALL, client.next_line()).await {
            Ok(Ok(Some(line))) => line,
            _ => {
                return Received {
                    client: None,
                    samples,
                    last_at: None,
                };
            }
        };
        let Some((_, rest)) = line.split_once(&marker) else {
            continue;
        };
        let mut words = rest.split(' ');
        let i = words.next().and_then(|w| w.parse::<usize>().ok());
        if let Some(stamp) = words.next().and_then(|w| w.parse::<u64>().ok()) {
            samples.push(Duration::from_micros(now_us().saturating_sub(stamp)));
        }
        if i == Some(last) {
            return Received {
                client: Some(client),
                samples,
                last_at: Some(Instant::now()),
            };
        }
    }
}

async fn collect(receivers: Receivers, start: Instant) -> Result<(Vec<Client>, Phase)> {
    let mut clients = Vec::new();
    let mut samples = Vec::new();
    let mut lost = 0;
    let mut end = start;
    for r in receivers {
        let got = r.await?;
        samples.extend(got.samples);
        match (got.client, got.last_at) {
            (Some(c), Some(at)) => {
                clients.push(c);
                end = end.max(at);
            }
            _ => lost += 1,
        }
    }
    samples.sort();
    Ok((
        clients,
        Phase {
            elapsed: end - start,
            received: samples.len(),
            lost,
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            max: percentile(&samples, 100.0),
        },
    ))
}
