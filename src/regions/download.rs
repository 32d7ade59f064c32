//! Downloading a region's parts: concurrently (bounded by one semaphore for the whole
//! program), resuming a part cut off mid-way with a Range request, retrying what may work
//! later with exponential backoff and jitter, and verifying each part's size and checksum
//! before it counts. Verified parts are recorded in the queue, so a restart skips them, and
//! announced on the region's [`PartGate`], so the install running alongside can unpack them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore};

use super::disk;
use super::fetcher::{FetchError, Fetcher};
use super::gate::PartGate;
use super::manifest::RegionEntry;
use super::part_limit::PartLimit;
use super::progress::Tracker;
use super::queue::Queue;
use crate::error::{DISK_FULL, is_disk_full};
use crate::tile_id::TileId;

/// Tries per part before the region fails.
const MAX_ATTEMPTS: u32 = 6;
/// Longest wait between tries, whatever the server asks.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Sets the first backoff in milliseconds (tests make it small).
pub const RETRY_BASE_ENV: &str = "DESERT_ATLAS_RETRY_BASE_MS";

/// Why a download stopped.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// A delete asked for this region; nothing is wrong.
    Cancelled,
    /// The region failed; the message is for the user.
    Failed(String),
    /// The region does not fit on the disk (refused beforehand, or the disk filled up); the
    /// message is for the user. Its partial download is removed rather than kept for a
    /// retry: it holds space the grain needs.
    NoRoom(String),
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
    pub cancel: &'a AtomicBool,
    /// Set when the install running alongside failed: the rest is not worth fetching.
    pub abandon: &'a AtomicBool,
    /// Where each part is announced once verified, for the install running alongside.
    pub gate: &'a PartGate,
    /// Where the free space is asked.
    pub disk_root: &'a Path,
    /// Set once the region's size was estimated and found to fit (region lists without
    /// sizes; see [`check_room_by_estimate`]).
    pub room_checked: &'a AtomicBool,
    /// Set when a part failed: the others stop at their next step (see [`download`]).
    pub halted: Halt,
}

/// Tells the parts still running that one failed, waking those waiting to try again.
#[derive(Default)]
pub struct Halt {
    set: AtomicBool,
    wake: Notify,
}

impl Halt {
    fn set(&self) {
        self.set.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Waits `wait`, or less if the download halts meanwhile.
    async fn sleep(&self, wait: Duration) {
        // Created before the check, so a halt in between still wakes it.
        let woken = self.wake.notified();
        if !self.is_set() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = woken => {}
            }
        }
    }
}

impl<F: Fetcher> Job<'_, F> {
    /// Why to stop now, if there is a reason.
    fn stopped(&self) -> Option<Stop> {
        if self.cancel.load(Ordering::Relaxed) {
            Some(Stop::Cancelled)
        } else if self.abandon.load(Ordering::Relaxed) {
            Some(Stop::Failed("the install failed".into()))
        } else if self.halted.is_set() {
            Some(Stop::Failed("another part failed".into()))
        } else {
            None
        }
    }
}

pub fn part_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("part.{index:05}"))
}

/// Downloads every part into `dir`; returns their paths in order.
///
/// When a part fails, the others are told to stop and waited for rather than dropped: a
/// part dropped mid-write would leave its last write finishing on the blocking pool, after
/// the caller has moved on to removing the folder. So when this returns, no file operation
/// of the download is still running.
pub async fn download<F: Fetcher>(job: &Job<'_, F>) -> Result<Vec<PathBuf>, Stop> {
    tokio::fs::create_dir_all(job.dir)
        .await
        .map_err(|e| Stop::Failed(format!("cannot create the download folder: {e}")))?;
    let verified = job.queue.verified_parts(job.id).map_err(Stop::from)?;
    let indices: Vec<usize> = (0..job.entry.parts.len()).collect();
    let mut parts = futures_util::stream::iter(indices)
        .map(|i| {
            let already = verified.get(&i).cloned();
            async move { fetch_part(job, i, already).await }
        })
        .buffer_unordered(4);
    let mut first_failure = None;
    while let Some(result) = parts.next().await {
        if let Err(stop) = result
            && first_failure.is_none()
        {
            job.halted.set();
            first_failure = Some(stop);
        }
    }
    if let Some(stop) = first_failure {
        return Err(stop);
    }
    Ok((0..job.entry.parts.len())
        .map(|i| part_path(job.dir, i))
        .collect())
}

