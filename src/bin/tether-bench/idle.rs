//! The `idle-scale` scenario: U users × M networks × C channels, seeded in
//! the database, connected to the load server and idle. tether runs as a
//! child process; its resident memory and CPU come from `/proc/<pid>`.
//!
//! Memory per user and per network is the child's RSS minus the RSS of
//! an empty tether (no users), divided by U or U×M: the cost of the
//! users, not of the process.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::child::{Seed, TetherChild, seed, wait_until};
use crate::ircd::LoadServer;
use crate::rig::ScratchDir;
use crate::{reproduce, table};

/// Pause after the last join before reading memory, so that the
/// registration bursts have been processed and freed.
const SETTLE: Duration = Duration::from_secs(2);

struct Measured {
    startup: Duration,
    rss_kib: u64,
    idle_cpu: Duration,
}

pub async fn idle_scale(
    users: &[usize],
    networks: usize,
    channels: usize,
    idle: u64,
) -> Result<()> {
    if networks == 0 || idle == 0 {
        bail!("-m and --idle-secs must be positive");
    }
    eprintln!("idle-scale: empty tether...");
    let empty = idle_one(0, networks, channels, idle).await?;
    let mut out = vec![vec![
        "0".to_string(),
        "0".to_string(),
        "0".to_string(),
        "-".to_string(),
        format!("{:.1}", empty.rss_kib as f64 / 1024.0),
        "-".to_string(),
        "-".to_string(),
        format!("{:.2}%", cpu_percent(empty.idle_cpu, idle)),
    ]];
    for &u in users {
        eprintln!("idle-scale: {u} users x {networks} networks x {channels} channels...");
        let m = idle_one(u, networks, channels, idle).await?;
        let added = m.rss_kib.saturating_sub(empty.rss_kib) as f64;
        let nets = (u * networks) as f64;
        out.push(vec![
            u.to_string(),
            (u * networks).to_string(),
            (u * networks * channels).to_string(),
            format!("{:.0}", m.startup.as_secs_f64() * 1000.0),
            format!("{:.1}", m.rss_kib as f64 / 1024.0),
            format!("{:.1}", added / u.max(1) as f64),
            format!("{:.1}", added / nets.max(1.0)),
            format!("{:.2}%", cpu_percent(m.idle_cpu, idle)),
        ]);
    }
    println!(
        "idle-scale: U users x {networks} network(s) x {channels} channels, all joined and \
         idle; RSS of the tether process; per-user/per-network = (RSS - RSS of empty tether) \
         / count; CPU over {idle} s idle"
    );
    println!();
    table(
        &[
            "users",
            "networks",
            "channels",
            "start to all joined (ms)",
            "RSS (MiB)",
            "KiB/user",
            "KiB/network",
            "idle CPU",
        ],
        &out,
    );
    let flags: Vec<String> = users.iter().map(|u| format!("-u {u}")).collect();
    reproduce(&format!(
        "idle-scale {} -m {networks} -c {channels} --idle-secs {idle}",
        flags.join(" ")
    ));
    Ok(())
}

/// CPU time as a percentage of one core over `secs` seconds.
fn cpu_percent(cpu: Duration, secs: u64) -> f64 {
    100.0 * cpu.as_secs_f64() / secs as f64
}

async fn idle_one(users: usize, networks: usize, channels: usize, idle: u64) -> Result<Measured> {
    let dir = ScratchDir::new()?;
    let server = LoadServer::start().await?;
    let names: Vec<String> = (0..users).map(|u| format!("user{u}")).collect();
    let seeded = Seed {
        users: &names,
        networks,
        channels,
        upstream: server.addr,
    };
    // Distinct channels per network: each has tether's nick as its one
    // member, as in a quiet channel set.
    seed(&dir, &seeded, |u, n, c| format!("#u{u}n{n}c{c}")).await?;
    let start = Instant::now();
    let child = TetherChild::start(&dir, "").await?;
    let links = users * networks;
    wait_until("all upstreams registered and joined", || {
        server.registered() >= links && server.joins() >= links * channels
    })
    .await?;
    let startup = start.elapsed();
    tokio::time::sleep(SETTLE).await;
    let rss_kib = child.rss_kib()?;
    let cpu_before = child.cpu()?;
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let idle_cpu = child.cpu()?.saturating_sub(cpu_before);
    child.stop().await?;
    Ok(Measured {
        startup,
        rss_kib,
        idle_cpu,
    })
}
