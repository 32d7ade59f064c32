//! Stopping the server: SIGTERM, as Sandstorm sends it to an idle grain, at any moment.

use serde_json::json;

use crate::common::TestServer;
use crate::mapserver::{Fault, MapServer};
use crate::regions::{
    WAIT, assert_fetched_once, done, download, manifest, pack_sized, start, start_with_region_list,
};

#[tokio::test]
async fn sigterm_during_a_download_exits_and_the_download_resumes_at_the_next_start() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 2048, 20_000);
    let parts = manifest(out.path())["r"]["files"].as_array().unwrap().len();
    assert!(parts >= 6, "{parts} parts");
    let map = MapServer::start(out.path()).await;
    // One part stalls mid-body, the others wait to be answered: the install waits for parts.
    map.fail_next("r.tar.gz.02", &[Fault::StallAfter(100)]);
    for i in 3..parts {
        map.fail_next(&format!("r.tar.gz.{i:02}"), &[Fault::Hold]);
    }
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    server
        .wait_for_status(WAIT, |s| s["in-progress"]["r"]["downloadDone"] == 2)
        .await;
    let log = server.log();
    let data = server.stop();
    assert!(!log.contains("panicked"), "{log}");

    // The queue survived: the next start resumes without being asked, from the parts kept.
    map.release();
    let server = start(&data, &map, &[]);
    let status = server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(status["in-progress"], json!({}));
    assert_fetched_once(&map, &["r.tar.gz.00", "r.tar.gz.01"]);
    assert_eq!(
        crate::regions::titles(&server, "somewhere").await,
        vec!["Somewhere"]
    );
    server.stop();
}

#[tokio::test]
async fn sigterm_right_after_start_is_never_lost() {
    let root = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let server = TestServer::start(&root.path().join(i.to_string()));
        // Whatever the server is doing in its first milliseconds, it exits.
        server.stop();
    }
}

#[tokio::test]
async fn a_request_in_flight_at_sigterm_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    // Many status requests on one keep-alive client, with SIGTERM in the middle of them:
    // each one sent before the server closes its connections gets its whole answer.
    let client = server.client.clone();
    let url = server.url("/app/map-download-status");
    let asking = tokio::spawn(async move {
        let mut answered = 0;
        loop {
            let sent = client
                .get(&url)
                .header("X-Sandstorm-Permissions", "download")
                .send()
                .await;
            let Ok(response) = sent else { break };
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.expect("a whole JSON answer");
            assert!(body["done"].is_array());
            answered += 1;
        }
        answered
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.stop();
    assert!(asking.await.unwrap() > 0);
}

#[tokio::test]
async fn a_restart_removes_every_trace_of_an_install_cut_off_before_its_marker() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Somewhere"], 100_000, 1000);
    let map = MapServer::start(out.path()).await;
    let (_dir, server) = start_with_region_list(&map).await;
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    let data = server.stop();
    // As if the machine died once the rows were in, before the tiles were renamed into place
    // and the marker written.
    std::fs::remove_file(data.join("search_imported/r")).unwrap();
    std::fs::create_dir_all(data.join("big_tmp/r")).unwrap();
    std::fs::rename(
        data.join("tiles/r.pmtiles"),
        data.join("big_tmp/r/tiles.pmtiles.tmp"),
    )
    .unwrap();
    let server = start(&data, &map, &[]);
    let status = server.get_json("/app/map-download-status").await;
    assert!(!done(&status, "r"));
    assert_eq!(server.get("/tiles/r.pmtiles").await.status(), 404);
    // The clean-up runs in the background, right after start.
    let deadline = std::time::Instant::now() + WAIT;
    while data.join("big_tmp/r").exists()
        || !crate::regions::titles(&server, "somewhere")
            .await
            .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!data.join("tiles/r.pmtiles").exists());
    server.stop();
}
