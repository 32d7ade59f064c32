//! Merging Mapbox Vector Tiles from several regions into one.
//!
//! The message types are the Mapbox Vector Tile 2.1 schema written out for prost's derive
//! (the schema is five small messages; a build-time protobuf compiler would add a system
//! dependency for nothing). Merging needs no geometry work: features of same-named layers
//! are concatenated and their tags re-pointed into one shared key and value table per layer.
//! The wire format itself is read and written by `super::protobuf`.

use std::collections::HashMap;
use std::io::{Read, Write};

use prost::Message;

use super::protobuf::{
    Field, Fields, push_u32s, put_bytes, put_packed, put_varint_field, read_varint, u32_value,
};

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

const DEFAULT_EXTENT: u64 = 4096;
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
///
/// Works on the wire format without decoding into the message types above: a layer's
/// features are copied as they are, and only a feature whose tags point into a key or value
/// table that merging renumbered is written again (its geometry still copied as is, unless the
/// layers' extents differ). Every feature's tags are still checked against its layer's tables.
pub fn merge<T: AsRef<[u8]>>(tiles: &[T]) -> Result<Vec<u8>, String> {
    let mut merged: Vec<MergedLayer> = Vec::new();
    let mut by_name: HashMap<&[u8], usize> = HashMap::new();
    for tile in tiles {
        let mut fields = Fields::new(tile.as_ref());
        while let Some((tag, field)) = fields.next_field()? {
            let (LAYER, Field::Bytes(bytes)) = (tag, field) else {
                continue;
            };
            let layer = SourceLayer::parse(bytes)?;
            let index = *by_name.entry(layer.name).or_insert_with(|| {
                merged.push(MergedLayer::new(&layer));
                merged.len() - 1
            });
            merged[index].add(&layer)?;
        }
    }
    let mut out = Vec::with_capacity(merged.iter().map(MergedLayer::size_hint).sum());
    let mut body = Vec::new();
    for layer in merged {
        body.clear();
        layer.encode(&mut body);
        put_bytes(&mut out, LAYER, &body);
    }
    Ok(out)
}

// Field numbers of the Mapbox Vector Tile 2.1 schema.
const LAYER: u32 = 3;
const LAYER_NAME: u32 = 1;
const LAYER_FEATURE: u32 = 2;
const LAYER_KEY: u32 = 3;
const LAYER_VALUE: u32 = 4;
const LAYER_EXTENT: u32 = 5;
const LAYER_VERSION: u32 = 15;
const FEATURE_ID: u32 = 1;
const FEATURE_TAGS: u32 = 2;
const FEATURE_TYPE: u32 = 3;
const FEATURE_GEOMETRY: u32 = 4;

/// One layer of one source tile, its parts still borrowed from the tile's bytes.
struct SourceLayer<'a> {
    name: &'a [u8],
    version: Option<u64>,
    extent: Option<u64>,
    features: Vec<&'a [u8]>,
    keys: Vec<&'a [u8]>,
    values: Vec<&'a [u8]>,
}

impl<'a> SourceLayer<'a> {
    fn parse(bytes: &'a [u8]) -> Result<SourceLayer<'a>, String> {
        let mut layer = SourceLayer {
            name: &[],
            version: None,
            extent: None,
            features: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
        };
        let mut fields = Fields::new(bytes);
        while let Some((tag, field)) = fields.next_field()? {
            match (tag, field) {
                (LAYER_NAME, Field::Bytes(b)) => layer.name = b,
                (LAYER_FEATURE, Field::Bytes(b)) => layer.features.push(b),
                (LAYER_KEY, Field::Bytes(b)) => layer.keys.push(b),
                (LAYER_VALUE, Field::Bytes(b)) => layer.values.push(b),
                (LAYER_EXTENT, Field::Varint(v)) => layer.extent = Some(v),
                (LAYER_VERSION, Field::Varint(v)) => layer.version = Some(v),
                (LAYER_NAME | LAYER_FEATURE | LAYER_KEY | LAYER_VALUE, _)
                | (LAYER_EXTENT | LAYER_VERSION, Field::Bytes(_)) => {
                    return Err("bad vector tile: a layer field of the wrong type".into());
                }
                _ => {}
            }
        }
        Ok(layer)
    }
}

/// A layer of the merged tile: features already encoded, and the shared key and value
/// tables with their indexes.
struct MergedLayer<'a> {
    name: &'a [u8],
    version: Option<u64>,
    extent: Option<u64>,
    features: Vec<u8>,
    keys: Vec<&'a [u8]>,
    key_index: HashMap<&'a [u8], u32>,
    values: Vec<&'a [u8]>,
    value_index: HashMap<&'a [u8], u32>,
}

