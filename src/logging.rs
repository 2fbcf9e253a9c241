//! Logging setup with `tracing`.
//!
//! The CLI logs to stderr at the level set by `-v` (`up` only with `-v`: its step list
//! is its output). Long-running commands (the proxy, and `up`, which execs into it)
//! also log to daily-rotated files under
//! `~/.claude-code-router/logs/`, keeping a week. Secrets (API keys, Authorization
//! headers) are never passed to a log macro anywhere in the crate.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::{Command, GlobalArgs};

/// Colour is on for a terminal unless `--no-color` or `NO_COLOR` (any value) says otherwise.
pub fn color_enabled(no_color_flag: bool) -> bool {
    !no_color_flag
        && std::env::var_os(crate::env_vars::EnvVars::NO_COLOR).is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
}

fn stderr_level(global: &GlobalArgs, command: &Command) -> &'static str {
    // `up` prints its own step list; the log of the in-process proxy it smoke-tests
    // (`… falling back …`) goes to the log file only, unless -v asks for it here.
    if matches!(command, Command::Up(_)) && global.verbose == 0 {
        return "off";
    }
    if global.quiet {
        return "error";
    }
    // The proxy's one-line-per-request log is its main output, so it starts at info.
    let base = if matches!(command, Command::Proxy(_)) {
        1
    } else {
        0
    };
    match base + global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Install the subscriber for this run. `RUST_LOG` overrides `-v`.
///
/// Returns the file writer's guard when a log file is in use; keep it alive until exit
/// so buffered lines are flushed.
pub fn init(global: &GlobalArgs, command: &Command) -> Option<WorkerGuard> {
    let level = stderr_level(global, command);
    let stderr_filter = EnvFilter::try_from_env(crate::env_vars::EnvVars::RUST_LOG)
        .unwrap_or_else(|_| EnvFilter::new(format!("ccr_setup={level},ccr_proxy={level}")));
    let ansi = color_enabled(global.no_color);
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(move || OneLine {
            inner: CappedStderr,
            // A colour terminal gets the formatter's own escapes; the fields that
            // come from clients were sanitised where they were logged.
            escape: !ansi,
        })
        .with_ansi(ansi)
        // Without colour, OneLine escapes every control character, a superset of
        // what the formatter's own (char-by-char) sanitising escapes.
        .with_ansi_sanitization(ansi)
        .with_target(false)
        .with_filter(stderr_filter);

    let (file_layer, guard) = if matches!(command, Command::Proxy(_) | Command::Up(_)) {
        // What the proxy creates (log files, the ledger and its -wal/-shm) is private.
        // It starts no other program, so the mask cannot reach anything else; `up`
        // starts installers, so it keeps the mask only while the log file is opened.
        let mask = nix::sys::stat::Mode::from_bits_truncate(0o077);
        let previous = nix::sys::stat::umask(mask);
        let writer = file_writer();
        if !matches!(command, Command::Proxy(_)) {
            nix::sys::stat::umask(previous);
        }
        match writer {
            Some((writer, guard)) => (
                Some(
                    file_format(tracing_subscriber::fmt::layer().with_writer(writer))
                        .with_filter(EnvFilter::new("ccr_setup=info,ccr_proxy=info")),
                ),
                Some(guard),
            ),
            None => (None, None),
        }
    } else {
        (None, None)
    };

    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    guard
}

/// The log file's format: no colour, and no sanitising by the formatter, whose
/// writer escapes control characters one char at a time (a twentieth of a small
/// request's CPU): every line reaches the file through [`OneLine`], which escapes
/// all of them (C0, DEL, C1, bidi overrides) and caps the length.
fn file_format<S, N, E, W>(
    layer: tracing_subscriber::fmt::Layer<S, N, E, W>,
) -> tracing_subscriber::fmt::Layer<S, N, E, W> {
    layer.with_ansi(false).with_ansi_sanitization(false)
}

/// A non-blocking writer to `logs/proxy.log.<date>`, rotated daily, 7 files kept.
/// Returns None (stderr only) when the directory cannot be created.
fn file_writer() -> Option<(tracing_appender::non_blocking::NonBlocking, WorkerGuard)> {
    let dir = crate::paths::logs_dir();
    crate::fsutil::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("proxy.log")
        .max_log_files(7)
        .build(&dir)
        .ok()?;
    let capped = DailyCap::new(
        OneLine {
            inner: appender,
            escape: true,
        },
        FILE_LOG_DAILY_CAP,
    );
    Some(
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(FILE_LOG_BUFFERED_LINES)
            .lossy(true)
            .finish(Lingering {
                inner: capped,
                linger: FILE_LOG_LINGER,
            }),
    )
}

/// How long the log file's writer thread pauses after each batch of lines it wrote.
/// Lines logged meanwhile wait in the channel instead of each waking the thread: on a
/// busy proxy that wake (a futex call and a cross-core interrupt, ~10 µs on a VM) was
/// the largest part of a request's log line. A line reaches the file this much later
/// at most; an idle proxy's thread sleeps on the channel and wakes for nothing.
pub const FILE_LOG_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// The writer under tracing-appender's worker, which flushes after draining its
/// channel: each flush ends with a pause of `linger` (see [`FILE_LOG_LINGER`]).
#[derive(Debug)]
pub struct Lingering<W> {
    pub inner: W,
    pub linger: std::time::Duration,
}

