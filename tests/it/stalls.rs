//! Downloads against map-data servers that stall or trickle: nothing they do may hold a
//! delete, the download slots, the region list or the search index for long.
//!
//! The few time bounds here (10 s) are far above what the behaviour needs and far below what
//! a stall would take (the rate floor is set to minutes where it is not under test), so they
//! only catch a hang.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mapserver::{Fault, MapServer};
use crate::regions::{
    WAIT, done, download, failed, fetch_manifest, manifest, pack_sized, start,
    start_with_region_list, titles,
};

/// Long enough that the rate floor never ends a stall during a test.
const NO_RATE_FLOOR: (&str, &str) = ("DESERT_ATLAS_MIN_RATE_WINDOW_MS", "600000");
/// Far less than a stalled read would take to be noticed any other way.
const HANG: Duration = Duration::from_secs(10);

fn parts_of(out: &std::path::Path, id: &str) -> usize {
    manifest(out)[id]["files"].as_array().unwrap().len()
}

fn gone(status: &Value, id: &str) -> bool {
    status["in-progress"][id].is_null()
        && status["queued-for-deletion"] == json!([])
        && !done(status, id)
}

#[tokio::test]
async fn a_delete_during_a_stalled_part_stops_it_at_once() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 4096, 20_000);
    let parts = parts_of(out.path(), "r");
    let map = MapServer::start(out.path()).await;
    map.fail_always("r.tar.gz.01", Fault::StallAfter(100));
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[NO_RATE_FLOOR]);
    fetch_manifest(&server).await;
    download(&server, "r").await;
    server
        .wait_for_status(WAIT, |s| {
            s["in-progress"]["r"]["downloadDone"].as_u64() == Some(parts as u64 - 1)
        })
        .await;
    let r = server
        .post("/app/map-delete", &json!({"tile-id": "r"}))
        .await;
    assert_eq!(r.status(), 200);
    server.wait_for_status(HANG, |s| gone(s, "r")).await;
    assert!(!dir.path().join("big_tmp/r").exists());
    assert!(titles(&server, "somewhere").await.is_empty());
    server.stop();
}

#[tokio::test]
async fn deleting_a_region_completes_while_another_regions_part_is_stalled() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "a", &["Alpha"], 100_000, 1000);
    // b's search rows span many parts and its last part stalls: an import reading straight
    // from the download would hold the search index's writer for as long as the stall.
    let names: Vec<String> = (0..20_000u64)
        .map(|i| format!("Place {}", i.wrapping_mul(2_654_435_761) % 1_000_003))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    pack_sized(out.path(), "b", &names, 16_384, 1000);
    let parts = parts_of(out.path(), "b");
    assert!(parts >= 4, "{parts} parts");
    let map = MapServer::start(out.path()).await;
    map.fail_always(&format!("b.tar.gz.{:02}", parts - 1), Fault::StallAfter(10));
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[NO_RATE_FLOOR]);
    fetch_manifest(&server).await;
    download(&server, "a").await;
    server.wait_for_status(WAIT, |s| done(s, "a")).await;
    download(&server, "b").await;
    server
        .wait_for_status(WAIT, |s| {
            s["in-progress"]["b"]["downloadDone"].as_u64() == Some(parts as u64 - 1)
        })
        .await;
    let r = server
        .post("/app/map-delete", &json!({"tile-id": "a"}))
        .await;
    assert_eq!(r.status(), 200);
    let status = server.wait_for_status(HANG, |s| gone(s, "a")).await;
    assert!(titles(&server, "alpha").await.is_empty());
    assert_eq!(server.get("/tiles/a.pmtiles").await.status(), 404);
    assert!(!failed(&status, "b"), "the stalled region still downloads");
    assert!(
        titles(&server, "place").await.is_empty(),
        "no row of a region not installed is found"
    );
    server.stop();
}

