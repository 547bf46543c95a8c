//! The `clients` scenario: N downstream connections to one tether (one
//! user, one network with one channel, the user's clients all attached).
//! tether runs as a child process; reports the time to connect them all,
//! tether's resident memory per connection, and whether every connection
//! is still up at the end (a PING round trip on each).
//!
//! Registration is limited to a number of connections in flight: every
//! login verifies an argon2 hash, which tether runs at most two at a
//! time, so opening all N at once only measures the registration timeout.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use tokio::sync::watch;

use crate::child::{Seed, TetherChild, raise_nofile, seed, wait_until};
use crate::ircd::LoadServer;
use crate::rig::{Client, ScratchDir};
use crate::{CLIENT_CAPS, reproduce, table};

/// Connections after which RSS is read a second time.
const CHECKPOINT: usize = 1000;

/// Settle time before reading memory.
const SETTLE: Duration = Duration::from_secs(2);

/// Longest a held connection may stay silent before the final PINGs.
const HOLD_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Limit on the final PING round trip of each connection.
const PING_WAIT: Duration = Duration::from_secs(120);

pub async fn clients(n: usize, parallel: usize, hold: u64) -> Result<()> {
    if n == 0 || parallel == 0 {
        bail!("-n and --parallel must be positive");
    }
    let limit = raise_nofile();
    if (limit as usize) < n + 200 {
        bail!(
            "open file limit {limit} is too low for {n} connections; raise it \
             (ulimit -n {}) and retry",
            n + 200
        );
    }
    let dir = ScratchDir::new()?;
    let server = LoadServer::start().await?;
    let users = ["alice".to_string()];
    let seeded = Seed {
        users: &users,
        networks: 1,
        channels: 1,
        upstream: server.addr,
    };
    seed(&dir, &seeded, |_, _, _| "#bench".to_string()).await?;
    let child = TetherChild::start(
        &dir,
        &format!("max-connections {}\nregistration-timeout 10m\n", n + 100),
    )
    .await?;
    wait_until("tether's upstream join", || server.joins() >= 1).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_before = child.rss_kib()?;

    eprintln!("clients: connecting {n} ({parallel} registering at a time)...");
    let (go_tx, go_rx) = watch::channel(false);
    let start = Instant::now();
    let addr = child.addr;
    let mut registrations = futures::stream::iter(0..n)
        .map(|i| async move {
            Client::register_as(addr, &format!("alice/fake@c{i}"), CLIENT_CAPS, 4096).await
        })
        .buffer_unordered(parallel);
    let mut holders = Vec::with_capacity(n);
    let mut failed = 0usize;
    // RSS once CHECKPOINT connections are up: logins leave allocator
    // residue that is not per connection (see README "Performance"), so
    // the marginal cost is measured from here to N.
    let mut rss_checkpoint = None;
    while let Some(r) = registrations.next().await {
        match r {
            Ok((client, _)) => holders.push(tokio::spawn(hold_open(client, go_rx.clone()))),
            Err(e) => {
                if failed == 0 {
                    eprintln!("clients: first failed registration: {e:#}");
                }
                failed += 1;
            }
        }
        let done = holders.len() + failed;
        if done.is_multiple_of(1000) {
            eprintln!("clients: {done}/{n}");
        }
        if done == CHECKPOINT && n > CHECKPOINT {
            rss_checkpoint = Some((holders.len(), child.rss_kib()?));
        }
    }
    let connect_time = start.elapsed();
    eprintln!("clients: holding for {hold} s...");
    tokio::time::sleep(SETTLE.max(Duration::from_secs(hold))).await;
    let rss_after = child.rss_kib()?;

    let _ = go_tx.send(true);
    let mut alive = 0usize;
    for h in holders {
        if h.await? {
            alive += 1;
        }
    }
    child.stop().await?;

    let connected = n - failed;
    println!(
        "clients: {n} connections to one user's network (alice/fake@cI), {parallel} \
         registering at a time, held {hold} s, then a PING round trip on each; \
         RSS of the tether process"
    );
    println!();
    table(
        &[
            "connections",
            "registered",
            "connect all (s)",
            "registrations/s",
            "RSS before (MiB)",
            "RSS after (MiB)",
            "KiB/connection",
            "marginal KiB/connection",
            "alive at end",
        ],
        &[vec![
            n.to_string(),
            connected.to_string(),
            format!("{:.1}", connect_time.as_secs_f64()),
            format!("{:.0}", connected as f64 / connect_time.as_secs_f64()),
            format!("{:.1}", rss_before as f64 / 1024.0),
            format!("{:.1}", rss_after as f64 / 1024.0),
            format!(
                "{:.1}",
                rss_after.saturating_sub(rss_before) as f64 / connected.max(1) as f64
            ),
            match rss_checkpoint {
                Some((at, rss)) if connected > at => format!(
                    "{:.1} ({at} to {connected})",
                    rss_after.saturating_sub(rss) as f64 / (connected - at) as f64
                ),
                _ => "-".to_string(),
            },
            format!("{alive}/{n}"),
        ]],
    );
    reproduce(&format!(
        "clients -n {n} --parallel {parallel} --hold-secs {hold}"
    ));
    Ok(())
}

/// Read (and answer PINGs) until `go`, then check the connection with a
/// PING round trip.
async fn hold_open(mut client: Client, mut go: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            // Idle connections may wait for all the others to register.
            line = client.next_line_within(HOLD_LIMIT) => match line {
                Ok(Some(_)) => {}
                _ => return false,
            },
            _ = go.changed() => break,
        }
    }
    matches!(
        tokio::time::timeout(PING_WAIT, client.sync()).await,
        Ok(Ok(()))
    )
}
