//! Packs a directory of vector tiles (`Z/X/Y.mvt`) into one PMTiles archive, with the
//! `pmtiles` crate's writer. Used by `scripts/build-base-map`.
//!
//! Usage: pack_tiles TILES_DIR METADATA.json OUT.pmtiles

use std::path::{Path, PathBuf};

use pmtiles::{PmTilesWriter, TileCoord, TileId, TileType};

fn main() -> Result<(), String> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [dir, metadata, out] = args.as_slice() else {
        return Err("usage: pack_tiles TILES_DIR METADATA.json OUT.pmtiles".into());
    };
    let metadata = std::fs::read_to_string(metadata).map_err(|e| format!("metadata: {e}"))?;
    let mut tiles = collect(dir)?;
    tiles.sort_by_key(|(coord, _)| u64::from(TileId::from(*coord)));
    let (min_zoom, max_zoom) = tiles.iter().fold((u8::MAX, 0), |(lo, hi), (c, _)| {
        (lo.min(c.z()), hi.max(c.z()))
    });
    let tmp = out.with_extension("pmtiles.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .min_zoom(min_zoom)
        .max_zoom(max_zoom)
        .bounds(-180.0, -85.051129, 180.0, 85.051129)
        .center_zoom(2)
        .metadata(metadata)
        .create(file)
        .map_err(|e| e.to_string())?;
    for (coord, path) in &tiles {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        writer.add_tile(*coord, &data).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "packed {} tiles (z{min_zoom}-{max_zoom}) into {}",
        tiles.len(),
        out.display()
    );
    Ok(())
}

fn collect(dir: &Path) -> Result<Vec<(TileCoord, PathBuf)>, String> {
    let mut out = Vec::new();
    let number = |p: &Path| -> Option<u32> { p.file_stem()?.to_str()?.parse().ok() };
    for z in read(dir)? {
        for x in read(&z)? {
            for y in read(&x)? {
                let (Some(zn), Some(xn), Some(yn)) = (number(&z), number(&x), number(&y)) else {
                    continue;
                };
                let coord = u8::try_from(zn)
                    .ok()
                    .and_then(|zn| TileCoord::new(zn, xn, yn).ok())
                    .ok_or_else(|| format!("{} is not a tile address", y.display()))?;
                out.push((coord, y));
            }
        }
    }
    Ok(out)
}

fn read(dir: &Path) -> Result<Vec<PathBuf>, String> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect())
}
