//! tetherctl: run BouncerServ commands through tether's admin socket.
//!
//! `tetherctl --config PATH <command words...>` connects to the first
//! `unix+admin://` listener of the configuration and prints the reply
//! lines. Exit status: 0 success, 1 the command failed, 2 wrong usage,
//! 3 configuration problem, 4 tether unreachable.

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

/// How tetherctl ends, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The command ran and failed (BouncerServ answered with an error).
    CommandFailed = 1,
    // 2 is clap's: the command line was wrong.
    /// The configuration could not be read, or names no admin socket.
    Config = 3,
    /// tether could not be reached, or the connection broke.
    Unreachable = 4,
}

/// Why tetherctl failed: the exit status and the message.
struct Failure(Outcome, String);

fn fail<T>(outcome: Outcome, message: impl std::fmt::Display) -> Result<T, Failure> {
    Err(Failure(outcome, message.to_string()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(outcome, message)) => {
            eprintln!("tetherctl: {message}");
            ExitCode::from(outcome as u8)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(Outcome::Config, format!("{}:\n{e}", args.config.display())),
    };
    let Some(path) = config.listeners.iter().find_map(|l| match l {
        Listener::UnixAdmin { path } => Some(path.clone()),
        _ => None,
    }) else {
        return fail(
            Outcome::Config,
            format!("{} has no unix+admin:// listener", args.config.display()),
        );
    };
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                Outcome::Unreachable,
                format!("connecting to {}: {e} (is tether running?)", path.display()),
            );
        }
    };
    let broken =
        |e: std::io::Error| Failure(Outcome::Unreachable, format!("{}: {e}", path.display()));
    let line: Vec<String> = args.command.iter().map(|w| quote_word(w)).collect();
    let request = Message::new("BOUNCERSERV", [line.join(" ")]);
    let mut writer = stream.try_clone().map_err(broken)?;
    writer
        .write_all(format!("{request}\r\n").as_bytes())
        .map_err(broken)?;
    let reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line.map_err(broken)?;
        let Ok(msg) = line.parse::<Message>() else {
            continue;
        };
        match msg.command.as_str() {
            "PRIVMSG" => {
                let text = msg.params.last().map(String::as_str).unwrap_or("");
                // A closed stdout (e.g. `| head`) ends the output, not the
                // command: it has run already.
                if writeln!(out, "{text}").is_err() {
                    return Ok(());
                }
            }
            "BOUNCERSERV" if msg.param(0) == Some("OK") => return Ok(()),
            "FAIL" => {
                let text = msg
                    .params
                    .last()
                    .map(String::as_str)
                    .unwrap_or("command failed");
                return fail(Outcome::CommandFailed, text);
            }
            "ERROR" => {
                return fail(
                    Outcome::Unreachable,
                    msg.param(0).unwrap_or("connection closed"),
                );
            }
            _ => {}
        }
    }
    fail(
        Outcome::Unreachable,
        "the connection closed before the command finished",
    )
}
