//! Talking to etmemd the way the C client does (spec §2.5, §3.1, §3.4): connect to the
//! abstract socket, send the text frame with one `send()`, then stream the reply to stdout
//! until a chunk ends with the success (0xFF) or failure (0xFE) tag.
//!
//! The steps keep C's order, so the same failure is reported the same way: socket, 10 s
//! send/receive timeouts (set before `connect`, so a daemon whose backlog is full times out
//! too), connect, the 512-byte check, send, receive. This module must not parse the command
//! line or print anything but the daemon's reply; the failure lines are built by
//! [`TransportError::report`] and printed by `main`.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use etmem_proto::frame::MAX_REQUEST_LEN;
use etmem_proto::socket::{SocketNameError, check_socket_name};
use etmem_proto::{TAG_FAILURE, TAG_SUCCESS};
use socket2::{Domain, SockAddr, Socket, Type};
use thiserror::Error;

use crate::cli::{ECOMM, EPERM};

/// `SO_SNDTIMEO` and `SO_RCVTIMEO` of the client socket.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The C client's receive size: `recv(fd, buf, 511)` into a 512-byte buffer.
pub const CHUNK: usize = 511;

/// Why a request did not end with the success tag. The `Display` text is the first line C
/// prints (empty for a daemon failure, whose text is already in the streamed reply).
#[derive(Debug, Error)]
pub enum TransportError {
    /// `socket()` failed.
    #[error("create socket failed.")]
    Socket {
        /// errno of `socket()`
        errno: i32,
    },
    /// The socket name does not fit `sun_path` (107 bytes or more).
    #[error("set for sun_path fail")]
    SunPath,
    /// `connect()` failed, e.g. no daemon listens on that name (ECONNREFUSED).
    #[error("etmem connect to server failed: {}", strerror(*errno))]
    Connect {
        /// errno of `connect()`
        errno: i32,
    },
    /// The frame is longer than 512 bytes.
    #[error("send message {frame} too long, should not longer than {MAX_REQUEST_LEN}")]
    TooLong {
        /// the whole frame
        frame: String,
    },
    /// `send()` failed.
    #[error("send failed: {}", strerror(*errno))]
    Send {
        /// errno of `send()`
        errno: i32,
    },
    /// The daemon closed the connection without a tag (non-root peer, bad frame, crash).
    #[error("connection closed by peer")]
    Closed,
    /// `recv()` failed or timed out after 10 s.
    #[error("recv failed: {}", strerror(*errno))]
    Recv {
        /// errno of `recv()`
        errno: i32,
    },
    /// The reply ended with the failure tag; its text (and the `\n` that replaced the tag)
    /// has already been printed.
    #[error("")]
    Daemon,
}

impl TransportError {
    /// The `int` C's `etmem_rpc_client` returns for this failure.
    pub fn ret(&self) -> i32 {
        match self {
            TransportError::Socket { errno } | TransportError::Connect { errno } => *errno,
            TransportError::SunPath | TransportError::Send { .. } => -1,
            TransportError::TooLong { .. } => -EPERM,
            TransportError::Closed | TransportError::Recv { .. } | TransportError::Daemon => -ECOMM,
        }
    }

    /// The lines C prints for this failure, before `main` adds `etmem: error <n>`.
    pub fn report(&self) -> String {
        let stage = match self {
            TransportError::Socket { .. } => None,
            TransportError::SunPath | TransportError::Connect { .. } => {
                Some("etmem_client_conn failed.")
            }
            TransportError::TooLong { .. } | TransportError::Send { .. } => {
                Some("etmem_client_send failed.")
            }
            TransportError::Closed | TransportError::Recv { .. } | TransportError::Daemon => {
                Some("etmem_client_recv failed.")
            }
        };
        let mut text = String::new();
        if !matches!(self, TransportError::Daemon) {
            text.push_str(&self.to_string());
            text.push('\n');
        }
        if let Some(stage) = stage {
            text.push_str(stage);
            text.push('\n');
        }
        text
    }
}

/// glibc's `strerror` text for `errno` ("Connection refused"), without Rust's
/// " (os error N)" suffix.
pub fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes; the XSI strerror_r writes a
    // NUL-terminated string of at most that many bytes and touches nothing else.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Sends `frame` to the daemon listening on the abstract socket `name` and streams the
/// reply to `out`. `Ok` means the reply ended with the success tag.
pub fn exchange(name: &str, frame: &str, out: &mut dyn Write) -> Result<(), TransportError> {
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| TransportError::Socket {
            errno: errno_of(&e),
        })?;
    // These cannot fail on a fresh unix socket with a valid duration; C does not report
    // them either way, so a failure would only lose the timeout, never the request.
    let _ = socket.set_write_timeout(Some(TIMEOUT));
    let _ = socket.set_read_timeout(Some(TIMEOUT));
    // An empty name is not rejected by C: it connects to the empty abstract name.
    if let Err(SocketNameError::TooLong { .. }) = check_socket_name(name) {
        return Err(TransportError::SunPath);
    }
    let mut path = Vec::with_capacity(name.len() + 1);
    path.push(0u8);
    path.extend_from_slice(name.as_bytes());
    let addr = SockAddr::unix(OsStr::from_bytes(&path)).map_err(|_| TransportError::SunPath)?;
    socket.connect(&addr).map_err(|e| TransportError::Connect {
        errno: errno_of(&e),
    })?;
    if frame.len() > MAX_REQUEST_LEN {
        return Err(TransportError::TooLong {
            frame: frame.to_owned(),
        });
    }
    send(&socket, frame)?;
    receive(&mut &socket, out)
}

