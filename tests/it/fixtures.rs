//! Map data made in code for the tests: vector tiles and PMTiles archives.

#![allow(dead_code)]

use std::path::Path;

use desert_atlas::tiles::mvt::{Feature, Layer, Tile, Value};
use pmtiles::{Compression, PmTilesWriter, TileCoord, TileType};
use prost::Message;

/// A vector tile with one point feature per layer, carrying the given string properties.
pub fn mvt(layers: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
    let layers = layers
        .iter()
        .map(|(name, props)| Layer {
            version: 2,
            name: name.to_string(),
            features: vec![Feature {
                id: Some(1),
                tags: (0..props.len() as u32).flat_map(|i| [i, i]).collect(),
                r#type: Some(1),
                geometry: vec![9, 4096, 4096],
            }],
            keys: props.iter().map(|(k, _)| k.to_string()).collect(),
            values: props
                .iter()
                .map(|(_, v)| Value {
                    string_value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            extent: Some(4096),
        })
        .collect();
    Tile { layers }.encode_to_vec()
}

pub fn decode(bytes: &[u8]) -> Tile {
    Tile::decode(bytes).expect("a valid vector tile")
}

/// A tile address: zoom, column, row.
pub type TileAddress = (u8, u32, u32);

/// Writes a PMTiles v3 archive. `bounds` is west, south, east, north.
pub fn write_pmtiles(
    path: &Path,
    bounds: [f64; 4],
    zooms: (u8, u8),
    tiles: &[(TileAddress, Vec<u8>)],
    gzip: bool,
) {
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .min_zoom(zooms.0)
        .max_zoom(zooms.1)
        .bounds(bounds[0], bounds[1], bounds[2], bounds[3])
        .metadata(
            r#"{"attribution": "© test data", "vector_layers": [{"id": "roads", "fields": {}}]}"#,
        );
    if !gzip {
        writer = writer.tile_compression(Compression::None);
    }
    let file = std::fs::File::create(path).unwrap();
    let mut out = writer.create(file).unwrap();
    let mut sorted: Vec<_> = tiles.to_vec();
    sorted.sort_by_key(|((z, x, y), _)| {
        u64::from(pmtiles::TileId::from(TileCoord::new(*z, *x, *y).unwrap()))
    });
    for ((z, x, y), data) in sorted {
        out.add_tile(TileCoord::new(z, x, y).unwrap(), &data)
            .unwrap();
    }
    out.finalize().unwrap();
}

/// Writes a gzip'd archive over Florence, z0–14, holding one tile at [`FLORENCE_Z10`] with
/// one empty layer named `layer`.
pub fn write_one_tile_pmtiles(path: &Path, layer: &str) {
    let tile = mvt(&[(layer, &[])]);
    write_pmtiles(path, FLORENCE, (0, 14), &[(FLORENCE_Z10, tile)], true);
}

/// Installs an archive as a region of a data directory, as a finished install leaves it.
pub fn install_region(data_dir: &Path, id: &str, archive: &Path) {
    std::fs::create_dir_all(data_dir.join("tiles")).unwrap();
    std::fs::create_dir_all(data_dir.join("search_imported")).unwrap();
    std::fs::copy(archive, data_dir.join(format!("tiles/{id}.pmtiles"))).unwrap();
    std::fs::write(data_dir.join(format!("search_imported/{id}")), b"").unwrap();
}

/// The Florence area, and the z10 tile over it.
pub const FLORENCE: [f64; 4] = [11.15, 43.72, 11.33, 43.84];
pub const FLORENCE_Z10: (u8, u32, u32) = (10, 544, 373);
