//! The region list a map-data server publishes (`manifest.json`, docs/api.md §5), checked entry
//! by entry: a region whose id, bounds or files are not what the format says is left out
//! with a log line, never trusted.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::tile_id::TileId;

#[derive(Debug, Clone, PartialEq)]
pub struct RegionEntry {
    /// The package's parts, in the order they are concatenated.
    pub parts: Vec<Part>,
    /// `[[south, west], [north, east]]` as the manifest gives it: `[lat, lng]` pairs.
    pub bounds: [[f64; 2]; 2],
}

/// One file of a region's package, with what the region list promises about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// A plain file name under the base URL.
    pub file: String,
    /// Lower-case hex, when the region list gives checksums.
    pub sha256: Option<String>,
    /// The part's size, when the region list gives sizes.
    pub bytes: Option<u64>,
}

impl RegionEntry {
    /// The package's size, when the region list gives every part's size.
    pub fn total_bytes(&self) -> Option<u64> {
        self.parts
            .iter()
            .map(|p| p.bytes)
            .try_fold(0u64, |sum, b| Some(sum.saturating_add(b?)))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub regions: BTreeMap<TileId, RegionEntry>,
}

impl Manifest {
    /// Parses and checks a manifest; fails only when the document as a whole is unusable.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let doc: Value = serde_json::from_slice(text)
            .map_err(|e| format!("the region list is not valid JSON ({e})"))?;
        let Value::Object(entries) = doc else {
            return Err("the region list is not a JSON object".into());
        };
        let mut regions = BTreeMap::new();
        for (raw_id, entry) in entries {
            let Some(id) = TileId::parse(&raw_id) else {
                tracing::warn!("manifest: region id {raw_id:?} is not a valid tile id; left out");
                continue;
            };
            match parse_entry(&entry) {
                Ok(e) => {
                    regions.insert(id, e);
                }
                Err(why) => tracing::warn!("manifest: region {id}: {why}; left out"),
            }
        }
        Ok(Manifest { regions })
    }

    pub fn get(&self, id: &TileId) -> Option<&RegionEntry> {
        self.regions.get(id)
    }

    /// `{id: total bytes}` for the regions whose entry lists sizes (`available-areas-bytes`,
    /// an extra key of the status answer: the page shows each region's size).
    pub fn sizes_json(&self) -> Value {
        Value::Object(
            self.regions
                .iter()
                .filter_map(|(id, e)| Some((id.to_string(), json!(e.total_bytes()?))))
                .collect(),
        )
    }

    /// `{id: bounds}` as the status answer's `available-areas` shows it.
    pub fn areas_json(&self) -> Value {
        Value::Object(
            self.regions
                .iter()
                .map(|(id, e)| (id.to_string(), json!(e.bounds)))
                .collect(),
        )
    }
}

fn parse_entry(entry: &Value) -> Result<RegionEntry, String> {
    let files: Vec<String> = entry
        .get("files")
        .and_then(Value::as_array)
        .ok_or("no \"files\" list")?
        .iter()
        .map(|f| {
            f.as_str()
                .filter(|s| is_plain_file_name(s))
                .map(str::to_string)
                .ok_or_else(|| format!("file {f} is not a plain file name"))
        })
        .collect::<Result<_, _>>()?;
    if files.is_empty() || files.len() > 10_000 {
        return Err("\"files\" must list 1 to 10,000 files".into());
    }
    let bounds =
        parse_bounds(entry.get("bounds")).ok_or("\"bounds\" is not [[lat, lng], [lat, lng]]")?;
    let sha256 = optional_list(entry, "sha256", files.len(), |h| {
        h.as_str()
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .ok_or("a \"sha256\" value is not 64 hex digits")
    })?;
    let bytes = optional_list(entry, "bytes", files.len(), |b| {
        b.as_u64().ok_or("a \"bytes\" value is not a whole number")
    })?;
    let (mut sha256, mut bytes) = (sha256.map(Vec::into_iter), bytes.map(Vec::into_iter));
    let parts = files
        .into_iter()
        .map(|file| Part {
            file,
            sha256: sha256.as_mut().and_then(Iterator::next),
            bytes: bytes.as_mut().and_then(Iterator::next),
        })
        .collect();
    Ok(RegionEntry { parts, bounds })
}

