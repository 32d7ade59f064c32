//! Every network wait of the downloads, bounded and cancellable.
//!
//! A map-data server (or the bridge in front of it) may stall or trickle: one byte every ten
//! seconds keeps a connection alive for good and would hold a download slot forever. So a
//! request and each read of its body race the caller's cancellation (a delete, a shutdown, a
//! newer request) with `select!`, and the body must bring at least a floor of bytes per
//! window: a server below it fails the fetch as a transient error, which the caller retries
//! with backoff. This wraps any [`Fetcher`]'s answer, so it applies to every way of fetching.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fetcher::{FetchError, Fetched, Fetcher};

/// The window over which the rate floor is measured, in milliseconds (tests make it short).
pub const RATE_WINDOW_ENV: &str = "DESERT_ATLAS_MIN_RATE_WINDOW_MS";
/// The rate floor in bytes per second.
pub const MIN_RATE_ENV: &str = "DESERT_ATLAS_MIN_RATE_BYTES_PER_S";

const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
const DEFAULT_MIN_RATE: u64 = 1024;

/// The least a server must send: `bytes_per_second` on average over each `window`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateFloor {
    pub window: Duration,
    pub bytes_per_second: u64,
}

impl RateFloor {
    /// 1 KB/s over 30 s, unless the environment says otherwise.
    pub fn from_env() -> RateFloor {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        RateFloor {
            window: number(RATE_WINDOW_ENV)
                .filter(|&ms| ms > 0)
                .map_or(DEFAULT_WINDOW, Duration::from_millis),
            bytes_per_second: number(MIN_RATE_ENV).unwrap_or(DEFAULT_MIN_RATE),
        }
    }

    fn bytes_per_window(&self) -> u64 {
        (self.bytes_per_second as f64 * self.window.as_secs_f64()) as u64
    }

    fn too_slow(&self) -> FetchError {
        FetchError::Transient {
            message: format!(
                "the map server sent less than {} bytes per second for {} s",
                self.bytes_per_second,
                self.window.as_secs_f64()
            ),
            retry_after: None,
        }
    }
}

/// Why a network wait ended without an answer.
#[derive(Debug)]
pub enum Interrupt {
    /// The caller's token was cancelled.
    Cancelled,
    Failed(FetchError),
}

/// Sends the request: cancelled with `cancel`, and failing (transiently) when no answer
/// comes within the floor's window.
pub async fn request<F: Fetcher>(
    fetcher: &F,
    url: &str,
    from: u64,
    floor: RateFloor,
    cancel: &CancellationToken,
) -> Result<(Fetched, Body), Interrupt> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Interrupt::Cancelled),
        answer = tokio::time::timeout(floor.window, fetcher.get(url, from)) => match answer {
            Ok(Ok(mut fetched)) => {
                let body = Body::new(
                    std::mem::replace(&mut fetched.body, futures_util::stream::empty().boxed()),
                    floor,
                );
                Ok((fetched, body))
            }
            Ok(Err(e)) => Err(Interrupt::Failed(e)),
            Err(_) => Err(Interrupt::Failed(FetchError::Transient {
                message: format!(
                    "the map server did not answer within {} s",
                    floor.window.as_secs_f64()
                ),
                retry_after: None,
            })),
        },
    }
}

/// An answer's body, read under the rate floor.
pub struct Body {
    stream: BoxStream<'static, Result<Bytes, FetchError>>,
    floor: RateFloor,
    window_end: Instant,
    in_window: u64,
}

impl Body {
    pub fn new(stream: BoxStream<'static, Result<Bytes, FetchError>>, floor: RateFloor) -> Body {
        Body {
            stream,
            floor,
            window_end: Instant::now() + floor.window,
            in_window: 0,
        }
    }

    /// The next chunk, `None` at the end of the body.
    pub async fn next(&mut self, cancel: &CancellationToken) -> Result<Option<Bytes>, Interrupt> {
        loop {
            let read = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Interrupt::Cancelled),
                read = tokio::time::timeout_at(self.window_end, self.stream.next()) => read,
            };
            match read {
                Ok(Some(Ok(chunk))) => {
                    self.in_window += chunk.len() as u64;
                    if Instant::now() >= self.window_end {
                        self.end_window()?;
                    }
                    return Ok(Some(chunk));
                }
                Ok(Some(Err(e))) => return Err(Interrupt::Failed(e)),
                Ok(None) => return Ok(None),
                // The window ended with nothing more read: judge it, then go on waiting.
                Err(_) => self.end_window()?,
            }
        }
    }

    /// Judges the window just ended and starts the next one.
    fn end_window(&mut self) -> Result<(), Interrupt> {
        if self.in_window < self.floor.bytes_per_window() {
            return Err(Interrupt::Failed(self.floor.too_slow()));
        }
        self.window_end = Instant::now() + self.floor.window;
        self.in_window = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor() -> RateFloor {
        RateFloor {
            window: Duration::from_secs(30),
            bytes_per_second: 1024,
        }
    }

    /// A body that sends one byte every `every`, `count` times.
    fn trickle(every: Duration, count: usize) -> BoxStream<'static, Result<Bytes, FetchError>> {
        futures_util::stream::iter(0..count)
            .then(move |_| async move {
                tokio::time::sleep(every).await;
                Ok(Bytes::from_static(b"x"))
            })
            .boxed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_floor_fails_at_the_end_of_the_window() {
        let mut body = Body::new(trickle(Duration::from_secs(10), 100), floor());
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let mut got = 0;
        let end = loop {
            match body.next(&cancel).await {
                Ok(Some(_)) => got += 1,
                other => break other,
            }
        };
        assert!(matches!(
            end,
            Err(Interrupt::Failed(FetchError::Transient { .. }))
        ));
        assert!(got >= 2, "the bytes of the first window are delivered");
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_and_a_fast_one_ends_normally() {
        let stalled = futures_util::stream::pending().boxed();
        let mut body = Body::new(stalled, floor());
        let cancel = CancellationToken::new();
        assert!(matches!(
            body.next(&cancel).await,
            Err(Interrupt::Failed(_))
        ));
        let fast = futures_util::stream::iter(vec![Ok(Bytes::from(vec![0u8; 100_000]))]).boxed();
        let mut body = Body::new(fast, floor());
        assert!(matches!(body.next(&cancel).await, Ok(Some(_))));
        assert!(matches!(body.next(&cancel).await, Ok(None)));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_ends_a_stalled_read_at_once() {
        let mut body = Body::new(futures_util::stream::pending().boxed(), floor());
        let cancel = CancellationToken::new();
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                cancel.cancel();
            })
        };
        let started = Instant::now();
        assert!(matches!(
            body.next(&cancel).await,
            Err(Interrupt::Cancelled)
        ));
        assert_eq!(started.elapsed(), Duration::from_millis(5));
        canceller.await.unwrap();
    }
}
