//! Every path of the data directory, in one place.
//!
//! The layout is the one existing grains already have (docs/api.md §4); new files are added
//! beside it, never instead of it. Nothing else in the program joins paths under the data dir.

use std::path::{Path, PathBuf};

use crate::tile_id::TileId;

#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// Creates the directories the program writes into. Fails with a message naming the
    /// directory when the data dir is unusable (not writable, a file, …).
    pub fn prepare(&self) -> std::io::Result<()> {
        for dir in [
            self.root.clone(),
            self.data_dir(),
            self.tiles_dir(),
            self.search_imported_dir(),
            self.big_tmp_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // A directory that exists but is read-only is only found out by writing into it.
        let probe = self.data_dir().join(".write-probe");
        std::fs::write(&probe, b"").map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write into {}: {e}", self.data_dir().display()),
            )
        })?;
        std::fs::remove_file(&probe)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `data/`: the user-owned state (bookmarks, tutorial state, the download queue).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn bookmarks_db(&self) -> PathBuf {
        self.data_dir().join("bookmarks.db")
    }

    pub fn tutorial_json(&self) -> PathBuf {
        self.data_dir().join("tutorial.json")
    }

    /// The persistent download/deletion queue and per-region state (new in the Rust version).
    pub fn regions_db(&self) -> PathBuf {
        self.data_dir().join("regions.db")
    }

    /// Space held back so that a region can be deleted on a full disk (`regions::disk`).
    pub fn disk_reserve(&self) -> PathBuf {
        self.data_dir().join("disk-reserve")
    }

    pub fn search_db(&self) -> PathBuf {
        self.root.join("search.db")
    }

    pub fn search_imported_dir(&self) -> PathBuf {
        self.root.join("search_imported")
    }

    /// The empty marker saying a region (or `base-map`) is fully installed.
    pub fn installed_marker(&self, id: &TileId) -> PathBuf {
        self.search_imported_dir().join(id.as_str())
    }

    pub fn tiles_dir(&self) -> PathBuf {
        self.root.join("tiles")
    }

    pub fn tiles_file(&self, id: &TileId) -> PathBuf {
        self.tiles_dir().join(format!("{id}.pmtiles"))
    }

    /// The cached region list. `version` names the map-data release it came from.
    pub fn manifest_file(&self, version: &str) -> PathBuf {
        self.root.join(format!("manifest.{version}.json"))
    }

    /// The access token to the map-data server, claimed through the Powerbox (new in the Rust
    /// version).
    pub fn powerbox_token(&self) -> PathBuf {
        self.data_dir().join("powerbox-token.json")
    }

    /// The old package's outbound proxy database; its token is adopted on first start.
    pub fn old_proxy_db(&self) -> PathBuf {
        self.root.join("powerbox-http-proxy.db")
    }

    pub fn big_tmp_dir(&self) -> PathBuf {
        self.root.join("big_tmp")
    }

    /// Regions that are fully installed: a marker in `search_imported/` and a tiles file.
    /// A tiles file without its marker is an interrupted install and is not shown.
    pub fn installed_regions(&self) -> Vec<TileId> {
        let Ok(entries) = std::fs::read_dir(self.search_imported_dir()) else {
            return Vec::new();
        };
        let mut ids: Vec<TileId> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| TileId::parse(e.file_name().to_str()?))
            .filter(|id| self.tiles_file(id).is_file())
            .collect();
        ids.sort();
        ids
    }
}
