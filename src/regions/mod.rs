//! Region downloads, installs and deletions, supervised in the background.
//!
//! Handlers only put requests in the persistent [`queue`] and read status; one supervisor
//! task owns all the work: it starts downloads (a few regions at once, parts fetched over a
//! bounded number of connections, each region installed alongside its download), runs
//! deletions, and never lets a delete and a download of the same region run together.
//! Everything it needs to continue after a restart is in the queue and the data directory.

pub mod disk;
pub mod download;
pub mod fetcher;
pub mod gate;
pub mod http;
pub mod install;
pub mod manifest;
pub mod pack;
pub mod progress;
pub mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

use self::download::{CancelFlag, Stop};
use self::fetcher::{DirectFetcher, FetchError, Fetcher};
use self::manifest::Manifest;
use self::progress::{Progress, Tracker};
use self::queue::{Action, Queue};
use crate::app::SharedState;
use crate::error::{AppError, Result};
use crate::layout::Layout;
use crate::tile_id::TileId;

/// Regions downloading at the same time.
const PARALLEL_REGIONS: usize = 2;
/// HTTP connections to the map server, over all regions.
const CONNECTIONS: usize = 4;

/// Where the region list stands (`available-areas-status`).
#[derive(Clone, Debug, Default)]
struct ManifestState {
    status: &'static str,
    error: Option<String>,
}

pub struct Regions {
    layout: Layout,
    base_url: String,
    version: String,
    queue: Queue,
    fetcher: DirectFetcher,
    manifest: RwLock<Option<Arc<Manifest>>>,
    manifest_state: Mutex<ManifestState>,
    tracker: Tracker,
    /// Regions with work under way, and the flag that stops a download.
    running: Mutex<HashMap<TileId, (Action, CancelFlag)>>,
    connections: Semaphore,
    wake: Notify,
}

impl Regions {
    pub fn open(layout: &Layout, map_data_url: &str) -> Result<Regions> {
        let base_url = if map_data_url.ends_with('/') {
            map_data_url.to_string()
        } else {
            format!("{map_data_url}/")
        };
        let version = manifest::version_of(&base_url);
        let cached = std::fs::read(layout.manifest_file(&version))
            .ok()
            .and_then(|bytes| Manifest::parse(&bytes).ok())
            .map(Arc::new);
        Ok(Regions {
            layout: layout.clone(),
            base_url,
            version,
            queue: Queue::open(&layout.regions_db())?,
            fetcher: DirectFetcher::default(),
            manifest: RwLock::new(cached),
            manifest_state: Mutex::new(ManifestState::default()),
            tracker: Tracker::default(),
            running: Mutex::new(HashMap::new()),
            connections: Semaphore::new(CONNECTIONS),
            wake: Notify::new(),
        })
    }

    fn manifest(&self) -> Option<Arc<Manifest>> {
        self.manifest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<TileId, (Action, CancelFlag)>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the supervisor; called once the server is about to answer.
    pub fn start(&self, state: SharedState) {
        tokio::spawn(async move {
            let regions = &state.regions;
            if let Err(e) = regions.clean_up_interrupted(&state).await {
                tracing::error!("cleaning up interrupted installs: {e}");
            }
            loop {
                // Register interest before looking, so a wake-up between the two is not lost.
                let notified = regions.wake.notified();
                if let Err(e) = regions.dispatch(&state) {
                    tracing::error!("reading the download queue: {e}");
                }
                notified.await;
            }
        });
    }

    /// Starts whatever queued work may start now.
    fn dispatch(&self, state: &SharedState) -> Result<()> {
        for job in self.queue.jobs()? {
            if job.failed.is_some() {
                continue;
            }
            let mut running = self.running();
            if let Some((action, cancel)) = running.get(&job.tile_id) {
                if *action == Action::Download && job.action == Action::Delete {
                    cancel.store(true, Ordering::Relaxed);
                }
                continue;
            }
            let downloads = running
                .values()
                .filter(|(a, _)| *a == Action::Download)
                .count();
            if job.action == Action::Download && downloads >= PARALLEL_REGIONS {
                continue;
            }
            let cancel: CancelFlag = Arc::new(AtomicBool::new(false));
            running.insert(job.tile_id.clone(), (job.action, cancel.clone()));
            drop(running);
            let state = state.clone();
            tokio::spawn(async move {
                let id = job.tile_id;
                match job.action {
                    Action::Download => state.regions.run_download(&state, &id, &cancel).await,
                    Action::Delete => state.regions.run_delete(&state, &id).await,
                }
                state.regions.running().remove(&id);
                state.regions.wake.notify_one();
            });
        }
        Ok(())
    }

    async fn run_download(&self, state: &SharedState, id: &TileId, cancel: &AtomicBool) {
        match self.download_and_install(state, id, cancel).await {
            Ok(()) => {
                tracing::info!("region {id} installed");
                self.tracker.remove(id);
                if let Err(e) = self.queue.finish(id, Action::Download) {
                    tracing::error!("region {id}: {e}");
                }
            }
            Err(Stop::Cancelled) => {
                tracing::info!("region {id}: download stopped for a deletion");
                self.tracker.remove(id);
            }
            Err(Stop::NoRoom(message)) => {
                tracing::error!("region {id} does not fit: {message}");
                // Kept, the parts would hold the space the grain needs for anything else.
                // The download has returned, so none of its writes is still running.
                let dir = self.layout.big_tmp_dir().join(id.as_str());
                if let Err(e) = std::fs::remove_dir_all(&dir)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::error!("region {id}: cannot remove its partial download: {e}");
                }
                if let Err(e) = self.queue.forget_parts(id) {
                    tracing::error!("region {id}: {e}");
                }
                self.tracker.fail(id, &message);
                if let Err(e) = self.queue.fail(id, &message) {
                    tracing::error!("region {id}: {e}");
                }
            }
            Err(Stop::Failed(message)) => {
                tracing::error!("region {id} failed: {message}");
                self.tracker.fail(id, &message);
                if let Err(e) = self.queue.fail(id, &message) {
                    tracing::error!("region {id}: {e}");
                }
            }
        }
    }

