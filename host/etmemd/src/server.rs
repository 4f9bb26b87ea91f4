//! The RPC server: accepts clients on the abstract socket, checks each peer, reads one
//! request frame, hands the action to the daemon core and writes the reply (spec §1.4, §1.5,
//! §3).
//!
//! Unlike C etmemd, clients are served concurrently (one task per connection), and a request
//! that arrives in several pieces is reassembled (B8). The wire bytes stay exactly C's.
//!
//! Idle clients cannot starve others. A connection holds no serving slot until its whole
//! request has arrived; until then it is *idle*: it must send its first byte within
//! [`ServerConfig::first_byte_timeout`], and when [`ServerConfig::max_idle`] idle
//! connections are open, accepting one more closes the oldest idle one. So a flood of
//! silent peers costs a legitimate client (which sends its frame at once) nothing.
//!
//! A refused peer (not uid 0 and gid 0) always sees the same outcome: its request is read
//! and dropped, then the write side is shut down, so it gets end-of-file (the C client and
//! ours print `connection closed by peer` and exit 186), never a reset or a broken pipe.
//!
//! This module must not interpret requests beyond the frame (that is [`crate::codec`]) nor
//! touch daemon state (that is the [`ActionHandler`]).

use crate::codec::{encode_result, request_to_action};
use etmem_host::ActionHandler;
use etmem_proto::frame::{FrameError, MAX_REQUEST_LEN, Request};
use etmem_proto::socket::{SocketNameError, abstract_addr, check_socket_name};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Limits and timeouts of the server. [`ServerConfig::default`] is what `etmemd` uses.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Requests handled at once; further whole requests wait for a slot.
    pub max_connections: usize,
    /// Connections accepted whose request is not complete yet. Accepting one more closes
    /// the oldest of them, so silent peers cannot keep others out.
    pub max_idle: usize,
    /// How long a client has, from accept, to send its first byte.
    pub first_byte_timeout: Duration,
    /// How long a client has, from accept, to send its whole request (C: 10 s timeouts).
    pub request_timeout: Duration,
    /// After bytes that do not yet form a frame, how long to wait for the rest.
    pub continuation_wait: Duration,
    /// How long writing the reply may take before the client is given up.
    pub write_timeout: Duration,
    /// On shutdown, how long connections in progress may finish before they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_connections: 128,
            max_idle: 512,
            first_byte_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            continuation_wait: Duration::from_millis(200),
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_millis(200),
        }
    }
}

/// Why the listening socket could not be set up.
#[derive(Debug, Error)]
pub enum BindError {
    /// The socket name breaks C etmem's length rules.
    #[error("socket name: {0}")]
    Name(#[from] SocketNameError),
    /// bind/listen failed, typically because another daemon holds the name.
    #[error("socket bind @{name} fail: {source}")]
    Bind {
        /// the socket name (without the leading `@`)
        name: String,
        /// the OS error
        source: io::Error,
    },
}

/// Binds and listens on the abstract socket `\0<name>` (std's backlog of 128; C used 1).
/// The listener is non-blocking, ready for [`UnixListener::from_std`].
pub fn bind(name: &str) -> Result<std::os::unix::net::UnixListener, BindError> {
    check_socket_name(name)?;
    let bind_err = |source| BindError::Bind {
        name: name.to_owned(),
        source,
    };
    let addr = abstract_addr(name).map_err(bind_err)?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// What went wrong with one client. Each is logged once; none stops the server.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// SO_PEERCRED could not be read.
    #[error("cannot read the credentials of the client: {0}")]
    PeerCredentials(io::Error),
    /// The peer is not uid 0 and gid 0 (C: `client socket connect failed, permition denied`).
    #[error(
        "client socket connect failed, permition denied: peer pid {pid} has uid {uid} gid {gid}, only uid 0 gid 0 is served"
    )]
    PeerDenied {
        /// peer uid
        uid: u32,
        /// peer gid
        gid: u32,
        /// peer pid, `?` when unknown
        pid: String,
    },
    /// No byte arrived within the first-byte timeout.
    #[error("client sent no request within {0:?}, connection closed")]
    Silent(Duration),
    /// The connection was the oldest idle one when `max_idle` were open and one more came.
    #[error(
        "client had not sent its whole request while {0} idle clients (the most allowed) were connected: closed as the oldest"
    )]
    Evicted(usize),
    /// The client closed the connection before sending anything.
    #[error("client closed the connection without sending a request")]
    ClosedEarly,
    /// Reading the request failed.
    #[error("cannot read the request: {0}")]
    Read(io::Error),
    /// The bytes received are not a request frame; C closes without a reply, so do we.
    #[error("invalid request {frame:?}: {source}")]
    Frame {
        /// what was received (lossy UTF-8)
        frame: String,
        /// why it is not a frame
        source: FrameError,
    },
    /// Writing the reply failed; usually the client went away.
    #[error("cannot send the reply: {0}")]
    Write(io::Error),
    /// The client did not read the reply within the write timeout.
    #[error("client did not take the reply within {0:?}")]
    WriteTimeout(Duration),
}

