//! Region downloads against a local map-data server with injected faults (docs/api.md §2, §5).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{BIN, Options, TestServer, assert_error};
use crate::fixtures::{FLORENCE, FLORENCE_Z10, mvt, write_pmtiles};
use crate::mapserver::{Fault, MapServer};
use crate::packages::{Declared, PackageTar, archive, file_header, publish, region_pack};

pub const WAIT: Duration = Duration::from_secs(60);

/// Packs region `id` into `out` with the real `region pack`; its places are `names`.
/// Tiles get incompressible padding so a small part size gives several parts.
fn pack(out: &Path, id: &str, names: &[&str], part_size: u64) {
    pack_sized(out, id, names, part_size, 20_000);
}

/// [`pack`] with `noise` bytes of incompressible padding.
pub fn pack_sized(out: &Path, id: &str, names: &[&str], part_size: u64, noise: usize) {
    let work = out.join(format!("{id}.src"));
    std::fs::create_dir_all(&work).unwrap();
    let mut tiles = vec![(FLORENCE_Z10, mvt(&[("roads", &[("name", id)])]))];
    let mut seed = id.len() as u64 + 7;
    let noise: Vec<u8> = (0..noise)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    tiles.push(((14, 8700, 5950), noise));
    write_pmtiles(
        &work.join("tiles.pmtiles"),
        FLORENCE,
        (0, 14),
        &tiles,
        false,
    );
    let mut csv = String::from("name,lat,lng\n");
    for (i, name) in names.iter().enumerate() {
        csv.push_str(&format!(
            "\"{name}\",{},{}\n",
            43.7 + (i % 1000) as f64 * 0.01,
            11.2
        ));
    }
    csv.push_str("broken row without numbers\n");
    std::fs::write(work.join("search.csv"), csv).unwrap();
    let part_size = part_size.to_string();
    region_pack(
        out,
        id,
        &work.join("tiles.pmtiles"),
        &work.join("search.csv"),
        &["--part-size", &part_size],
    );
}

pub fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

pub fn start(dir: &Path, map: &MapServer, env: &[(&str, &str)]) -> TestServer {
    start_with(dir, map, env, None)
}

/// [`start`], with the data dir on a disk of `disk_kib` KiB when given.
pub fn start_with(
    dir: &Path,
    map: &MapServer,
    env: &[(&str, &str)],
    disk_kib: Option<u64>,
) -> TestServer {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("DESERT_ATLAS_RETRY_BASE_MS".into(), "20".into()));
    TestServer::start_with(
        dir,
        Options {
            extra_args: vec!["--map-data-url".into(), map.url.clone()],
            env,
            disk_kib,
            ..Default::default()
        },
    )
}

/// A server on a fresh data dir (returned with it) that has fetched `map`'s region list.
pub async fn start_with_region_list(map: &MapServer) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), map, &[]);
    fetch_manifest(&server).await;
    (dir, server)
}

pub async fn fetch_manifest(server: &TestServer) {
    assert_eq!(
        server
            .post("/app/download-manifest", &json!({}))
            .await
            .status(),
        200
    );
    server
        .wait_for_status(WAIT, |s| {
            s["available-areas"].is_object() && s["available-areas-status"] == ""
        })
        .await;
}

pub async fn download(server: &TestServer, id: &str) {
    let r = server
        .post("/app/download-map", &json!({"tile-id": id}))
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// Asks for region `id` and waits until it fails; returns the status and the region's error.
pub async fn download_until_failed(server: &TestServer, id: &str) -> (Value, String) {
    download(server, id).await;
    let status = server.wait_for_status(WAIT, |s| failed(s, id)).await;
    let error = status["in-progress"][id]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, error)
}

/// Each of `parts` was fetched once: verified before the download stopped, it was not
/// fetched again when the download resumed.
pub fn assert_fetched_once(map: &MapServer, parts: &[&str]) {
    for part in parts {
        assert_eq!(
            map.hits(part),
            1,
            "{part}: a verified part is not fetched again"
        );
    }
}

pub fn done(status: &Value, id: &str) -> bool {
    status["done"].as_array().unwrap().iter().any(|d| d == id)
}

pub fn failed(status: &Value, id: &str) -> bool {
    status["in-progress"][id]["downloadError"] == true
}

