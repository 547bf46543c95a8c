//! The tether daemon: reads the configuration, starts the server (on
//! sockets passed by systemd, if any) and runs until SIGINT or SIGTERM;
//! SIGHUP reloads the configuration file. systemd is kept informed through
//! `$NOTIFY_SOCKET` when it asks for it.
//! `tether import soju|znc <path>` imports another bouncer's users into the
//! configured database instead, and exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use tether::config::{Config, Listener};
use tether::logging::LogFormat;
use tether::server::Server;
use tether::server::activation;
use tether::server::sd_notify::{self, Notifier};

/// A multi-user IRC bouncer.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "/etc/tether/config", global = true)]
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Import users, networks and channels from soju or ZNC, then exit.
    ///
    /// Writes into the database named by --config. Run it with tether
    /// stopped, or restart tether afterwards; running it again creates
    /// nothing twice.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
}

#[derive(clap::Subcommand)]
enum ImportFrom {
    /// From a soju SQLite database (opened read-only).
    Soju {
        /// soju's database file.
        path: PathBuf,
    },
    /// From a ZNC configuration, with SASL settings and client certificates
    /// from the module data next to it.
    Znc {
        /// ZNC's znc.conf.
        path: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tether::server::alloc::tune();
    let args = Args::parse();
    tether::logging::init(args.log_format, args.debug).context("setting up logging")?;

    if let Some(Command::Import { from }) = args.command {
        return import(from, &args.config);
    }
    // SAFETY: no other thread runs yet (the runtime is built below), and
    // the descriptors LISTEN_FDS announces were passed to this process for
    // it alone.
    let inherited = unsafe { activation::take_from_env() };

    let mut config = Config::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
    let mut cli_listeners = Vec::new();
    for uri in &args.listen {
        let listener = Listener::parse(uri).map_err(|e| anyhow::anyhow!("--listen {uri}: {e}"))?;
        if listener.needs_tls() && config.tls.is_none() {
            anyhow::bail!(
                "--listen {uri}: a {} listener needs a tls directive in the configuration",
                listener.scheme()
            );
        }
        cli_listeners.push(listener);
    }
    config.listeners.extend(cli_listeners.iter().cloned());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, inherited, &args.config, &cli_listeners))
}

async fn run(
    config: Config,
    inherited: activation::Inherited,
    config_path: &Path,
    cli_listeners: &[Listener],
) -> anyhow::Result<()> {
    let notifier = Arc::new(Notifier::from_env());
    let mut server = Server::start_with_sockets(config, inherited)
        .await
        .context("starting tether")?;
    if let Some(password) = server.first_run_password() {
        eprintln!();
        eprintln!("  First run: created the administrator \"admin\" with password: {password}");
        eprintln!("  Log in with PASS {password} and USER admin, then talk to BouncerServ.");
        eprintln!();
    }
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    notifier.ready(&server.summary());
    if let Some(interval) = sd_notify::watchdog_from_env() {
        sd_notify::spawn_watchdog(notifier.clone(), server.shared().clone(), interval);
    }
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notifier.reloading();
                let status = match server.reload_file(config_path, cli_listeners).await {
                    Ok(report) => report.summary(),
                    Err(e) => {
                        tracing::error!(
                            "configuration reload refused, the running configuration stays \
                             in force: {}:\n{e}",
                            config_path.display()
                        );
                        format!("configuration reload refused: {e}")
                    }
                };
                notifier.ready(&status);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    notifier.stopping();
    server.shutdown().await;
    Ok(())
}

/// `tether import`: read the other bouncer's data, write it into the
/// configured database, print the report.
fn import(from: ImportFrom, config_path: &std::path::Path) -> anyhow::Result<()> {
    use tether::import;

    let config = Config::load(config_path)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", config_path.display()))?;
    let source = match &from {
        ImportFrom::Soju { path } => import::soju::read(path)?,
        ImportFrom::Znc { path } => import::znc::read(path)?,
    };
    let db_path = &config.db_path;
    let in_use = import::in_use::database_in_use(db_path);
    if in_use {
        eprintln!(
            "warning: {} is open in another process (a running tether?); it will not see the imported users until it restarts",
            db_path.display()
        );
    }
    eprintln!(
        "importing {} user(s) from {} into {}",
        source.users.len(),
        source.kind,
        db_path.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let db = tether::db::Db::open(db_path)
            .with_context(|| format!("opening {}", db_path.display()))?;
        let mut progress = |done: usize, total: usize| {
            if done.is_multiple_of(100) && done < total {
                eprintln!("  {done}/{total} users");
            }
        };
        let report = import::apply(&db, source, &mut progress).await;
        db.close().await;
        anyhow::Ok(report?)
    })?;
    print!("{report}");
    if in_use {
        println!("Restart tether to load the imported users.");
    } else {
        println!("Start (or restart) tether to load the imported users.");
    }
    Ok(())
}
