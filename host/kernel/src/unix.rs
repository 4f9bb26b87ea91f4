//! One request/reply exchange on a new connection to a unix stream socket, and the address
//! rule of the config (`@name` is the abstract socket `name`, anything else a filesystem
//! path used in full). The host's memdcd capability sends its page lists through
//! [`Kernel::unix_exchange`](crate::Kernel::unix_exchange), which [`exchange`] implements.
//!
//! This module moves bytes; it must not know what they mean (the memdcd message layout is
//! the host core's).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// `sun_path` holds 108 bytes: a path (or `@` plus an abstract name) must be shorter.
pub const SUN_PATH_MAX: usize = 108;

/// How long one exchange may wait to write its request or to read its reply.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a unix stream socket listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// an abstract socket (`@name` in a config; the name without the `@`)
    Abstract(String),
    /// a socket file
    Path(PathBuf),
}

impl UnixAddr {
    /// Parses a config value: `@name` is the abstract socket `name`, anything else a
    /// filesystem path used in full. Empty values, a lone `@`, NUL bytes and values of
    /// [`SUN_PATH_MAX`] bytes or more are refused.
    pub fn parse(value: &str) -> Result<UnixAddr, UnixError> {
        let bad = |why: &str| UnixError::BadAddr {
            addr: value.escape_debug().to_string(),
            why: why.to_string(),
        };
        if value.is_empty() {
            return Err(bad("empty"));
        }
        if value.len() >= SUN_PATH_MAX {
            return Err(bad(&format!(
                "{} bytes, expected fewer than {SUN_PATH_MAX}",
                value.len()
            )));
        }
        if value.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        match value.strip_prefix('@') {
            Some("") => Err(bad("`@` without an abstract name")),
            Some(name) => Ok(UnixAddr::Abstract(name.to_string())),
            None => Ok(UnixAddr::Path(PathBuf::from(value))),
        }
    }

    fn socket_addr(&self) -> io::Result<SocketAddr> {
        match self {
            UnixAddr::Abstract(n) => SocketAddr::from_abstract_name(n.as_bytes()),
            UnixAddr::Path(p) => SocketAddr::from_pathname(p),
        }
    }
}

/// `@name` or the path, as a config writes it.
impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Abstract(n) => write!(f, "@{n}"),
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A failed socket exchange.
#[derive(Debug, Error)]
pub enum UnixError {
    /// The address cannot name a unix socket.
    #[error("socket address `{addr}`: {why}")]
    BadAddr {
        /// the value, escaped
        addr: String,
        /// what is wrong with it
        why: String,
    },
    /// A socket call failed.
    #[error("{op} socket {addr}: {source}")]
    Io {
        /// `connect`, `write to` or `read the reply from`
        op: &'static str,
        /// the socket
        addr: String,
        /// the error
        source: io::Error,
    },
}

/// Connects to `addr`, writes all of `request`, shuts down its writing half and reads the
/// reply: at most `reply_max` bytes, up to the peer's close (an empty reply when the peer
/// closes without a word). Each call is one connection; each write and read waits at most
/// `timeout`.
pub fn exchange(
    addr: &UnixAddr,
    request: &[u8],
    reply_max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, UnixError> {
    let io = |op: &'static str| {
        move |source: io::Error| UnixError::Io {
            op,
            addr: addr.to_string().escape_debug().to_string(),
            source,
        }
    };
    let sa = addr.socket_addr().map_err(io("connect"))?;
    let mut s = UnixStream::connect_addr(&sa).map_err(io("connect"))?;
    s.set_write_timeout(Some(timeout))
        .and_then(|()| s.set_read_timeout(Some(timeout)))
        .map_err(io("connect"))?;
    s.write_all(request).map_err(io("write to"))?;
    // the peer may already have closed its end (it read the whole request): nothing to say
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = vec![0u8; reply_max];
    let mut got = 0;
    while got < reply_max {
        match s.read(&mut reply[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read the reply from")(e)),
        }
    }
    reply.truncate(got);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn addresses_follow_the_at_rule() {
        assert_eq!(
            UnixAddr::parse("@_memdcd.server").unwrap(),
            UnixAddr::Abstract("_memdcd.server".into())
        );
        assert_eq!(
            UnixAddr::parse("/run/memdcd.sock").unwrap(),
            UnixAddr::Path("/run/memdcd.sock".into())
        );
        // no first character is dropped (C's B15): a relative path stays whole
        assert_eq!(
            UnixAddr::parse("xsock").unwrap(),
            UnixAddr::Path("xsock".into())
        );
        assert_eq!(
            UnixAddr::parse("@_memdcd.server").unwrap().to_string(),
            "@_memdcd.server"
        );
        for bad in ["", "@", "a\0b"] {
            assert!(UnixAddr::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("@{}", "x".repeat(SUN_PATH_MAX - 1));
        let e = UnixAddr::parse(&long).unwrap_err().to_string();
        assert!(e.contains("108 bytes, expected fewer than 108"), "{e}");
        assert!(UnixAddr::parse(&long[..SUN_PATH_MAX - 1]).is_ok());
    }

    #[test]
    fn one_exchange_reads_the_reply_up_to_the_close_or_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut got = Vec::new();
            for reply in [&b""[..], b"success", b"0123456789abcdef"] {
                let (mut c, _) = l.accept().unwrap();
                let mut req = Vec::new();
                c.read_to_end(&mut req).unwrap();
                c.write_all(reply).unwrap();
                got.push(req);
            }
            got
        });
        let addr = UnixAddr::Path(path.clone());
        let t = Duration::from_secs(5);
        assert_eq!(exchange(&addr, b"one", 10, t).unwrap(), b"");
        assert_eq!(exchange(&addr, b"two", 10, t).unwrap(), b"success");
        assert_eq!(exchange(&addr, b"three", 10, t).unwrap(), b"0123456789");
        assert_eq!(server.join().unwrap(), [&b"one"[..], b"two", b"three"]);
        drop(dir);
        let e = exchange(&addr, b"x", 10, t).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("connect socket {}: ", path.display())),
            "{e}"
        );
    }
}
