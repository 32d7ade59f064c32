//! Checking a region's PMTiles archive before the region counts as installed, and reading
//! its metadata within a bound whenever it is opened.
//!
//! An archive comes from a map-data server, so it is hostile until checked: one that is only
//! `PMTiles\x03` and junk, whose tiles this server cannot read (zstd), or whose metadata or
//! directories expand to a gigabyte, is refused at install with a sentence, so it never
//! reaches the tile server. The check reads the header, the root directory, every leaf
//! directory (decompressed as a stream, to count, never held), the metadata, and the first
//! tile, through the `pmtiles` reader that serves them later.

use std::io::{self, Read};

use bytes::Bytes;
use futures_util::FutureExt;
use pmtiles::{AsyncPmTilesReader, Compression, Header, NoCache, TileId, TileType};
use prost::Message;
use serde_json::Value;

use super::archive::Mapped;
use super::mvt;

/// The header's size (PMTiles v3).
const HEADER_BYTES: usize = 127;
/// The header and the root directory lie within the archive's first 16 KiB (PMTiles v3).
const INITIAL_BYTES: u64 = 16_384;
/// Largest root directory accepted, decompressed.
const MAX_ROOT_BYTES: u64 = 1024 * 1024;
/// Largest total of all leaf directories, decompressed. The tile server keeps the leaf
/// directories it has read in memory, so this bounds that too; a large country's are a few MB.
pub const MAX_LEAVES_BYTES: u64 = 16 * 1024 * 1024;
/// Largest metadata accepted, decompressed; real archives' is a few KB.
pub const MAX_METADATA_BYTES: u64 = 1024 * 1024;

/// Where the header puts each section: offset and length in bytes.
struct Sections {
    root: (u64, u64),
    metadata: (u64, u64),
    leaves: (u64, u64),
    data: (u64, u64),
}

impl Sections {
    /// The header's section table: eight little-endian u64 after the 8-byte magic. Read by
    /// hand because the `pmtiles` crate keeps these fields private.
    fn read(bytes: &[u8]) -> Option<Sections> {
        let field = |i: usize| {
            let at = 8 + 8 * i;
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        Some(Sections {
            root: (field(0)?, field(1)?),
            metadata: (field(2)?, field(3)?),
            leaves: (field(4)?, field(5)?),
            data: (field(6)?, field(7)?),
        })
    }
}

/// The bytes of a section, if it lies within the archive.
fn section(bytes: &Bytes, (offset, length): (u64, u64)) -> Option<Bytes> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    (end <= bytes.len()).then(|| bytes.slice(start..end))
}

/// Decompresses `data` (each gzip member after the other) into `out`, failing past `limit`.
fn inflate_into(
    data: &[u8],
    compression: Compression,
    limit: u64,
    out: &mut impl io::Write,
) -> Result<u64, String> {
    if data.is_empty() {
        return Ok(0);
    }
    let copied = match compression {
        Compression::None => io::copy(&mut data.take(limit + 1), out),
        Compression::Gzip => io::copy(
            &mut flate2::read::MultiGzDecoder::new(data).take(limit + 1),
            out,
        ),
        other => return Err(unsupported(other)),
    };
    let n = copied.map_err(|e| format!("cannot be decompressed ({e})"))?;
    if n > limit {
        return Err(format!(
            "would take more than {} MiB decompressed",
            limit / (1024 * 1024)
        ));
    }
    Ok(n)
}

fn unsupported(compression: Compression) -> String {
    let name = match compression {
        Compression::Zstd => "zstd",
        Compression::Brotli => "brotli",
        _ => "an unknown",
    };
    format!("This region's tiles use {name} compression, which this version cannot read.")
}

/// Checks the archive at `path`; the error is a sentence for the person who asked for it.
pub fn check_file(path: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the tiles: {e}"))?;
    // SAFETY: the file is the install's own temporary file, which nothing else writes.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("cannot read the tiles: {e}"))?;
    check(&Bytes::from_owner(map))
}