impl<'a> MergedLayer<'a> {
    fn new(first: &SourceLayer<'a>) -> MergedLayer<'a> {
        MergedLayer {
            name: first.name,
            version: first.version,
            extent: first.extent,
            features: Vec::new(),
            keys: Vec::new(),
            key_index: HashMap::new(),
            values: Vec::new(),
            value_index: HashMap::new(),
        }
    }

    fn add(&mut self, layer: &SourceLayer<'a>) -> Result<(), String> {
        let key_map: Vec<u32> = layer
            .keys
            .iter()
            .map(|k| intern(k, &mut self.keys, &mut self.key_index))
            .collect::<Result<_, _>>()?;
        let value_map: Vec<u32> = layer
            .values
            .iter()
            .map(|v| intern(v, &mut self.values, &mut self.value_index))
            .collect::<Result<_, _>>()?;
        let renumbered = key_map.iter().enumerate().any(|(i, k)| *k as usize != i)
            || value_map.iter().enumerate().any(|(i, v)| *v as usize != i);
        let ours = self.extent.unwrap_or(DEFAULT_EXTENT);
        let theirs = layer.extent.unwrap_or(DEFAULT_EXTENT);
        let mut tags = Vec::new();
        let mut geometry = Vec::new();
        let mut geometry_fields: Vec<Field> = Vec::new();
        let mut scratch = Vec::new();
        for raw in &layer.features {
            if !renumbered && ours == theirs {
                // Tables and grid unchanged: the feature stays as it is, once its tags are
                // known to point inside its layer's tables.
                check_tags(raw, key_map.len(), value_map.len(), self.name)?;
                put_bytes(&mut self.features, LAYER_FEATURE, raw);
                continue;
            }
            tags.clear();
            geometry.clear();
            geometry_fields.clear();
            let (mut id, mut kind) = (None, None);
            let mut fields = Fields::new(raw);
            while let Some((tag, field)) = fields.next_field()? {
                match (tag, field) {
                    (FEATURE_ID, Field::Varint(v)) => id = Some(v),
                    (FEATURE_TYPE, Field::Varint(v)) => kind = Some(v),
                    (FEATURE_TAGS, f) => push_u32s(f, &mut tags)?,
                    (FEATURE_GEOMETRY, f) => geometry_fields.push(f),
                    _ => {}
                }
            }
            if !tags.len().is_multiple_of(2) {
                return Err(format!(
                    "layer {}: a feature has an odd tag count",
                    String::from_utf8_lossy(self.name)
                ));
            }
            for pair in tags.chunks_exact_mut(2) {
                pair[0] = *key_map
                    .get(pair[0] as usize)
                    .ok_or("tag names a missing key")?;
                pair[1] = *value_map
                    .get(pair[1] as usize)
                    .ok_or("tag names a missing value")?;
            }
            // Written again: id, tags, type, geometry.
            let mut feature = Vec::with_capacity(raw.len() + 8);
            if let Some(id) = id {
                put_varint_field(&mut feature, FEATURE_ID, id);
            }
            if !tags.is_empty() {
                put_packed(&mut feature, FEATURE_TAGS, &tags, &mut scratch);
            }
            if let Some(kind) = kind {
                put_varint_field(&mut feature, FEATURE_TYPE, kind);
            }
            match geometry_fields.as_slice() {
                [Field::Bytes(packed)] if ours == theirs => {
                    put_bytes(&mut feature, FEATURE_GEOMETRY, packed);
                }
                parts => {
                    for part in parts {
                        push_u32s(*part, &mut geometry)?;
                    }
                    if ours != theirs {
                        geometry = rescale(&geometry, ours, theirs)?;
                    }
                    if !geometry.is_empty() {
                        put_packed(&mut feature, FEATURE_GEOMETRY, &geometry, &mut scratch);
                    }
                }
            }
            put_bytes(&mut self.features, LAYER_FEATURE, &feature);
        }
        Ok(())
    }

    fn size_hint(&self) -> usize {
        let table = |t: &[&[u8]]| t.iter().map(|e| e.len() + 4).sum::<usize>();
        self.name.len() + self.features.len() + table(&self.keys) + table(&self.values) + 32
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, LAYER_NAME, self.name);
        out.extend_from_slice(&self.features);
        for key in &self.keys {
            put_bytes(out, LAYER_KEY, key);
        }
        for value in &self.values {
            put_bytes(out, LAYER_VALUE, value);
        }
        if let Some(extent) = self.extent {
            put_varint_field(out, LAYER_EXTENT, extent);
        }
        put_varint_field(out, LAYER_VERSION, self.version.unwrap_or(2));
    }
}

