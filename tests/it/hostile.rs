//! Hostile region packages (docs/api.md §5): what a map-data server sends is hostile until
//! verified. Each test builds a package in code that once took the grain's disk or memory,
//! or was listed as installed while broken, and checks that the region fails with a sentence,
//! leaves nothing behind, and the grain goes on.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::fixtures::{FLORENCE, FLORENCE_Z10, mvt, write_one_tile_pmtiles};
use crate::mapserver::{Fault, MapServer};
use crate::packages::{Declared, archive, file_header, publish, region_pack};
use crate::regions::{
    WAIT, done, download_until_failed, fetch_manifest, manifest, pack_sized, start,
    start_with_region_list, titles,
};

/// Removes the part sizes from the region list, as the public map-data server's lacks them.
fn without_sizes(out: &Path) {
    let mut list = manifest(out);
    for entry in list.as_object_mut().unwrap().values_mut() {
        entry.as_object_mut().unwrap().remove("bytes");
    }
    std::fs::write(out.join("manifest.json"), list.to_string()).unwrap();
}

/// Nothing of region `id` is left: not done, no tiles, no download folder, no search rows.
async fn nothing_left_of(
    server: &crate::common::TestServer,
    status: &Value,
    id: &str,
    place: &str,
) {
    assert!(!done(status, id));
    assert!(!server.data_path(&format!("tiles/{id}.pmtiles")).exists());
    let parts = server.data_path(&format!("big_tmp/{id}"));
    let left: Vec<_> = std::fs::read_dir(&parts)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", parts.display());
    assert!(
        titles(server, place).await.is_empty(),
        "rows of {id} stayed"
    );
    assert_eq!(
        server.get(&format!("/tiles/{id}.pmtiles")).await.status(),
        404
    );
}

#[tokio::test]
async fn an_endless_part_stops_at_its_declared_size_and_is_removed() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "endless", &["Endless Town"], 1_000_000, 20_000);
    let declared = manifest(out.path())["endless"]["bytes"][0]
        .as_u64()
        .unwrap();
    let map = MapServer::start(out.path()).await;
    map.fail_always("endless.tar.gz.00", Fault::Endless);
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, error) = download_until_failed(&server, "endless").await;
    assert!(
        error.contains(&format!("more than the {declared} bytes")),
        "{error}"
    );
    assert_eq!(
        map.hits("endless.tar.gz.00"),
        1,
        "an oversized part is not retried"
    );
    nothing_left_of(&server, &status, "endless", "endless").await;
}

#[tokio::test]
async fn an_endless_part_without_a_declared_size_stops_at_the_ceiling() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "endless", &["Endless Town"], 1_000_000, 20_000);
    without_sizes(out.path());
    let map = MapServer::start(out.path()).await;
    map.fail_always("endless.tar.gz.00", Fault::Endless);
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &map,
        &[("DESERT_ATLAS_MAX_PART_BYTES", "3000000")],
    );
    fetch_manifest(&server).await;
    let (status, error) = download_until_failed(&server, "endless").await;
    assert!(error.contains("grew past 3 MB"), "{error}");
    nothing_left_of(&server, &status, "endless", "endless").await;
}

