//! Hostile region packages (CONTRACT §5): what a map-data server sends is hostile until
//! verified. Each test builds a package in code that once took the grain's disk or memory,
//! or was listed as installed while broken, and checks that the region fails with a sentence,
//! leaves nothing behind, and the grain goes on.

use std::path::Path;

use serde_json::Value;

use crate::mapserver::{Fault, MapServer};
use crate::regions::{
    WAIT, done, download_until_failed, fetch_manifest, manifest, pack_sized, start, titles,
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
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &map, &[]);
    fetch_manifest(&server).await;
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
