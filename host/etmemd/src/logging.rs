//! Logging: syslog as C etmemd does it (ident `[etmemd] `, `LOG_PID`, `LOG_USER`, levels
//! 0 debug, 1 info, 2 warning, 3 error), plus a copy on stderr when not started by systemd.
//!
//! A small `tracing` layer over `libc::syslog`: the maintained `syslog-tracing` crate maps
//! `tracing::INFO` to LOG_NOTICE and DEBUG to LOG_INFO, which is not C's mapping. This
//! module must not be used by library code: libraries only emit `tracing` events.

use crate::cli::LogLevel;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
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

/// Collects an event's message and fields as one line: `message key=value ...`.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// The text syslog receives for an event.
fn event_line(event: &Event<'_>) -> String {
    let mut line = Line::default();
    event.record(&mut line);
    line.0
}

/// A layer that sends every event it sees to syslog. Call [`open`] before using it.
pub struct SyslogLayer;

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let text = event_line(event).replace('\0', "\\0");
        let Ok(text) = CString::new(text) else {
            return;
        };
        // SAFETY: the format is a static NUL-terminated "%s" and its one argument is a valid
        // NUL-terminated string that outlives the call.
        unsafe {
            libc::syslog(
                syslog_priority(event.metadata().level()),
                c"%s".as_ptr(),
                text.as_ptr(),
            );
        }
    }
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
    let stderr = mirror_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(level_filter(level))
        .with(SyslogLayer)
        .with(stderr)
        .try_init();
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

    /// Records the lines the syslog layer would send, through the same formatting.
    struct Capture(Arc<Mutex<Vec<(libc::c_int, String)>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if let Ok(mut v) = self.0.lock() {
                v.push((syslog_priority(event.metadata().level()), event_line(event)));
            }
        }
    }

    #[test]
    fn lines_and_filtering() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(level_filter(LogLevel::Warning))
            .with(Capture(seen.clone()));
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
}
