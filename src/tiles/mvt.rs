//! Merging Mapbox Vector Tiles from several regions into one.
//!
//! The message types are the Mapbox Vector Tile 2.1 schema written out for prost's derive
//! (the schema is five small messages; a build-time protobuf compiler would add a system
//! dependency for nothing). Merging needs no geometry work: features of same-named layers
//! are concatenated and their tags re-pointed into one shared key and value table per layer.

use std::collections::HashMap;
use std::io::{Read, Write};

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct Tile {
    #[prost(message, repeated, tag = "3")]
    pub layers: Vec<Layer>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Layer {
    #[prost(uint32, required, tag = "15")]
    pub version: u32,
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub features: Vec<Feature>,
    #[prost(string, repeated, tag = "3")]
    pub keys: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub values: Vec<Value>,
    #[prost(uint32, optional, tag = "5")]
    pub extent: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Feature {
    #[prost(uint64, optional, tag = "1")]
    pub id: Option<u64>,
    #[prost(uint32, repeated, packed = "true", tag = "2")]
    pub tags: Vec<u32>,
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(uint32, repeated, packed = "true", tag = "4")]
    pub geometry: Vec<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub float_value: Option<f32>,
    #[prost(double, optional, tag = "3")]
    pub double_value: Option<f64>,
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    #[prost(uint64, optional, tag = "5")]
    pub uint_value: Option<u64>,
    #[prost(sint64, optional, tag = "6")]
    pub sint_value: Option<i64>,
    #[prost(bool, optional, tag = "7")]
    pub bool_value: Option<bool>,
}

const DEFAULT_EXTENT: u32 = 4096;
/// Largest decompressed tile accepted, against decompression bombs in hostile archives.
pub const MAX_TILE_BYTES: u64 = 64 * 1024 * 1024;

/// Decompresses a gzip'd tile, refusing anything larger than [`MAX_TILE_BYTES`].
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len() * 3);
    flate2::read::GzDecoder::new(data)
        .take(MAX_TILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress tile: {e}"))?;
    if out.len() as u64 > MAX_TILE_BYTES {
        return Err("tile decompresses to more than 64 MiB".into());
    }
    Ok(out)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// One tile holding the layers of all `tiles` (each uncompressed MVT bytes).
pub fn merge(tiles: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut merged: Vec<MergedLayer> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for bytes in tiles {
        let tile = Tile::decode(bytes.as_slice()).map_err(|e| format!("bad vector tile: {e}"))?;
        for layer in tile.layers {
            let index = *by_name.entry(layer.name.clone()).or_insert_with(|| {
                merged.push(MergedLayer::new(&layer));
                merged.len() - 1
            });
            merged[index].add(layer)?;
        }
    }
    let tile = Tile {
        layers: merged.into_iter().map(|m| m.layer).collect(),
    };
    Ok(tile.encode_to_vec())
}

struct MergedLayer {
    layer: Layer,
    keys: HashMap<String, u32>,
    values: HashMap<Vec<u8>, u32>,
}

impl MergedLayer {
    fn new(first: &Layer) -> MergedLayer {
        MergedLayer {
            layer: Layer {
                version: first.version,
                name: first.name.clone(),
                features: Vec::new(),
                keys: Vec::new(),
                values: Vec::new(),
                extent: first.extent,
            },
            keys: HashMap::new(),
            values: HashMap::new(),
        }
    }

    fn add(&mut self, layer: Layer) -> Result<(), String> {
        let key_map: Vec<u32> = layer.keys.into_iter().map(|k| self.key(k)).collect();
        let value_map: Vec<u32> = layer.values.into_iter().map(|v| self.value(v)).collect();
        let ours = self.layer.extent.unwrap_or(DEFAULT_EXTENT);
        let theirs = layer.extent.unwrap_or(DEFAULT_EXTENT);
        for mut feature in layer.features {
            if feature.tags.len() % 2 != 0 {
                return Err(format!(
                    "layer {}: a feature has an odd tag count",
                    self.layer.name
                ));
            }
            for pair in feature.tags.chunks_exact_mut(2) {
                pair[0] = *key_map
                    .get(pair[0] as usize)
                    .ok_or("tag names a missing key")?;
                pair[1] = *value_map
                    .get(pair[1] as usize)
                    .ok_or("tag names a missing value")?;
            }
            if ours != theirs {
                feature.geometry = rescale(&feature.geometry, ours, theirs)?;
            }
            self.layer.features.push(feature);
        }
        Ok(())
    }

    fn key(&mut self, key: String) -> u32 {
        if let Some(i) = self.keys.get(&key) {
            return *i;
        }
        let i = self.layer.keys.len() as u32;
        self.keys.insert(key.clone(), i);
        self.layer.keys.push(key);
        i
    }

    fn value(&mut self, value: Value) -> u32 {
        let encoded = value.encode_to_vec();
        if let Some(i) = self.values.get(&encoded) {
            return *i;
        }
        let i = self.layer.values.len() as u32;
        self.values.insert(encoded, i);
        self.layer.values.push(value);
        i
    }
}

/// Re-expresses geometry commands drawn on a `from` grid on a `to` grid.
fn rescale(geometry: &[u32], to: u32, from: u32) -> Result<Vec<u32>, String> {
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u32;
    let unzigzag = |v: u32| ((v >> 1) as i64) ^ -((v & 1) as i64);
    let scale = f64::from(to) / f64::from(from.max(1));
    let mut out = Vec::with_capacity(geometry.len());
    let (mut x, mut y, mut sx, mut sy) = (0i64, 0i64, 0i64, 0i64);
    let mut i = 0;
    while i < geometry.len() {
        let command = geometry[i];
        out.push(command);
        i += 1;
        let (id, count) = (command & 7, (command >> 3) as usize);
        if id == 1 || id == 2 {
            for _ in 0..count {
                let (dx, dy) = match geometry.get(i..i + 2) {
                    Some(p) => (unzigzag(p[0]), unzigzag(p[1])),
                    None => return Err("truncated geometry".into()),
                };
                i += 2;
                x += dx;
                y += dy;
                let (nx, ny) = (
                    (x as f64 * scale).round() as i64,
                    (y as f64 * scale).round() as i64,
                );
                out.push(zigzag(nx - sx));
                out.push(zigzag(ny - sy));
                (sx, sy) = (nx, ny);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, key: &str, value: &str) -> Layer {
        Layer {
            version: 2,
            name: name.into(),
            features: vec![Feature {
                id: Some(1),
                tags: vec![0, 0],
                r#type: Some(1),
                geometry: vec![9, 50, 34],
            }],
            keys: vec![key.into()],
            values: vec![Value {
                string_value: Some(value.into()),
                ..Default::default()
            }],
            extent: Some(4096),
        }
    }

    #[test]
    fn same_named_layers_are_combined_with_tags_repointed() {
        let a = Tile {
            layers: vec![layer("roads", "kind", "major")],
        }
        .encode_to_vec();
        let b = Tile {
            layers: vec![
                layer("roads", "name", "Via"),
                layer("water", "kind", "lake"),
            ],
        }
        .encode_to_vec();
        let merged = Tile::decode(merge(&[a, b]).unwrap().as_slice()).unwrap();
        assert_eq!(merged.layers.len(), 2);
        let roads = &merged.layers[0];
        assert_eq!(roads.features.len(), 2);
        assert_eq!(roads.keys, vec!["kind", "name"]);
        assert_eq!(roads.features[1].tags, vec![1, 1]);
        assert_eq!(roads.values[1].string_value.as_deref(), Some("Via"));
    }

    #[test]
    fn a_tag_pointing_past_the_tables_is_an_error_not_a_panic() {
        let mut l = layer("roads", "kind", "major");
        l.features[0].tags = vec![5, 9];
        let bad = Tile { layers: vec![l] }.encode_to_vec();
        assert!(merge(&[bad]).is_err());
    }

    #[test]
    fn geometry_on_another_grid_is_rescaled() {
        // MoveTo(25, 17) on a 512 grid is (200, 136) on 4096.
        assert_eq!(rescale(&[9, 50, 34], 4096, 512).unwrap(), vec![9, 400, 272]);
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        let zeros = vec![0u8; (MAX_TILE_BYTES + 10) as usize];
        assert!(gunzip(&gzip(&zeros)).is_err());
    }
}
