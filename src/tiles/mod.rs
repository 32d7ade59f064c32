//! Serving installed regions' tiles: whole archives by byte range for clients that read
//! PMTiles themselves, and one merged z/x/y tile source for the whole downloaded world.
//!
//! The set of installed archives is an immutable snapshot swapped on `refresh()` (after an
//! install or delete), so the hot path takes a read lock only long enough to clone an `Arc`.

mod archive;
pub mod http;
pub mod mvt;
pub mod ranges;
pub mod tilejson;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub use archive::{Archive, tile_bounds};

use crate::layout::Layout;

/// The installed archives, by id.
pub type Installed = BTreeMap<String, Arc<Archive>>;

pub struct TileStore {
    layout: Layout,
    installed: RwLock<Arc<Installed>>,
    /// One refresh at a time: two overlapping ones (two regions deleted at once) could
    /// otherwise finish in the wrong order, the later-listed snapshot replaced by the earlier.
    refreshing: tokio::sync::Mutex<()>,
}

impl TileStore {
    /// An empty store; `refresh` fills it.
    pub fn new(layout: &Layout) -> TileStore {
        TileStore {
            layout: layout.clone(),
            installed: RwLock::new(Arc::new(Installed::new())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The current snapshot of installed archives.
    pub fn installed(&self) -> Arc<Installed> {
        self.installed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the installed regions (`Layout::installed_regions`). Archives whose file did
    /// not change are kept as they are; one that cannot be read is logged and left out.
    pub async fn refresh(&self) {
        let _one_at_a_time = self.refreshing.lock().await;
        let current = self.installed();
        let mut next = Installed::new();
        for id in self.layout.installed_regions() {
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
        *self.installed.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }
}

fn same_file(archive: &Archive, path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| archive::file_identity(&m) == archive.identity)
}
