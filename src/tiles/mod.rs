//! Serving installed regions' tiles. (Being built.)
//!
//! Interface other modules rely on: `TileStore::open(&layout)` and `refresh()`, which re-reads
//! the set of installed regions (`Layout::installed_regions`) after an install or delete.

pub mod http;

use crate::error::Result;
use crate::layout::Layout;

pub struct TileStore {}

impl TileStore {
    pub fn open(_layout: &Layout) -> Result<TileStore> {
        Ok(TileStore {})
    }

    pub fn refresh(&self) {}
}