impl ConnectionError {
    fn log(&self) {
        match self {
            ConnectionError::Write(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                tracing::debug!("client went away before reading the whole reply: {e}");
            }
            ConnectionError::ClosedEarly => tracing::debug!("{self}"),
            ConnectionError::Silent(_)
            | ConnectionError::Evicted(_)
            | ConnectionError::Write(_)
            | ConnectionError::WriteTimeout(_) => tracing::warn!("{self}"),
            _ => tracing::error!("{self}"),
        }
    }
}

/// Serves clients on `listener` until `shutdown` completes. Then it stops accepting, lets
/// connections in progress finish for [`ServerConfig::shutdown_grace`] and drops the rest.
pub async fn serve<H: ActionHandler>(
    listener: UnixListener,
    handler: Arc<H>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let config = Arc::new(config);
    let max_idle = config.max_idle.max(1);
    let max_connections = config.max_connections.max(1);
    // Every open connection holds an `open` permit (so the fds are bounded); only those
    // whose request is complete compete for a `serving` one.
    let open = Arc::new(Semaphore::new(max_idle + max_connections));
    let serving = Arc::new(Semaphore::new(max_connections));
    // The idle connections, oldest first: sending on one closes that connection. A sender
    // whose receiver is gone belongs to a connection that is no longer idle.
    let mut idle: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::error!("accept on the rpc socket failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if idle.len() >= max_idle {
            idle.retain(|t| !t.is_closed());
            while idle.len() >= max_idle {
                if let Some(oldest) = idle.pop_front() {
                    let _ = oldest.send(());
                }
            }
        }
        let (evict, evicted) = oneshot::channel();
        idle.push_back(evict);
        let handler = handler.clone();
        let config = config.clone();
        let serving = serving.clone();
        connections.spawn(async move {
            let _permit = permit;
            let evicted = async {
                // Dropped sender: the server stops accepting; let the request finish.
                if evicted.await.is_err() {
                    std::future::pending::<()>().await;
                }
                ConnectionError::Evicted(max_idle)
            };
            if let Err(e) = connection(stream, &*handler, &config, &serving, evicted).await {
                e.log();
            }
        });
        while let Some(done) = connections.try_join_next() {
            log_join(done);
        }
    }
    drop(listener);
    tracing::info!("rpc server stops accepting clients");
    let drain = async {
        while let Some(done) = connections.join_next().await {
            log_join(done);
        }
    };
    if tokio::time::timeout(config.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            "dropping {} client connection(s) still in progress at shutdown",
            connections.len()
        );
        connections.abort_all();
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a client connection task panicked; connection dropped without reply");
    }
}