#[tokio::test]
async fn a_region_list_redirected_to_another_origin_is_refused() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "real", &["Real Town"], 1_000_000, 1_000);
    let elsewhere = tempfile::tempdir().unwrap();
    pack_sized(elsewhere.path(), "evil", &["Evil Town"], 1_000_000, 1_000);
    let map = MapServer::start(out.path()).await;
    let evil = MapServer::start(elsewhere.path()).await;
    map.fail_always(
        "manifest.json",
        Fault::Redirect(format!("{}manifest.json", evil.url)),
    );
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[]);
    assert_eq!(
        server
            .post("/app/download-manifest", &serde_json::json!({}))
            .await
            .status(),
        200
    );
    let status = server
        .wait_for_status(WAIT, |s| s["available-areas-status"] == "error")
        .await;
    let error = status["available-areas-error"].as_str().unwrap();
    assert!(error.contains("another site"), "{error}");
    assert!(error.contains(evil.url.trim_end_matches('/')), "{error}");
    assert!(status["available-areas"].is_null());
    assert_eq!(
        evil.hits("manifest.json"),
        0,
        "the other origin was never asked"
    );

    // A redirect within the same origin is followed.
    std::fs::copy(
        out.path().join("manifest.json"),
        out.path().join("moved.json"),
    )
    .unwrap();
    map.fail_always(
        "manifest.json",
        Fault::Redirect(format!("{}moved.json", map.url)),
    );
    fetch_manifest(&server).await;
    let status = server.get_json("/app/map-download-status").await;
    assert!(status["available-areas"]["real"].is_array(), "{status}");
    assert!(status["available-areas"]["evil"].is_null());
}

/// Packs `tiles` and `csv` as region `id` with the real `region pack`.
fn pack_files(out: &Path, id: &str, tiles: &Path, csv: &str) {
    let csv_path = out.join(format!("{id}.csv"));
    std::fs::write(&csv_path, csv).unwrap();
    let bounds = ["--bounds", "43.7,11.1,43.9,11.4"];
    region_pack(out, id, tiles, &csv_path, &bounds);
}

/// `n` zero bytes, gzip'd as one member.
fn gzip_of_zeros(n: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::copy(&mut std::io::repeat(0).take(n), &mut gz).unwrap();
    gz.finish().unwrap()
}

/// Which section of a PMTiles header to point elsewhere.
#[derive(Clone, Copy)]
enum Section {
    Metadata = 24,
    Leaves = 40,
}