pub async fn titles(server: &TestServer, q: &str) -> Vec<String> {
    let found = server
        .get_json(&format!("/app/search?q={q}&lat=43.7&lng=11.2"))
        .await;
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn two_regions_download_at_once_and_install_with_their_search_rows() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "tuscany", &["Ponte Vecchio", "Uffizi"], 4096);
    pack(out.path(), "umbria", &["Assisi"], 4096);
    assert!(
        manifest(out.path())["tuscany"]["files"]
            .as_array()
            .unwrap()
            .len()
            > 2
    );
    let map = MapServer::start(out.path()).await;
    let (dir, server) = start_with_region_list(&map).await;
    let status = server.get_json("/app/map-download-status").await;
    assert_eq!(
        status["available-areas"]["tuscany"],
        json!([[43.72, 11.15], [43.84, 11.33]])
    );
    download(&server, "tuscany").await;
    download(&server, "umbria").await;
    let status = server
        .wait_for_status(WAIT, |s| done(s, "tuscany") && done(s, "umbria"))
        .await;
    assert_eq!(status["in-progress"], json!({}));
    assert_eq!(status["queued-for-download"], json!([]));
    assert_eq!(titles(&server, "ponte").await, vec!["Ponte Vecchio"]);
    assert_eq!(titles(&server, "assisi").await, vec!["Assisi"]);
    assert!(
        titles(&server, "name").await.is_empty(),
        "the header row is not a place"
    );
    assert_eq!(server.get("/tiles/umbria.pmtiles").await.status(), 200);
    let merged = server.get("/tiles/10/544/373.mvt").await;
    assert_eq!(merged.status(), 200);
    assert_eq!(
        std::fs::read_dir(dir.path().join("big_tmp"))
            .unwrap()
            .count(),
        0
    );
    // Asking again for an installed region changes nothing.
    download(&server, "tuscany").await;
    assert_eq!(
        server.get_json("/app/map-download-status").await["queued-for-download"],
        json!([])
    );
}

#[tokio::test]
async fn server_errors_throttling_and_dropped_connections_are_retried() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let map = MapServer::start(out.path()).await;
    map.fail_next(
        "r.tar.gz.00",
        &[
            Fault::Status(500),
            Fault::TooManyRequests,
            Fault::DropAfter(1000),
        ],
    );
    map.fail_next("r.tar.gz.01", &[Fault::Status(503), Fault::DropAfter(10)]);
    map.fail_next("manifest.json", &[Fault::Status(502)]);
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(map.hits("r.tar.gz.00"), 4);
    assert_eq!(map.hits("r.tar.gz.01"), 3);
    assert_eq!(titles(&server, "somewhere").await, vec!["Somewhere"]);
}

#[tokio::test]
async fn a_truncated_or_corrupt_part_is_fetched_again() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let map = MapServer::start(out.path()).await;
    map.fail_next("r.tar.gz.00", &[Fault::Truncate(100)]);
    map.fail_next("r.tar.gz.01", &[Fault::Corrupt]);
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(map.hits("r.tar.gz.00"), 2);
    assert_eq!(map.hits("r.tar.gz.01"), 2);
}

#[tokio::test]
async fn a_part_that_stays_corrupt_fails_the_region_and_nothing_is_installed() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let map = MapServer::start(out.path()).await;
    map.fail_always("r.tar.gz.01", Fault::Corrupt);
    let (_dir, server) = start_with_region_list(&map).await;
    let (status, error) = download_until_failed(&server, "r").await;
    assert!(error.contains("checksum"), "{error}");
    assert!(!done(&status, "r"));
    assert!(titles(&server, "somewhere").await.is_empty());
    assert_eq!(server.get("/tiles/r.pmtiles").await.status(), 404);
    // Once the server is fixed, asking again installs it, without a restart.
    map.heal("r.tar.gz.01");
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
}

#[tokio::test]
async fn a_missing_part_fails_at_once_with_a_readable_message() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let map = MapServer::start(out.path()).await;
    map.fail_always("r.tar.gz.02", Fault::Status(404));
    let (_dir, server) = start_with_region_list(&map).await;
    let (_, error) = download_until_failed(&server, "r").await;
    assert!(error.contains("404"), "{error}");
    assert_eq!(map.hits("r.tar.gz.02"), 1, "a 404 is not retried");
    // The failure survives a restart, and stays until asked again.
    let server = server.restart();
    let status = server.get_json("/app/map-download-status").await;
    assert!(failed(&status, "r"), "{status}");
}

