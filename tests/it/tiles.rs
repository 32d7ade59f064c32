//! Tiles: archives by byte range, the merged z/x/y source, TileJSON, hostile archives.

use std::path::Path;

use desert_atlas::layout::Layout;
use desert_atlas::tiles::mvt::gunzip;
use desert_atlas::tiles::{TileStore, merged};

use crate::common::{TestServer, assert_error};
use crate::fixtures::{
    FLORENCE, FLORENCE_Z10, decode, install_region, mvt, write_one_tile_pmtiles, write_pmtiles,
};

fn tile_url((z, x, y): (u8, u32, u32)) -> String {
    format!("/tiles/{z}/{x}/{y}.mvt")
}

/// A data dir with region `a` (roads) over Florence, gzip'd tiles at z10 and z0.
fn one_region(dir: &Path) -> Vec<u8> {
    let tile = mvt(&[("roads", &[("kind", "major")])]);
    let archive = dir.join("a.pmtiles");
    write_pmtiles(
        &archive,
        FLORENCE,
        (0, 14),
        &[(FLORENCE_Z10, tile.clone()), ((0, 0, 0), tile.clone())],
        true,
    );
    install_region(dir, "a", &archive);
    tile
}

#[tokio::test]
async fn a_tile_inside_one_region_is_that_regions_tile() {
    let dir = tempfile::tempdir().unwrap();
    let tile = one_region(dir.path());
    let server = TestServer::start(dir.path());
    let plain = server.get(&tile_url(FLORENCE_Z10)).await;
    assert_eq!(plain.status(), 200);
    assert_eq!(
        plain.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert_eq!(plain.headers()["access-control-allow-origin"], "*");
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().to_vec(), tile);

    let gz = server
        .client
        .get(server.url(&tile_url(FLORENCE_Z10)))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&gz.bytes().await.unwrap()).unwrap(), tile);
}

#[tokio::test]
async fn a_tile_covered_by_two_regions_holds_the_features_of_both() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let other = mvt(&[
        ("roads", &[("name", "Via Roma")]),
        ("water", &[("kind", "river")]),
    ]);
    let archive = dir.path().join("b.pmtiles");
    write_pmtiles(
        &archive,
        [11.2, 43.7, 11.5, 43.9],
        (0, 14),
        &[(FLORENCE_Z10, other)],
        false,
    );
    install_region(dir.path(), "b", &archive);
    let server = TestServer::start(dir.path());
    let merged = decode(
        &server
            .get(&tile_url(FLORENCE_Z10))
            .await
            .bytes()
            .await
            .unwrap(),
    );
    let names: Vec<&str> = merged.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["roads", "water"]);
    let roads = &merged.layers[0];
    assert_eq!(roads.features.len(), 2);
    assert_eq!(roads.keys, vec!["kind", "name"]);
    let tagged: Vec<(String, String)> = roads
        .features
        .iter()
        .map(|f| {
            (
                roads.keys[f.tags[0] as usize].clone(),
                roads.values[f.tags[1] as usize]
                    .string_value
                    .clone()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tagged,
        vec![
            ("kind".into(), "major".into()),
            ("name".into(), "Via Roma".into())
        ]
    );
}

#[tokio::test]
async fn where_no_region_has_the_tile_the_answer_is_204() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let server = TestServer::start(dir.path());
    // Outside the region's bounds, and inside them at a zoom it has no tile for.
    assert_eq!(server.get("/tiles/10/10/10.mvt").await.status(), 204);
    assert_eq!(server.get("/tiles/12/2176/1492.mvt").await.status(), 204);
    let empty = tempfile::tempdir().unwrap();
    let server = TestServer::start(empty.path());
    assert_eq!(server.get("/tiles/0/0/0.mvt").await.status(), 204);
}

#[tokio::test]
async fn bad_tile_addresses_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    for bad in [
        "/tiles/1/2/0.mvt",
        "/tiles/31/0/0.mvt",
        "/tiles/a/0/0.mvt",
        "/tiles/0/0/0.png",
        "/tiles/0/-1/0.mvt",
    ] {
        assert_error(server.get(bad).await, 400).await;
    }
}

#[tokio::test]
async fn an_unchanged_tile_revalidates_with_304() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let server = TestServer::start(dir.path());
    let first = server.get(&tile_url(FLORENCE_Z10)).await;
    let etag = first.headers()["etag"].clone();
    let again = server
        .client
        .get(server.url(&tile_url(FLORENCE_Z10)))
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Another region covering the tile changes its identity.
    let archive = dir.path().join("b.pmtiles");
    write_one_tile_pmtiles(&archive, "water");
    install_region(dir.path(), "b", &archive);
    let server = server.restart();
    let changed = server
        .client
        .get(server.url(&tile_url(FLORENCE_Z10)))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
}

