//! What the status answer shows of each region being downloaded: parts, bytes, rate, import
//! progress and a readable error. Keys as the existing web client reads them (docs/api.md §2).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::tile_id::TileId;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub download_done: usize,
    pub download_total: usize,
    pub download_error: bool,
    pub search_import_done: u64,
    pub search_import_total: u64,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub bytes_per_second: u64,
    /// "downloading", "installing" or "failed".
    pub phase: &'static str,
    pub error: Option<String>,
    #[serde(skip)]
    started: Instant,
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
            started: Instant::now(),
        }
    }

    pub fn failed(message: &str) -> Progress {
        let mut p = Progress::new(0, None);
        p.fail(message);
        p
    }

    pub fn fail(&mut self, message: &str) {
        self.download_error = true;
        self.phase = "failed";
        self.error = Some(message.to_string());
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

    pub fn start(&self, id: &TileId, parts: usize, bytes_total: Option<u64>) {
        self.lock()
            .insert(id.clone(), Progress::new(parts, bytes_total));
    }

    pub fn update(&self, id: &TileId, change: impl FnOnce(&mut Progress)) {
        if let Some(p) = self.lock().get_mut(id) {
            change(p);
            let secs = p.started.elapsed().as_secs_f64();
            if secs > 0.0 {
                p.bytes_per_second = (p.bytes_done as f64 / secs) as u64;
            }
        }
    }

    pub fn fail(&self, id: &TileId, message: &str) {
        self.lock()
            .entry(id.clone())
            .or_insert_with(|| Progress::new(0, None))
            .fail(message);
    }

    pub fn remove(&self, id: &TileId) {
        self.lock().remove(id);
    }

    pub fn snapshot(&self) -> BTreeMap<TileId, Progress> {
        self.lock().clone()
    }
}
