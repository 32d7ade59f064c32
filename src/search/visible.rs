//! Which imports a search shows: the base map, and the regions whose install finished (their
//! marker `search_imported/<id>` is present, docs/api.md §4). A region's rows are imported before
//! its marker is written and its marker is removed before its rows, so a region being
//! installed, being deleted, or left half-installed by a crash is never found.
//!
//! The marker directory is read again only when its modification time changes. A change
//! within the same clock tick as the last read could hide behind an equal time, so a
//! directory changed in the last [`SETTLE`] is read on every search, as git treats an index
//! entry written in the same second as its file ("racy git"). One `stat` per search costs a
//! few microseconds; reading the directory, a few tens (docs/search.md).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::tile_id::TileId;

/// How long after a change the directory's time is not trusted to reveal the next change.
const SETTLE: Duration = Duration::from_secs(2);

pub enum Visible {
    /// Every import (an index used without a data directory: tools, benchmarks, tests).
    All,
    Installed(Markers),
}

pub struct Markers {
    dir: PathBuf,
    last: Mutex<Option<(SystemTime, Arc<HashSet<String>>)>>,
}

/// The imports one search shows.
pub struct Shown(Option<Arc<HashSet<String>>>);

impl Shown {
    pub fn shows(&self, tile_id: &str) -> bool {
        match &self.0 {
            None => true,
            Some(installed) => {
                tile_id == TileId::base_map().as_str() || installed.contains(tile_id)
            }
        }
    }
}

impl Visible {
    pub fn installed(dir: PathBuf) -> Visible {
        Visible::Installed(Markers {
            dir,
            last: Mutex::new(None),
        })
    }

    pub fn current(&self) -> Shown {
        match self {
            Visible::All => Shown(None),
            Visible::Installed(markers) => Shown(Some(markers.current())),
        }
    }
}

impl Markers {
    fn current(&self) -> Arc<HashSet<String>> {
        let Ok(modified) = std::fs::metadata(&self.dir).and_then(|m| m.modified()) else {
            return Arc::new(HashSet::new());
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let settled = SystemTime::now()
            .duration_since(modified)
            .is_ok_and(|age| age >= SETTLE);
        if let Some((seen, ids)) = last.as_ref()
            && *seen == modified
            && settled
        {
            return ids.clone();
        }
        let ids: HashSet<String> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| TileId::parse(name).is_some())
                    .collect()
            })
            .unwrap_or_default();
        let ids = Arc::new(ids);
        *last = Some((modified, ids.clone()));
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_shows_a_region_at_once_and_its_removal_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let visible = Visible::installed(dir.path().to_path_buf());
        assert!(visible.current().shows("base-map"));
        assert!(!visible.current().shows("r"));
        // Changes within one clock tick: each is seen by the next search.
        for _ in 0..50 {
            std::fs::write(dir.path().join("r"), b"").unwrap();
            assert!(visible.current().shows("r"));
            std::fs::remove_file(dir.path().join("r")).unwrap();
            assert!(!visible.current().shows("r"));
        }
        assert!(Visible::All.current().shows("anything"));
    }
}