/// Checks a whole archive held in `bytes`.
pub fn check(bytes: &Bytes) -> Result<(), String> {
    let damaged = |why: String| format!("the region's tiles file cannot be used: {why}");
    let header = bytes
        .get(..HEADER_BYTES)
        .and_then(|h| Header::try_from_bytes(Bytes::copy_from_slice(h)).ok())
        .ok_or("the region's tiles file is not a PMTiles v3 archive")?;
    let sections = Sections::read(bytes).ok_or("the region's tiles file is too short")?;
    let internal = header.internal_compression();
    for compression in [internal, header.tile_compression] {
        if !matches!(compression, Compression::None | Compression::Gzip) {
            return Err(unsupported(compression));
        }
    }
    if header.tile_type != TileType::Mvt {
        return Err(format!(
            "This region's tiles are not vector tiles ({:?}), which this version cannot show.",
            header.tile_type
        ));
    }
    let root = section(bytes, sections.root)
        .filter(|_| sections.root.0.saturating_add(sections.root.1) <= INITIAL_BYTES)
        .ok_or_else(|| damaged("its root directory lies outside its first 16 KiB".into()))?;
    let mut root_dir = Vec::new();
    inflate_into(&root, internal, MAX_ROOT_BYTES, &mut root_dir)
        .map_err(|why| damaged(format!("its root directory {why}")))?;
    for (name, place, limit) in [
        ("leaf directories", sections.leaves, MAX_LEAVES_BYTES),
        ("metadata", sections.metadata, MAX_METADATA_BYTES),
    ] {
        let data = section(bytes, place)
            .ok_or_else(|| damaged(format!("its {name} lie outside the file")))?;
        inflate_into(&data, internal, limit, &mut io::sink())
            .map_err(|why| damaged(format!("its {name} {why}")))?;
    }
    section(bytes, sections.data)
        .ok_or_else(|| damaged("its tiles lie outside the file".into()))?;
    let first = first_tile_id(&root_dir)
        .ok_or_else(|| damaged("its root directory cannot be read".into()))?
        .ok_or("the region's tiles file holds no tiles")?;
    let tile = read_tile(bytes, first).map_err(damaged)?;
    let tile = match header.tile_compression {
        Compression::Gzip => mvt::gunzip(&tile).map_err(damaged)?,
        _ => tile.to_vec(),
    };
    mvt::Tile::decode(tile.as_slice())
        .map_err(|e| damaged(format!("its first tile is not a vector tile ({e})")))?;
    Ok(())
}

/// The first tile id a directory lists (its first entry's, a leaf's being the first id under
/// it): the entry count, then the first id, as varints. `None` when unreadable,
/// `Some(None)` when the directory is empty.
fn first_tile_id(directory: &[u8]) -> Option<Option<u64>> {
    let mut rest = directory;
    let mut varint = || -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, tail) = rest.split_first()?;
            rest = tail;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    };
    match varint()? {
        0 => Some(None),
        _ => Some(Some(varint()?)),
    }
}

/// Tile `id` as stored, through the reader the tile server uses.
fn read_tile(bytes: &Bytes, id: u64) -> Result<Bytes, String> {
    let id = TileId::new(id).map_err(|e| format!("its first tile id is invalid ({e})"))?;
    // The archive is in memory, so no step of the reader ever waits: each future is ready
    // when first polled, and a plain poll runs it without a runtime.
    let reading = async {
        let reader = AsyncPmTilesReader::try_from_cached_source(Mapped(bytes.clone()), NoCache)
            .await
            .map_err(|e| format!("its directories cannot be read ({e})"))?;
        reader
            .get_tile(id)
            .await
            .map_err(|e| format!("its first tile cannot be read ({e})"))?
            .ok_or_else(|| "its directory points to a tile it does not hold".to_string())
    };
    reading
        .now_or_never()
        .unwrap_or_else(|| Err("its first tile cannot be read".into()))
}

/// The archive's metadata (what the tile server shows of it: attribution and vector layers),
/// read within [`MAX_METADATA_BYTES`]; `{}` when it is larger, absent or unreadable. Used on
/// every open, so an archive installed by an older version is bounded too.
pub fn metadata(bytes: &Bytes) -> Value {
    let read = || -> Option<Value> {
        let header = Header::try_from_bytes(bytes.get(..HEADER_BYTES)?.to_vec().into()).ok()?;
        let sections = Sections::read(bytes)?;
        let data = section(bytes, sections.metadata)?;
        let mut text = Vec::new();
        match inflate_into(
            &data,
            header.internal_compression(),
            MAX_METADATA_BYTES,
            &mut text,
        ) {
            Ok(_) => {}
            Err(why) => {
                tracing::warn!("tiles metadata {why}; left out");
                return None;
            }
        }
        let Value::Object(mut all) = serde_json::from_slice(&text).ok()? else {
            return None;
        };
        let kept: serde_json::Map<String, Value> = ["attribution", "vector_layers"]
            .into_iter()
            .filter_map(|key| Some((key.to_string(), all.remove(key)?)))
            .collect();
        Some(Value::Object(kept))
    };
    read().unwrap_or_else(|| serde_json::json!({}))
}
