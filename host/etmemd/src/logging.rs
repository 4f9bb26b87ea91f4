//! Logging: syslog as C etmemd does it (ident `[etmemd] `, `LOG_PID`, `LOG_USER`, levels
//! 0 debug, 1 info, 2 warning, 3 error), plus a copy on stderr when not started by systemd.
//!
//! A small `tracing` layer over `libc::syslog`: the maintained `syslog-tracing` crate maps
//! `tracing::INFO` to LOG_NOTICE and DEBUG to LOG_INFO, which is not C's mapping. This
//! module must not be used by library code: libraries only emit `tracing` events.
//!
//! Log lines carry text from outside: request values, config file values, engines' log
//! messages, file names. Every field of every event, on both sinks, is formatted by one
//! visitor ([`Line`]) that escapes control characters ([`escape_controls`]), so no input can
//! start a forged log line (`\n`) or drive a terminal (`\x1b[...`). The escaping is done
//! here, at the sinks, not at each call site, so a new message cannot forget it.

use crate::cli::LogLevel;
use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The syslog identity C etmemd uses.
pub const IDENT: &std::ffi::CStr = c"[etmemd] ";

/// The `tracing` filter for a `-l` level.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

/// The syslog priority for a `tracing` level (facility LOG_USER comes from `openlog`).
pub fn syslog_priority(level: &Level) -> libc::c_int {
    match *level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        Level::DEBUG | Level::TRACE => libc::LOG_DEBUG,
    }
}

/// Whether `c` must not appear raw in a log line: C0 and C1 controls and DEL (a newline
/// forges a line, ESC drives a terminal), and the Unicode line separators and bidi
/// overrides that reorder or split what a reader sees.
fn is_unsafe_in_log(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control character escaped: `\n`, `\r`, `\t`, `\x1b` (below 0x80)
/// or `\u{85}` (others). A backslash is left as it is, so text already escaped (a `Debug`
/// form) is not escaped twice. Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_in_log) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_in_log(c) && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe_in_log(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Collects an event's message and fields as one line, `message key=value ...`, with
/// control characters escaped. Both sinks format fields with it.
#[derive(Default)]
struct Line(String);

impl Line {
    fn push(&mut self, field: &Field, value: &str) {
        let value = escape_controls(value);
        if field.name() == "message" {
            self.0.insert_str(0, &value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

/// The text syslog receives for an event.
fn event_line(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    line.0
}

/// The field formatter of the stderr layer: the same [`Line`] as syslog, so the stderr
/// copy is escaped the same way (the timestamp and level around it are ours).
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut line = Line::default();
        fields.record(&mut line);
        writer.write_str(line.0.trim_start())
    }
}

/// Where [`SyslogLayer`] sends a line: `libc::syslog`, or a test's recorder.
type SyslogSink = Box<dyn Fn(libc::c_int, &CStr) + Send + Sync>;

/// A layer that sends every event it sees to syslog, escaped. Call [`open`] before using
/// [`SyslogLayer::system`].
pub struct SyslogLayer {
    sink: SyslogSink,
}

impl SyslogLayer {
    /// The real syslog.
    pub fn system() -> SyslogLayer {
        SyslogLayer::with_sink(|priority, text| {
            // SAFETY: the format is a static NUL-terminated "%s" and its one argument is a
            // valid NUL-terminated string that outlives the call.
            unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
        })
    }

    /// Sends each line (priority, text) to `sink` instead: for tests, which see exactly
    /// the bytes syslog would.
    pub fn with_sink(sink: impl Fn(libc::c_int, &CStr) + Send + Sync + 'static) -> SyslogLayer {
        SyslogLayer {
            sink: Box::new(sink),
        }
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // NUL is escaped with the other controls, so this cannot fail; drop the line if
        // it somehow does rather than log it cut.
        let Ok(text) = CString::new(event_line(event)) else {
            return;
        };
        (self.sink)(syslog_priority(event.metadata().level()), &text);
    }
}

/// The stderr layer: tracing's default line (time, level, message), fields formatted
/// (and escaped) by [`EscapedFields`], written to `writer`.
pub fn stderr_layer<S, W>(writer: W, ansi: bool) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(EscapedFields)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
}

/// The subscriber etmemd runs with: `level`'s filter, `syslog`, and a copy on `stderr`
/// when given. [`init`] installs it with the real sinks; tests install it with recorders.
pub fn subscriber<W>(
    level: LogLevel,
    syslog: SyslogLayer,
    stderr: Option<(W, bool)>,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(level_filter(level))
        .with(syslog)
        .with(stderr.map(|(w, ansi)| stderr_layer(w, ansi)))
}

/// `openlog("[etmemd] ", LOG_PID, LOG_USER)`, once for the process.
pub fn open() {
    // SAFETY: IDENT is a 'static C string, so the pointer openlog keeps stays valid.
    unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_USER) };
}