/// An optional per-file list (`"sha256"`, `"bytes"`): absent, or one checked value per file.
fn optional_list<T>(
    entry: &Value,
    key: &str,
    files: usize,
    item: impl Fn(&Value) -> Result<T, &'static str>,
) -> Result<Option<Vec<T>>, String> {
    let list = match entry.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v.as_array().ok_or(format!("\"{key}\" is not a list"))?,
    };
    if list.len() != files {
        return Err(format!("\"{key}\" does not have one value per file"));
    }
    Ok(Some(list.iter().map(item).collect::<Result<_, _>>()?))
}

fn parse_bounds(v: Option<&Value>) -> Option<[[f64; 2]; 2]> {
    let pairs = v?.as_array()?;
    if pairs.len() != 2 {
        return None;
    }
    let mut out = [[0.0; 2]; 2];
    for (i, pair) in pairs.iter().enumerate() {
        let p = pair.as_array()?;
        if p.len() != 2 {
            return None;
        }
        let (lat, lng) = (p[0].as_f64()?, p[1].as_f64()?);
        if !(lat.abs() <= 90.0 && lng.abs() <= 180.0) {
            return None;
        }
        out[i] = [lat, lng];
    }
    Some(out)
}

/// A file name that stays inside the base URL: no slashes, no `..`, nothing to escape.
fn is_plain_file_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The cache file name's version: the base URL's last path segment (the map-data release).
pub fn version_of(base_url: &str) -> String {
    let segment = base_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let clean: String = segment
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    if clean.is_empty() {
        "default".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_sizes_are_the_sum_of_their_parts_where_the_manifest_gives_them() {
        let m = Manifest::parse(
            br#"{
            "sized": {"files": ["sized.00", "sized.01"], "bounds": [[1, 2], [3, 4]], "bytes": [5, 7]},
            "unsized": {"files": ["unsized.00"], "bounds": [[1, 2], [3, 4]]}
        }"#,
        )
        .unwrap();
        assert_eq!(m.sizes_json(), json!({"sized": 12}));
    }

    #[test]
    fn bad_entries_are_left_out_and_good_ones_kept() {
        let m = Manifest::parse(
            br#"{
            "ok": {"files": ["ok.tar.gz.00"], "bounds": [[1, 2], [3, 4]], "bytes": [5]},
            "../x": {"files": ["a"], "bounds": [[1, 2], [3, 4]]},
            "slash": {"files": ["../a"], "bounds": [[1, 2], [3, 4]]},
            "nob": {"files": ["a"]},
            "far": {"files": ["a"], "bounds": [[100, 2], [3, 4]]},
            "sha": {"files": ["a", "b"], "bounds": [[1, 2], [3, 4]], "sha256": ["00"]}
        }"#,
        )
        .unwrap();
        assert_eq!(
            m.regions.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["ok"]
        );
        let ok = &m.regions[&TileId::parse("ok").unwrap()];
        assert_eq!(
            ok.parts,
            vec![Part {
                file: "ok.tar.gz.00".into(),
                sha256: None,
                bytes: Some(5)
            }]
        );
        assert_eq!(ok.total_bytes(), Some(5));
        assert!(Manifest::parse(b"[1]").is_err());
        assert!(Manifest::parse(b"{").is_err());
    }

    #[test]
    fn the_version_is_the_release_segment_of_the_url() {
        assert_eq!(
            version_of("https://x.example/1700099624.161532/1700099624.161532/"),
            "1700099624.161532"
        );
        assert_eq!(version_of("http://127.0.0.1:9/"), "127.0.0.19");
    }
}
