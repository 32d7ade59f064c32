//! A grain whose disk fills up: a region that does not fit is refused or given up with a
//! sentence, its partial download removed, and the grain keeps working. The servers run on a
//! real, small filesystem (see `Options::disk_kib`), so the disk really fills.

use std::path::Path;

use serde_json::json;

use crate::common::{TestServer, assert_error};
use crate::mapserver::MapServer;
use crate::regions::{
    done, download_until_failed, fetch_manifest, manifest, pack_sized, start, start_with, titles,
};

/// Removes the part sizes from the region list, as the public map-data server's lacks them:
/// then nothing tells the size of a region before its parts arrive.
fn drop_sizes(out: &Path) {
    let mut list = manifest(out);
    for entry in list.as_object_mut().unwrap().values_mut() {
        entry.as_object_mut().unwrap().remove("bytes");
    }
    std::fs::write(out.join("manifest.json"), list.to_string()).unwrap();
}

fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a writable statvfs.
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

async fn bookmark(server: &TestServer, name: &str) -> reqwest::Response {
    server
        .post(
            "/app/bookmark",
            &json!({"name": name, "latlng": {"lat": 43.77, "lng": 11.25}}),
        )
        .await
}

#[tokio::test]
async fn a_region_that_fills_the_disk_mid_download_is_given_up_and_its_parts_removed() {
    let out = tempfile::tempdir().unwrap();
    // 3 MB of incompressible tiles in 256 KiB parts, for a 2 MiB disk.
    pack_sized(out.path(), "big", &["Bigtown"], 256 * 1024, 3_000_000);
    drop_sizes(out.path());
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    // The estimate before the first part is told the disk is huge, so the real disk fills.
    let huge = ("DESERT_ATLAS_FREE_BYTES", "100000000000");
    let server = start_with(dir.path(), &map, &[huge], Some(2048));
    assert_eq!(bookmark(&server, "Before").await.status(), 200);
    fetch_manifest(&server).await;
    let (status, error) = download_until_failed(&server, "big").await;
    assert!(error.contains("disk is full"), "{error}");
    assert!(!done(&status, "big"));
    assert!(map.hits("big.tar.gz.00") >= 1, "the download had begun");

    // Nothing of the region is left: no tiles, no search rows, no parts holding the space.
    assert!(!server.data_path("tiles/big.pmtiles").exists());
    assert!(
        !server.data_path("big_tmp/big").exists(),
        "{}",
        server.log()
    );
    assert!(titles(&server, "bigtown").await.is_empty());
    let free = free_bytes(&server.data_path(""));
    assert!(
        free > 1024 * 1024,
        "only {free} bytes free after the failure"
    );

    // The grain goes on: bookmarks are saved and none is lost.
    assert_eq!(bookmark(&server, "After").await.status(), 200);
    let list = server.get_json("/app/bookmarks").await;
    let mut names: Vec<&str> = list
        .as_object()
        .unwrap()
        .values()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["After", "Before"]);
}

#[tokio::test]
async fn a_region_without_sizes_that_cannot_fit_is_refused_before_it_fills_the_disk() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "big", &["Bigtown"], 64 * 1024, 1_000_000);
    drop_sizes(out.path());
    let parts = manifest(out.path())["big"]["files"]
        .as_array()
        .unwrap()
        .len();
    assert!(parts >= 10);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    // Room for the download alone, not for the unpacked tiles and the search rows too.
    let server = start(dir.path(), &map, &[("DESERT_ATLAS_FREE_BYTES", "1500000")]);
    fetch_manifest(&server).await;
    let (_, error) = download_until_failed(&server, "big").await;
    assert!(error.contains("not enough disk space"), "{error}");
    assert!(!dir.path().join("big_tmp/big").exists());
    let fetched: usize = (0..parts)
        .map(|i| map.hits(&format!("big.tar.gz.{i:02}")))
        .sum();
    // The parts already asked for when the first answer came (4 connections), no more.
    assert!(fetched <= 4, "{fetched} parts fetched");
}

