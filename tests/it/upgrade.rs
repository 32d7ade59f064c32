//! Upgrading an existing grain (docs/api.md §4): a data directory laid out by the previous
//! version starts with everything still there and working.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::fixtures::write_one_tile_pmtiles;
use crate::search::write_legacy_search_db;

/// Writes a data directory the way the previous version left it: bookmarks with text and
/// numeric coordinates, tutorial state, a search index, one installed region, one region
/// whose install was interrupted (tiles without marker) and a download's leftovers.
pub fn write_old_grain(root: &Path, tiles: &[u8]) {
    for dir in ["data", "tiles", "search_imported", "big_tmp/partial"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let conn = rusqlite::Connection::open(root.join("data/bookmarks.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE bookmarks (id VARCHAR PRIMARY KEY, version INT, name VARCHAR, lat VARCHAR, lng VARCHAR);
         INSERT INTO bookmarks VALUES ('a1', 0, 'Ponte Vecchio', '43.768', '11.253');
         INSERT INTO bookmarks VALUES ('b2', 4, 'Caffè & Co', 43.7731, 11.2560);",
    )
    .unwrap();
    std::fs::write(
        root.join("data/tutorial.json"),
        r#"{"owner": {"mode": "TUTORIAL_DONE", "type": "TUTORIAL_TYPE_DOWNLOADER"},
            "friend": {"mode": "TUTORIAL_STARTED", "type": "TUTORIAL_TYPE_BOOKMARKER"}}"#,
    )
    .unwrap();
    write_legacy_search_db(
        &root.join("search.db"),
        &[
            ("Ponte Vecchio", "florence", "43.768", "11.253"),
            ("Piazza della Signoria", "florence", "43.7696", "11.2558"),
        ],
    );
    std::fs::write(root.join("tiles/florence.pmtiles"), tiles).unwrap();
    std::fs::write(root.join("search_imported/florence"), b"").unwrap();
    std::fs::write(root.join("tiles/pisa.pmtiles"), &tiles[..tiles.len() / 2]).unwrap();
    std::fs::write(
        root.join("big_tmp/partial/pkg.tar.gz.00"),
        b"half a download",
    )
    .unwrap();
    std::fs::write(
        root.join("manifest.1700099624.161532.json"),
        r#"{"florence": {"files": ["florence.tar.gz.00"], "bounds": [[43.7, 11.1], [43.9, 11.4]]}}"#,
    )
    .unwrap();
}

#[tokio::test]
async fn an_old_grain_keeps_its_bookmarks_tutorial_search_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("florence.src");
    write_one_tile_pmtiles(&source, "roads");
    let tiles = std::fs::read(&source).unwrap();
    let tiles_len = tiles.len();
    write_old_grain(dir.path(), &tiles);
    let server = TestServer::start(dir.path());

    let bookmarks = server.get_json("/app/bookmarks").await;
    assert_eq!(
        bookmarks,
        json!({
            "a1": {"version": 0, "name": "Ponte Vecchio", "latlng": {"lat": 43.768, "lng": 11.253}},
            "b2": {"version": 4, "name": "Caffè & Co", "latlng": {"lat": 43.7731, "lng": 11.256}},
        })
    );
    // Editing an old bookmark works with its old version.
    let r = server
        .post(
            "/app/bookmark",
            &json!({"id": "b2", "version": 4, "name": "Caffè", "latlng": {"lat": 43.7731, "lng": 11.256}}),
        )
        .await;
    assert_eq!(r.status(), 200);

    let owner: Value = server.get_json("/app/map-download-status").await;
    assert_eq!(owner["tutorial-mode"], "TUTORIAL_DONE");
    assert_eq!(
        owner["done"],
        json!(["florence"]),
        "only the fully installed region"
    );
    let friend: Value = server
        .get_as("/app/map-download-status", Some("friend"), "bookmarks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(friend["tutorial-mode"], "TUTORIAL_STARTED");

    let found = server
        .get_json("/app/search?q=ponte&lat=43.77&lng=11.25")
        .await;
    assert_eq!(
        found,
        json!([{"title": "Ponte Vecchio", "loc": [43.768, 11.253], "tile_id": "florence"}])
    );
    assert_eq!(
        server
            .get_json("/app/search?q=%22della+signoria%22&lat=0&lng=0")
            .await[0]["title"],
        "Piazza della Signoria"
    );

    // The installed region's archive is served; the half-installed one is not.
    let archive = server.get_as("/tiles/florence.pmtiles", None, "").await;
    assert_eq!(archive.status(), 200);
    assert_eq!(archive.bytes().await.unwrap().len(), tiles_len);
    assert_eq!(server.get("/tiles/pisa.pmtiles").await.status(), 404);

    // A second start on the migrated directory still has it all.
    let server = server.restart();
    assert_eq!(server.get_json("/app/bookmarks").await["b2"]["version"], 5);
    assert_eq!(
        server.get_json("/app/search?q=piazza&lat=0&lng=0").await[0]["tile_id"],
        "florence"
    );
}