/// Fails unless the feature's tags come in pairs pointing inside tables of these sizes.
fn check_tags(feature: &[u8], keys: usize, values: usize, layer: &[u8]) -> Result<(), String> {
    let mut count = 0usize;
    let mut fields = Fields::new(feature);
    while let Some((tag, field)) = fields.next_field()? {
        let mut check = |v: u64| {
            let limit = if count.is_multiple_of(2) {
                keys
            } else {
                values
            };
            count += 1;
            if v < limit as u64 {
                Ok(())
            } else if count % 2 == 1 {
                Err("tag names a missing key")
            } else {
                Err("tag names a missing value")
            }
        };
        match (tag, field) {
            (FEATURE_TAGS, Field::Varint(v)) => check(v)?,
            (FEATURE_TAGS, Field::Bytes(mut packed)) => {
                while !packed.is_empty() {
                    check(read_varint(&mut packed)?)?;
                }
            }
            (FEATURE_TAGS, Field::Fixed) => {
                return Err("bad vector tile: a fixed-width number list".into());
            }
            _ => {}
        }
    }
    if !count.is_multiple_of(2) {
        return Err(format!(
            "layer {}: a feature has an odd tag count",
            String::from_utf8_lossy(layer)
        ));
    }
    Ok(())
}

/// The index of `item` in `table`, appending it if new.
fn intern<'a>(
    item: &'a [u8],
    table: &mut Vec<&'a [u8]>,
    index: &mut HashMap<&'a [u8], u32>,
) -> Result<u32, String> {
    if let Some(i) = index.get(item) {
        return Ok(*i);
    }
    let i = u32_value(table.len() as u64)?;
    table.push(item);
    index.insert(item, i);
    Ok(i)
}

