//! The base map: world outlines and the places searchable from a grain's first start.
//!
//! `scripts/build-base-map` builds it into `<assets>/base-map/` (tiles, the places of [`places`]
//! and a VERSION). At start-up, after the server already answers, it is installed like a region
//! with the id `base-map` when the grain does not have this version yet: search rows replaced
//! in one transaction, tiles renamed into place, marker, then the version. A crash at any point
//! leaves the old base map or the new one, and the next start finishes the job.

pub mod places;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use crate::app::SharedState;
use crate::atomic_file::write_atomically;
use crate::error::{AppError, Result};
use crate::layout::Layout;
use crate::search::SearchIndex;
use crate::tile_id::TileId;

/// How far this start has got with the base map: the page says so when a search finds
/// nothing because the places are not imported yet (`base-map` in the status).
#[derive(Default)]
pub struct Progress(AtomicU8);

impl Progress {
    const PREPARING: u8 = 0;
    const READY: u8 = 1;
    const FAILED: u8 = 2;
    const ABSENT: u8 = 3;

    /// `preparing` (every start checks, and installs what it lacks), `ready`, `failed` (the
    /// log says why; the next start tries again) or `absent` (no base map in the assets).
    pub fn name(&self) -> &'static str {
        match self.0.load(Ordering::Acquire) {
            Self::PREPARING => "preparing",
            Self::READY => "ready",
            Self::FAILED => "failed",
            _ => "absent",
        }
    }

    fn set(&self, value: u8) {
        self.0.store(value, Ordering::Release);
    }
}

/// Installs the base map of `assets` in the background if this grain lacks that version.
pub fn install_in_background(state: SharedState, assets: PathBuf) {
    tokio::spawn(async move {
        let source = assets.join("base-map");
        let version_file = source.join("VERSION");
        let Ok(version) =
            crate::task::blocking(move || Ok(std::fs::read_to_string(version_file)?)).await
        else {
            tracing::warn!(
                "no base map in {}: run scripts/build-assets; the world map and place search stay empty until then",
                source.display()
            );
            state.base_map.set(Progress::ABSENT);
            return;
        };
        let version = version.trim().to_string();
        let layout = state.layout.clone();
        let (tiles_source, tiles_version) = (source.clone(), version.clone());
        let placed =
            crate::task::blocking(move || place_tiles(&layout, &tiles_source, &tiles_version))
                .await;
        let mut failed = false;
        match placed {
            Ok(true) => state.tiles.refresh().await,
            Ok(false) => {}
            Err(e) => {
                failed = true;
                tracing::error!("installing the base map's tiles failed: {e}");
            }
        }
        let (layout, search) = (state.layout.clone(), state.search.clone());
        let installed =
            crate::task::blocking(move || install(&layout, &search, &source, &version)).await;
        match installed {
            Ok(true) => state.tiles.refresh().await,
            Ok(false) => {}
            Err(e) => {
                failed = true;
                tracing::error!("installing the base map failed: {e}");
            }
        }
        state.base_map.set(if failed {
            Progress::FAILED
        } else {
            Progress::READY
        });
    });
}

/// Puts the tiles of base map `version` in place first, so the world draws at once on a
/// grain's first start; returns whether it changed them. Their own version file says which
/// tiles are in place; the marker and the base map's version follow only once the search
/// rows are in ([`install`]).
fn place_tiles(layout: &Layout, source: &Path, version: &str) -> Result<bool> {
    let id = TileId::base_map();
    let tiles_version = layout.data_dir().join("base-map.tiles-version");
    let current = std::fs::read_to_string(&tiles_version).unwrap_or_default();
    if current.trim() == version && layout.tiles_file(&id).is_file() {
        return Ok(false);
    }
    // Beside the final name (same file system for the rename); region clean-up ignores it.
    let tmp = layout.tiles_dir().join("base-map.pmtiles.tmp");
    std::fs::copy(source.join("tiles.pmtiles"), &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, layout.tiles_file(&id))?;
    write_atomically(&tiles_version, version.as_bytes())
        .map_err(|e| AppError::internal("recording the base map's tiles version", e))?;
    Ok(true)
}

/// Installs the base map from `source` unless `version` is already installed.
/// Returns whether it installed anything.
pub fn install(
    layout: &Layout,
    search: &SearchIndex,
    source: &Path,
    version: &str,
) -> Result<bool> {
    let id = TileId::base_map();
    let version_file = layout.data_dir().join("base-map.version");
    let current = std::fs::read_to_string(&version_file).unwrap_or_default();
    if current.trim() == version && layout.installed_regions().contains(&id) {
        return Ok(false);
    }
    let started = Instant::now();
    let mut rows = places::PlacesReader::open(&source.join(places::FILE_NAME))?;
    let report = search.import_region(&id, &mut rows, &mut |_| {})?;
    place_tiles(layout, source, version)?;
    std::fs::File::create(layout.installed_marker(&id))?.sync_all()?;
    write_atomically(&version_file, version.as_bytes())
        .map_err(|e| AppError::internal("recording the base map version", e))?;
    tracing::info!(
        "base map {version} installed: {} places in {} ms",
        report.rows,
        started.elapsed().as_millis()
    );
    Ok(true)
}
