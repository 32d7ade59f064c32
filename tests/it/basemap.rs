//! The base map: the world searchable and drawn from a grain's first start (built by
//! `scripts/build-base-map` into build/assets, which `scripts/test` runs first).

use std::path::{Path, PathBuf};

use desert_atlas::basemap::places::{self, Place};
use desert_atlas::tiles::mvt::gunzip;
use serde_json::Value;

use crate::common::{Options, TestServer};
use crate::fixtures::decode;

fn assets() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/assets");
    assert!(
        dir.join("base-map/VERSION").exists(),
        "{} has no base map: run scripts/build-assets (scripts/test does) before these tests",
        dir.display()
    );
    dir
}

fn start(dir: &Path, assets: &Path) -> TestServer {
    TestServer::start_with(
        dir,
        Options {
            extra_args: vec!["--assets".into(), assets.display().to_string()],
            ..Default::default()
        },
    )
}

/// Waits for the install to be logged. A guard, not a measure: a debug build imports the
/// 235k places in 10 to 30 s on a loaded machine.
async fn wait_installed(server: &TestServer) {
    for _ in 0..2400 {
        if server.log().contains("base map") && server.log().contains("installed") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the base map was not installed:\n{}", server.log());
}

/// A places file in `dir` holding one place, `name`, at (1, 1).
fn write_places(dir: &Path, name: &str) {
    let place = Place {
        name: name.into(),
        lat_milli: 1000,
        lng_milli: 1000,
        importance: "5".into(),
        aliases: String::new(),
    };
    let mut file = std::fs::File::create(dir.join(places::FILE_NAME)).unwrap();
    places::write(&[place], &mut file).unwrap();
}

/// A base map's source with the built tiles and one place, `name`, at (1, 1); VERSION is left
/// to the test. Returns the assets directory and its `base-map/`.
fn base_map_source(name: &str) -> (tempfile::TempDir, PathBuf) {
    let source = tempfile::tempdir().unwrap();
    let base = source.path().join("base-map");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::copy(
        assets().join("base-map/tiles.pmtiles"),
        base.join("tiles.pmtiles"),
    )
    .unwrap();
    write_places(&base, name);
    (source, base)
}

async fn search(server: &TestServer, q: &str, lat: f64, lng: f64) -> Vec<(String, f64, f64)> {
    let found: Value = server
        .get_json(&format!(
            "/app/search?q={}&lat={lat}&lng={lng}",
            urlencode(q)
        ))
        .await;
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["tile_id"], "base-map");
            (
                p["title"].as_str().unwrap().to_string(),
                p["loc"][0].as_f64().unwrap(),
                p["loc"][1].as_f64().unwrap(),
            )
        })
        .collect()
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `title` is among the results, near (lat, lng).
fn has(results: &[(String, f64, f64)], title: &str, lat: f64, lng: f64) -> bool {
    results
        .iter()
        .any(|(t, a, b)| t == title && (a - lat).abs() < 3.0 && (b - lng).abs() < 3.0)
}

#[tokio::test]
async fn countries_states_and_cities_are_found_from_the_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &assets());
    wait_installed(&server).await;
    // Near Texas, "paris" offers Paris, Texas first and still Paris, France.
    let paris = search(&server, "paris", 31.0, -97.0).await;
    assert_eq!(paris[0].0, "Paris, Texas, United States", "{paris:?}");
    assert!(has(&paris, "Paris, France", 48.85, 2.35), "{paris:?}");
    let checks = [
        ("texas", "Texas, United States", 31.0, -99.0),
        ("germany", "Germany", 51.0, 10.0),
        ("são paulo", "São Paulo, Brazil", -23.5, -46.6),
        ("sao paulo", "São Paulo, Brazil", -23.5, -46.6),
        (
            "new york",
            "New York City, New York, United States",
            40.7,
            -74.0,
        ),
        ("new york", "New York, United States", 42.9, -75.5),
        ("北京", "Beijing, China", 39.9, 116.4),
    ];
    for (q, title, lat, lng) in checks {
        let found = search(&server, q, 0.0, 0.0).await;
        assert!(
            has(&found, title, lat, lng),
            "{q}: {title} not in {found:?}"
        );
    }
}