/// Re-expresses geometry commands drawn on a `from` grid on a `to` grid.
fn rescale(geometry: &[u32], to: u64, from: u64) -> Result<Vec<u32>, String> {
    // Coordinates are zigzag-encoded 32-bit integers; one that leaves that range when
    // rescaled is an error, not wrapped around.
    let zigzag = |v: i64| -> Result<u32, String> {
        let v = i32::try_from(v).map_err(|_| "geometry outside the tile's coordinate range")?;
        Ok(((v << 1) ^ (v >> 31)) as u32)
    };
    let unzigzag = |v: u32| i64::from((v >> 1) as i32 ^ -((v & 1) as i32));
    let scale = to as f64 / from.max(1) as f64;
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
                out.push(zigzag(nx - sx)?);
                out.push(zigzag(ny - sy)?);
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
    fn a_bad_tag_in_a_layer_whose_tables_are_renumbered_is_an_error() {
        let a = Tile {
            layers: vec![layer("roads", "kind", "major")],
        }
        .encode_to_vec();
        let mut l = layer("roads", "name", "Via");
        l.features[0].tags = vec![0, 3];
        let bad = Tile { layers: vec![l] }.encode_to_vec();
        assert!(merge(&[a, bad]).is_err());
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

    /// The merge as the message types describe it: decode everything, concatenate features
    /// of same-named layers, give each layer one key and one value table.
    fn reference_merge(tiles: &[Vec<u8>]) -> Tile {
        let mut out: Vec<Layer> = Vec::new();
        for bytes in tiles {
            for layer in Tile::decode(bytes.as_slice()).unwrap().layers {
                let i = match out.iter().position(|l| l.name == layer.name) {
                    Some(i) => i,
                    None => {
                        out.push(Layer {
                            features: vec![],
                            keys: vec![],
                            values: vec![],
                            ..layer.clone()
                        });
                        out.len() - 1
                    }
                };
                let target = &mut out[i];
                let ours = target.extent.unwrap_or(4096);
                let theirs = layer.extent.unwrap_or(4096);
                // Every key and value of the layer joins the tables, in order, used or not.
                let mut key_map = Vec::new();
                for key in &layer.keys {
                    if !target.keys.contains(key) {
                        target.keys.push(key.clone());
                    }
                    key_map.push(target.keys.iter().position(|k| k == key).unwrap() as u32);
                }
                let mut value_map = Vec::new();
                for value in &layer.values {
                    if !target.values.contains(value) {
                        target.values.push(value.clone());
                    }
                    value_map.push(target.values.iter().position(|v| v == value).unwrap() as u32);
                }
                for mut f in layer.features {
                    for pair in f.tags.chunks_exact_mut(2) {
                        pair[0] = key_map[pair[0] as usize];
                        pair[1] = value_map[pair[1] as usize];
                    }
                    if ours != theirs {
                        f.geometry = rescale(&f.geometry, ours.into(), theirs.into()).unwrap();
                    }
                    target.features.push(f);
                }
            }
        }
        Tile { layers: out }
    }

    /// A tile of generated layers whose tables overlap those of other seeds, with repeated
    /// keys and values within a layer, optional fields left out and other extents.
    fn generated_tile(seed: u64) -> Tile {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let names = ["roads", "water", "pois", "buildings"];
        let layers = (0..1 + next(4))
            .map(|l| {
                let keys: Vec<String> = (0..1 + next(5)).map(|_| format!("k{}", next(6))).collect();
                let values: Vec<Value> = (0..1 + next(5))
                    .map(|_| match next(3) {
                        0 => Value {
                            string_value: Some(format!("v{}", next(6))),
                            ..Default::default()
                        },
                        1 => Value {
                            int_value: Some(next(4) as i64 - 2),
                            ..Default::default()
                        },
                        _ => Value {
                            bool_value: Some(next(2) == 0),
                            ..Default::default()
                        },
                    })
                    .collect();
                let features = (0..next(6))
                    .map(|_| Feature {
                        id: (next(2) == 0).then(|| next(1000)),
                        tags: (0..next(3))
                            .flat_map(|_| {
                                [
                                    next(keys.len() as u64) as u32,
                                    next(values.len() as u64) as u32,
                                ]
                            })
                            .collect(),
                        r#type: Some(1 + next(3) as i32),
                        geometry: vec![9, next(8000) as u32, next(8000) as u32, 10, 4, 6],
                    })
                    .collect();
                Layer {
                    version: 2,
                    name: names[(l as usize + next(2) as usize) % names.len()].into(),
                    features,
                    keys,
                    values,
                    extent: [None, Some(4096), Some(512)][next(3) as usize],
                }
            })
            .collect();
        Tile { layers }
    }

    #[test]
    fn merging_gives_what_decoding_and_merging_the_messages_gives() {
        for seed in 0..300 {
            let tiles: Vec<Vec<u8>> = (0..1 + seed % 3)
                .map(|i| generated_tile(seed * 7 + i).encode_to_vec())
                .collect();
            let merged = Tile::decode(merge(&tiles).unwrap().as_slice()).unwrap();
            assert_eq!(merged, reference_merge(&tiles), "seed {seed}");
        }
    }

    #[test]
    fn a_tile_merged_with_itself_has_each_feature_twice_and_the_same_tables() {
        let tile = generated_tile(42).encode_to_vec();
        let merged = Tile::decode(merge(&[&tile, &tile]).unwrap().as_slice()).unwrap();
        assert_eq!(merged, reference_merge(&[tile.clone(), tile]));
    }

    #[test]
    fn unpacked_repeated_fields_and_unknown_fields_are_read() {
        // A feature with tags and geometry written one value per field, and a field number the
        // schema does not have; then a layer name, key and value.
        let mut feature = Vec::new();
        for (tag, v) in [(2u32, 0u64), (2, 0), (4, 9), (4, 50), (4, 34), (9, 7)] {
            put_varint_field(&mut feature, tag, v);
        }
        let mut layer = Vec::new();
        put_bytes(&mut layer, LAYER_NAME, b"roads");
        put_bytes(&mut layer, LAYER_FEATURE, &feature);
        put_bytes(&mut layer, LAYER_KEY, b"kind");
        put_bytes(
            &mut layer,
            LAYER_VALUE,
            &Value {
                string_value: Some("major".into()),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let mut tile = Vec::new();
        put_bytes(&mut tile, LAYER, &layer);
        let other = Tile {
            layers: vec![self::layer("roads", "name", "Via")],
        }
        .encode_to_vec();
        let merged = Tile::decode(merge(&[other, tile]).unwrap().as_slice()).unwrap();
        let roads = &merged.layers[0];
        assert_eq!(roads.keys, vec!["name", "kind"]);
        assert_eq!(roads.features[1].tags, vec![1, 1]);
        assert_eq!(roads.features[1].geometry, vec![9, 50, 34]);
    }

    #[test]
    fn truncated_tiles_are_errors() {
        let tile = generated_tile(3).encode_to_vec();
        for len in 1..tile.len() {
            let _ = merge(&[&tile[..len]]);
        }
        assert!(merge(&[&tile[..tile.len() - 1]]).is_err());
    }
}
