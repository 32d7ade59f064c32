//! Getting bytes from the map-data server, behind a trait.
//!
//! Local mode fetches directly; a grain fetches through the Sandstorm bridge's proxy with a
//! Powerbox token ([`crate::sandstorm::BridgeFetcher`]); [`AnyFetcher`] is the one the mode
//! chose. The download logic only sees `Fetcher`, so it is tested once, against a local
//! server. Failures come back classified: worth retrying, not, or needing the user's grant.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE, RETRY_AFTER};

/// How a fetch failed.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// A dropped connection, a timeout, a 5xx or a 429: trying again later may work.
    /// `retry_after` is the server's own advice, when it gave one.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 404, a 403 or anything else that will not change by asking again.
    Permanent(String),
    /// The grain may not reach the map-data server: it holds no access token, or the user
    /// revoked the grant. Never retried; `key` (`access-needed`, `access-withdrawn`) tells
    /// the page to ask the user for access.
    Access { key: &'static str, message: String },
}

impl FetchError {
    /// The status key of an access failure, for the page to act on.
    pub fn access_key(&self) -> Option<&'static str> {
        match self {
            FetchError::Access { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Transient { message, .. }
            | FetchError::Permanent(message)
            | FetchError::Access { message, .. } => f.write_str(message),
        }
    }
}

/// An answer whose body is still to be read.
pub struct Fetched {
    /// The first byte of the file that the body starts at (non-zero only for a resumed fetch
    /// the server agreed to).
    pub starts_at: u64,
    /// Total size of the file when the server said so.
    pub total: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, FetchError>>,
}

pub trait Fetcher: Send + Sync + 'static {
    /// GETs `url`, from byte `from` on when `from > 0` (the server may ignore that and send
    /// the whole file, which `starts_at` tells).
    fn get(
        &self,
        url: &str,
        from: u64,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;
}

/// Fetches straight from the internet (local mode), honouring HTTPS_PROXY/HTTP_PROXY.
///
/// The HTTP client (TLS set-up, the system's root certificates) is built on the first fetch,
/// not at start-up: most wake-ups of a grain download nothing, and an idle grain should not
/// hold it.
#[derive(Default)]
pub struct DirectFetcher {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl DirectFetcher {
    fn client(&self) -> Result<&reqwest::Client, FetchError> {
        self.client
            .get_or_init(|| {
                // reqwest is built without a default TLS provider; rustls needs one chosen
                // per process.
                #[cfg(feature = "tls")]
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(15))
                    // A stalled connection (no bytes for this long) is dropped and retried.
                    .read_timeout(Duration::from_secs(30))
                    .redirect(same_origin_redirects())
                    .user_agent(concat!("desert-atlas/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot set up downloads: {e}"))
            })
            .as_ref()
            .map_err(|e| FetchError::Permanent(e.clone()))
    }
}

impl Fetcher for DirectFetcher {
    async fn get(&self, url: &str, from: u64) -> Result<Fetched, FetchError> {
        #[cfg(not(feature = "tls"))]
        if url.starts_with("https://") {
            return Err(FetchError::Permanent(format!(
                "this build cannot fetch {} itself: it is the grain's build, without TLS, where \
                 Sandstorm's bridge makes the https requests; run a build with the `tls` feature \
                 (the default) outside Sandstorm",
                file_name(url)
            )));
        }
        let response = send(self.client()?.get(url), from).await?;
        answer(response, url, from)
    }
}

/// The fetcher the mode chose: straight to the map-data server, or through the bridge.
pub enum AnyFetcher {
    Direct(DirectFetcher),
    Bridge(crate::sandstorm::BridgeFetcher),
}

impl Fetcher for AnyFetcher {
    async fn get(&self, url: &str, from: u64) -> Result<Fetched, FetchError> {
        match self {
            AnyFetcher::Direct(f) => f.get(url, from).await,
            AnyFetcher::Bridge(f) => f.get(url, from).await,
        }
    }
}

/// Sends `request`, asking for the bytes from `from` on when `from > 0`.
pub async fn send(
    mut request: reqwest::RequestBuilder,
    from: u64,
) -> Result<reqwest::Response, FetchError> {
    if from > 0 {
        request = request.header(RANGE, format!("bytes={from}-"));
    }
    request.send().await.map_err(|e| {
        if e.is_redirect() {
            let target = std::error::Error::source(&e)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            FetchError::Permanent(format!(
                "the map server redirected {} to another site{target}, which is not followed; check the map-data URL",
                e.url().map_or("a file", |u| file_name(u.as_str())),
            ))
        } else {
            FetchError::Transient {
                message: format!("could not reach the map server ({})", short(&e)),
                retry_after: None,
            }
        }
    })
}

/// Classifies the answer to a GET of `url` from byte `from`: its body to read, or why not.
pub fn answer(response: reqwest::Response, url: &str, from: u64) -> Result<Fetched, FetchError> {
    let status = response.status();
    let headers = response.headers();
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (starts_at, total) = match status {
        StatusCode::OK => (0, length),
        StatusCode::PARTIAL_CONTENT => {
            let range = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match range {
                Some((start, total)) if start == from => (start, total),
                _ => {
                    return Err(FetchError::Transient {
                        message: "the map server answered a different byte range".into(),
                        retry_after: None,
                    });
                }
            }
        }
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
            return Err(FetchError::Transient {
                message: format!("the map server is busy or failing ({s})"),
                retry_after,
            });
        }
        StatusCode::NOT_FOUND => {
            return Err(FetchError::Permanent(format!(
                "the map server does not have {} (404); the region list may be out of date: fetch it again",
                file_name(url)
            )));
        }
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
            return Err(FetchError::Permanent(format!(
                "the map server refused access to {} ({status})",
                file_name(url)
            )));
        }
        s => {
            return Err(FetchError::Permanent(format!(
                "the map server answered {s} for {}",
                file_name(url)
            )));
        }
    };
    let body = response
        .bytes_stream()
        .map(|chunk| {
            chunk.map_err(|e| FetchError::Transient {
                message: format!("the download was cut off ({})", short(&e)),
                retry_after: None,
            })
        })
        .boxed();
    Ok(Fetched {
        starts_at,
        total,
        body,
    })
}

/// Redirects are followed only within the map server's own origin (scheme, host and port):
/// an answer from elsewhere could become the region list or a part.
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        if first.origin() != attempt.url().origin() {
            let error = format!("to {}", attempt.url().origin().ascii_serialization());
            attempt.error(error)
        } else if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn file_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// reqwest's error without its URL (the user knows which region) and with its cause.
fn short(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "connection error".to_string()
    };
    if let Some(source) = e.source().and_then(|s| s.source()) {
        text.push_str(&format!(": {source}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, Some(10))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 5-9/10"), None);
    }
}
