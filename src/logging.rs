//! The daemon's log output: a `tracing` subscriber writing to stderr as
//! human-readable text or as one JSON object per line (`--log-format`),
//! behind a level filter that can be switched to debug and back while the
//! daemon runs ([`set_debug`]).
//!
//! The filter comes from `RUST_LOG` when that is set (the operator's
//! choice wins over `--debug`), otherwise `info`, or `debug` with
//! `--debug`. In JSON every event carries the fields of the spans it
//! happened in, outermost first, under `spans`: `user` (the user actor),
//! `network` and `host` (an upstream connection), `client`, `remote`,
//! `user` and `network` (a client connection once logged in). The event's
//! own fields, `message` included, are at the top level with `timestamp`,
//! `level` and `target`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal unless `NO_COLOR`).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?} (expected text or json)"
            )),
        }
    }
}

/// Why logging could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("logging has not been initialised")]
    NotInitialised,
    #[error("a global log subscriber is already installed: {0}")]
    AlreadySet(#[from] tracing_subscriber::util::TryInitError),
    #[error("invalid log filter {filter:?}: {error}")]
    Filter {
        filter: String,
        error: tracing_subscriber::filter::ParseError,
    },
    #[error("changing the log filter failed: {0}")]
    Reload(#[from] reload::Error),
}

/// The filter layer, swappable at run time.
type FilterHandle = reload::Handle<EnvFilter, Registry>;
/// What the format layer is stacked on.
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// The installed filter and what to go back to when debug is turned off.
struct Installed {
    handle: FilterHandle,
    /// The filter chosen at startup (`RUST_LOG`, or the level of `--debug`).
    default: String,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The filter directives to start with: `RUST_LOG` if set, else the level.
fn initial_filter(debug: bool) -> String {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => if debug { "debug" } else { "info" }.to_string(),
    }
}

fn parse_filter(directives: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::try_new(directives).map_err(|error| LoggingError::Filter {
        filter: directives.to_string(),
        error,
    })
}

/// The formatting layer for `format`, writing to `writer`.
fn format_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// The subscriber for `format` and `filter` writing to `writer`, and the
/// handle of its filter.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> (
    tracing_subscriber::layer::Layered<Box<dyn Layer<Filtered> + Send + Sync>, Filtered>,
    FilterHandle,
)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(filter);
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(format_layer::<Filtered, W>(format, writer, ansi));
    (subscriber, handle)
}

/// Install the global subscriber: `format` on stderr, level `info` (or
/// `debug`) unless `RUST_LOG` says otherwise. Only the first call in a
/// process can succeed.
pub fn init(format: LogFormat, debug: bool) -> Result<(), LoggingError> {
    let default = initial_filter(debug);
    let filter = parse_filter(&default)?;
    // Colour codes only on a terminal, never in a journal or a log file.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (subscriber, handle) = subscriber(format, filter, std::io::stderr, ansi);
    subscriber.try_init()?;
    // try_init succeeds once per process, so the cell is still empty.
    let _ = INSTALLED.set(Installed { handle, default });
    Ok(())
}

/// Turn debug logging on (level `debug` for everything) or off (back to
/// the filter chosen at startup).
pub fn set_debug(on: bool) -> Result<(), LoggingError> {
    let installed = INSTALLED.get().ok_or(LoggingError::NotInitialised)?;
    switch(&installed.handle, &installed.default, on)
}

fn switch(handle: &FilterHandle, default: &str, on: bool) -> Result<(), LoggingError> {
    let filter = parse_filter(if on { "debug" } else { default })?;
    handle.reload(filter)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects everything written to it.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("capture lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;

        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("capture lock").clone();
            String::from_utf8(bytes)
                .expect("UTF-8 log output")
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn json_events_are_one_object_per_line_with_span_fields() {
        let capture = Capture::default();
        let (subscriber, _handle) = subscriber(
            LogFormat::Json,
            parse_filter("info").expect("filter"),
            capture.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            let user = tracing::info_span!("user", user = "alice");
            let _u = user.enter();
            let client = tracing::info_span!(
                "client",
                client = 7u64,
                remote = "127.0.0.1:5000",
                network = tracing::field::Empty
            );
            client.record("network", "libera");
            let _c = client.enter();
            tracing::info!(lines = 3u64, "client \"attached\"");
            tracing::debug!("filtered out at info");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("one JSON object");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "client \"attached\"");
        assert_eq!(v["lines"], 3);
        assert!(v["timestamp"].is_string(), "{v}");
        assert!(v["target"].is_string(), "{v}");
        let spans = v["spans"].as_array().expect("span list");
        assert_eq!(spans.len(), 2, "{v}");
        assert_eq!(spans[0]["name"], "user");
        assert_eq!(spans[0]["user"], "alice");
        assert_eq!(spans[1]["name"], "client");
        assert_eq!(spans[1]["client"], 7);
        assert_eq!(spans[1]["remote"], "127.0.0.1:5000");
        assert_eq!(spans[1]["network"], "libera");
    }

    #[test]
    fn text_format_is_plain_lines() {
        let capture = Capture::default();
        let (subscriber, _handle) = subscriber(
            LogFormat::Text,
            parse_filter("info").expect("filter"),
            capture.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("user", user = "bob");
            let _s = span.enter();
            tracing::warn!("plain");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
        assert!(lines[0].contains("user{user=\"bob\"}"), "{}", lines[0]);
        assert!(lines[0].ends_with("plain"), "{}", lines[0]);
        assert!(serde_json::from_str::<serde_json::Value>(&lines[0]).is_err());
    }

    #[test]
    fn debug_switches_on_and_back_to_the_default() {
        let capture = Capture::default();
        let (subscriber, handle) = subscriber(
            LogFormat::Json,
            parse_filter("info").expect("filter"),
            capture.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("hidden");
            switch(&handle, "info", true).expect("debug on");
            tracing::debug!("shown");
            switch(&handle, "info", false).expect("debug off");
            tracing::debug!("hidden again");
            tracing::info!("info stays");
        });
        let messages: Vec<String> = capture
            .lines()
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                v["message"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        assert_eq!(messages, ["shown", "info stays"]);
    }

    #[test]
    fn formats_and_filters_are_checked() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().is_err());
        assert!(parse_filter("tether=notalevel").is_err());
        assert!(matches!(set_debug(true), Err(LoggingError::NotInitialised)));
    }
}