#[tokio::test]
async fn trickling_servers_fail_and_free_the_download_slots() {
    let out = tempfile::tempdir().unwrap();
    for id in ["a", "b", "c"] {
        pack_sized(out.path(), id, &[id], 100_000, 1000);
    }
    let map = MapServer::start(out.path()).await;
    // Both download slots taken by servers sending a byte every 200 ms.
    map.fail_always("a.tar.gz.00", Fault::Trickle(Duration::from_millis(200)));
    map.fail_always("b.tar.gz.00", Fault::Trickle(Duration::from_millis(200)));
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &map,
        &[
            ("DESERT_ATLAS_MIN_RATE_WINDOW_MS", "400"),
            ("DESERT_ATLAS_MIN_RATE_BYTES_PER_S", "1024"),
        ],
    );
    fetch_manifest(&server).await;
    for id in ["a", "b", "c"] {
        download(&server, id).await;
    }
    let status = server
        .wait_for_status(WAIT, |s| failed(s, "a") && failed(s, "b") && done(s, "c"))
        .await;
    let error = status["in-progress"]["a"]["error"].as_str().unwrap();
    assert!(error.contains("bytes per second"), "{error}");
    assert!(map.hits("a.tar.gz.00") > 1, "a slow server is tried again");
    // Once the server is fast again, asking again installs it.
    map.heal("a.tar.gz.00");
    download(&server, "a").await;
    server.wait_for_status(WAIT, |s| done(s, "a")).await;
    server.stop();
}

#[tokio::test]
async fn a_trickled_region_list_fails_by_its_deadline() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 100_000, 1000);
    let map = MapServer::start(out.path()).await;
    map.fail_always("manifest.json", Fault::Trickle(Duration::from_millis(100)));
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &map,
        &[
            NO_RATE_FLOOR,
            ("DESERT_ATLAS_REGION_LIST_DEADLINE_MS", "1500"),
        ],
    );
    server.post("/app/download-manifest", &json!({})).await;
    let status = server
        .wait_for_status(WAIT, |s| s["available-areas-status"] == "error")
        .await;
    let error = status["available-areas-error"].as_str().unwrap();
    assert!(error.contains("within"), "{error}");
    map.heal("manifest.json");
    fetch_manifest(&server).await;
    server.stop();
}

#[tokio::test]
async fn a_new_region_list_request_replaces_a_stuck_one() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 100_000, 1000);
    let map = MapServer::start(out.path()).await;
    map.fail_always("manifest.json", Fault::Hold);
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &map,
        &[
            NO_RATE_FLOOR,
            ("DESERT_ATLAS_REGION_LIST_DEADLINE_MS", "600000"),
        ],
    );
    server.post("/app/download-manifest", &json!({})).await;
    server
        .wait_for_status(WAIT, |s| s["available-areas-status"] == "started")
        .await;
    while map.hits("manifest.json") == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server answers again, but the first request is still held.
    map.heal("manifest.json");
    server.post("/app/download-manifest", &json!({})).await;
    let status = server
        .wait_for_status(HANG, |s| {
            s["available-areas"].is_object() && s["available-areas-status"] == ""
        })
        .await;
    assert!(status["available-areas"]["r"].is_array());
    map.release();
    server.stop();
}

#[tokio::test]
async fn progress_never_passes_its_totals_after_retries() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 2048, 20_000);
    let parts = parts_of(out.path(), "r");
    assert!(parts >= 6, "{parts} parts");
    let map = MapServer::start(out.path()).await;
    // Every part but the last comes corrupt first, then whole: each is fetched twice.
    for i in 0..parts - 1 {
        let fault = if i % 2 == 0 {
            Fault::Corrupt
        } else {
            Fault::DropAfter(1000)
        };
        map.fail_next(&format!("r.tar.gz.{i:02}"), &[fault]);
    }
    map.fail_next(&format!("r.tar.gz.{:02}", parts - 1), &[Fault::Hold]);
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    let (mut last_bytes, mut last_parts) = (0, 0);
    loop {
        let status = server.get_json("/app/map-download-status").await;
        let p = &status["in-progress"]["r"];
        if p.is_object() {
            let (bytes, total) = (
                p["bytesDone"].as_u64().unwrap(),
                p["bytesTotal"].as_u64().unwrap(),
            );
            let (done_parts, all_parts) = (
                p["downloadDone"].as_u64().unwrap(),
                p["downloadTotal"].as_u64().unwrap(),
            );
            assert!(bytes <= total, "bytes {bytes} of {total}");
            assert!(done_parts <= all_parts, "parts {done_parts} of {all_parts}");
            assert!(bytes >= last_bytes && done_parts >= last_parts, "{p}");
            assert_eq!(p["units"]["searchImport"], "rows");
            (last_bytes, last_parts) = (bytes, done_parts);
            if done_parts == parts as u64 - 1 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    map.release();
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(map.hits("r.tar.gz.00"), 2);
    server.stop();
}