#[tokio::test]
async fn a_region_whose_search_rows_fill_the_disk_is_rolled_back() {
    let out = tempfile::tempdir().unwrap();
    // Few tile bytes, many places: the archive is small, the search index is not.
    let names: Vec<String> = (0..60_000).map(|i| format!("Via Numero {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    pack_sized(out.path(), "dense", &names, 2 * 1024 * 1024, 10_000);
    let archive: u64 = manifest(out.path())["dense"]["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .sum();
    // The download and the tiles fit on the 3 MiB disk with room to spare: what fills it
    // is the search import.
    assert!(archive < 1_200_000, "{archive} bytes");
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let huge = ("DESERT_ATLAS_FREE_BYTES", "100000000000");
    let server = start_with(dir.path(), &map, &[huge], Some(3072));
    assert_eq!(bookmark(&server, "Before").await.status(), 200);
    fetch_manifest(&server).await;
    let (_, error) = download_until_failed(&server, "dense").await;
    assert!(error.contains("disk is full"), "{error}");
    assert!(!server.data_path("tiles/dense.pmtiles").exists());
    assert!(!server.data_path("big_tmp/dense").exists());
    assert!(titles(&server, "numero").await.is_empty());
    assert_eq!(bookmark(&server, "After").await.status(), 200);
}

#[tokio::test]
async fn a_bookmark_on_a_full_disk_is_refused_with_507_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        crate::common::Options {
            disk_kib: Some(1024),
            ..Default::default()
        },
    );
    let mut saved = vec!["Before".to_string()];
    assert_eq!(bookmark(&server, "Before").await.status(), 200);
    // Fill what is left of the disk.
    let ballast = server.data_path("ballast");
    let _ = std::fs::write(&ballast, vec![0u8; 2 * 1024 * 1024]);
    assert_eq!(free_bytes(&server.data_path("")), 0);

    // SQLite may still have room in files it already holds; keep saving until it has none.
    let mut refusal = None;
    for i in 0..200 {
        let name = format!("Bookmark {i} {}", "x".repeat(200));
        let r = bookmark(&server, &name).await;
        match r.status().as_u16() {
            200 => saved.push(name),
            507 => {
                refusal = Some(assert_error(r, 507).await);
                break;
            }
            other => panic!("a full disk answered {other}: {:?}", r.text().await),
        }
    }
    let message = refusal.expect("the disk never ran out");
    assert!(message.contains("disk is full"), "{message}");

    std::fs::remove_file(&ballast).unwrap();
    assert_eq!(bookmark(&server, "After").await.status(), 200);
    saved.push("After".into());
    let list = server.get_json("/app/bookmarks").await;
    let mut names: Vec<String> = list
        .as_object()
        .unwrap()
        .values()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    saved.sort();
    assert_eq!(names, saved);
}

#[tokio::test]
async fn a_region_deleted_on_a_full_disk_is_deleted_and_frees_its_space() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Fulltown"], 2 * 1024 * 1024, 1_500_000);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(dir.path(), &map, &[], Some(16 * 1024));
    fetch_manifest(&server).await;
    crate::regions::download(&server, "r").await;
    server
        .wait_for_status(crate::regions::WAIT, |s| done(s, "r"))
        .await;
    // Fill what is left of the disk, then keep SQLite from finding room in its own files.
    let ballast = server.data_path("ballast");
    let _ = std::fs::write(&ballast, vec![0u8; 32 * 1024 * 1024]);
    assert_eq!(free_bytes(&server.data_path("")), 0);
    for i in 0..200 {
        if bookmark(&server, &format!("Filler {i} {}", "x".repeat(500)))
            .await
            .status()
            == 507
        {
            break;
        }
    }
    assert_eq!(
        bookmark(&server, "Full").await.status(),
        507,
        "the disk is full"
    );

    let r = server
        .post("/app/map-delete", &json!({"tile-id": "r"}))
        .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let status = server
        .wait_for_status(crate::regions::WAIT, |s| {
            !done(s, "r") && s["queued-for-deletion"] == json!([])
        })
        .await;
    assert!(status["in-progress"]["r"].is_null(), "{status}");
    assert!(!server.data_path("tiles/r.pmtiles").exists());
    assert!(titles(&server, "fulltown").await.is_empty());
    let free = free_bytes(&server.data_path(""));
    assert!(free > 1_000_000, "only {free} bytes free after the delete");
    assert_eq!(bookmark(&server, "After").await.status(), 200);
}
