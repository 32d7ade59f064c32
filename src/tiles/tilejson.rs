//! `GET /tiles/tiles.json`: a TileJSON 3.0 description of the merged tile source, so
//! standard clients (MapLibre, Leaflet plugins) can point at it.

use serde_json::{Value, json};

use super::Installed;
use crate::tile_id::BASE_MAP;

pub fn describe(installed: &Installed) -> Value {
    let mut min_zoom = u8::MAX;
    let mut max_zoom = 0u8;
    let mut bounds = [180.0f64, 85.051129, -180.0, -85.051129];
    let mut attributions: Vec<String> = Vec::new();
    let mut layers: Vec<Value> = Vec::new();
    // Each downloaded region's own bounds (west, south, east, north), so a client can tell
    // where a region's labels take over from the base map's.
    let mut region_bounds = serde_json::Map::new();
    for (id, archive) in installed.iter() {
        if id != BASE_MAP {
            region_bounds.insert(id.to_string(), json!(archive.bounds));
        }
        min_zoom = min_zoom.min(archive.min_zoom);
        max_zoom = max_zoom.max(archive.max_zoom);
        bounds[0] = bounds[0].min(archive.bounds[0]);
        bounds[1] = bounds[1].min(archive.bounds[1]);
        bounds[2] = bounds[2].max(archive.bounds[2]);
        bounds[3] = bounds[3].max(archive.bounds[3]);
        if let Some(a) = archive.metadata.get("attribution").and_then(Value::as_str)
            && !attributions.iter().any(|x| x == a)
        {
            attributions.push(a.to_string());
        }
        for layer in archive
            .metadata
            .get("vector_layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = layer.get("id");
            if id.is_some() && !layers.iter().any(|l| l.get("id") == id) {
                layers.push(layer.clone());
            }
        }
    }
    if installed.is_empty() {
        (min_zoom, max_zoom) = (0, 0);
        bounds = [-180.0, -85.051129, 180.0, 85.051129];
    }
    json!({
        "tilejson": "3.0.0",
        "name": "Desert Atlas",
        "scheme": "xyz",
        "tiles": ["/tiles/{z}/{x}/{y}.mvt"],
        "minzoom": min_zoom,
        "maxzoom": max_zoom,
        "bounds": bounds,
        "attribution": attributions.join(" "),
        "vector_layers": layers,
        "regions": installed.keys().collect::<Vec<_>>(),
        "region_bounds": region_bounds,
    })
}
