//! Releasing the search readers' memory once searches stop.
//!
//! A search leaves its pages in the read connection's cache: worth keeping while a user types
//! one query after another, not while the grain sits idle in a browser tab. Searches come in
//! bursts, so the caches are emptied after [`QUIET`] without one; a grain at rest holds only
//! what it needs to answer (docs/performance.md: idle memory).

use std::time::Duration;

use super::SearchIndex;

/// How long without a search before the readers' caches are released.
pub const QUIET: Duration = Duration::from_secs(1);

/// Runs for as long as the process: after each burst of searches, once [`QUIET`] passes with
/// no search, releases the readers' memory.
pub async fn release_when_quiet(index: SearchIndex) {
    loop {
        index.read_done().await;
        loop {
            tokio::select! {
                () = index.read_done() => continue,
                () = tokio::time::sleep(QUIET) => break,
            }
        }
        let index = index.clone();
        let _ = tokio::task::spawn_blocking(move || index.release_read_memory()).await;
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

    #[tokio::test(start_paused = true)]
    async fn caches_are_released_once_searches_stop_and_kept_while_they_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let index = index_with_rows(dir.path());
        tokio::spawn(release_when_quiet(index.clone()));
        let search = |index: &SearchIndex| {
            let found = index.search("street", 10.0, 10.0).unwrap();
            assert_eq!(found.len(), 50);
        };

        search(&index);
        let filled = index.reader_cache_bytes();
        assert!(
            filled > 64 * 1024,
            "a search fills its reader's cache: {filled}"
        );
        // Searches closer together than QUIET keep the cache.
        for _ in 0..3 {
            tokio::time::sleep(QUIET / 2).await;
            search(&index);
            assert!(index.reader_cache_bytes() >= filled);
        }
        tokio::time::sleep(QUIET * 2).await;
        // The release runs on the blocking pool: give it real time to finish.
        // What stays is the cache's own bookkeeping, a few KiB.
        let released = |index: &SearchIndex| index.reader_cache_bytes() < 16 * 1024;
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
        // The next search still answers, reading its pages again.
        search(&index);
        assert!(!released(&index));
    }
}
