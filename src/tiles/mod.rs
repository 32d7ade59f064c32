//! Serving installed regions' tiles: whole archives by byte range for clients that read
//! PMTiles themselves, and one merged z/x/y tile source for the whole downloaded world.
//!
//! The set of installed archives is an immutable snapshot swapped on `refresh()` (after an
//! install or delete), so the hot path takes a read lock only long enough to clone an `Arc`.
//! Merged tiles made from a snapshot's archives are kept with that snapshot
//! (`merged::MergedCache`), so a refresh is also the one thing that invalidates them.

mod archive;
pub mod grid;
pub mod http;
pub mod merged;
pub mod mvt;
mod protobuf;
pub mod ranges;
pub mod tilejson;
pub mod validate;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

pub use archive::Archive;
pub use grid::tile_bounds;

use crate::layout::Layout;

/// The installed archives, by id.
pub type Installed = BTreeMap<String, Arc<Archive>>;

/// The installed archives as of one `refresh`, and the merged tiles made from them.
#[derive(Default)]
pub struct Snapshot {
    pub archives: Installed,
    pub merged: merged::MergedCache,
}

impl Deref for Snapshot {
    type Target = Installed;

    fn deref(&self) -> &Installed {
        &self.archives
    }
}

pub struct TileStore {
    layout: Layout,
    installed: RwLock<Arc<Snapshot>>,
    /// One refresh at a time: two overlapping ones (two regions deleted at once) could
    /// otherwise finish in the wrong order, the later-listed snapshot replaced by the earlier.
    refreshing: tokio::sync::Mutex<()>,
}

impl TileStore {
    /// An empty store; `refresh` fills it.
    pub fn new(layout: &Layout) -> TileStore {
        TileStore {
            layout: layout.clone(),
            installed: RwLock::new(Arc::new(Snapshot::default())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The current snapshot of installed archives.
    pub fn installed(&self) -> Arc<Snapshot> {
        self.installed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands back the memory of the merged tiles made so far (when requests stop).
    pub fn release_memory(&self) {
        self.installed().merged.clear();
    }

    /// Re-reads the installed regions (`Layout::installed_regions`), after an install or a
    /// delete: the one entry point that changes what is served. Archives whose file did not
    /// change are kept as they are; one that cannot be read is logged and left out. Merged
    /// tiles start afresh.
    pub async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        let current = self.installed();
        let mut next = Installed::new();
        // The base map is part of the app: its tiles are served as soon as they are in place,
        // before its search rows are imported (which takes seconds on a grain's first start).
        let mut ids = self.layout.installed_regions();
        let base_map = crate::tile_id::TileId::base_map();
        if !ids.contains(&base_map) && self.layout.tiles_file(&base_map).is_file() {
            ids.push(base_map);
        }
        for id in ids {
            let path = self.layout.tiles_file(&id);
            if let Some(existing) = current.get(id.as_str())
                && same_file(existing, &path)
            {
                next.insert(id.to_string(), existing.clone());
                continue;
            }
            match Archive::open(id.clone(), &path).await {
                Ok(archive) => {
                    next.insert(id.to_string(), Arc::new(archive));
                }
                Err(e) => tracing::error!("region {id}: {}: {e}; not served", path.display()),
            }
        }
        let next = Arc::new(Snapshot {
            archives: next,
            merged: merged::MergedCache::default(),
        });
        *self.installed.write().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

fn same_file(archive: &Archive, path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| archive::file_identity(&m) == archive.identity)
}
