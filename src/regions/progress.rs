//! What the status answer shows of each region being downloaded: parts, bytes, rate, import
//! progress and a readable error. Keys as the existing web client reads them (docs/api.md §2),
//! plus `units`, which says what each count counts.
//!
//! A part may be fetched more than once (a retry, a resumed part the server sends whole
//! again, a corrupt part thrown away), so the bytes are kept per part and the figures shown
//! are derived: they never go backwards and never pass their totals.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::tile_id::TileId;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Parts verified (docs/api.md §2: counts parts).
    pub download_done: usize,
    pub download_total: usize,
    pub download_error: bool,
    /// Search rows imported, of the rows in the region's archive.
    pub search_import_done: u64,
    pub search_import_total: u64,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub bytes_per_second: u64,
    /// "downloading", "installing" or "failed".
    pub phase: &'static str,
    pub error: Option<String>,
    /// `access-needed` or `access-withdrawn` when the download failed for want of the user's
    /// grant to the map-data server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_key: Option<&'static str>,
    pub units: Value,
    #[serde(skip)]
    started: Instant,
    /// Bytes on disk per part, as last seen.
    #[serde(skip)]
    part_bytes: BTreeMap<usize, u64>,
    #[serde(skip)]
    verified: BTreeSet<usize>,
    /// Bytes received since this download started (for the rate).
    #[serde(skip)]
    received: u64,
}

impl Progress {
    pub fn new(parts: usize, bytes_total: Option<u64>) -> Progress {
        Progress {
            download_done: 0,
            download_total: parts,
            download_error: false,
            search_import_done: 0,
            search_import_total: 0,
            bytes_done: 0,
            bytes_total,
            bytes_per_second: 0,
            phase: "downloading",
            error: None,
            error_key: None,
            units: json!({"download": "parts", "bytes": "bytes", "searchImport": "rows"}),
            started: Instant::now(),
            part_bytes: BTreeMap::new(),
            verified: BTreeSet::new(),
            received: 0,
        }
    }

    /// A failure read back from the queue: `key` says what the page can do about it.
    pub fn failed(message: &str, key: Option<&'static str>) -> Progress {
        let mut p = Progress::new(0, None);
        p.fail(message);
        p.error_key = key;
        p
    }

    pub fn fail(&mut self, message: &str) {
        self.download_error = true;
        self.phase = "failed";
        self.error = Some(message.to_string());
    }

    /// Part `index` now has `bytes` on disk (`received` of them new from the network).
    fn part_bytes(&mut self, index: usize, bytes: u64, received: u64) {
        self.part_bytes.insert(index, bytes);
        self.received += received;
        let sum: u64 = self.part_bytes.values().sum();
        let capped = self.bytes_total.map_or(sum, |total| sum.min(total));
        self.bytes_done = self.bytes_done.max(capped);
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.bytes_per_second = (self.received as f64 / secs) as u64;
        }
    }

    fn part_verified(&mut self, index: usize, bytes: u64) {
        self.part_bytes(index, bytes, 0);
        if index < self.download_total {
            self.verified.insert(index);
        }
        self.download_done = self.download_done.max(self.verified.len());
    }

    fn search_rows(&mut self, rows: u64) {
        self.search_import_total = rows;
        self.search_import_done = self.search_import_done.min(rows);
    }

    fn search_imported(&mut self, rows: u64) {
        self.search_import_done = self
            .search_import_done
            .max(rows.min(self.search_import_total));
    }
}

/// Progress of every region in work, shared by the download tasks and the status handler.
#[derive(Default)]
pub struct Tracker {
    regions: Mutex<BTreeMap<TileId, Progress>>,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TileId, Progress>> {
        self.regions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: &TileId, change: impl FnOnce(&mut Progress)) {
        if let Some(p) = self.lock().get_mut(id) {
            change(p);
        }
    }

    pub fn start(&self, id: &TileId, parts: usize, bytes_total: Option<u64>) {
        self.lock()
            .insert(id.clone(), Progress::new(parts, bytes_total));
    }

    /// Part `index` of `id` has `bytes` on disk, `received` of them just now.
    pub fn part_bytes(&self, id: &TileId, index: usize, bytes: u64, received: u64) {
        self.update(id, |p| p.part_bytes(index, bytes, received));
    }

    /// Part `index` of `id` is complete and verified (`bytes` long).
    pub fn part_verified(&self, id: &TileId, index: usize, bytes: u64) {
        self.update(id, |p| p.part_verified(index, bytes));
    }

    pub fn installing(&self, id: &TileId) {
        self.update(id, |p| p.phase = "installing");
    }

    /// The region's archive holds `rows` search rows.
    pub fn search_rows(&self, id: &TileId, rows: u64) {
        self.update(id, |p| p.search_rows(rows));
    }

    pub fn search_imported(&self, id: &TileId, rows: u64) {
        self.update(id, |p| p.search_imported(rows));
    }

    pub fn fail(&self, id: &TileId, message: &str) {
        self.lock()
            .entry(id.clone())
            .or_insert_with(|| Progress::new(0, None))
            .fail(message);
    }

    /// A failure the page can act on: `key` names what to do (ask for access again).
    pub fn fail_with_key(&self, id: &TileId, message: &str, key: &'static str) {
        let mut regions = self.lock();
        let p = regions
            .entry(id.clone())
            .or_insert_with(|| Progress::new(0, None));
        p.fail(message);
        p.error_key = Some(key);
    }

    pub fn remove(&self, id: &TileId) {
        self.lock().remove(id);
    }

    pub fn snapshot(&self) -> BTreeMap<TileId, Progress> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_never_go_backwards_nor_past_their_totals() {
        let mut p = Progress::new(2, Some(100));
        p.part_bytes(0, 40, 40);
        // Part 0 is thrown away (corrupt) and fetched again, whole.
        p.part_bytes(0, 0, 0);
        assert_eq!(p.bytes_done, 40, "never backwards");
        p.part_bytes(0, 50, 50);
        p.part_bytes(1, 50, 50);
        p.part_bytes(1, 70, 20);
        assert_eq!(p.bytes_done, 100, "never past the total");
        p.part_verified(0, 50);
        p.part_verified(0, 50);
        p.part_verified(7, 50);
        assert_eq!(
            p.download_done, 1,
            "a part counts once, and only a real one"
        );
        p.search_rows(10);
        p.search_imported(4);
        p.search_imported(3);
        assert_eq!(p.search_import_done, 4);
        p.search_imported(1000);
        assert_eq!(p.search_import_done, 10);
        let shown = serde_json::to_value(&p).unwrap();
        assert_eq!(shown["units"]["searchImport"], "rows");
        assert_eq!(shown["downloadDone"], 1);
    }
}
