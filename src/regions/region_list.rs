//! Fetching the region list (`manifest.json`) in the background, bounded: each read under the
//! rate floor ([`super::transfer`]), the whole fetch, retries included, under a deadline, and
//! a new request replacing a fetch still under way (it may be stuck on a server that stopped
//! answering). Its outcome is what `available-areas-status` shows.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::fetcher::FetchError;
use super::manifest::Manifest;
use super::transfer::{self, Interrupt, RateFloor};

/// The whole fetch's deadline in milliseconds (tests make it short).
pub const DEADLINE_ENV: &str = "DESERT_ATLAS_REGION_LIST_DEADLINE_MS";
const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
const MAX_MANIFEST: usize = 16 * 1024 * 1024;
const ATTEMPTS: u32 = 3;

/// Where the region list stands.
#[derive(Default)]
pub(super) struct Fetching {
    /// `available-areas-status`: "", "started" or "error".
    pub status: &'static str,
    pub error: Option<String>,
    /// `access-needed` or `access-withdrawn` when the map-data server could not be reached
    /// for want of the user's grant (grain mode).
    pub error_key: Option<&'static str>,
    /// Stops the fetch under way.
    running: Option<CancellationToken>,
    /// Which request the fetch under way answers; an older one's outcome is not shown.
    generation: u64,
}

fn deadline() -> Duration {
    std::env::var(DEADLINE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_DEADLINE, Duration::from_millis)
}

pub(super) fn request(shared: &Arc<Shared>) {
    let stop = shared.shutdown.child_token();
    let generation = {
        let mut fetching = shared.region_list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = fetching.running.replace(stop.clone()) {
            previous.cancel();
        }
        fetching.generation += 1;
        fetching.status = "started";
        fetching.error = None;
        fetching.error_key = None;
        fetching.generation
    };
    let shared2 = shared.clone();
    shared.tasks.spawn_on(
        async move {
            let shared = shared2;
            let limit = deadline();
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = tokio::time::timeout(limit, fetch(&shared, &stop)) => result
                    .unwrap_or_else(|_| Err(FetchError::Permanent(format!(
                        "the map server did not send the region list within {} s; try again later",
                        limit.as_secs()
                    )))),
            };
            let mut fetching = shared.region_list.lock().unwrap_or_else(|e| e.into_inner());
            if fetching.generation != generation {
                return;
            }
            fetching.running = None;
            match result {
                Ok(count) => {
                    tracing::info!("region list fetched: {count} regions");
                    fetching.status = "";
                }
                Err(e) => {
                    tracing::error!("region list: {e}");
                    fetching.status = "error";
                    fetching.error = Some(e.to_string());
                    fetching.error_key = e.access_key();
                }
            }
        },
        &shared.runtime,
    );
}

async fn fetch(shared: &Shared, stop: &CancellationToken) -> Result<usize, FetchError> {
    let url = format!("{}manifest.json", shared.base_url);
    let floor = RateFloor::from_env();
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        match fetch_once(shared, &url, floor, stop).await {
            Ok(n) => return Ok(n),
            Err(Interrupt::Failed(FetchError::Transient { message, .. })) => last = message,
            Err(Interrupt::Failed(e)) => return Err(e),
            Err(Interrupt::Cancelled) => {
                return Err(FetchError::Permanent("the fetch was stopped".into()));
            }
        }
        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
    }
    Err(FetchError::Permanent(format!("{last}; try again later")))
}

async fn fetch_once(
    shared: &Shared,
    url: &str,
    floor: RateFloor,
    stop: &CancellationToken,
) -> Result<usize, Interrupt> {
    let (_, mut body) = transfer::request(&shared.fetcher, url, 0, floor, stop).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next(stop).await? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_MANIFEST {
            return Err(Interrupt::Failed(FetchError::Permanent(
                "the region list is too large".into(),
            )));
        }
    }
    let permanent = |m: String| Interrupt::Failed(FetchError::Permanent(m));
    let manifest = Manifest::parse(&bytes).map_err(permanent)?;
    let count = manifest.regions.len();
    let path = shared.layout.manifest_file(&shared.version);
    crate::task::blocking(move || crate::atomic_file::write_atomically(&path, &bytes))
        .await
        .map_err(|e| permanent(format!("cannot keep the region list: {e}")))?;
    *shared.manifest.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(manifest));
    Ok(count)
}