    async fn download_and_install(
        &self,
        state: &SharedState,
        id: &TileId,
        cancel: &AtomicBool,
    ) -> std::result::Result<(), Stop> {
        if self.layout.installed_regions().contains(id) {
            return Ok(());
        }
        let manifest = self.manifest().ok_or_else(|| {
            Stop::Failed("the region list is not available; fetch it again".into())
        })?;
        let entry = manifest
            .get(id)
            .ok_or_else(|| Stop::Failed("this region is no longer in the region list".into()))?;
        let dir = self.layout.big_tmp_dir().join(id.as_str());
        let known_bytes = entry.bytes.as_ref().map(|b| b.iter().sum::<u64>());
        if let Some(bytes) = known_bytes {
            // The parts, the unpacked tiles and the search rows: about three times the parts.
            disk::ensure_room(
                self.layout.root(),
                bytes.saturating_mul(disk::INSTALL_FACTOR),
            )
            .map_err(Stop::NoRoom)?;
        }
        self.tracker.start(id, entry.files.len(), known_bytes);
        // The install unpacks each part as soon as it is verified, alongside the download.
        let gate = Arc::new(gate::PartGate::new(entry.files.len()));
        let abandon = Arc::new(AtomicBool::new(false));
        let parts: Vec<_> = (0..entry.files.len())
            .map(|i| download::part_path(&dir, i))
            .collect();
        let installing = {
            let (layout, search, id, dir) = (
                self.layout.clone(),
                state.search.clone(),
                id.clone(),
                dir.clone(),
            );
            let (st, gate, abandon) = (state.clone(), gate.clone(), abandon.clone());
            tokio::task::spawn_blocking(move || {
                let result = install::install(
                    &layout,
                    &search,
                    &id,
                    parts,
                    &|i| gate.wait(i),
                    &dir,
                    &mut |step| {
                        st.regions.tracker.update(&id, |p| match step {
                            install::Step::SearchSize(n) => p.search_import_total = n,
                            install::Step::SearchRead(n) => p.search_import_done += n,
                        })
                    },
                );
                if result.is_err() && !gate.is_closed() {
                    abandon.store(true, Ordering::Relaxed);
                }
                result
            })
        };
        let job = download::Job {
            fetcher: &self.fetcher,
            base_url: &self.base_url,
            id,
            entry,
            dir: &dir,
            queue: &self.queue,
            tracker: &self.tracker,
            connections: &self.connections,
            cancel,
            abandon: &abandon,
            gate: &gate,
            disk_root: self.layout.root(),
            room_checked: &AtomicBool::new(false),
            halted: download::Halt::default(),
        };
        let downloading = download::download(&job);
        let mut installing = installing;
        tokio::pin!(downloading);
        let (downloaded, installed) = tokio::select! {
            downloaded = &mut downloading => {
                if downloaded.is_err() {
                    gate.close();
                } else {
                    self.tracker.update(id, |p| p.phase = "installing");
                }
                (downloaded, (&mut installing).await)
            }
            installed = &mut installing => {
                // The install can only succeed once every part is in; if it failed, the parts
                // still on the way (maybe held by a slow server) are not worth waiting for.
                let failed = !matches!(installed, Ok(Ok(_)));
                let downloaded = if failed {
                    abandon.store(true, Ordering::Relaxed);
                    Err(Stop::Failed("the install failed".into()))
                } else {
                    downloading.await
                };
                (downloaded, installed)
            }
        };
        let installed = installed
            .map_err(|e| Stop::Failed(format!("the install stopped unexpectedly: {e}")))
            .and_then(|r| r);
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled);
        }
        // A failed install stops the download; otherwise the download's own failure is why.
        if !abandon.load(Ordering::Relaxed) {
            downloaded?;
        }
        let report = installed?;
        if report.bad_rows > 0 {
            tracing::warn!(
                "region {id}: {} malformed search rows skipped",
                report.bad_rows
            );
        }
        state.tiles.refresh().await;
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = self.queue.forget_parts(id) {
            tracing::warn!("region {id}: {e}");
        }
        Ok(())
    }

    /// Removes a region: tiles first (so it leaves the map at once), then its search rows,
    /// then its marker and any download leftovers.
    async fn run_delete(&self, state: &SharedState, id: &TileId) {
        let result = self.delete_files(state, id).await;
        self.tracker.remove(id);
        match result {
            Ok(()) => {
                tracing::info!("region {id} deleted");
                if let Err(e) = self.queue.finish(id, Action::Delete) {
                    tracing::error!("region {id}: {e}");
                }
            }
            Err(e) => {
                tracing::error!("region {id}: deleting failed: {e}");
                let _ = self.queue.fail(id, &format!("deleting failed: {e}"));
            }
        }
    }

    async fn delete_files(&self, state: &SharedState, id: &TileId) -> Result<()> {
        remove_if_present(&self.layout.tiles_file(id))?;
        state.tiles.refresh().await;
        let search = state.search.clone();
        let id2 = id.clone();
        crate::task::blocking(move || search.delete_region(&id2)).await?;
        remove_if_present(&self.layout.installed_marker(id))?;
        let dir = self.layout.big_tmp_dir().join(id.as_str());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        self.queue.forget_parts(id)?;
        Ok(())
    }

    /// An install cut off by a crash (this version's or the previous one's) leaves a tiles
    /// file without its marker, maybe search rows, and files in big_tmp: all removed here,
    /// except what a queued download will resume from.
    async fn clean_up_interrupted(&self, state: &SharedState) -> Result<()> {
        let queued: Vec<TileId> = self
            .queue
            .jobs()?
            .into_iter()
            .filter(|j| j.action == Action::Download)
            .map(|j| j.tile_id)
            .collect();
        let installed = self.layout.installed_regions();
        for entry in std::fs::read_dir(self.layout.tiles_dir())?.flatten() {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pmtiles"))
                .and_then(TileId::parse)
            else {
                continue;
            };
            if installed.contains(&id) || id.as_str() == crate::tile_id::BASE_MAP {
                continue;
            }
            tracing::info!("region {id}: removing an interrupted install");
            remove_if_present(&entry.path())?;
            let search = state.search.clone();
            crate::task::blocking(move || search.delete_region(&id)).await?;
        }
        for entry in std::fs::read_dir(self.layout.big_tmp_dir())?.flatten() {
            let keep = entry
                .file_name()
                .to_str()
                .and_then(TileId::parse)
                .is_some_and(|id| queued.contains(&id));
            if !keep {
                let path = entry.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = removed {
                    tracing::warn!("cannot remove {}: {e}", path.display());
                }
            }
        }
        Ok(())
    }

    /// Fetches the region list in the background (`POST /app/download-manifest`).
    pub fn request_manifest(&self, state: SharedState) {
        {
            let mut m = self
                .manifest_state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if m.status == "started" {
                return;
            }
            *m = ManifestState {
                status: "started",
                error: None,
            };
        }
        tokio::spawn(async move {
            let regions = &state.regions;
            let result = regions.fetch_manifest().await;
            let mut m = regions
                .manifest_state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *m = match result {
                Ok(count) => {
                    tracing::info!("region list fetched: {count} regions");
                    ManifestState::default()
                }
                Err(message) => {
                    tracing::error!("region list: {message}");
                    ManifestState {
                        status: "error",
                        error: Some(message),
                    }
                }
            };
        });
    }

    async fn fetch_manifest(&self) -> std::result::Result<usize, String> {
        let url = format!("{}manifest.json", self.base_url);
        let mut last = String::new();
        for attempt in 0..3u32 {
            match self.fetch_manifest_once(&url).await {
                Ok(n) => return Ok(n),
                Err(FetchError::Permanent(m)) => return Err(m),
                Err(FetchError::Transient { message, .. }) => last = message,
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
        }
        Err(format!("{last}; try again later"))
    }

    async fn fetch_manifest_once(&self, url: &str) -> std::result::Result<usize, FetchError> {
        use futures_util::StreamExt;
        const MAX_MANIFEST: usize = 16 * 1024 * 1024;
        let fetched = self.fetcher.get(url, 0).await?;
        let mut body = fetched.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
            if bytes.len() > MAX_MANIFEST {
                return Err(FetchError::Permanent("the region list is too large".into()));
            }
        }
        let manifest = Manifest::parse(&bytes).map_err(FetchError::Permanent)?;
        let count = manifest.regions.len();
        crate::atomic_file::write_atomically(&self.layout.manifest_file(&self.version), &bytes)
            .map_err(|e| FetchError::Permanent(format!("cannot keep the region list: {e}")))?;
        *self.manifest.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(manifest));
        Ok(count)
    }

    /// Queues a download (`POST /app/download-map`).
    pub fn request_download(&self, id: &TileId) -> Result<()> {
        let manifest = self.manifest().ok_or_else(|| {
            AppError::Conflict(
                "The region list has not been fetched yet; fetch it first, then pick a region."
                    .into(),
            )
        })?;
        if manifest.get(id).is_none() {
            return Err(AppError::NotFound(format!(
                "There is no region {id} in the region list."
            )));
        }
        if self.layout.installed_regions().contains(id) {
            return Ok(());
        }
        if let Some(job) = self.queue.job(id)?
            && job.action == Action::Download
            && job.failed.is_none()
        {
            return Ok(());
        }
        self.tracker.remove(id);
        self.queue.put(id, Action::Download)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Queues a deletion (`POST /app/map-delete`); `None` means every region.
    pub fn request_delete(&self, id: Option<&TileId>) -> Result<()> {
        let targets: Vec<TileId> = match id {
            Some(id) => vec![id.clone()],
            None => {
                let mut all = self.layout.installed_regions();
                all.extend(self.queue.jobs()?.into_iter().map(|j| j.tile_id));
                all.extend(self.running().keys().cloned());
                all.retain(|id| id.as_str() != crate::tile_id::BASE_MAP);
                all.sort();
                all.dedup();
                all
            }
        };
        for id in targets {
            if id.as_str() == crate::tile_id::BASE_MAP {
                return Err(AppError::BadRequest(
                    "The base map is part of the app and cannot be deleted.".into(),
                ));
            }
            self.queue.put(&id, Action::Delete)?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The download part of the status answer (CONTRACT §2).
    pub fn status_json(&self) -> Value {
        let manifest_state = self
            .manifest_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let jobs = self.queue.jobs().unwrap_or_else(|e| {
            tracing::error!("reading the download queue: {e}");
            Vec::new()
        });
        let running = self.running().clone();
        let mut in_progress = self.tracker.snapshot();
        let mut queued_download = Vec::new();
        let mut queued_delete = Vec::new();
        for job in &jobs {
            match (job.action, &job.failed) {
                (Action::Download, Some(message)) => {
                    in_progress
                        .entry(job.tile_id.clone())
                        .or_insert_with(|| Progress::failed(message));
                }
                (Action::Download, None) if !running.contains_key(&job.tile_id) => {
                    queued_download.push(job.tile_id.to_string());
                }
                (Action::Delete, _) => queued_delete.push(job.tile_id.to_string()),
                _ => {}
            }
        }
        let done: Vec<String> = self
            .layout
            .installed_regions()
            .into_iter()
            .filter(|id| id.as_str() != crate::tile_id::BASE_MAP)
            .map(|id| id.to_string())
            .collect();
        json!({
            "available-areas": self.manifest().map(|m| m.areas_json()),
            "available-areas-bytes": self.manifest().map(|m| m.sizes_json()),
            "available-areas-status": manifest_state.status,
            "available-areas-error": manifest_state.error,
            "in-progress": in_progress
                .into_iter()
                .map(|(id, p)| (id.to_string(), json!(p)))
                .collect::<serde_json::Map<String, Value>>(),
            "queued-for-download": queued_download,
            "queued-for-deletion": queued_delete,
            "done": done,
        })
    }
}

fn remove_if_present(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