/// Writes a package whose archive holds `members` (built by `build`), and its manifest entry.
fn malicious_package(out: &Path, id: &str, build: impl FnOnce(&mut PackageTar)) {
    publish(out, id, &archive(build), 1, Declared::Nothing);
}

fn good_members(tar: &mut PackageTar) {
    let csv = b"name,lat,lng\nEvil Place,43.7,11.2\n";
    tar.append_data(
        &mut file_header(csv.len() as u64),
        "pkg/search.csv",
        &csv[..],
    )
    .unwrap();
    let tiles = b"PMTiles\x03 not really";
    tar.append_data(
        &mut file_header(tiles.len() as u64),
        "pkg/tiles.pmtiles",
        &tiles[..],
    )
    .unwrap();
}

/// Appends a member with a raw name, bypassing the tar crate's own path checks.
fn raw_member(tar: &mut PackageTar, name: &str, kind: tar::EntryType, link: Option<&str>) {
    let mut h = tar::Header::new_old();
    {
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(if kind == tar::EntryType::Regular {
        4
    } else {
        0
    });
    h.set_cksum();
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"evil"
    } else {
        b""
    };
    tar.append(&h, data).unwrap();
}

#[tokio::test]
async fn malicious_archives_are_refused_and_write_nothing_outside() {
    let out = tempfile::tempdir().unwrap();
    malicious_package(out.path(), "escape", |t| {
        good_members(t);
        raw_member(t, "pkg/../../evil.txt", tar::EntryType::Regular, None);
    });
    malicious_package(out.path(), "absolute", |t| {
        raw_member(
            t,
            "/tmp/desert-atlas-evil.txt",
            tar::EntryType::Regular,
            None,
        );
        good_members(t);
    });
    malicious_package(out.path(), "symlink", |t| {
        raw_member(
            t,
            "pkg/tiles.pmtiles",
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
        );
        good_members(t);
    });
    malicious_package(out.path(), "extra", |t| {
        good_members(t);
        raw_member(t, "pkg/extra.txt", tar::EntryType::Regular, None);
    });
    malicious_package(out.path(), "device", |t| {
        raw_member(t, "pkg/dev", tar::EntryType::Char, None);
        good_members(t);
    });
    malicious_package(out.path(), "hardlink", |t| {
        good_members(t);
        raw_member(
            t,
            "pkg/search.csv",
            tar::EntryType::Link,
            Some("pkg/tiles.pmtiles"),
        );
    });
    let map = MapServer::start(out.path()).await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("grain");
    let server = start(&dir, &map, &[]);
    fetch_manifest(&server).await;
    let ids = [
        "escape", "absolute", "symlink", "extra", "device", "hardlink",
    ];
    for id in ids {
        download(&server, id).await;
    }
    let status = server
        .wait_for_status(WAIT, |s| ids.iter().all(|id| failed(s, id)))
        .await;
    for id in ids {
        let error = status["in-progress"][id]["error"].as_str().unwrap();
        assert!(error.contains("unexpected member"), "{id}: {error}");
        assert!(!done(&status, id));
    }
    assert!(status["done"].as_array().unwrap().is_empty());
    assert!(
        titles(&server, "evil").await.is_empty(),
        "no rows of a refused region stay"
    );
    assert!(!root.path().join("evil.txt").exists());
    assert!(!Path::new("/tmp/desert-atlas-evil.txt").exists());
    assert_eq!(std::fs::read_dir(dir.join("tiles")).unwrap().count(), 0);
}

