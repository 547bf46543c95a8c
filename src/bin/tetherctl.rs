//! tetherctl: run BouncerServ commands through tether's admin socket.
//!
//! `tetherctl --config PATH <command words...>` connects to the first
//! `unix+admin://` listener of the configuration, prints the reply lines
//! and exits non-zero when the command fails.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use tether::config::{Config, Listener};
use tether::proto::Message;
use tether::service::words::quote_word;

/// Administer a running tether.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// tether's configuration file (to find the admin socket).
    #[arg(long, short = 'c', default_value = "/etc/tether/config")]
    config: PathBuf,
    /// The BouncerServ command, e.g. `user create -username bob -password secret`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tetherctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{}:\n{e}", args.config.display()))?;
    let path = config
        .listeners
        .iter()
        .find_map(|l| match l {
            Listener::UnixAdmin { path } => Some(path.clone()),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("the configuration has no unix+admin:// listener"))?;
    let stream = UnixStream::connect(&path)
        .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", path.display()))?;
    let line: Vec<String> = args.command.iter().map(|w| quote_word(w)).collect();
    let request = Message::new("BOUNCERSERV", [line.join(" ")]);
    let mut writer = stream.try_clone()?;
    writer.write_all(format!("{request}\r\n").as_bytes())?;
    let reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line?;
        let Ok(msg) = line.parse::<Message>() else {
            continue;
        };
        match msg.command.as_str() {
            "PRIVMSG" => writeln!(
                out,
                "{}",
                msg.params.last().map(String::as_str).unwrap_or("")
            )?,
            "BOUNCERSERV" if msg.param(0) == Some("OK") => return Ok(()),
            "FAIL" => anyhow::bail!(
                "{}",
                msg.params
                    .last()
                    .map(String::as_str)
                    .unwrap_or("command failed")
            ),
            "ERROR" => anyhow::bail!("{}", msg.param(0).unwrap_or("connection closed")),
            _ => {}
        }
    }
    anyhow::bail!("the connection closed before the command finished")
}