impl<W: std::io::Write> std::io::Write for Lingering<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.inner.flush();
        std::thread::sleep(self.linger);
        flushed
    }
}

/// Bytes the log file takes per day before further lines are dropped (with one line
/// saying so): with the 7 files kept, the logs stay under 7 × 32 MB whatever a
/// client sends. A busy day at info level is a few MB (one ~150-byte line a request).
pub const FILE_LOG_DAILY_CAP: u64 = 32 * 1024 * 1024;

/// Longest line written; anything longer is cut (see [`crate::sanitize`]).
pub const LOG_LINE_MAX: usize = 8 * 1024;

/// A writer that receives whole formatted events (the fmt layer writes each event with
/// one call) and writes each as one line: control characters escaped, length capped.
/// A `\n` inside a message can then never forge a second log line.
#[derive(Debug)]
pub struct OneLine<W> {
    pub inner: W,
    pub escape: bool,
}

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.escape {
            return self.inner.write(buf);
        }
        // A line of printable ASCII under the cap (a request's line, nearly always)
        // is written as it came, with no copy.
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if body.len() <= LOG_LINE_MAX
            && body.len() < buf.len()
            && crate::sanitize::is_printable_ascii(body)
        {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let line = crate::sanitize::untrusted(body, LOG_LINE_MAX);
        // The line and its end in one write: one syscall a line on the unbuffered
        // log file, not two (the proxy logs a line per request), and a reader
        // tailing the file never sees a line without its end.
        let mut whole = Vec::with_capacity(line.len() + 1);
        whole.extend_from_slice(line.as_bytes());
        whole.push(b'\n');
        self.inner.write_all(&whole)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Largest size of stderr when it is a regular file: launchd's `StandardErrorPath`
/// (`proxy.err.log`), which nothing else rotates. Past it the file is emptied.
pub const STDERR_FILE_CAP: u64 = 16 * 1024 * 1024;

/// stderr, emptied when it is a regular file past [`STDERR_FILE_CAP`]. launchd opens the
/// file for appending, so writes go on from the new end. Checked before every line,
/// one `fstat`, so a flood cannot outgrow the cap between checks by more than a line.
#[derive(Debug)]
pub struct CappedStderr;

impl std::io::Write for CappedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = stderr_file() {
            if let Ok(true) = truncate_past(file, STDERR_FILE_CAP) {
                let _ = std::io::stderr().write_all(
                    format!(
                        "(this log passed {} MB and was emptied)\n",
                        STDERR_FILE_CAP / (1024 * 1024)
                    )
                    .as_bytes(),
                );
            }
        }
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A second handle on stderr when it is a regular file (a terminal, a pipe or the
/// journal need no cap).
fn stderr_file() -> Option<&'static std::fs::File> {
    static FILE: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
        let file = std::fs::File::from(fd);
        file.metadata().ok()?.is_file().then_some(file)
    })
    .as_ref()
}

/// Empty `file` when it is larger than `cap`; true when it did.
pub fn truncate_past(file: &std::fs::File, cap: u64) -> std::io::Result<bool> {
    if file.metadata()?.len() <= cap {
        return Ok(false);
    }
    file.set_len(0)?;
    Ok(true)
}

/// Drops writes past `cap` bytes per UTC day (the rolling appender's day), writing one
/// notice when it starts dropping.
#[derive(Debug)]
pub struct DailyCap<W> {
    inner: W,
    cap: u64,
    day: Option<chrono::NaiveDate>,
    written: u64,
    dropped: bool,
}

impl<W> DailyCap<W> {
    pub fn new(inner: W, cap: u64) -> Self {
        DailyCap {
            inner,
            cap,
            day: None,
            written: 0,
            dropped: false,
        }
    }

    /// A new day starts the count afresh (the appender has opened a new file).
    fn on_day(&mut self, day: chrono::NaiveDate) {
        if self.day != Some(day) {
            self.day = Some(day);
            self.written = 0;
            self.dropped = false;
        }
    }
}

