//! The tether daemon: reads the configuration, starts the server and runs
//! until SIGINT or SIGTERM; SIGHUP reloads the TLS certificate.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use tether::config::{Config, Listener};
use tether::logging::LogFormat;
use tether::server::Server;

/// A multi-user IRC bouncer.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "/etc/tether/config")]
    config: PathBuf,
    /// Add a listener (e.g. ircs://0.0.0.0:6697, irc://localhost:6667,
    /// unix:///run/tether/irc, unix+admin:///run/tether/admin); may repeat.
    #[arg(long)]
    listen: Vec<String>,
    /// Log debug messages.
    #[arg(long)]
    debug: bool,
    /// Log line format: text (the default) or json (one object per line).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<()> {
    tether::server::alloc::tune();
    let args = Args::parse();
    tether::logging::init(args.log_format, args.debug).context("setting up logging")?;

    let mut config = Config::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
    for uri in &args.listen {
        let listener = Listener::parse(uri).map_err(|e| anyhow::anyhow!("--listen {uri}: {e}"))?;
        if listener.needs_tls() && config.tls.is_none() {
            anyhow::bail!(
                "--listen {uri}: a {} listener needs a tls directive in the configuration",
                listener.scheme()
            );
        }
        config.listeners.push(listener);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::start(config).await.context("starting tether")?;
    if let Some(password) = server.first_run_password() {
        eprintln!();
        eprintln!("  First run: created the administrator \"admin\" with password: {password}");
        eprintln!("  Log in with PASS {password} and USER admin, then talk to BouncerServ.");
        eprintln!();
    }
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Err(e) = server.reload_tls() {
                    tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    server.shutdown().await;
    Ok(())
}
