//! A map-data server for the tests: serves a directory over HTTP on loopback, with faults
//! a test can inject per file (errors, dropped connections, short or corrupt bodies, holds)
//! and a count of requests per file.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use desert_atlas::tiles::ranges::{self, Wanted};
use futures_util::StreamExt;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status.
    Status(u16),
    /// 429 with `Retry-After: 1`.
    TooManyRequests,
    /// Send the first N bytes (with the full Content-Length), then drop the connection.
    DropAfter(usize),
    /// Send only the first N bytes, with a Content-Length saying so.
    Truncate(usize),
    /// Send the file with one byte changed.
    Corrupt,
    /// Wait until `release()` before answering.
    Hold,
    /// Answer 302 with this `Location`.
    Redirect(String),
    /// Send the file, then zeros without end (no Content-Length), as a hostile server may.
    Endless,
    /// Answer at once (full Content-Length), then send one byte every this long.
    Trickle(std::time::Duration),
    /// Send the first N bytes (with the full Content-Length), then nothing more, keeping the
    /// connection open.
    StallAfter(usize),
}

#[derive(Default)]
struct Inner {
    faults: HashMap<String, VecDeque<Fault>>,
    /// Faults that apply to every request of a file.
    always: HashMap<String, Fault>,
    hits: HashMap<String, usize>,
}

#[derive(Clone)]
struct ServerState {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
    gate: watch::Receiver<bool>,
}

pub struct MapServer {
    pub url: String,
    pub dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MapServer {
    pub async fn start(dir: &Path) -> MapServer {
        let (gate_tx, gate_rx) = watch::channel(false);
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = ServerState {
            dir: dir.to_path_buf(),
            inner: inner.clone(),
            gate: gate_rx,
        };
        // Also under any folder (`/data/file`): a map-data URL with a path, as the public
        // server's, whose path must be kept.
        let app = Router::new()
            .route("/{*path}", get(serve_nested))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MapServer {
            url: format!("http://{addr}/"),
            dir: dir.to_path_buf(),
            inner,
            gate: gate_tx,
            task,
        }
    }

    /// The next requests of `file` meet these faults, one each, in order.
    pub fn fail_next(&self, file: &str, faults: &[Fault]) {
        self.inner
            .lock()
            .unwrap()
            .faults
            .entry(file.to_string())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Every request of `file` meets this fault until `heal`.
    pub fn fail_always(&self, file: &str, fault: Fault) {
        self.inner
            .lock()
            .unwrap()
            .always
            .insert(file.to_string(), fault);
    }

    pub fn heal(&self, file: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.always.remove(file);
        inner.faults.remove(file);
    }

    pub fn hits(&self, file: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .hits
            .get(file)
            .copied()
            .unwrap_or(0)
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        let _ = self.gate.send(true);
    }
}

impl Drop for MapServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A file, maybe under a folder: served as the file of that name.
async fn serve_nested(
    state: State<ServerState>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let file = path.rsplit('/').next().unwrap_or_default().to_string();
    serve(state, UrlPath(file), headers).await
}

async fn serve(
    State(state): State<ServerState>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let fault = {
        let mut inner = state.inner.lock().unwrap();
        *inner.hits.entry(file.clone()).or_default() += 1;
        let once = inner.faults.get_mut(&file).and_then(|q| q.pop_front());
        once.or_else(|| inner.always.get(&file).cloned())
    };
    if let Some(Fault::Hold) = fault {
        let mut gate = state.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    let Ok(mut bytes) = std::fs::read(state.dir.join(&file)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match ranges::from_header(v, bytes.len() as u64) {
            Wanted::Part(range) => usize::try_from(*range.start()).ok(),
            _ => None,
        });
    match fault {
        Some(Fault::Status(code)) => return StatusCode::from_u16(code).unwrap().into_response(),
        Some(Fault::Redirect(to)) => {
            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
        }
        Some(Fault::TooManyRequests) => {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response();
        }
        Some(Fault::Corrupt) => {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
        }
        _ => {}
    }
    let total = bytes.len();
    let (status, body_bytes) = match start {
        Some(s) => (StatusCode::PARTIAL_CONTENT, bytes[s..].to_vec()),
        None => (StatusCode::OK, bytes),
    };
    let mut response = match fault {
        Some(Fault::Truncate(n)) => {
            let n = n.min(body_bytes.len());
            (status, body_bytes[..n].to_vec()).into_response()
        }
        Some(Fault::DropAfter(n)) => {
            let n = n.min(body_bytes.len());
            let len = body_bytes.len();
            let first = bytes::Bytes::from(body_bytes[..n].to_vec());
            let stream = futures_util::stream::iter(vec![
                Ok::<_, std::io::Error>(first),
                Err(std::io::Error::other("connection dropped by the test")),
            ]);
            let mut r = Response::new(Body::from_stream(stream));
            *r.status_mut() = status;
            r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
            r
        }
        Some(Fault::Endless) => {
            let zeros = bytes::Bytes::from(vec![0u8; 64 * 1024]);
            let file = futures_util::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(body_bytes))
            });
            let endless = futures_util::stream::repeat_with(move || Ok(zeros.clone()));
            let mut r = Response::new(Body::from_stream(futures_util::StreamExt::chain(
                file, endless,
            )));
            *r.status_mut() = status;
            r
        }
        Some(Fault::Trickle(every)) => {
            let len = body_bytes.len();
            let stream = futures_util::stream::iter(body_bytes).then(move |byte| async move {
                tokio::time::sleep(every).await;
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![byte]))
            });
            let mut r = Response::new(Body::from_stream(stream));
            *r.status_mut() = status;
            r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
            r
        }
        Some(Fault::StallAfter(n)) => {
            let n = n.min(body_bytes.len());
            let len = body_bytes.len();
            let first = bytes::Bytes::from(body_bytes[..n].to_vec());
            let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) })
                .chain(futures_util::stream::pending());
            let mut r = Response::new(Body::from_stream(stream));
            *r.status_mut() = status;
            r.headers_mut().insert(header::CONTENT_LENGTH, len.into());
            r
        }
        _ => (status, body_bytes).into_response(),
    };
    if let Some(s) = start {
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            format!("bytes {s}-{}/{total}", total - 1).parse().unwrap(),
        );
    }
    response
}
