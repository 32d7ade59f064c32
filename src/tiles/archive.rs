//! One installed region's PMTiles archive, mapped into memory once.
//!
//! The file is memory-mapped and viewed as `Bytes`, so a byte range or a tile is a zero-copy
//! slice of the mapping; the `pmtiles` crate reads the header and directories through the
//! same mapping and keeps the directories it has read (never the tiles) in memory.
//!
//! Mapped files must not be truncated while mapped. This program never does that: installs
//! rename a new file into place and deletes unlink the old one, and a mapping of an unlinked
//! file stays valid until it is dropped.

use std::future;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bytes::Bytes;
use pmtiles::{
    AsyncBackend, AsyncPmTilesReader, BackendResponse, Compression, HashMapCache, PmtError,
    PmtResult, TileCoord,
};
use sha2::{Digest, Sha256};

use super::grid::tile_bounds;
use crate::tile_id::TileId;

/// The archive's bytes, as the `pmtiles` reader's backend.
pub(super) struct Mapped(pub(super) Bytes);

impl AsyncBackend for Mapped {
    fn read(
        &self,
        offset: u64,
        length: usize,
    ) -> impl Future<Output = PmtResult<BackendResponse>> + Send {
        let len = self.0.len();
        let result = usize::try_from(offset)
            .ok()
            .filter(|start| *start <= len)
            .map(|start| {
                let end = start.saturating_add(length).min(len);
                BackendResponse::new(self.0.slice(start..end))
            })
            .ok_or_else(|| PmtError::Reading(io::Error::from(io::ErrorKind::UnexpectedEof)));
        future::ready(result)
    }
}

/// What the tile server needs to know of an archive without reading it again.
pub struct Archive {
    pub id: TileId,
    /// The whole file, mapped.
    pub bytes: Bytes,
    /// Changes whenever the file is replaced: device, inode, size and modification time.
    pub identity: String,
    /// `"<identity>"`, the ETag of the whole file and of its byte ranges.
    pub etag: axum::http::HeaderValue,
    pub min_zoom: u8,
    pub max_zoom: u8,
    /// West, south, east, north in degrees.
    pub bounds: [f64; 4],
    pub gzip_tiles: bool,
    /// The archive's JSON metadata (attribution, vector layers), `{}` when unreadable.
    pub metadata: serde_json::Value,
    reader: AsyncPmTilesReader<Mapped, HashMapCache>,
}

impl Archive {
    /// Maps and checks `path`; fails on anything that is not a readable PMTiles v3 archive
    /// with tiles this server can serve (uncompressed or gzip'd).
    pub async fn open(id: TileId, path: &Path) -> Result<Archive, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
        // SAFETY: the file is never modified in place while mapped (see the module comment).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("cannot map: {e}"))?;
        let bytes = Bytes::from_owner(map);
        let reader = AsyncPmTilesReader::try_from_cached_source(
            Mapped(bytes.clone()),
            HashMapCache::default(),
        )
        .await
        .map_err(|e| format!("not a readable PMTiles v3 archive: {e}"))?;
        let header = reader.get_header();
        let gzip_tiles = match header.tile_compression {
            Compression::Gzip => true,
            Compression::None | Compression::Unknown => false,
            other => return Err(format!("tiles compressed as {other:?} are not supported")),
        };
        let bounds = [
            header.min_longitude,
            header.min_latitude,
            header.max_longitude,
            header.max_latitude,
        ];
        let (min_zoom, max_zoom) = (header.min_zoom, header.max_zoom);
        if min_zoom > max_zoom || max_zoom > 30 || bounds.iter().any(|b| !b.is_finite()) {
            return Err("the header's zoom range or bounds are invalid".into());
        }
        // Bounded: never the whole metadata of a hostile archive at each start.
        let metadata = super::validate::metadata(&bytes);
        let identity = file_identity(&meta);
        // A hex digest in quotes is always a valid header value.
        let etag = axum::http::HeaderValue::from_str(&format!("\"{identity}\""))
            .map_err(|e| format!("cannot make an ETag: {e}"))?;
        Ok(Archive {
            id,
            bytes,
            identity,
            etag,
            min_zoom,
            max_zoom,
            bounds,
            gzip_tiles,
            metadata,
            reader,
        })
    }

    /// Whether the archive may hold tile z/x/y, judged by its zoom range and bounds.
    pub fn covers(&self, z: u8, x: u32, y: u32) -> bool {
        if z < self.min_zoom || z > self.max_zoom {
            return false;
        }
        let [west, south, east, north] = tile_bounds(z, x, y);
        west < self.bounds[2]
            && east > self.bounds[0]
            && south < self.bounds[3]
            && north > self.bounds[1]
    }

    /// The tile as stored (compressed if the archive compresses tiles), or `None`.
    pub async fn tile(&self, z: u8, x: u32, y: u32) -> Result<Option<Bytes>, String> {
        let coord = TileCoord::new(z, x, y).map_err(|e| e.to_string())?;
        self.reader.get_tile(coord).await.map_err(|e| e.to_string())
    }
}

/// A short digest of a file's device, inode, size and modification time: it changes
/// whenever the file is replaced.
pub fn file_identity(meta: &std::fs::Metadata) -> String {
    let stat = format!(
        "{}:{}:{}:{}:{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    hex::encode(&Sha256::digest(stat)[..8])
}