#[tokio::test]
async fn archives_are_served_whole_and_by_byte_range() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let file = std::fs::read(dir.path().join("tiles/a.pmtiles")).unwrap();
    let size = file.len();
    let server = TestServer::start(dir.path());

    let whole = server.get_as("/tiles/a.pmtiles", None, "").await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["access-control-allow-origin"], "*");
    assert_eq!(whole.bytes().await.unwrap().to_vec(), file);

    let header = server
        .client
        .get(server.url("/tiles/a.pmtiles"))
        .header("Range", "bytes=0-126")
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 206);
    assert_eq!(
        header.headers()["content-range"],
        format!("bytes 0-126/{size}")
    );
    assert_eq!(header.bytes().await.unwrap().to_vec(), file[..127]);

    let query = server
        .get("/tiles/a.pmtiles?rangeFirst=10&rangeLast=20")
        .await;
    assert_eq!(query.status(), 206);
    assert_eq!(
        query.headers()["content-range"],
        format!("bytes 10-20/{size}")
    );
    assert_eq!(query.bytes().await.unwrap().to_vec(), file[10..=20]);

    let tail = server
        .get(&format!(
            "/tiles/a.pmtiles?rangeFirst={}&rangeLast={}",
            size - 5,
            size + 100
        ))
        .await;
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().to_vec(), file[size - 5..]);

    let past = server
        .get(&format!(
            "/tiles/a.pmtiles?rangeFirst={size}&rangeLast={}",
            size + 10
        ))
        .await;
    assert_eq!(past.headers()["content-range"], format!("bytes */{size}"));
    assert_error(past, 416).await;
    assert_error(
        server
            .get("/tiles/a.pmtiles?rangeFirst=x&rangeLast=3")
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn unknown_half_installed_and_escaping_archive_names_are_404() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    std::fs::copy(
        dir.path().join("tiles/a.pmtiles"),
        dir.path().join("tiles/half.pmtiles"),
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.pmtiles"), b"PMTiles").unwrap();
    let server = TestServer::start(dir.path());
    for path in [
        "/tiles/nope.pmtiles",
        "/tiles/half.pmtiles",
        "/tiles/..%2Fsecret.pmtiles",
        "/tiles/%2e%2e.pmtiles",
        "/tiles/a",
        "/tiles/a.pmtiles.bak",
        "/tiles/..%2F..%2Fetc%2Fpasswd",
    ] {
        assert_error(server.get(path).await, 404).await;
    }
}

#[tokio::test]
async fn installing_and_deleting_a_region_changes_what_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    layout.prepare().unwrap();
    let store = TileStore::new(&layout);
    store.refresh().await;
    assert!(store.installed().is_empty());
    let archive = dir.path().join("x.pmtiles");
    write_one_tile_pmtiles(&archive, "roads");
    install_region(dir.path(), "x", &archive);
    store.refresh().await;
    assert_eq!(store.installed().keys().collect::<Vec<_>>(), vec!["x"]);
    let first = store.installed()["x"].clone();
    store.refresh().await;
    assert!(
        std::sync::Arc::ptr_eq(&first, &store.installed()["x"]),
        "an unchanged archive is kept open"
    );
    std::fs::remove_file(dir.path().join("search_imported/x")).unwrap();
    store.refresh().await;
    assert!(store.installed().is_empty());
}

#[tokio::test]
async fn the_tilejson_describes_the_union_of_regions() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let archive = dir.path().join("b.pmtiles");
    write_pmtiles(
        &archive,
        [10.0, 40.0, 11.2, 44.0],
        (2, 12),
        &[(FLORENCE_Z10, mvt(&[]))],
        true,
    );
    install_region(dir.path(), "b", &archive);
    let server = TestServer::start(dir.path());
    let tj = server.get_json("/tiles/tiles.json").await;
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(tj["tiles"][0], "/tiles/{z}/{x}/{y}.mvt");
    assert_eq!(
        (tj["minzoom"].as_u64(), tj["maxzoom"].as_u64()),
        (Some(0), Some(14))
    );
    let b: Vec<f64> = tj["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(b, vec![10.0, 40.0, 11.33, 44.0]);
    assert_eq!(tj["attribution"], "© test data");
    assert_eq!(tj["vector_layers"][0]["id"], "roads");
    // Each region's own box, where a client hands the base map's labels over to the region's.
    assert_eq!(
        tj["region_bounds"]["b"],
        serde_json::json!([10.0, 40.0, 11.2, 44.0])
    );
}

