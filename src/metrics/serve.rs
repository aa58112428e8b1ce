//! The `--metrics-listen` endpoint: `GET /metrics` answered from a thread of its own.
//!
//! A plain `std::net::TcpListener` answering HTTP/1.1 with `Connection: close`, rather than
//! hyper: hyper is in the dependency tree only as a client (`server` is not among its
//! features), and enabling it would rebuild the whole HTTP stack for one read-only endpoint
//! that a scraper polls every few seconds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::CONTENT_TYPE;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} (--metrics-listen): {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What binding it said.
    pub source: std::io::Error,
}

/// How often the accepting thread looks at its stop flag while no one connects.
const POLL: Duration = Duration::from_millis(20);

/// Longest time a scraper may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head read, in bytes: a scrape's is a few hundred.
const MAX_HEAD: usize = 16 * 1024;

/// The running endpoint; dropping it stops serving (the port is free again once dropped).
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` now (so that a port in use is an error before the job starts) and serves
    /// `body()` on `GET /metrics` from a thread until dropped.
    pub fn start<F>(addr: SocketAddr, body: F) -> Result<MetricsServer, ServeError>
    where
        F: Fn() -> String + Send + 'static,
    {
        let error = |source| ServeError { addr, source };
        let listener = TcpListener::bind(addr).map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        let bound = listener.local_addr().map_err(error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = answer(stream, &body) {
                                tracing::debug!("metrics request: {e}");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(POLL)
                        }
                        Err(e) => {
                            tracing::debug!("metrics accept: {e}");
                            std::thread::sleep(POLL)
                        }
                    }
                }
            })
            .map_err(error)?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it: the metrics for `GET /metrics`, 404 for another path,
/// 405 for another method.
fn answer(mut stream: TcpStream, body: &dyn Fn() -> String) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, text) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, body()),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n".into(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(text.as_bytes());
    }
    stream.write_all(&response)?;
    stream.flush()
}