#[tokio::test]
async fn the_outlines_are_tiles_of_the_merged_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &assets());
    wait_installed(&server).await;
    for _ in 0..100 {
        if server.get_json("/tiles/tiles.json").await["regions"][0] == "base-map" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let tilejson = server.get_json("/tiles/tiles.json").await;
    // The base map is not a downloaded region.
    assert_eq!(tilejson["region_bounds"], serde_json::json!({}));
    assert!(
        tilejson["attribution"]
            .as_str()
            .unwrap()
            .contains("Natural Earth")
    );
    let tile = server
        .client
        .get(server.url("/tiles/0/0/0.mvt"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(tile.status(), 200);
    let tile = decode(&gunzip(&tile.bytes().await.unwrap()).unwrap());
    let layers: Vec<&str> = tile.layers.iter().map(|l| l.name.as_str()).collect();
    for layer in ["earth", "boundaries", "places"] {
        assert!(layers.contains(&layer), "{layers:?}");
    }
    // The base map is part of the app: not listed as a deletable region.
    assert_eq!(
        server.get_json("/app/map-download-status").await["done"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn a_second_start_does_not_import_again_and_a_new_version_replaces_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &assets());
    wait_installed(&server).await;
    let version_file = dir.path().join("data/base-map.version");
    let first = std::fs::metadata(&version_file)
        .unwrap()
        .modified()
        .unwrap();
    let server = server.restart();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!server.log().contains("installed"), "{}", server.log());
    assert_eq!(
        std::fs::metadata(&version_file)
            .unwrap()
            .modified()
            .unwrap(),
        first
    );
    drop(server);

    // A newer base map, as an upgraded package brings it.
    let newer = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(newer.path().join("base-map")).unwrap();
    std::fs::copy(
        assets().join("base-map/tiles.pmtiles"),
        newer.path().join("base-map/tiles.pmtiles"),
    )
    .unwrap();
    write_places(&newer.path().join("base-map"), "Newtopia");
    std::fs::write(newer.path().join("base-map/VERSION"), "newer\n").unwrap();
    let server = start(dir.path(), newer.path());
    wait_installed(&server).await;
    assert_eq!(search(&server, "newtopia", 0.0, 0.0).await.len(), 1);
    assert!(
        search(&server, "germany", 0.0, 0.0).await.is_empty(),
        "old rows replaced"
    );
}

#[tokio::test]
async fn without_a_base_map_the_server_says_so_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let server = start(dir.path(), empty.path());
    assert_eq!(server.get("/app/bookmarks").await.status(), 200);
    // The status says so too, not `preparing` for ever.
    wait_for_base_map_state(&server, "absent").await;
    assert!(
        server.log().contains("no base map"),
        "no warning about the missing base map:\n{}",
        server.log()
    );
}

/// The world draws whatever becomes of its places: the tiles are put in place before the places
/// are imported, so a places file that cannot be read leaves them served, the install
/// unrecorded and nothing found; the next start with a sound file finishes the install.
#[tokio::test]
async fn the_tiles_do_not_wait_for_the_places_and_a_damaged_places_file_is_installed_next_start() {
    let (source, base) = base_map_source("Mendedtown");
    std::fs::write(base.join("VERSION"), "damaged\n").unwrap();
    let sound = std::fs::read(base.join(places::FILE_NAME)).unwrap();
    std::fs::write(base.join(places::FILE_NAME), &sound[..sound.len() - 3]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), source.path());
    let log = server
        .log_once(|log| log.contains("installing the base map failed"))
        .await;
    assert!(
        log.contains("installing the base map failed") && log.contains("damaged"),
        "{log}"
    );
    assert_eq!(server.get("/tiles/0/0/0.mvt").await.status(), 200, "{log}");
    wait_for_base_map_state(&server, "failed").await;
    assert_eq!(
        server.get("/tiles/base-map.pmtiles").await.status(),
        200,
        "the base map's archive is served too"
    );
    assert!(search(&server, "mendedtown", 1.0, 1.0).await.is_empty());
    assert!(!dir.path().join("search_imported/base-map").exists());
    assert!(!dir.path().join("data/base-map.version").exists());
    drop(server);

    std::fs::write(base.join(places::FILE_NAME), &sound).unwrap();
    let server = start(dir.path(), source.path());
    wait_installed(&server).await;
    assert_eq!(
        search(&server, "mendedtown", 1.0, 1.0).await,
        vec![("Mendedtown".to_string(), 1.0, 1.0)]
    );
    assert_eq!(server.get("/tiles/0/0/0.mvt").await.status(), 200);
}

/// What the status says of the base map (`base-map`).
async fn base_map_state(server: &TestServer) -> String {
    let status: Value = server.get_json("/app/map-download-status").await;
    status["base-map"].as_str().unwrap_or_default().to_string()
}

/// Polls the status until it says `state` of the base map. A guard, not a measure.
async fn wait_for_base_map_state(server: &TestServer, state: &str) {
    for _ in 0..1200 {
        if base_map_state(server).await == state {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the base map never became {state}:\n{}", server.log());
}

/// Until this start has the base map's places, the status says `preparing` (the page then
/// says why a search finds nothing), and `ready` once they are in. Here the base map's
/// VERSION is a FIFO, so the install waits for the test to write it.
#[tokio::test]
async fn the_status_says_the_base_map_is_being_prepared_until_its_places_are_in() {
    use std::os::unix::ffi::OsStrExt;
    let (source, base) = base_map_source("Waitingtown");
    let version = base.join("VERSION");
    let fifo = std::ffi::CString::new(version.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo reads the path it is given and creates a file.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), source.path());
    assert_eq!(base_map_state(&server).await, "preparing");
    assert!(search(&server, "waitingtown", 1.0, 1.0).await.is_empty());
    // Opening a FIFO to write waits for its reader, the server: on a thread of its own.
    let writer = std::thread::spawn(move || std::fs::write(version, "waiting\n").unwrap());
    wait_for_base_map_state(&server, "ready").await;
    writer.join().unwrap();
    assert_eq!(
        search(&server, "waitingtown", 1.0, 1.0).await,
        vec![("Waitingtown".to_string(), 1.0, 1.0)]
    );
}