/// A PMTiles v3 header followed by `rest`, with directories uncompressed.
fn raw_archive(root: &[u8], leaves: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(127);
    h.extend_from_slice(b"PMTiles");
    h.push(3);
    let root_offset = 127u64;
    let leaf_offset = root_offset + root.len() as u64;
    let data_offset = leaf_offset + leaves.len() as u64;
    for v in [
        root_offset,
        root.len() as u64,
        data_offset + data.len() as u64,
        0,
        leaf_offset,
        leaves.len() as u64,
        data_offset,
        data.len() as u64,
        1,
        1,
        1,
    ] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&[0, 1, 1, 1, 0, 14]); // clustered, internal none, tiles none, mvt, zooms
    for deg in [FLORENCE[0], FLORENCE[1], FLORENCE[2], FLORENCE[3]] {
        h.extend_from_slice(&((deg * 1e7) as i32).to_le_bytes());
    }
    h.push(0);
    h.extend_from_slice(&[0u8; 8]);
    assert_eq!(h.len(), 127);
    [h, root.to_vec(), leaves.to_vec(), data.to_vec()].concat()
}

#[tokio::test]
async fn hostile_archives_answer_errors_and_never_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pmtiles");
    write_pmtiles(
        &good,
        FLORENCE,
        (0, 14),
        &[(FLORENCE_Z10, mvt(&[("roads", &[])]))],
        false,
    );
    let valid = std::fs::read(&good).unwrap();
    let tile_id = u64::from(pmtiles::TileId::from(
        pmtiles::TileCoord::new(10, 544, 373).unwrap(),
    ));
    let varint = |mut v: u64| {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    };
    // A root directory whose one entry is a leaf pointing at itself, forever.
    let looping = [vec![1], varint(tile_id), vec![0], varint(4), vec![1]].concat();
    // A tile entry pointing far past the end of the data section.
    let outside = [
        vec![1],
        varint(tile_id),
        vec![1],
        varint(1000),
        varint(1_000_000),
    ]
    .concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", valid[..valid.len() / 3].to_vec()),
        ("header-only", valid[..127].to_vec()),
        (
            "garbage",
            b"PMTiles\x03 this is not an archive at all".to_vec(),
        ),
        ("hugevarint", raw_archive(&[0xff; 20], &[], &[])),
        ("loop", raw_archive(&looping, &looping, &[])),
        ("outside", raw_archive(&outside, &[], &[1, 2, 3])),
        ("badroot", {
            let mut v = valid.clone();
            v[8..16].copy_from_slice(&(u64::MAX - 5).to_le_bytes());
            v
        }),
    ];
    for (id, bytes) in &cases {
        let path = dir.path().join(format!("{id}.src"));
        std::fs::write(&path, bytes).unwrap();
        install_region(dir.path(), id, &path);
    }
    let server = TestServer::start(dir.path());
    let r = server.get(&tile_url(FLORENCE_Z10)).await;
    assert!(
        [404u16, 500, 204].contains(&r.status().as_u16()),
        "status {}",
        r.status()
    );
    for (id, _) in &cases {
        let r = server
            .get(&format!("/tiles/{id}.pmtiles?rangeFirst=0&rangeLast=10"))
            .await;
        assert!(
            [206u16, 404].contains(&r.status().as_u16()),
            "{id}: {}",
            r.status()
        );
    }
    // Still alive, and each bad archive was named in the log.
    assert_eq!(server.get("/app/bookmarks").await.status(), 200);
    let ids = [
        "truncated",
        "header-only",
        "garbage",
        "hugevarint",
        "badroot",
    ];
    let log = server
        .log_once(|log| ids.iter().all(|id| log.contains(&format!("region {id}:"))))
        .await;
    for id in ids {
        assert!(
            log.contains(&format!("region {id}:")),
            "no log line for {id}:\n{log}"
        );
    }
    // Installed next to a good one, the good one still answers.
    install_region(dir.path(), "good", &good);
    let server = server.restart();
    assert_eq!(server.get(&tile_url(FLORENCE_Z10)).await.status(), 200);
}

