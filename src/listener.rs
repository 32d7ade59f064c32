//! Accepting connections and serving HTTP/1.1 on them, with the limits a public port needs.
//!
//! A client that opens a connection and never finishes its request must not hold it for
//! good: each request's headers must arrive within [`HEADER_READ_TIMEOUT`] (an idle
//! keep-alive connection waiting for its next request counts too; nginx's own keep-alive
//! to this server is shorter, see nginx/nginx.conf). And connections are counted: at most
//! [`connection_limit`] at once, so that a crowd of them cannot use up the process's file
//! descriptors, which SQLite, the tile archives and downloads need as well. Past the limit,
//! new connections wait in the kernel's accept queue until one closes. Once more than half
//! the slots are taken, new connections get only [`CROWDED_HEADER_READ_TIMEOUT`]: a crowd of
//! half-sent requests then drains quickly and real clients, which send their headers at
//! once, still get in. axum's own `serve` offers neither limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client has to send a request's headers, from its connection's first byte or
/// from the end of its previous answer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The same, for connections accepted while more than half the slots are taken.
pub const CROWDED_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// File descriptors kept for everything but client connections: databases, archives, the
/// download's files and connections, the log.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Most connections served at once: the process's descriptor limit less what the rest of
/// the program needs, and never fewer than 16.
pub fn connection_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let usable = soft.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 65_536);
    usize::try_from(usable).unwrap_or(65_536)
}

/// The connection slots shared by every serving loop of the process.
#[derive(Clone)]
pub struct ConnectionSlots {
    free: Arc<Semaphore>,
    limit: usize,
}

impl ConnectionSlots {
    /// [`connection_limit`] slots.
    pub fn new() -> ConnectionSlots {
        let limit = connection_limit();
        ConnectionSlots {
            free: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    fn crowded(&self) -> bool {
        self.free.available_permits() < self.limit / 2
    }
}

impl Default for ConnectionSlots {
    fn default() -> Self {
        ConnectionSlots::new()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the requests in progress to be answered.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    slots: ConnectionSlots,
    shutdown: impl Future<Output = ()>,
) {
    let http = |header_read_timeout| {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .keep_alive(true);
        http
    };
    let (calm, crowded) = (http(HEADER_READ_TIMEOUT), http(CROWDED_HEADER_READ_TIMEOUT));
    let service = TowerToHyperService::new(app);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.free.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // closed: nothing more to serve
            },
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of descriptors or memory, or a connection reset before it was
                    // accepted: wait a moment rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // As nginx does on keep-alive connections: a response's last segment is not held
        // back waiting for the client's ACK of the previous one.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let http = if slots.crowded() { &crowded } else { &calm };
        let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service.clone()));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_descriptors_for_the_rest_of_the_program() {
        let limit = connection_limit() as u64;
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        assert!(limit >= 16);
        assert!(limit + RESERVED_DESCRIPTORS <= rl.rlim_cur.max(16 + RESERVED_DESCRIPTORS));
    }
}