impl<W: std::io::Write> DailyCap<W> {
    fn write_on(&mut self, day: chrono::NaiveDate, buf: &[u8]) -> std::io::Result<usize> {
        self.on_day(day);
        if self.written + buf.len() as u64 > self.cap {
            if !self.dropped {
                self.dropped = true;
                self.inner.write_all(
                    format!(
                        "log size cap reached ({} MB today); further lines are dropped until tomorrow\n",
                        self.cap / (1024 * 1024)
                    )
                    .as_bytes(),
                )?;
            }
            return Ok(buf.len());
        }
        self.written += buf.len() as u64;
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
}

impl<W: std::io::Write> std::io::Write for DailyCap<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_on(chrono::Utc::now().date_naive(), buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Lines the file writer holds before it drops new ones (lossy: the proxy never waits
/// on the disk). tracing-appender's default, 128,000, pre-allocates and touches a
/// 4 MB channel at start-up: a sixth of the proxy's idle memory. At info level the
/// proxy writes one line per request, so 4,096 is a burst of thousands of requests
/// within one disk write.
const FILE_LOG_BUFFERED_LINES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn level(args: &[&str]) -> &'static str {
        let cli = crate::cli::Cli::parse_from(args);
        stderr_level(&cli.global, &cli.command)
    }

    #[test]
    fn one_event_is_one_escaped_capped_line() {
        use std::io::Write;
        let mut w = OneLine {
            inner: Vec::new(),
            escape: true,
        };
        w.write_all(b"WARN refused /x\n2026 INFO forged \x1b[2J\n")
            .unwrap();
        let long = format!("{}\n", "a".repeat(LOG_LINE_MAX * 4));
        w.write_all(long.as_bytes()).unwrap();
        let out = String::from_utf8(w.inner).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out:?}");
        assert_eq!(lines[0], "WARN refused /x\\n2026 INFO forged \\u{1b}[2J");
        assert!(lines[1].len() <= LOG_LINE_MAX + 3);
    }

    /// The file layer as the proxy builds it, over OneLine into a buffer: a message
    /// holding terminal sequences and a forged line comes out as one escaped line,
    /// although the formatter's own sanitising is off.
    #[test]
    fn the_file_layer_writes_a_hostile_message_as_one_escaped_line() {
        let out = Shared::default();
        let sink = out.clone();
        let layer = file_format(
            tracing_subscriber::fmt::layer().with_writer(move || OneLine {
                inner: sink.clone(),
                escape: true,
            }),
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("model m\x1b]0;pwned\x07\x1b[2J\u{9b}1m\n2026 INFO forged");
            tracing::info!("stream default bench,bench-model status=200 in=12 out=3 1.2ms");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(
            lines.iter().all(|l| !l.chars().any(char::is_control)),
            "{text:?}"
        );
        assert!(
            lines[0]
                .ends_with("model m\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}1m\\n2026 INFO forged"),
            "{:?}",
            lines[0]
        );
        assert!(
            lines[1].ends_with("status=200 in=12 out=3 1.2ms"),
            "{:?}",
            lines[1]
        );
    }

    /// The inner writer's calls, one entry each.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl std::io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_reaches_the_file_in_one_write() {
        use std::io::Write;
        let mut w = OneLine {
            inner: Calls::default(),
            escape: true,
        };
        w.write_all(b"INFO POST /v1/messages 200\n").unwrap();
        w.write_all(b"WARN two\nlines\n").unwrap();
        assert_eq!(
            w.inner.0,
            vec![
                b"INFO POST /v1/messages 200\n".to_vec(),
                b"WARN two\\nlines\n".to_vec()
            ]
        );
    }

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_file_writer_pauses_after_each_batch_and_loses_no_line() {
        use std::io::Write;
        use std::time::{Duration, Instant};
        let linger = Duration::from_millis(30);
        let mut w = Lingering {
            inner: Shared::default(),
            linger,
        };
        w.write_all(b"one\n").unwrap();
        let started = Instant::now();
        w.flush().unwrap();
        assert!(started.elapsed() >= linger);
        assert_eq!(w.inner.0.lock().unwrap().as_slice(), b"one\n");

        // Under tracing-appender's worker, lines sent while it pauses are written after.
        let file = Shared::default();
        let (mut writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(Lingering {
                inner: file.clone(),
                linger,
            });
        for i in 0..50 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(7));
            }
        }
        drop(guard); // flushes what is queued
        let text = String::from_utf8(file.0.lock().unwrap().clone()).unwrap();
        let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn the_file_stops_growing_at_the_daily_cap() {
        use std::io::Write;
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let mut w = DailyCap::new(Vec::new(), 1000);
        let line = [b'x'; 99];
        for _ in 0..100 {
            assert_eq!(w.write_on(day(7), &line).unwrap(), 99);
        }
        let size = w.inner.len();
        assert!(size < 1000 + 200, "{size} bytes");
        assert!(String::from_utf8_lossy(&w.inner).contains("log size cap reached"));
        // The next day writes again.
        w.write_on(day(8), &line).unwrap();
        assert_eq!(w.inner.len(), size + 99);
        w.flush().unwrap();
    }

    #[test]
    fn an_append_only_log_past_its_cap_is_emptied() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy.err.log");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[b'x'; 2000]).unwrap();
        assert!(!truncate_past(&file, 4096).unwrap());
        file.write_all(&[b'x'; 3000]).unwrap();
        assert!(truncate_past(&file, 4096).unwrap());
        file.write_all(b"next\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"next\n");
    }

    #[test]
    fn up_keeps_the_step_list_clean_unless_verbose() {
        assert_eq!(level(&["ccr-setup", "up"]), "off");
        assert_eq!(level(&["ccr-setup", "up", "-v"]), "info");
        assert_eq!(level(&["ccr-setup", "proxy"]), "info");
        assert_eq!(level(&["ccr-setup", "doctor"]), "warn");
    }
}