/// The names of the layers of tile `address`, and the values of their features' `name`
/// tags, read from the server as plain and as gzip'd (both must agree).
async fn layers_and_names(
    server: &TestServer,
    address: (u8, u32, u32),
) -> (Vec<String>, Vec<String>) {
    let plain = server.get(&tile_url(address)).await.bytes().await.unwrap();
    let gz = server
        .client
        .get(server.url(&tile_url(address)))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(gunzip(&gz).unwrap(), plain.to_vec());
    let tile = decode(&plain);
    let mut names = Vec::new();
    for layer in &tile.layers {
        for feature in &layer.features {
            for pair in feature.tags.chunks(2) {
                if layer.keys[pair[0] as usize] == "name" {
                    names.push(layer.values[pair[1] as usize].string_value.clone().unwrap());
                }
            }
        }
    }
    (tile.layers.iter().map(|l| l.name.clone()).collect(), names)
}

#[tokio::test]
async fn merged_tiles_are_never_served_stale_after_an_install_or_a_delete() {
    use crate::mapserver::MapServer;
    use crate::regions::{WAIT, done, download, fetch_manifest, pack_sized, start};
    use serde_json::json;

    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "newcomer", &["Somewhere"], 1_000_000, 100);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let archive = dir.path().join("b.pmtiles");
    write_pmtiles(
        &archive,
        FLORENCE,
        (0, 14),
        &[(FLORENCE_Z10, mvt(&[("water", &[("name", "Arno")])]))],
        true,
    );
    install_region(dir.path(), "b", &archive);
    let server = start(dir.path(), &map, &[]);

    let before = layers_and_names(&server, FLORENCE_Z10).await;
    assert_eq!(
        before,
        (vec!["roads".into(), "water".into()], vec!["Arno".into()])
    );
    // Asked again, the merged tile (now kept) is the same.
    assert_eq!(layers_and_names(&server, FLORENCE_Z10).await, before);

    // An install: the merged tile holds the new region's features at once.
    fetch_manifest(&server).await;
    download(&server, "newcomer").await;
    server.wait_for_status(WAIT, |s| done(s, "newcomer")).await;
    // The status lists a region as done once its marker is written, a moment before the tile
    // store takes it in; from the moment the tile source lists it, its tiles are in every
    // answer.
    let deadline = std::time::Instant::now() + WAIT;
    while !server.get_json("/tiles/tiles.json").await["regions"]
        .as_array()
        .unwrap()
        .contains(&json!("newcomer"))
    {
        assert!(std::time::Instant::now() < deadline, "never served");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, names) = layers_and_names(&server, FLORENCE_Z10).await;
    assert_eq!(names, vec!["newcomer".to_string(), "Arno".into()]);

    // Deletes: what the deleted regions held is gone from it at once.
    for (id, expected) in [
        ("newcomer", (vec!["roads", "water"], vec!["Arno"])),
        ("b", (vec!["roads"], vec![])),
    ] {
        let r = server
            .post("/app/map-delete", &json!({"tile-id": id}))
            .await;
        assert_eq!(r.status(), 200);
        server
            .wait_for_status(WAIT, |s| {
                !done(s, id) && s["queued-for-deletion"] == json!([])
            })
            .await;
        let (layers, names) = layers_and_names(&server, FLORENCE_Z10).await;
        assert_eq!(
            (
                layers.iter().map(String::as_str).collect::<Vec<_>>(),
                names.iter().map(String::as_str).collect::<Vec<_>>()
            ),
            expected,
            "after deleting {id}"
        );
    }
}

#[tokio::test]
async fn a_merged_tile_is_made_once_per_snapshot_and_released_on_request() {
    let dir = tempfile::tempdir().unwrap();
    one_region(dir.path());
    let archive = dir.path().join("b.pmtiles");
    write_one_tile_pmtiles(&archive, "water");
    install_region(dir.path(), "b", &archive);
    let layout = Layout::new(dir.path());
    let store = TileStore::new(&layout);
    store.refresh().await;
    let snapshot = store.installed();
    let covering: Vec<_> = snapshot.values().cloned().collect();
    let first = merged::tile(&snapshot.merged, &covering, FLORENCE_Z10, true)
        .await
        .unwrap()
        .unwrap();
    assert!(first.gzipped);
    let kept = snapshot.merged.weight();
    assert!(kept >= first.bytes.len() as u64, "{kept}");
    let again = merged::tile(&snapshot.merged, &covering, FLORENCE_Z10, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.bytes.as_ptr(),
        first.bytes.as_ptr(),
        "served from the cache"
    );
    // A refresh starts a new snapshot with nothing kept; the old one is left as it was.
    store.refresh().await;
    assert_eq!(store.installed().merged.weight(), 0);
    merged::tile(&store.installed().merged, &covering, FLORENCE_Z10, false)
        .await
        .unwrap();
    assert!(store.installed().merged.weight() > 0);
    store.release_memory();
    assert_eq!(store.installed().merged.weight(), 0);
}
