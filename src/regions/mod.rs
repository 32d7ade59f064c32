//! Region downloads, installs and deletions, supervised in the background.
//!
//! Handlers only put requests in the persistent [`queue`] and read status; one supervisor
//! task ([`supervisor`]) owns all the work: it starts downloads (a few regions at once, parts
//! fetched over a bounded number of connections, each region installed alongside its
//! download), runs deletions, and never lets a delete and a download of the same region run
//! together. Everything it needs to continue after a restart is in the queue and the data
//! directory.
//!
//! Stopping is structured: the process's shutdown token is the root, `Regions` holds a child,
//! each region's work a child of that and each part a child of the region's. Cancelling a
//! token stops everything under it at its next wait, and the supervisor waits for its tasks,
//! so shutdown leaves no work behind and the queue as it was. Background work runs on the
//! runtime `Regions` was opened on, never on whichever serving loop took the request.
//!
//! `Regions` owns what it works with (the queue, the search index, the tile store), not the
//! whole application state.

pub mod disk;
pub mod download;
pub mod fetcher;
pub mod handoff;
pub mod http;
pub mod install;
pub mod manifest;
pub mod pack;
pub mod part_limit;
pub mod progress;
pub mod queue;
mod region_list;
pub mod spool;
mod supervisor;
pub mod transfer;
pub mod unpack_limits;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::fetcher::AnyFetcher;
use self::manifest::Manifest;
use self::progress::Tracker;
use self::queue::{Action, Queue};
use crate::error::{AppError, Result};
use crate::layout::Layout;
use crate::search::SearchIndex;
use crate::tile_id::TileId;
use crate::tiles::TileStore;

/// Regions downloading at the same time.
const PARALLEL_REGIONS: usize = 2;
/// HTTP connections to the map server, over all regions.
const CONNECTIONS: usize = 4;

/// What `Regions` works with and where it runs.
pub struct Dependencies {
    /// Straight to the map-data server (local mode) or through the Sandstorm bridge.
    pub fetcher: AnyFetcher,
    pub search: SearchIndex,
    pub tiles: Arc<TileStore>,
    /// The runtime background work runs on.
    pub runtime: Handle,
    /// Cancelled at shutdown; `Regions` works under a child of it.
    pub shutdown: CancellationToken,
}

/// Cheap to clone: every clone is the same regions.
#[derive(Clone)]
pub struct Regions {
    shared: Arc<Shared>,
}

struct Shared {
    layout: Layout,
    base_url: String,
    version: String,
    queue: Queue,
    fetcher: AnyFetcher,
    search: SearchIndex,
    tiles: Arc<TileStore>,
    runtime: Handle,
    shutdown: CancellationToken,
    /// Every task of the supervisor, so that shutdown can wait for them.
    tasks: TaskTracker,
    manifest: RwLock<Option<Arc<Manifest>>>,
    region_list: Mutex<region_list::Fetching>,
    tracker: Tracker,
    /// Regions with work under way, and the token that stops it.
    running: Mutex<HashMap<TileId, Running>>,
    connections: Semaphore,
    wake: Notify,
    /// Space held back so that deletes work on a full disk.
    reserve: disk::Reserve,
}

#[derive(Clone)]
struct Running {
    action: Action,
    stop: CancellationToken,
}

impl Shared {
    fn manifest(&self) -> Option<Arc<Manifest>> {
        self.manifest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<TileId, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Regions {
    pub fn open(layout: &Layout, map_data_url: &str, deps: Dependencies) -> Result<Regions> {
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
            shared: Arc::new(Shared {
                layout: layout.clone(),
                base_url,
                version,
                queue: Queue::open(&layout.regions_db())?,
                fetcher: deps.fetcher,
                search: deps.search,
                tiles: deps.tiles,
                runtime: deps.runtime,
                shutdown: deps.shutdown.child_token(),
                tasks: TaskTracker::new(),
                manifest: RwLock::new(cached),
                region_list: Mutex::new(region_list::Fetching::default()),
                tracker: Tracker::default(),
                running: Mutex::new(HashMap::new()),
                connections: Semaphore::new(CONNECTIONS),
                wake: Notify::new(),
                reserve: {
                    let reserve = disk::Reserve::new(layout.disk_reserve());
                    reserve.refill();
                    reserve
                },
            }),
        })
    }

    /// Starts the supervisor; called once the server is about to answer.
    pub fn start(&self) {
        supervisor::start(self.shared.clone());
    }

    /// Waits until the supervisor and every task it started have ended, which they do once
    /// the shutdown token is cancelled.
    pub async fn stopped(&self) {
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// Fetches the region list in the background (`POST /app/download-manifest`). A fetch
    /// already under way is replaced: it may be stuck on a server that stopped answering.
    pub fn request_manifest(&self) {
        region_list::request(&self.shared);
    }

    /// Queues a download (`POST /app/download-map`).
    pub async fn request_download(&self, id: &TileId) -> Result<()> {
        let manifest = self.shared.manifest().ok_or_else(|| {
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
        let (shared, id) = (self.shared.clone(), id.clone());
        let queued = crate::task::blocking(move || {
            if shared.layout.installed_regions().contains(&id) {
                return Ok(false);
            }
            if let Some(job) = shared.queue.job(&id)?
                && job.action == Action::Download
                && job.failed.is_none()
            {
                return Ok(false);
            }
            shared.tracker.remove(&id);
            shared.queue.put(&id, Action::Download)?;
            Ok(true)
        })
        .await?;
        if queued {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Queues a deletion (`POST /app/map-delete`); `None` means every region.
    pub async fn request_delete(&self, id: Option<&TileId>) -> Result<()> {
        if id.is_some_and(|id| id.as_str() == crate::tile_id::BASE_MAP) {
            return Err(AppError::BadRequest(
                "The base map is part of the app and cannot be deleted.".into(),
            ));
        }
        let running: Vec<TileId> = self.shared.running().keys().cloned().collect();
        let (shared, id) = (self.shared.clone(), id.cloned());
        crate::task::blocking(move || {
            let targets: Vec<TileId> = match id {
                Some(id) => vec![id],
                None => {
                    let mut all = shared.layout.installed_regions();
                    all.extend(shared.queue.jobs()?.into_iter().map(|j| j.tile_id));
                    all.extend(running);
                    all.retain(|id| id.as_str() != crate::tile_id::BASE_MAP);
                    all.sort();
                    all.dedup();
                    all
                }
            };
            for id in targets {
                // On a full disk, recording the delete takes the space held back for it.
                shared
                    .reserve
                    .or_release(|| shared.queue.put(&id, Action::Delete))?;
            }
            Ok(())
        })
        .await?;
        self.shared.wake.notify_one();
        Ok(())
    }
}
