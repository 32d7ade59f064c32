//! Handing memory back once requests stop.
//!
//! A grain is used in bursts (someone pans the map, types a search) and then sits idle in a
//! browser tab. What a burst leaves behind is worth keeping while it goes on, not after: the
//! search readers' page caches and full chunk directories, and the heap's free memory (glibc
//! keeps what was freed for the next allocation). So after [`QUIET`] without a request, they
//! are released (docs/performance.md: idle memory); of the directories, a sample of every
//! 16th key stays, so that the first search after the pause need not read them all again
//! (docs/search.md). Counting a request costs one atomic increment; the waiting side only
//! wakes while requests come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::memory::trim_heap;
use crate::search::SearchIndex;

/// How long without a request before memory is released.
pub const QUIET: Duration = Duration::from_secs(1);

/// Counts requests and wakes the releasing task at the first one after a release.
#[derive(Default)]
pub struct Activity {
    requests: AtomicU64,
    /// The releasing task waits for a request (nothing to release until one comes).
    waiting: AtomicBool,
    wake: Notify,
}

impl Activity {
    /// Called for every request.
    pub fn touch(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.waiting.load(Ordering::Relaxed) && self.waiting.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }
}

/// Runs for as long as the process: after each burst of requests, once [`QUIET`] passes
/// without one, releases the search readers' memory, calls `also` (the merged tiles) and
/// trims the heap.
pub async fn release_when_quiet(
    activity: Arc<Activity>,
    search: SearchIndex,
    also: impl Fn() + Send + Sync + 'static,
) {
    let also = Arc::new(also);
    loop {
        activity.waiting.store(true, Ordering::Release);
        // A request between the store and this wait leaves a permit: no wake is lost.
        activity.wake.notified().await;
        loop {
            let seen = activity.requests.load(Ordering::Relaxed);
            tokio::time::sleep(QUIET).await;
            if activity.requests.load(Ordering::Relaxed) == seen {
                break;
            }
        }
        let (search, also) = (search.clone(), also.clone());
        let _ = tokio::task::spawn_blocking(move || {
            search.release_read_memory();
            also();
            trim_heap();
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile_id::TileId;

    fn index_with_rows(dir: &std::path::Path) -> SearchIndex {
        let index = SearchIndex::open(&dir.join("search.db")).unwrap();
        let mut csv = String::from("name,lat,lng\n");
        for i in 0..5_000 {
            csv.push_str(&format!("Street {i},{},{}\n", i % 80, i % 170));
        }
        let id = TileId::parse("region").unwrap();
        index
            .import_region(&id, &mut csv.as_bytes(), &mut |_| {})
            .unwrap();
        index
    }

    /// What stays after a release is the caches' own bookkeeping, a few KiB.
    fn released(index: &SearchIndex) -> bool {
        index.reader_cache_bytes() < 16 * 1024
    }

    /// Lets more than [`QUIET`] pass, then gives the release, which runs on the blocking
    /// pool, real time to finish.
    async fn wait_for_release(index: &SearchIndex) {
        tokio::time::sleep(QUIET * 3).await;
        for _ in 0..100 {
            if released(index) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn caches_are_released_once_requests_stop_and_kept_while_they_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_with_rows(dir.path());
        let activity = Arc::new(Activity::default());
        tokio::spawn(release_when_quiet(activity.clone(), index.clone(), || {}));
        // A search request, as the server sees it: counted, then answered.
        let search = |index: &SearchIndex| {
            activity.touch();
            let found = index.search("street", 10.0, 10.0).unwrap();
            assert_eq!(found.len(), 50);
        };

        tokio::task::yield_now().await;
        search(&index);
        let filled = index.reader_cache_bytes();
        assert!(
            filled > 64 * 1024,
            "a search fills its reader's cache: {filled}"
        );
        // Requests closer together than QUIET keep the cache.
        for _ in 0..3 {
            tokio::time::sleep(QUIET / 2).await;
            search(&index);
            assert!(index.reader_cache_bytes() >= filled);
        }
        tokio::time::sleep(QUIET * 3).await;
        // The release runs on the blocking pool: give it real time to finish.
        for _ in 0..100 {
            if released(&index) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
        assert!(
            released(&index),
            "{} of {filled} bytes",
            index.reader_cache_bytes()
        );
        // The next search answers the same, reading its pages again and walking the sampled
        // chunk directories the release kept, and is released again.
        assert!(index.directories_sampled());
        let before = index.search("street 4", 10.0, 10.0).unwrap();
        search(&index);
        assert!(!released(&index));
        index.restore_directories().unwrap();
        assert!(!index.directories_sampled());
        assert_eq!(index.search("street 4", 10.0, 10.0).unwrap(), before);
        wait_for_release(&index).await;
        assert!(released(&index));
    }
}
