//! One z/x/y tile for the whole downloaded world: the tile of whichever archive has it, or
//! the layers of all that have it merged into one.
//!
//! Every grain has the base map, so every tile at its zooms (0–6) over a downloaded region
//! is a merge: decompress, merge, compress, about 1 ms of one core each. Merged tiles change
//! only when an archive is installed or deleted, so they are kept in [`MergedCache`], which
//! belongs to one snapshot of the installed archives: `TileStore::refresh` replaces the
//! snapshot and with it the cache, so a merged tile can never outlive an install or a delete.
//! The cache holds at most [`CACHE_BYTES`] and is emptied once requests stop (`crate::quiet`),
//! so an idle grain does not keep it.

use std::sync::Arc;

use bytes::Bytes;
use quick_cache::Weighter;

use super::Archive;
use super::mvt;
use crate::error::{AppError, Result};

/// Most bytes of merged tiles kept at once.
pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A tile as answered: its bytes, and whether they are gzip'd.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub bytes: Bytes,
    pub gzipped: bool,
}

/// z, x, y and whether the client takes gzip.
type Key = (u8, u32, u32, bool);

#[derive(Clone)]
struct ByLength;

impl Weighter<Key, Answer> for ByLength {
    fn weight(&self, _key: &Key, answer: &Answer) -> u64 {
        // The bytes and the entry's own bookkeeping.
        answer.bytes.len() as u64 + 64
    }
}

/// Merged tiles already made for one snapshot of the installed archives.
pub struct MergedCache {
    tiles: quick_cache::sync::Cache<Key, Answer, ByLength>,
}

impl Default for MergedCache {
    fn default() -> Self {
        MergedCache {
            tiles: quick_cache::sync::Cache::with_weighter(64, CACHE_BYTES, ByLength),
        }
    }
}

impl MergedCache {
    /// Empties the cache, handing its memory back.
    pub fn clear(&self) {
        self.tiles.clear();
    }

    /// Bytes held, for tests and figures.
    pub fn weight(&self) -> u64 {
        self.tiles.weight()
    }
}

/// Tile z/x/y from the `covering` archives: `None` where none has it; gzip'd only if
/// `gzip_ok`. A merge of several archives' tiles is made once and kept in `cache`.
pub async fn tile(
    cache: &MergedCache,
    covering: &[Arc<Archive>],
    (z, x, y): (u8, u32, u32),
    gzip_ok: bool,
) -> Result<Option<Answer>> {
    // Only answers made from several archives are kept; while one is being made, other
    // requests for it wait for it instead of making it again.
    let guard = if covering.len() > 1 {
        match cache
            .tiles
            .get_value_or_guard_async(&(z, x, y, gzip_ok))
            .await
        {
            Ok(answer) => return Ok(Some(answer)),
            Err(guard) => Some(guard),
        }
    } else {
        None
    };
    let mut found: Vec<(Bytes, bool)> = Vec::with_capacity(covering.len());
    let mut failed = false;
    for archive in covering {
        match archive.tile(z, x, y).await {
            Ok(Some(bytes)) => found.push((bytes, archive.gzip_tiles)),
            Ok(None) => {}
            Err(e) => {
                failed = true;
                tracing::error!("region {}: cannot read tile {z}/{x}/{y}: {e}", archive.id);
            }
        }
    }
    let fail = move |e: String| AppError::internal(&format!("tile {z}/{x}/{y}"), e);
    match found.len() {
        0 if failed => Err(AppError::Internal(
            format!("tile {z}/{x}/{y} could not be read from any region").into(),
        )),
        0 => Ok(None),
        1 => {
            let (bytes, gzipped) = found.remove(0);
            Ok(Some(if gzipped && !gzip_ok {
                Answer {
                    bytes: Bytes::from(mvt::gunzip(&bytes).map_err(fail)?),
                    gzipped: false,
                }
            } else {
                Answer { bytes, gzipped }
            }))
        }
        _ => {
            let merged = crate::task::blocking(move || {
                let plain: Vec<Bytes> = found
                    .into_iter()
                    .map(|(b, gz)| {
                        if gz {
                            mvt::gunzip(&b).map(Bytes::from)
                        } else {
                            Ok(b)
                        }
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map_err(fail)?;
                let merged = mvt::merge(&plain).map_err(fail)?;
                Ok(if gzip_ok { mvt::gzip(&merged) } else { merged })
            })
            .await?;
            let answer = Answer {
                bytes: Bytes::from(merged),
                gzipped: gzip_ok,
            };
            if let Some(guard) = guard {
                let _ = guard.insert(answer.clone());
            }
            Ok(Some(answer))
        }
    }
}