/// A valid one-tile archive whose `section` is replaced by `data`, appended at its end.
fn archive_with(path: &Path, section: Section, data: &[u8]) {
    write_one_tile_pmtiles(path, "roads");
    let mut bytes = std::fs::read(path).unwrap();
    let offset = bytes.len() as u64;
    let at = section as usize;
    bytes[at..at + 8].copy_from_slice(&offset.to_le_bytes());
    bytes[at + 8..at + 16].copy_from_slice(&(data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// Asks for every region in `ids` and waits until each has failed; returns their errors.
async fn failures(server: &crate::common::TestServer, ids: &[&str]) -> (Value, Vec<String>) {
    for id in ids {
        crate::regions::download(server, id).await;
    }
    let status = server
        .wait_for_status(WAIT, |s| ids.iter().all(|id| crate::regions::failed(s, id)))
        .await;
    let errors = ids
        .iter()
        .map(|id| {
            status["in-progress"][id]["error"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (status, errors)
}

const PLACE_CSV: &str = "name,lat,lng\nHostile Square,43.77,11.25\n";

#[tokio::test]
async fn a_tiles_file_that_is_junk_or_zstd_is_refused_and_its_rows_never_show() {
    let out = tempfile::tempdir().unwrap();
    let junk = out.path().join("junk.pmtiles");
    let mut bytes = b"PMTiles\x03".to_vec();
    bytes.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(&junk, bytes).unwrap();
    pack_files(out.path(), "junk", &junk, PLACE_CSV);

    // A header that is right but a root directory that is junk.
    let rootless = out.path().join("rootless.pmtiles");
    write_one_tile_pmtiles(&rootless, "roads");
    let mut bytes = std::fs::read(&rootless).unwrap();
    for b in &mut bytes[127..140] {
        *b = 0xff;
    }
    std::fs::write(&rootless, bytes).unwrap();
    pack_files(out.path(), "rootless", &rootless, PLACE_CSV);

    let zstd = out.path().join("zstd.pmtiles");
    let writer = pmtiles::PmTilesWriter::new(pmtiles::TileType::Mvt)
        .precompressed(pmtiles::Compression::Zstd)
        .bounds(FLORENCE[0], FLORENCE[1], FLORENCE[2], FLORENCE[3]);
    let mut w = writer
        .create(std::fs::File::create(&zstd).unwrap())
        .unwrap();
    let (z, x, y) = FLORENCE_Z10;
    w.add_tile(
        pmtiles::TileCoord::new(z, x, y).unwrap(),
        &mvt(&[("roads", &[])]),
    )
    .unwrap();
    w.finalize().unwrap();
    pack_files(out.path(), "zstd", &zstd, PLACE_CSV);

    let map = MapServer::start(out.path()).await;
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, errors) = failures(&server, &["junk", "rootless", "zstd"]).await;
    assert!(errors[0].contains("tiles file"), "{}", errors[0]);
    assert!(
        errors[1].contains("tiles file cannot be used"),
        "{}",
        errors[1]
    );
    assert_eq!(
        errors[2],
        "This region's tiles use zstd compression, which this version cannot read."
    );
    for id in ["junk", "rootless", "zstd"] {
        nothing_left_of(&server, &status, id, "hostile").await;
    }
    assert_eq!(server.get("/tiles/10/544/373.mvt").await.status(), 204);
}

#[tokio::test]
async fn metadata_or_directories_that_expand_past_their_bound_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let metadata = out.path().join("metadata.pmtiles");
    archive_with(&metadata, Section::Metadata, &gzip_of_zeros(64 << 20));
    pack_files(out.path(), "metadata", &metadata, PLACE_CSV);
    let leaves = out.path().join("leaves.pmtiles");
    archive_with(&leaves, Section::Leaves, &gzip_of_zeros(64 << 20));
    pack_files(out.path(), "leaves", &leaves, PLACE_CSV);

    let map = MapServer::start(out.path()).await;
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, errors) = failures(&server, &["metadata", "leaves"]).await;
    assert!(
        errors[0].contains("its metadata would take more than 1 MiB decompressed"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("its leaf directories would take more than 16 MiB"),
        "{}",
        errors[1]
    );
    for id in ["metadata", "leaves"] {
        nothing_left_of(&server, &status, id, "hostile").await;
    }
}

/// The highest resident memory of process `pid` so far, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn an_installed_archive_with_a_metadata_bomb_is_served_without_expanding_it() {
    // As an older version could have installed it: the start-up must not expand the metadata.
    let work = tempfile::tempdir().unwrap();
    let bomb = work.path().join("bomb.pmtiles");
    archive_with(&bomb, Section::Metadata, &gzip_of_zeros(1 << 30));
    let dir = tempfile::tempdir().unwrap();
    crate::fixtures::install_region(dir.path(), "bomb", &bomb);
    let server = crate::common::TestServer::start(dir.path());
    assert_eq!(server.get("/tiles/10/544/373.mvt").await.status(), 200);
    let tilejson = server.get_json("/tiles/tiles.json").await;
    assert_eq!(tilejson["regions"], serde_json::json!(["bomb"]));
    assert_eq!(tilejson["attribution"], "");
    let peak = peak_memory(server.pid());
    assert!(peak < 256 << 20, "peak memory {} MB", peak >> 20);
}

/// Writes region `id` as one part whose archive holds `pkg/` and `members` (name, size,
/// content), with its entry, sizes and checksums, in `out/manifest.json`.
fn tar_package(out: &Path, id: &str, members: Vec<(&str, u64, Box<dyn Read>)>) {
    let archive = archive(|tar| {
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        tar.append_data(&mut dir, "pkg/", std::io::empty()).unwrap();
        for (name, size, content) in members {
            tar.append_data(&mut file_header(size), name, content)
                .unwrap();
        }
    });
    publish(out, id, &archive, 1, Declared::SizesAndChecksums);
}

/// A valid one-tile archive's bytes.
fn good_tiles() -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("t.pmtiles");
    write_one_tile_pmtiles(&path, "roads");
    std::fs::read(path).unwrap()
}

fn member(name: &str, bytes: Vec<u8>) -> (&str, u64, Box<dyn Read>) {
    (
        name,
        bytes.len() as u64,
        Box::new(std::io::Cursor::new(bytes)),
    )
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_past_its_ratio_and_leaves_nothing() {
    let out = tempfile::tempdir().unwrap();
    // About 1 MiB that unpacks to 1 GiB of tiles.
    let gib = 1u64 << 30;
    tar_package(
        out.path(),
        "bomb",
        vec![
            member("pkg/search.csv", PLACE_CSV.as_bytes().to_vec()),
            (
                "pkg/tiles.pmtiles",
                gib,
                Box::new(std::io::repeat(0).take(gib)),
            ),
        ],
    );
    let map = MapServer::start(out.path()).await;
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, error) = download_until_failed(&server, "bomb").await;
    assert!(error.contains("more than 20 times its download"), "{error}");
    nothing_left_of(&server, &status, "bomb", "hostile").await;
    let peak = peak_memory(server.pid());
    assert!(peak < 128 << 20, "peak memory {} MB", peak >> 20);
}

#[tokio::test]
async fn unpacking_stops_before_the_disk_is_full() {
    let out = tempfile::tempdir().unwrap();
    // 64 MiB that compresses about 5 times, as no bomb would (one random byte in 16), so
    // only the disk (48 MiB) stops it.
    let mut seed = 11u64;
    let tiles: Vec<u8> = (0..64u32 << 20)
        .map(|i| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            if i % 16 == 15 {
                (seed >> 56) as u8
            } else {
                b'a'
            }
        })
        .collect();
    tar_package(
        out.path(),
        "wide",
        vec![
            member("pkg/tiles.pmtiles", tiles),
            member("pkg/search.csv", PLACE_CSV.as_bytes().to_vec()),
        ],
    );
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = crate::regions::start_with(dir.path(), &map, &[], Some(48 * 1024));
    fetch_manifest(&server).await;
    let (status, error) = download_until_failed(&server, "wide").await;
    assert!(error.contains("nearly full"), "{error}");
    nothing_left_of(&server, &status, "wide", "hostile").await;
    let bookmark = serde_json::json!({"name": "After", "latlng": {"lat": 43.77, "lng": 11.25}});
    assert_eq!(server.post("/app/bookmark", &bookmark).await.status(), 200);
}

#[tokio::test]
async fn a_search_csv_with_a_huge_field_or_an_unclosed_quote_is_refused_in_bounded_memory() {
    let out = tempfile::tempdir().unwrap();
    let gib = 1u64 << 30;
    let head = b"name,lat,lng\nA,43.7,".to_vec();
    let field = std::io::Cursor::new(head.clone()).chain(std::io::repeat(b'1').take(gib));
    tar_package(
        out.path(),
        "field",
        vec![
            member("pkg/tiles.pmtiles", good_tiles()),
            ("pkg/search.csv", head.len() as u64 + gib, Box::new(field)),
        ],
    );
    let mut unclosed = String::from("name,lat,lng\n\"Hostile Square,43.77,11.25\n");
    for i in 0..100_000 {
        unclosed.push_str(&format!("Hostile Street {i},43.7,11.2\n"));
    }
    tar_package(
        out.path(),
        "quote",
        vec![
            member("pkg/tiles.pmtiles", good_tiles()),
            member("pkg/search.csv", unclosed.into_bytes()),
        ],
    );
    let map = MapServer::start(out.path()).await;
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, errors) = failures(&server, &["field", "quote"]).await;
    for error in errors {
        assert!(
            error.contains("search data has a field longer than 64 KiB, maybe an unclosed quote"),
            "{error}"
        );
    }
    for id in ["field", "quote"] {
        nothing_left_of(&server, &status, id, "hostile").await;
    }
    let peak = peak_memory(server.pid());
    assert!(peak < 128 << 20, "peak memory {} MB", peak >> 20);
}
