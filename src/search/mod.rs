//! Place search over every installed region and the base map. (Being built.)
//!
//! Interface other modules rely on (blocking calls; run them with spawn_blocking):
//! `SearchIndex::open`, `import_region`, `delete_region`, `search`.

pub mod http;

use std::io::Read;
use std::path::Path;

use crate::error::{AppError, Result};
use crate::tile_id::TileId;

/// What an import did: rows added and rows skipped as malformed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub bad_rows: u64,
}

#[derive(Clone)]
pub struct SearchIndex {}

impl SearchIndex {
    pub fn open(_path: &Path) -> Result<SearchIndex> {
        Ok(SearchIndex {})
    }

    /// Replaces every row of `tile_id` with the places of `csv` (header `name,lat,lng`), in
    /// one transaction; `progress` is called with the rows done so far, now and then.
    pub fn import_region(
        &self,
        _tile_id: &TileId,
        _csv: &mut dyn Read,
        _progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport> {
        Err(AppError::Internal("search import is not built yet".into()))
    }

    pub fn delete_region(&self, _tile_id: &TileId) -> Result<()> {
        Err(AppError::Internal("search is not built yet".into()))
    }
}