/// Installs the global subscriber: syslog always, stderr too when `mirror_stderr`.
/// Starts no thread (safe before `fork`).
pub fn init(level: LogLevel, mirror_stderr: bool) {
    open();
    let stderr = mirror_stderr.then(|| (std::io::stderr, std::io::stderr().is_terminal()));
    let _ = subscriber(level, SyslogLayer::system(), stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn c_level_mapping() {
        assert_eq!(syslog_priority(&Level::ERROR), libc::LOG_ERR);
        assert_eq!(syslog_priority(&Level::WARN), libc::LOG_WARNING);
        assert_eq!(syslog_priority(&Level::INFO), libc::LOG_INFO);
        assert_eq!(syslog_priority(&Level::DEBUG), libc::LOG_DEBUG);
        assert_eq!(level_filter(LogLevel::Debug), LevelFilter::DEBUG);
        assert_eq!(level_filter(LogLevel::Info), LevelFilter::INFO);
        assert_eq!(level_filter(LogLevel::Warning), LevelFilter::WARN);
        assert_eq!(level_filter(LogLevel::Error), LevelFilter::ERROR);
        assert_eq!(IDENT.to_bytes(), b"[etmemd] ");
    }

    type Lines = Arc<Mutex<Vec<(libc::c_int, String)>>>;

    /// A syslog layer whose lines are recorded instead of sent.
    fn recording() -> (SyslogLayer, Lines) {
        let seen: Lines = Arc::default();
        let s = seen.clone();
        let layer = SyslogLayer::with_sink(move |priority, text| {
            if let Ok(mut v) = s.lock() {
                v.push((priority, text.to_string_lossy().into_owned()));
            }
        });
        (layer, seen)
    }

    /// A stderr stand-in.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    #[test]
    fn lines_and_filtering() {
        let (layer, seen) = recording();
        let subscriber = subscriber::<Buf>(LogLevel::Warning, layer, None);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(pid = 7, "socket bind {} fail", "@x");
            tracing::warn!("caught signal 15");
            tracing::info!("dropped");
            tracing::debug!("dropped too");
        });
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![
                (libc::LOG_ERR, "socket bind @x fail pid=7".to_owned()),
                (libc::LOG_WARNING, "caught signal 15".to_owned()),
            ]
        );
    }

    #[test]
    fn escaping_of_control_characters() {
        assert!(matches!(
            escape_controls("plain `text` \\n"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape_controls("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(
            escape_controls("\x1b[2J\0\x07\x7f"),
            "\\x1b[2J\\x00\\x07\\x7f"
        );
        assert_eq!(escape_controls("\u{85}\u{9b}"), "\\u{85}\\u{9b}");
        assert_eq!(
            escape_controls("x\u{202e}y\u{2028}z"),
            "x\\u{202e}y\\u{2028}z"
        );
        assert_eq!(escape_controls("héllo → 世界"), "héllo → 世界");
    }

    #[test]
    fn both_sinks_escape_messages_and_fields() {
        let (layer, seen) = recording();
        let err = Buf::default();
        let subscriber = subscriber(LogLevel::Debug, layer, Some((err.clone(), false)));
        tracing::subscriber::with_default(subscriber, || {
            let value = "evil\n[etmemd] forged line\x1b[31m";
            tracing::error!("request `{value}` failed");
            tracing::warn!(file = value, debug = ?value, "bad value");
        });
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![
                (
                    libc::LOG_ERR,
                    "request `evil\\n[etmemd] forged line\\x1b[31m` failed".to_owned()
                ),
                (
                    libc::LOG_WARNING,
                    // the Debug form is already escaped and is not escaped twice
                    "bad value file=evil\\n[etmemd] forged line\\x1b[31m \
                     debug=\"evil\\n[etmemd] forged line\\u{1b}[31m\""
                        .to_owned()
                ),
            ]
        );
        let text = err.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(
            lines[0].ends_with("ERROR request `evil\\n[etmemd] forged line\\x1b[31m` failed"),
            "{text:?}"
        );
        assert!(
            lines[1].ends_with(
                "WARN bad value file=evil\\n[etmemd] forged line\\x1b[31m \
                 debug=\"evil\\n[etmemd] forged line\\u{1b}[31m\""
            ),
            "{text:?}"
        );
        assert!(!text.contains('\x1b'), "{text:?}");
    }
}