/// One send, as C does. MSG_NOSIGNAL: C would die of SIGPIPE on a daemon that already
/// closed (spec B17: avoid crashes). A daemon that closed before the frame went out
/// (EPIPE, ECONNRESET: a refused peer, a C etmemd closing at once) is reported as what it
/// is, a connection closed without a reply (exit 186), the same outcome as when it closes
/// just after the send; other send errors stay `send failed` (exit 255).
fn send(socket: &Socket, frame: &str) -> Result<(), TransportError> {
    match socket.send_with_flags(frame.as_bytes(), libc::MSG_NOSIGNAL) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
            Err(TransportError::Closed)
        }
        Err(e) => Err(TransportError::Send {
            errno: errno_of(&e),
        }),
    }
}

/// The C client's receive loop (spec §3.4): read at most 511 bytes at a time; only the
/// last byte of each chunk is looked at: 0xFF ends with success and is dropped, 0xFE ends
/// with failure and becomes `\n`; each chunk is printed like `printf("%s")`, so up to its
/// first NUL. Output errors (a closed stdout) are ignored: the exchange still completes.
pub fn receive(reader: &mut dyn Read, out: &mut dyn Write) -> Result<(), TransportError> {
    let mut buf = [0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Err(TransportError::Closed),
            Ok(n) => n,
            Err(e) => {
                return Err(TransportError::Recv {
                    errno: errno_of(&e),
                });
            }
        };
        let chunk = &mut buf[..n];
        let mut end = None;
        if let Some(last) = chunk.last_mut() {
            if *last == TAG_SUCCESS {
                *last = 0;
                end = Some(Ok(()));
            } else if *last == TAG_FAILURE {
                *last = b'\n';
                end = Some(Err(TransportError::Daemon));
            }
        }
        let shown = chunk.iter().position(|&b| b == 0).unwrap_or(chunk.len());
        let _ = out.write_all(&chunk[..shown]);
        if let Some(result) = end {
            let _ = out.flush();
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns the given chunks one per `read`, then end of stream.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let mut chunk = self.0.remove(0);
            if chunk.len() > buf.len() {
                let rest = chunk.split_off(buf.len());
                self.0.insert(0, rest);
            }
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn recv(chunks: &[&[u8]]) -> (Vec<u8>, Result<(), TransportError>) {
        let mut out = Vec::new();
        let mut r = Chunks(chunks.iter().map(|c| c.to_vec()).collect());
        let res = receive(&mut r, &mut out);
        (out, res)
    }

    #[test]
    fn success_tag_is_dropped() {
        let (out, res) = recv(&[b"hello\n\xff"]);
        assert_eq!(out, b"hello\n");
        assert!(res.is_ok());
    }

    #[test]
    fn failure_tag_becomes_newline() {
        let (out, res) = recv(&[b"error: task is not exist\xfe"]);
        assert_eq!(out, b"error: task is not exist\n");
        assert!(matches!(res, Err(TransportError::Daemon)));
    }

    #[test]
    fn tag_in_the_middle_of_a_chunk_does_not_stop() {
        let (out, res) = recv(&[b"a\xffb", b"c\xff"]);
        assert_eq!(out, b"a\xffbc");
        assert!(res.is_ok());
    }

    #[test]
    fn tag_at_a_511_byte_boundary_stops_early() {
        let mut data = vec![b'x'; 600];
        data[510] = TAG_SUCCESS;
        let (out, res) = recv(&[&data]);
        assert_eq!(out.len(), 510);
        assert!(res.is_ok());
    }

    #[test]
    fn nul_truncates_a_chunk_like_printf() {
        let (out, res) = recv(&[b"ab\0cd\xfe"]);
        assert_eq!(out, b"ab");
        assert!(res.is_err());
    }

    #[test]
    fn close_without_tag_is_closed() {
        let (out, res) = recv(&[b"partial"]);
        assert_eq!(out, b"partial");
        let e = res.expect_err("no tag");
        assert_eq!(e.ret(), -70);
        assert_eq!(
            e.report(),
            "connection closed by peer\netmem_client_recv failed.\n"
        );
    }

    /// A connected pair: (client socket, daemon end).
    fn pair() -> (Socket, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        (Socket::from(std::os::fd::OwnedFd::from(a)), b)
    }

    #[test]
    fn a_daemon_that_closed_before_the_send_is_closed_not_send_failed() {
        let (client, daemon) = pair();
        drop(daemon);
        let e = send(
            &client,
            "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -",
        )
        .expect_err("peer is gone");
        assert!(matches!(e, TransportError::Closed), "{e:?}");
        assert_eq!(e.ret(), -70);
        assert_eq!(
            e.report(),
            "connection closed by peer\netmem_client_recv failed.\n"
        );
        // the same outcome as a daemon that closes after the send
        let (client, daemon) = pair();
        send(&client, "frame").expect("daemon still there");
        drop(daemon);
        let e = receive(&mut &client, &mut Vec::new()).expect_err("no reply");
        assert!(
            matches!(
                e,
                TransportError::Recv {
                    errno: libc::ECONNRESET
                } | TransportError::Closed
            ),
            "{e:?}"
        );
        assert_eq!(e.ret(), -70);
    }

    #[test]
    fn strerror_is_glibc_text() {
        assert_eq!(strerror(libc::ECONNREFUSED), "Connection refused");
        assert_eq!(strerror(libc::EAGAIN), "Resource temporarily unavailable");
    }
}
