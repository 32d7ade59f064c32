//! Downloading a region's parts: concurrently (bounded by one semaphore for the whole
//! program), resuming a part cut off mid-way with a Range request, retrying what may work
//! later with exponential backoff and jitter, and verifying each part's size and checksum
//! before it counts. Verified parts are recorded in the queue, so a restart skips them, and
//! handed to the install running alongside ([`super::handoff`]).
//!
//! Stopping is one cancellation token: the region's, cancelled by a delete, by shutdown or
//! by a failed install. Each part works under a child token, which the first part to fail
//! cancels for the others. Every wait (a connection slot, the server's answer, each read,
//! a backoff) races that token, so a stop is noticed at once, not at the next byte.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::disk;
use super::fetcher::{FetchError, Fetcher};
use super::handoff::PartSender;
use super::manifest::RegionEntry;
use super::part_limit::PartLimit;
use super::progress::Tracker;
use super::queue::Queue;
use super::transfer::{self, Interrupt, RateFloor};
use crate::error::{DISK_FULL, is_disk_full};
use crate::tile_id::TileId;

/// Tries per part before the region fails.
const MAX_ATTEMPTS: u32 = 6;
/// Longest wait between tries, whatever the server asks.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Sets the first backoff in milliseconds (tests make it small).
pub const RETRY_BASE_ENV: &str = "DESERT_ATLAS_RETRY_BASE_MS";
/// Parts of one region fetched at once (the connections of all regions are bounded apart).
const PARTS_AT_ONCE: usize = 4;

/// Why a download stopped.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// Its token was cancelled (a delete, shutdown, another part's failure); nothing is wrong
    /// with this part.
    Cancelled,
    /// The region failed; the message is for the user.
    Failed(String),
    /// The region does not fit on the disk (refused beforehand, or the disk filled up); the
    /// message is for the user. Its partial download is removed rather than kept for a
    /// retry: it holds space the grain needs.
    NoRoom(String),
    /// The grain may not reach the map-data server (no access token, or the grant was
    /// revoked); `key` tells the page to ask the user. Not retried.
    Access { key: &'static str, message: String },
    /// What the map server sent is not a region this program accepts (a part larger than
    /// declared, an archive that expands past its bounds or fails its checks); the message
    /// is for the user. Its download is removed: fetching it again would bring the same.
    Refused(String),
}

/// A failure of the grain's own storage (recording progress in the queue, say).
impl From<crate::error::AppError> for Stop {
    fn from(e: crate::error::AppError) -> Self {
        match e {
            crate::error::AppError::InsufficientStorage(message) => Stop::NoRoom(message),
            e => Stop::Failed(e.to_string()),
        }
    }
}

/// How a fetch failure that is not worth retrying stops the region.
pub fn stop_for(e: FetchError) -> Stop {
    match e {
        FetchError::Access { key, message } => Stop::Access { key, message },
        e => Stop::Failed(e.to_string()),
    }
}

/// Everything one region's download needs.
pub struct Job<'a, F: Fetcher> {
    pub fetcher: &'a F,
    pub base_url: &'a str,
    pub id: &'a TileId,
    pub entry: &'a RegionEntry,
    pub dir: &'a Path,
    pub queue: &'a Queue,
    pub tracker: &'a Tracker,
    pub connections: &'a Semaphore,
    /// The region's token: cancelled, every part stops.
    pub stop: &'a CancellationToken,
    /// Where the free space is asked.
    pub disk_root: &'a Path,
    pub floor: RateFloor,
    /// Set once the region's size was estimated and found to fit (region lists without
    /// sizes; see [`check_room_by_estimate`]).
    pub room_checked: AtomicBool,
}

pub fn part_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("part.{index:05}"))
}