#[tokio::test]
async fn parts_are_unpacked_as_they_arrive_so_a_bad_archive_fails_before_the_last_part() {
    // A refused first member, then enough incompressible bytes for several parts.
    let mut seed = 3u64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    let bytes = archive(|tar| {
        raw_member(tar, "pkg/dev", tar::EntryType::Char, None);
        tar.append_data(
            &mut file_header(noise.len() as u64),
            "pkg/tiles.pmtiles",
            &noise[..],
        )
        .unwrap();
    });
    let out = tempfile::tempdir().unwrap();
    let files = publish(out.path(), "r", &bytes, 4, Declared::Nothing);
    assert_eq!(files.len(), 4);
    let last = files.last().unwrap().clone();
    let map = MapServer::start(out.path()).await;
    map.fail_always(&last, Fault::Hold);
    let (dir, server) = start_with_region_list(&map).await;
    // The last part is never sent; the install refuses the archive from its first part.
    let (status, error) = download_until_failed(&server, "r").await;
    assert!(error.contains("unexpected member"), "{error}");
    assert!(!done(&status, "r"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("tiles")).unwrap().count(),
        0
    );
    map.release();
}

#[tokio::test]
async fn a_download_killed_mid_way_resumes_from_its_verified_parts() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 2048);
    let parts = manifest(out.path())["r"]["files"].as_array().unwrap().len();
    assert!(parts >= 6, "{parts} parts");
    let map = MapServer::start(out.path()).await;
    for i in 2..parts {
        map.fail_next(&format!("r.tar.gz.{i:02}"), &[Fault::Hold]);
    }
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    let status = server
        .wait_for_status(WAIT, |s| s["in-progress"]["r"]["downloadDone"] == 2)
        .await;
    assert!(!done(&status, "r"));
    assert!(titles(&server, "somewhere").await.is_empty());
    assert_eq!(server.get("/tiles/r.pmtiles").await.status(), 404);

    let dir = server.kill();
    map.release();
    let server = start(&dir, &map, &[]);
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_fetched_once(&map, &["r.tar.gz.00", "r.tar.gz.01"]);
    assert_eq!(
        map.hits("manifest.json"),
        1,
        "the region list is kept across restarts"
    );
    assert_eq!(titles(&server, "somewhere").await, vec!["Somewhere"]);
}

#[tokio::test]
async fn a_queued_region_can_be_deleted_before_it_downloads() {
    let out = tempfile::tempdir().unwrap();
    for id in ["a", "b", "c"] {
        pack(out.path(), id, &[id], 100_000);
    }
    let map = MapServer::start(out.path()).await;
    map.fail_next("a.tar.gz.00", &[Fault::Hold]);
    map.fail_next("b.tar.gz.00", &[Fault::Hold]);
    let (_dir, server) = start_with_region_list(&map).await;
    for id in ["a", "b", "c"] {
        download(&server, id).await;
    }
    let status = server
        .wait_for_status(WAIT, |s| s["queued-for-download"] == json!(["c"]))
        .await;
    assert!(status["in-progress"]["a"].is_object());
    assert_eq!(
        server
            .post("/app/map-delete", &json!({"tile-id": "c"}))
            .await
            .status(),
        200
    );
    map.release();
    server
        .wait_for_status(WAIT, |s| {
            done(s, "a") && done(s, "b") && s["queued-for-deletion"] == json!([])
        })
        .await;
    let status = server.get_json("/app/map-download-status").await;
    assert!(!done(&status, "c"));
    assert_eq!(map.hits("c.tar.gz.00"), 0);
}

#[tokio::test]
async fn a_region_deleted_mid_download_stops_and_leaves_nothing_behind() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let parts = manifest(out.path())["r"]["files"].as_array().unwrap().len();
    assert!(parts >= 4);
    let map = MapServer::start(out.path()).await;
    map.fail_next("r.tar.gz.02", &[Fault::Hold]);
    let (dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    server
        .wait_for_status(WAIT, |s| {
            s["in-progress"]["r"]["downloadDone"].as_u64() >= Some(1)
        })
        .await;
    assert!(dir.path().join("big_tmp/r").exists(), "parts are on disk");
    assert_eq!(
        server
            .post("/app/map-delete", &json!({"tile-id": "r"}))
            .await
            .status(),
        200
    );
    map.release();
    let status = server
        .wait_for_status(WAIT, |s| {
            s["in-progress"]["r"].is_null() && s["queued-for-deletion"] == json!([])
        })
        .await;
    assert!(!done(&status, "r"));
    assert!(!dir.path().join("big_tmp/r").exists());
    assert!(!dir.path().join("tiles/r.pmtiles").exists());
    assert!(titles(&server, "somewhere").await.is_empty());
}