async fn fetch_part<F: Fetcher>(
    job: &Job<'_, F>,
    index: usize,
    already: Option<(u64, String)>,
) -> Result<(), Stop> {
    let path = part_path(job.dir, index);
    let size_on_disk = || std::fs::metadata(&path).map(|m| m.len()).ok();
    if let Some((bytes, _)) = &already
        && size_on_disk() == Some(*bytes)
    {
        job.tracker.update(job.id, |p| {
            p.download_done += 1;
            p.bytes_done += bytes;
        });
        job.gate.ready(index);
        return Ok(());
    }
    let part = &job.entry.parts[index];
    let (expected_bytes, expected_sha) = (part.bytes, part.sha256.clone());
    let url = format!("{}{}", job.base_url, part.file);
    let mut last_error = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(stop) = job.stopped() {
            return Err(stop);
        }
        let mut have = size_on_disk().unwrap_or(0);
        if expected_bytes.is_some_and(|e| have > e) {
            remove(&path);
            have = 0;
        }
        let complete = expected_bytes.is_some_and(|e| have == e);
        if !complete {
            let permit = job
                .connections
                .acquire()
                .await
                .map_err(|_| Stop::Failed("downloads are shutting down".into()))?;
            let limit = PartLimit::new(index, expected_bytes);
            let result = fetch_into(job, &url, &path, have, limit).await;
            drop(permit);
            match result {
                Ok(()) => {}
                Err(FetchFailure::Stop(stop)) => return Err(stop),
                Err(FetchFailure::Fetch(FetchError::Permanent(message))) => {
                    return Err(Stop::Failed(message));
                }
                Err(FetchFailure::Fetch(FetchError::Transient {
                    message,
                    retry_after,
                })) => {
                    tracing::warn!("region {}: part {index}: {message}; retrying", job.id);
                    last_error = message;
                    job.halted.sleep(backoff(attempt, retry_after)).await;
                    continue;
                }
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
                job.queue
                    .mark_verified(job.id, index, bytes, &sha)
                    .map_err(Stop::from)?;
                job.tracker.update(job.id, |p| p.download_done += 1);
                job.gate.ready(index);
                return Ok(());
            }
            Err(Check::Short) => {
                last_error = "the server sent less than the region list says".into();
            }
            Err(Check::Corrupt(why)) => {
                tracing::warn!("region {}: part {index}: {why}; fetching it again", job.id);
                remove(&path);
                last_error = why;
            }
        }
        job.halted.sleep(backoff(attempt, None)).await;
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

/// Fetches `url` into `path`, continuing from byte `have` when the server agrees.
async fn fetch_into<F: Fetcher>(
    job: &Job<'_, F>,
    url: &str,
    path: &Path,
    have: u64,
    limit: PartLimit,
) -> Result<(), FetchFailure> {
    let fetched = job
        .fetcher
        .get(url, have)
        .await
        .map_err(FetchFailure::Fetch)?;
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
    if fetched.starts_at == 0 && have > 0 {
        // The server sent the whole file again: count only what is new.
        job.tracker
            .update(job.id, |p| p.bytes_done = p.bytes_done.saturating_sub(have));
    }
    let mut body = fetched.body;
    let mut written = fetched.starts_at;
    while let Some(chunk) = body.next().await {
        if let Some(stop) = job.stopped() {
            // Nothing of this part may still be written once the download has returned.
            file.flush().await.map_err(write_error)?;
            return Err(FetchFailure::Stop(stop));
        }
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                file.flush().await.map_err(write_error)?;
                return Err(FetchFailure::Fetch(e));
            }
        };
        let n = chunk.len() as u64;
        if let Err(stop) = limit.check(written, n) {
            // The last write finishes before the oversized part is removed.
            file.flush().await.map_err(write_error)?;
            drop(file);
            remove(path);
            return Err(FetchFailure::Stop(stop));
        }
        written += n;
        file.write_all(&chunk).await.map_err(write_error)?;
        job.tracker.update(job.id, |p| p.bytes_done += n);
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

/// Waits before try `attempt + 1`: the server's Retry-After when it gave one, else
/// exponential backoff from the base delay, with jitter so parts do not retry in step.
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

/// Shared flag a delete sets to stop a running download of the same region.
pub type CancelFlag = Arc<AtomicBool>;
