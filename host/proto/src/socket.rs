//! The abstract unix socket address `\0<name>` that etmemd listens on (spec §1.4).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use thiserror::Error;

/// Longest socket name C etmem accepts (`sun_path` is 108 bytes; C rejects 107 and more).
pub const MAX_SOCKET_NAME_LEN: usize = 106;

/// Why a socket name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SocketNameError {
    /// The name is empty.
    #[error("socket name is empty")]
    Empty,
    /// The name is longer than [`MAX_SOCKET_NAME_LEN`] bytes.
    #[error("socket name `{name}` is {len} bytes long, the limit is {MAX_SOCKET_NAME_LEN}")]
    TooLong {
        /// the name given
        name: String,
        /// its length in bytes
        len: usize,
    },
}

/// Checks a socket name against C etmem's limits (1..=106 bytes).
pub fn check_socket_name(name: &str) -> Result<(), SocketNameError> {
    match name.len() {
        0 => Err(SocketNameError::Empty),
        len if len > MAX_SOCKET_NAME_LEN => Err(SocketNameError::TooLong {
            name: name.to_owned(),
            len,
        }),
        _ => Ok(()),
    }
}

/// The abstract address for `name`: `sun_path[0] = 0`, then the name, no trailing NUL.
pub fn abstract_addr(name: &str) -> std::io::Result<SocketAddr> {
    check_socket_name(name)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_limits_match_c() {
        assert_eq!(check_socket_name(""), Err(SocketNameError::Empty));
        assert!(check_socket_name(&"a".repeat(106)).is_ok());
        assert!(check_socket_name(&"a".repeat(107)).is_err());
        assert!(check_socket_name(&"a".repeat(108)).is_err());
    }

    #[test]
    fn address_is_abstract() {
        let addr = abstract_addr("etmemd_test").expect("valid name");
        assert_eq!(addr.as_abstract_name(), Some(&b"etmemd_test"[..]));
    }
}
