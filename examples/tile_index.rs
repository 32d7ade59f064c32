//! Lists every tile of a PMTiles v3 archive with where its bytes are in the file, one line
//! per tile: `Z X Y OFFSET LENGTH` (absolute offset). `scripts/bench/tiles` turns the list into
//! the requests it sends, so that the byte-range figures ask for exactly the bytes a PMTiles
//! client would and the z/x/y figures ask for tiles that exist.
//!
//! The directories are walked here rather than through the `pmtiles` reader because the
//! reader does not expose entry offsets; each line is then checked against the reader's own
//! answer for that tile, so a mistake in this walk cannot go unnoticed.
//!
//! Usage: tile_index ARCHIVE.pmtiles

use std::io::Read;

use bytes::Bytes;
use pmtiles::{AsyncPmTilesReader, MmapBackend, TileCoord, TileId};

struct Entry {
    tile_id: u64,
    offset: u64,
    length: u64,
    run_length: u64,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated directory")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("overlong varint".into())
}

fn directory(raw: &[u8], gzip: bool) -> Result<Vec<Entry>, String> {
    let mut plain = Vec::new();
    let raw = if gzip {
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut plain)
            .map_err(|e| format!("directory: {e}"))?;
        plain.as_slice()
    } else {
        raw
    };
    let mut buf = raw;
    let n = usize::try_from(varint(&mut buf)?).map_err(|e| e.to_string())?;
    let mut entries: Vec<Entry> = (0..n)
        .map(|_| Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0,
        })
        .collect();
    let mut last_id = 0;
    for e in &mut entries {
        last_id += varint(&mut buf)?;
        e.tile_id = last_id;
    }
    for e in &mut entries {
        e.run_length = varint(&mut buf)?;
    }
    for e in &mut entries {
        e.length = varint(&mut buf)?;
    }
    for i in 0..n {
        let v = varint(&mut buf)?;
        entries[i].offset = if v == 0 && i > 0 {
            entries[i - 1].offset + entries[i - 1].length
        } else {
            v.checked_sub(1).ok_or("bad directory offset")?
        };
    }
    Ok(entries)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: tile_index ARCHIVE.pmtiles")?;
    let file = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    if file.len() < 127 || &file[..7] != b"PMTiles" || file[7] != 3 {
        return Err(format!("{path}: not a PMTiles v3 archive"));
    }
    let (root_offset, root_length) = (u64_at(&file, 8), u64_at(&file, 16));
    let leaf_offset = u64_at(&file, 40);
    let data_offset = u64_at(&file, 56);
    let gzip = match file[97] {
        1 => false,
        2 => true,
        other => return Err(format!("directory compression {other} is not handled")),
    };
    let slice = |offset: u64, length: u64| -> Result<&[u8], String> {
        let start = usize::try_from(offset).map_err(|e| e.to_string())?;
        let end = start + usize::try_from(length).map_err(|e| e.to_string())?;
        file.get(start..end)
            .ok_or_else(|| "entry past the end".into())
    };

    let mut tiles: Vec<(u64, u64, u64)> = Vec::new();
    let mut pending = vec![directory(slice(root_offset, root_length)?, gzip)?];
    while let Some(entries) = pending.pop() {
        for e in entries {
            if e.run_length == 0 {
                pending.push(directory(slice(leaf_offset + e.offset, e.length)?, gzip)?);
            } else {
                for id in e.tile_id..e.tile_id + e.run_length {
                    tiles.push((id, data_offset + e.offset, e.length));
                }
            }
        }
    }
    tiles.sort_unstable();

    let reader = AsyncPmTilesReader::try_from_source(
        MmapBackend::try_from(path.as_str())
            .await
            .map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let bytes = Bytes::from(file.clone());
    for (id, offset, length) in tiles {
        let coord = TileCoord::from(TileId::new(id).map_err(|e| e.to_string())?);
        let expected = reader.get_tile(coord).await.map_err(|e| e.to_string())?;
        let ours = bytes.slice(offset as usize..(offset + length) as usize);
        if expected.as_ref() != Some(&ours) {
            return Err(format!(
                "tile {coord:?}: directory walk disagrees with the reader"
            ));
        }
        println!(
            "{} {} {} {offset} {length}",
            coord.z(),
            coord.x(),
            coord.y()
        );
    }
    Ok(())
}