/// Downloads every part into `dir`, announcing each on `handoff` once verified. `handoff`
/// is dropped when this returns, however it returns, which ends the install's wait.
///
/// When a part fails, the others are told to stop and waited for rather than dropped: a
/// part dropped mid-write would leave its last write finishing on the blocking pool, after
/// the caller has moved on to removing the folder. So when this returns, no file operation
/// of the download is still running.
pub async fn download<F: Fetcher>(job: &Job<'_, F>, handoff: PartSender) -> Result<(), Stop> {
    tokio::fs::create_dir_all(job.dir)
        .await
        .map_err(|e| Stop::Failed(format!("cannot create the download folder: {e}")))?;
    let verified = {
        let (queue, id) = (job.queue.clone(), job.id.clone());
        crate::task::blocking(move || queue.verified_parts(&id))
            .await
            .map_err(Stop::from)?
    };
    let halt = job.stop.child_token();
    let indices: Vec<usize> = (0..job.entry.parts.len()).collect();
    let mut parts = futures_util::stream::iter(indices)
        .map(|i| {
            let already = verified.get(&i).cloned();
            let (part, halt, handoff) = (halt.child_token(), &halt, &handoff);
            async move {
                let result = fetch_part(job, i, already, &part, handoff).await;
                if result.is_err() {
                    halt.cancel();
                }
                result
            }
        })
        .buffer_unordered(PARTS_AT_ONCE);
    let mut first_failure = None;
    while let Some(result) = parts.next().await {
        match result {
            Ok(()) => {}
            // The others stopped because of it: the first real failure is the reason.
            Err(Stop::Cancelled) => {
                first_failure.get_or_insert(Stop::Cancelled);
            }
            Err(stop) => {
                if matches!(first_failure, None | Some(Stop::Cancelled)) {
                    first_failure = Some(stop);
                }
            }
        }
    }
    match first_failure {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}

/// Waits `wait`; true when `cancel` was cancelled first.
async fn sleep_or_stop(cancel: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

async fn fetch_part<F: Fetcher>(
    job: &Job<'_, F>,
    index: usize,
    already: Option<(u64, String)>,
    cancel: &CancellationToken,
    handoff: &PartSender,
) -> Result<(), Stop> {
    let path = part_path(job.dir, index);
    let size_on_disk = || std::fs::metadata(&path).map(|m| m.len()).ok();
    if let Some((bytes, _)) = &already
        && size_on_disk() == Some(*bytes)
    {
        job.tracker.part_verified(job.id, index, *bytes);
        handoff.ready(index);
        return Ok(());
    }
    let part = &job.entry.parts[index];
    let (expected_bytes, expected_sha) = (part.bytes, part.sha256.clone());
    let url = format!("{}{}", job.base_url, part.file);
    let mut last_error = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let mut have = size_on_disk().unwrap_or(0);
        if expected_bytes.is_some_and(|e| have > e) {
            remove(&path);
            have = 0;
        }
        let complete = expected_bytes.is_some_and(|e| have == e);
        if !complete {
            let permit = tokio::select! {
                () = cancel.cancelled() => return Err(Stop::Cancelled),
                permit = job.connections.acquire() => permit
                    .map_err(|_| Stop::Failed("downloads are shutting down".into()))?,
            };
            let result = fetch_into(job, index, &url, &path, have, cancel).await;
            drop(permit);
            match result {
                Ok(()) => {}
                Err(FetchFailure::Stop(stop)) => return Err(stop),
                Err(FetchFailure::Fetch(FetchError::Transient {
                    message,
                    retry_after,
                })) => {
                    tracing::warn!("region {}: part {index}: {message}; retrying", job.id);
                    last_error = message;
                    if sleep_or_stop(cancel, backoff(attempt, retry_after)).await {
                        return Err(Stop::Cancelled);
                    }
                    continue;
                }
                Err(FetchFailure::Fetch(e)) => return Err(stop_for(e)),
            }
        }
        // Hashing a part takes a while: off the threads that answer requests.
        let checked = {
            let path = path.clone();
            let expected_sha = expected_sha.clone();
            tokio::task::spawn_blocking(move || {
                verify(&path, expected_bytes, expected_sha.as_deref())
            })
            .await
            .unwrap_or_else(|e| Err(Check::Corrupt(format!("checking the part failed: {e}"))))
        };
        match checked {
            Ok((bytes, sha)) => {
                let (queue, id) = (job.queue.clone(), job.id.clone());
                crate::task::blocking(move || queue.mark_verified(&id, index, bytes, &sha))
                    .await
                    .map_err(Stop::from)?;
                job.tracker.part_verified(job.id, index, bytes);
                handoff.ready(index);
                return Ok(());
            }
            Err(Check::Short) => {
                last_error = "the server sent less than the region list says".into();
            }
            Err(Check::Corrupt(why)) => {
                tracing::warn!("region {}: part {index}: {why}; fetching it again", job.id);
                remove(&path);
                job.tracker.part_bytes(job.id, index, 0, 0);
                last_error = why;
            }
        }
        if sleep_or_stop(cancel, backoff(attempt, None)).await {
            return Err(Stop::Cancelled);
        }
    }
    Err(Stop::Failed(format!(
        "part {} of {} kept failing ({last_error}); try again later",
        index + 1,
        job.entry.parts.len()
    )))
}

enum FetchFailure {
    Fetch(FetchError),
    Stop(Stop),
}

impl From<Interrupt> for FetchFailure {
    fn from(i: Interrupt) -> Self {
        match i {
            Interrupt::Cancelled => FetchFailure::Stop(Stop::Cancelled),
            Interrupt::Failed(e) => FetchFailure::Fetch(e),
        }
    }
}

/// Fetches `url` into `path`, continuing from byte `have` when the server agrees.
async fn fetch_into<F: Fetcher>(
    job: &Job<'_, F>,
    index: usize,
    url: &str,
    path: &Path,
    have: u64,
    cancel: &CancellationToken,
) -> Result<(), FetchFailure> {
    let (fetched, mut body) = transfer::request(job.fetcher, url, have, job.floor, cancel).await?;
    if job.entry.total_bytes().is_none()
        && let Some(total) = fetched.total
    {
        check_room_by_estimate(job, total).map_err(FetchFailure::Stop)?;
    }
    let write_error = |e: std::io::Error| {
        FetchFailure::Stop(if is_disk_full(&e) {
            Stop::NoRoom(DISK_FULL.into())
        } else {
            Stop::Failed(format!("cannot write the download: {e}"))
        })
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(fetched.starts_at > 0)
        .truncate(fetched.starts_at == 0)
        .open(path)
        .await
        .map_err(write_error)?;
    // A server that sends the whole file again starts this part over.
    let mut on_disk = fetched.starts_at;
    let limit = PartLimit::new(index, job.entry.parts[index].bytes);
    job.tracker.part_bytes(job.id, index, on_disk, 0);
    loop {
        let chunk = match body.next(cancel).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(interrupt) => {
                // Nothing of this part may still be written once the download has returned.
                file.flush().await.map_err(write_error)?;
                return Err(interrupt.into());
            }
        };
        let n = chunk.len() as u64;
        if let Err(stop) = limit.check(on_disk, n) {
            // The last write finishes before the oversized part is removed.
            file.flush().await.map_err(write_error)?;
            drop(file);
            remove(path);
            return Err(FetchFailure::Stop(stop));
        }
        file.write_all(&chunk).await.map_err(write_error)?;
        on_disk += n;
        job.tracker.part_bytes(job.id, index, on_disk, n);
    }
    file.flush().await.map_err(write_error)?;
    file.sync_all().await.map_err(write_error)?;
    Ok(())
}

/// A region list without sizes says nothing of how big a region is, but `region pack` cuts
/// a region in parts of one size (the last one shorter): the first part's size times the
/// parts not yet on disk is about what is still to come. Checked once per download, before
/// the first part is written, with the same margin as when the sizes are known.
fn check_room_by_estimate<F: Fetcher>(job: &Job<'_, F>, part_bytes: u64) -> Result<(), Stop> {
    if job.room_checked.swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    let missing = (0..job.entry.parts.len())
        .filter(|&i| !part_path(job.dir, i).exists())
        .count() as u64;
    disk::ensure_room(job.disk_root, part_bytes * missing * disk::INSTALL_FACTOR)
        .map_err(Stop::NoRoom)
}

enum Check {
    Short,
    Corrupt(String),
}

/// Checks a downloaded part against the manifest; returns its size and sha256.
fn verify(path: &Path, bytes: Option<u64>, sha256: Option<&str>) -> Result<(u64, String), Check> {
    let size = std::fs::metadata(path)
        .map_err(|e| Check::Corrupt(format!("cannot read the part: {e}")))?
        .len();
    if let Some(expected) = bytes {
        if size < expected {
            return Err(Check::Short);
        }
        if size > expected {
            return Err(Check::Corrupt(format!(
                "{size} bytes where the region list says {expected}"
            )));
        }
    }
    let actual = sha256_of(path).map_err(|e| Check::Corrupt(e.to_string()))?;
    match sha256 {
        Some(expected) if expected != actual => Err(Check::Corrupt(
            "its checksum does not match the region list".into(),
        )),
        _ => Ok((size, actual)),
    }
}

pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
}

/// How long to wait before try `attempt + 1`: the server's advice, or exponential with jitter.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let base_ms: u64 = std::env::var(RETRY_BASE_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let exponential = Duration::from_millis(base_ms.saturating_mul(1u64 << attempt.min(16)));
    let jitter = rand::rng().random_range(0.5..1.5);
    retry_after
        .unwrap_or_else(|| exponential.mul_f64(jitter))
        .min(MAX_BACKOFF)
}