#[tokio::test]
async fn delete_all_removes_every_region_tiles_first() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "a", &["Alpha"], 100_000);
    pack(out.path(), "b", &["Beta"], 100_000);
    let map = MapServer::start(out.path()).await;
    let (dir, server) = start_with_region_list(&map).await;
    download(&server, "a").await;
    download(&server, "b").await;
    server
        .wait_for_status(WAIT, |s| done(s, "a") && done(s, "b"))
        .await;
    assert_eq!(
        server
            .post("/app/map-delete", &json!({"tile-id": "all"}))
            .await
            .status(),
        200
    );
    server
        .wait_for_status(WAIT, |s| {
            s["done"] == json!([]) && s["queued-for-deletion"] == json!([])
        })
        .await;
    assert_eq!(server.get("/tiles/a.pmtiles").await.status(), 404);
    assert_eq!(server.get("/tiles/10/544/373.mvt").await.status(), 204);
    assert!(titles(&server, "alpha").await.is_empty());
    assert!(titles(&server, "beta").await.is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("search_imported"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn a_region_that_does_not_fit_on_disk_is_refused_with_a_message() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 4096);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[("DESERT_ATLAS_FREE_BYTES", "1000")]);
    fetch_manifest(&server).await;
    let (_, error) = download_until_failed(&server, "r").await;
    assert!(error.contains("disk space"), "{error}");
    assert_eq!(map.hits("r.tar.gz.00"), 0, "nothing is downloaded");
}

#[tokio::test]
async fn region_requests_are_checked_before_anything_is_queued() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 100_000);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[]);
    assert_error(
        server
            .post("/app/download-map", &json!({"tile-id": "r"}))
            .await,
        409,
    )
    .await;
    for path in [
        "/app/download-manifest",
        "/app/download-map",
        "/app/map-delete",
    ] {
        assert_error(
            server
                .post_as(path, Some("friend"), "bookmarks", &json!({"tile-id": "r"}))
                .await,
            403,
        )
        .await;
    }
    assert_eq!(map.hits("manifest.json"), 0);
    fetch_manifest(&server).await;
    assert_error(
        server
            .post("/app/download-map", &json!({"tile-id": "nowhere"}))
            .await,
        404,
    )
    .await;
    for bad in [json!({}), json!({"tile-id": 5}), json!({"tile-id": "../x"})] {
        assert_error(server.post("/app/download-map", &bad).await, 400).await;
        assert_error(server.post("/app/map-delete", &bad).await, 400).await;
    }
    assert_error(
        server
            .post("/app/map-delete", &json!({"tile-id": "base-map"}))
            .await,
        400,
    )
    .await;
    let status = server.get_json("/app/map-download-status").await;
    assert_eq!(status["queued-for-download"], json!([]));
    assert_eq!(status["queued-for-deletion"], json!([]));
}

#[tokio::test]
async fn a_failed_region_list_says_so_and_can_be_fetched_again() {
    let out = tempfile::tempdir().unwrap();
    pack(out.path(), "r", &["Somewhere"], 100_000);
    let map = MapServer::start(out.path()).await;
    map.fail_always("manifest.json", Fault::Status(404));
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[]);
    server.post("/app/download-manifest", &json!({})).await;
    let status = server
        .wait_for_status(WAIT, |s| s["available-areas-status"] == "error")
        .await;
    assert!(status["available-areas"].is_null());
    assert!(
        status["available-areas-error"]
            .as_str()
            .unwrap()
            .contains("404")
    );
    map.heal("manifest.json");
    fetch_manifest(&server).await;
}

#[test]
fn region_pack_refuses_bad_arguments_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(&csv, "name,lat,lng\n").unwrap();
    let not_tiles = dir.path().join("t.pmtiles");
    std::fs::write(&not_tiles, vec![0u8; 200]).unwrap();
    for args in [
        vec!["--id", "../x"],
        vec!["--id", "ok"],
        vec!["--id", "ok", "--bounds", "1,2,3"],
    ] {
        let out = Command::new(BIN)
            .args(["region", "pack"])
            .args(&args)
            .arg("--tiles")
            .arg(&not_tiles)
            .arg("--search")
            .arg(&csv)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!dir.path().join("out/manifest.json").exists());
}
