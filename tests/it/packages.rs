//! Region packages built in code (docs/api.md §5): the gzip'd tar a map-data server
//! publishes, cut into parts, with its entry in the server's `manifest.json`. The tests of
//! hostile and malicious packages write their archives member by member with these.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::Digest;

/// A package's archive being written: a tar stream, gzip'd in memory.
pub type PackageTar = tar::Builder<flate2::write::GzEncoder<Vec<u8>>>;

/// Whether the manifest entry declares each part's size and SHA-256.
#[derive(Clone, Copy, PartialEq)]
pub enum Declared {
    SizesAndChecksums,
    Nothing,
}

/// The header of a regular file of `size` bytes.
pub fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// The gzip'd tar that `build` writes.
pub fn archive(build: impl FnOnce(&mut PackageTar)) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    build(&mut tar);
    tar.into_inner().unwrap().finish().unwrap()
}

/// Publishes region `id` in `out`: `archive` cut into `parts` part files, and its entry in
/// `out/manifest.json` (other regions in it kept). Returns the part files' names.
pub fn publish(
    out: &Path,
    id: &str,
    archive: &[u8],
    parts: usize,
    declared: Declared,
) -> Vec<String> {
    let chunks: Vec<&[u8]> = archive
        .chunks(archive.len().div_ceil(parts).max(1))
        .collect();
    let files: Vec<String> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let name = format!("{id}.tar.gz.{i:02}");
            std::fs::write(out.join(&name), chunk).unwrap();
            name
        })
        .collect();
    let mut entry = serde_json::json!({"files": files, "bounds": [[43.7, 11.1], [43.9, 11.4]]});
    if declared == Declared::SizesAndChecksums {
        entry["bytes"] = chunks.iter().map(|c| c.len()).collect();
        entry["sha256"] = chunks
            .iter()
            .map(|c| hex::encode(sha2::Sha256::digest(c)))
            .collect();
    }
    let mut list: serde_json::Map<String, Value> = std::fs::read(out.join("manifest.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default();
    list.insert(id.into(), entry);
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec(&list).unwrap(),
    )
    .unwrap();
    files
}

/// Packs `tiles` and `search` as region `id` into `out` with the real `region pack`, adding
/// `options` (`--part-size`, `--bounds`).
pub fn region_pack(out: &Path, id: &str, tiles: &Path, search: &Path, options: &[&str]) {
    let status = Command::new(crate::common::BIN)
        .args(["region", "pack", "--id", id])
        .args(options)
        .arg("--out")
        .arg(out)
        .arg("--tiles")
        .arg(tiles)
        .arg("--search")
        .arg(search)
        .status()
        .unwrap();
    assert!(status.success(), "region pack {id}: {status}");
}
