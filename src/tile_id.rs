//! A region's identifier, checked once at the edge.
//!
//! Tile ids become file names (`tiles/<id>.pmtiles`, `search_imported/<id>`), so anything that
//! is not `[A-Za-z0-9_-]{1,100}` is refused before it can reach the file system.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id under which the built-in base map is installed and searched.
pub const BASE_MAP: &str = "base-map";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId(String);

impl TileId {
    pub fn parse(raw: &str) -> Option<TileId> {
        let ok = (1..=100).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| TileId(raw.to_string()))
    }

    pub fn base_map() -> TileId {
        TileId(BASE_MAP.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TileId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TileId::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom("a tile id is 1 to 100 letters, digits, '-' or '_'")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_of_the_published_manifest() {
        for id in ["base-map", "us_california", "A-1", &"x".repeat(100)] {
            assert!(TileId::parse(id).is_some(), "{id}");
        }
    }

    #[test]
    fn refuses_ids_that_could_reach_other_files() {
        for id in ["", "../etc", "a/b", "a.b", "a b", "é", &"x".repeat(101)] {
            assert!(TileId::parse(id).is_none(), "{id}");
        }
    }
}