/// One client: peer check, request, action, reply, close. The connection holds no serving
/// slot while its request arrives; `evicted` completes if it must give way to newer idle
/// connections before that.
async fn connection<H: ActionHandler>(
    mut stream: UnixStream,
    handler: &H,
    config: &ServerConfig,
    serving: &Semaphore,
    evicted: impl Future<Output = ConnectionError>,
) -> Result<(), ConnectionError> {
    let accepted = Instant::now();
    let cred = stream
        .peer_cred()
        .map_err(ConnectionError::PeerCredentials)?;
    // Boxed so that it can be dropped (leaving the idle set) once the request is in.
    let mut evicted = Box::pin(evicted);
    if cred.uid() != 0 || cred.gid() != 0 {
        // Take in the request before closing: closing with it unread would reset the
        // connection, and closing before it is sent would break the client's pipe; either
        // way the client's exit status would depend on timing. Now it always reads EOF.
        let within = config.first_byte_timeout;
        tokio::select! {
            biased;
            _ = read_request(&mut stream, within, within, config.continuation_wait, accepted) => {}
            _ = &mut evicted => {}
        }
        let _ = stream.shutdown().await;
        return Err(ConnectionError::PeerDenied {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid().map_or_else(|| "?".to_owned(), |p| p.to_string()),
        });
    }
    let read = read_request(
        &mut stream,
        config.first_byte_timeout,
        config.request_timeout,
        config.continuation_wait,
        accepted,
    );
    let request = tokio::select! {
        biased;
        request = read => request?,
        e = &mut evicted => return Err(e),
    };
    drop(evicted);
    let Ok(_slot) = serving.acquire().await else {
        return Ok(()); // the semaphore is never closed
    };
    serve_request(stream, &request, handler, config).await
}

/// One client whose request has arrived: action, reply, close.
async fn serve_request<H: ActionHandler>(
    mut stream: UnixStream,
    request: &Request,
    handler: &H,
    config: &ServerConfig,
) -> Result<(), ConnectionError> {
    tracing::debug!("request: {}", request.encode());
    let result = match request_to_action(request) {
        Ok(action) => handler.handle(action).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = &result {
        tracing::error!("request `{}` failed: {e}", request.encode());
    }
    let reply = encode_result(&result);
    let write = async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(config.write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ConnectionError::Write(e)),
        Err(_) => Err(ConnectionError::WriteTimeout(config.write_timeout)),
    }
}

/// Reads one request frame. The C client sends it with one `send()` and no terminator and
/// then waits for the reply, so the frame ends when the bytes decode; bytes that do not
/// decode yet are given `continuation_wait` to be completed (B8). More than
/// [`MAX_REQUEST_LEN`] bytes is an error at once. The first byte must come within
/// `first_byte` of `accepted`, the whole frame within `whole`.
async fn read_request(
    stream: &mut UnixStream,
    first_byte: Duration,
    whole: Duration,
    continuation_wait: Duration,
    accepted: Instant,
) -> Result<Request, ConnectionError> {
    let deadline = accepted + whole;
    let first_deadline = accepted + first_byte.min(whole);
    let mut buf: Vec<u8> = Vec::with_capacity(MAX_REQUEST_LEN + 1);
    let mut chunk = [0u8; MAX_REQUEST_LEN + 1];
    let frame_error = |buf: &[u8], source| ConnectionError::Frame {
        frame: String::from_utf8_lossy(buf).into_owned(),
        source,
    };
    loop {
        let until = if buf.is_empty() {
            first_deadline
        } else {
            deadline.min(Instant::now() + continuation_wait)
        };
        let room = MAX_REQUEST_LEN + 1 - buf.len();
        let n = match tokio::time::timeout_at(until, stream.read(&mut chunk[..room])).await {
            Err(_) if buf.is_empty() => {
                return Err(ConnectionError::Silent(first_byte.min(whole)));
            }
            Err(_) => break,
            Ok(Ok(0)) if buf.is_empty() => return Err(ConnectionError::ClosedEarly),
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(ConnectionError::Read(e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_LEN {
            return Err(frame_error(&buf, FrameError::TooLong { len: buf.len() }));
        }
        if Request::decode(&buf).is_ok() {
            // Take in whatever else is already queued, so that a last value split across
            // two segments is not cut; then the frame is complete.
            loop {
                let room = MAX_REQUEST_LEN + 1 - buf.len();
                match stream.try_read(&mut chunk[..room]) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > MAX_REQUEST_LEN {
                            return Err(frame_error(&buf, FrameError::TooLong { len: buf.len() }));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(ConnectionError::Read(e)),
                }
            }
            break;
        }
    }
    Request::decode(&buf).map_err(|e| frame_error(&buf, e))
}
