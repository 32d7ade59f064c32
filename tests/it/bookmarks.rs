//! Bookmarks over HTTP: create, versioned update, delete, list, KMZ export, refusals.

use std::io::Read;

use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

async fn create(server: &TestServer, name: &str) -> (String, Value) {
    let r = server
        .post(
            "/app/bookmark",
            &json!({"name": name, "latlng": {"lat": 43.77, "lng": 11.25}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    (body[0].as_str().unwrap().to_string(), body[1].clone())
}

fn bookmarks_db_rows(dir: &std::path::Path) -> Vec<(String, i64, String)> {
    let conn = rusqlite::Connection::open(dir.join("data/bookmarks.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, version, name FROM bookmarks ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_created_bookmark_is_listed_with_version_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (id, saved) = create(&server, "Duomo").await;
    assert_eq!(
        saved,
        json!({"name": "Duomo", "latlng": {"lat": 43.77, "lng": 11.25}, "version": 0})
    );
    let list = server.get_json("/app/bookmarks").await;
    assert_eq!(list, json!({ id: saved }));
}

#[tokio::test]
async fn an_update_bumps_the_version_and_a_stale_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (id, _) = create(&server, "Duomo").await;
    let update = |name: &str, version: i64| json!({"id": id, "version": version, "name": name, "latlng": {"lat": 1.0, "lng": 2.0}});
    let r = server.post("/app/bookmark", &update("Cathedral", 0)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body[1]["version"], 1);
    let msg = assert_error(server.post("/app/bookmark", &update("Mine", 0)).await, 409).await;
    assert!(msg.contains("Someone else"), "{msg}");
    assert_eq!(
        server.get_json("/app/bookmarks").await[&id]["name"],
        "Cathedral"
    );
    let unknown = json!({"id": "nope", "version": 0, "name": "x", "latlng": {"lat": 1, "lng": 2}});
    assert_error(server.post("/app/bookmark", &unknown).await, 404).await;
}

#[tokio::test]
async fn concurrent_editors_of_one_version_cannot_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (id, _) = create(&server, "Start").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = server.client.clone();
        let url = server.url("/app/bookmark");
        let body = json!({"id": id, "version": 0, "name": format!("n{i}"), "latlng": {"lat": 1, "lng": 2}});
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("X-Sandstorm-User-Id", "u")
                .header("X-Sandstorm-Permissions", "bookmarks")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 9, "{codes:?}");
}

#[tokio::test]
async fn delete_removes_and_unknown_or_missing_ids_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (id, _) = create(&server, "Gone").await;
    let r = server
        .post("/app/bookmark-delete", &json!({"id": id}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(server.get_json("/app/bookmarks").await, json!({}));
    assert_error(
        server
            .post("/app/bookmark-delete", &json!({"id": id}))
            .await,
        404,
    )
    .await;
    assert_error(server.post("/app/bookmark-delete", &json!({})).await, 404).await;
}

#[tokio::test]
async fn bad_bookmarks_are_refused_with_a_sentence_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let bad = [
        json!({"latlng": {"lat": 1, "lng": 2}}),
        json!({"name": "", "latlng": {"lat": 1, "lng": 2}}),
        json!({"name": "   ", "latlng": {"lat": 1, "lng": 2}}),
        json!({"name": 5, "latlng": {"lat": 1, "lng": 2}}),
        json!({"name": "x".repeat(501), "latlng": {"lat": 1, "lng": 2}}),
        json!({"name": "x"}),
        json!({"name": "x", "latlng": [1, 2]}),
        json!({"name": "x", "latlng": {"lat": "1", "lng": 2}}),
        json!({"name": "x", "latlng": {"lat": 91, "lng": 2}}),
        json!({"name": "x", "latlng": {"lat": 1, "lng": -180.5}}),
        json!({"name": "x", "latlng": {"lat": null, "lng": 2}}),
        json!({"id": "abc", "name": "x", "latlng": {"lat": 1, "lng": 2}}),
        json!({"id": 7, "version": 0, "name": "x", "latlng": {"lat": 1, "lng": 2}}),
        json!([1, 2, 3]),
    ];
    for body in bad {
        let r = server.post("/app/bookmark", &body).await;
        assert_error(r, 400).await;
    }
    for raw in [
        "{",
        "not json",
        "{\"name\": \"x\", \"latlng\": {\"lat\": NaN, \"lng\": 1}}",
    ] {
        let r = server
            .client
            .post(server.url("/app/bookmark"))
            .header("X-Sandstorm-Permissions", "bookmarks")
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_error(r, 400).await;
    }
    assert!(bookmarks_db_rows(dir.path()).is_empty());
}

#[tokio::test]
async fn a_huge_body_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let body = json!({"name": "x".repeat(2 * 1024 * 1024), "latlng": {"lat": 1, "lng": 2}});
    assert_error(server.post("/app/bookmark", &body).await, 413).await;
    assert!(bookmarks_db_rows(dir.path()).is_empty());
}

#[tokio::test]
async fn without_the_bookmarks_permission_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (id, _) = create(&server, "Mine").await;
    let before = bookmarks_db_rows(dir.path());
    let add = json!({"name": "x", "latlng": {"lat": 1, "lng": 2}});
    let edit = json!({"id": id, "version": 0, "name": "x", "latlng": {"lat": 1, "lng": 2}});
    for perms in ["", "download"] {
        assert_error(
            server
                .post_as("/app/bookmark", Some("v"), perms, &add)
                .await,
            403,
        )
        .await;
        assert_error(
            server
                .post_as("/app/bookmark", Some("v"), perms, &edit)
                .await,
            403,
        )
        .await;
        assert_error(
            server
                .post_as("/app/bookmark-delete", None, perms, &json!({"id": id}))
                .await,
            403,
        )
        .await;
    }
    assert_eq!(bookmarks_db_rows(dir.path()), before);
    // Viewers still read.
    let r = server.get_as("/app/bookmarks", None, "").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_kmz_export_is_a_zip_of_escaped_kml_2_2() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let names = [
        "Fish & Chips",
        "<script>",
        "\"Quoted\" 'single'",
        "Café 北京",
    ];
    for name in names {
        create(&server, name).await;
    }
    let r = server.get_as("/app/export.kmz", None, "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.google-earth.kmz"
    );
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=export.kmz"
    );
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut kml = String::new();
    zip.by_name("doc.kml")
        .unwrap()
        .read_to_string(&mut kml)
        .unwrap();
    assert!(kml.contains("http://www.opengis.net/kml/2.2"));

    // The document is well-formed XML.
    let mut reader = quick_xml::Reader::from_str(&kml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("KML is not well-formed: {e}\n{kml}"),
        }
    }
    // Each name, escaped exactly once, unescapes back to what the user typed.
    let name_elements: Vec<&str> = kml
        .split("<Placemark>")
        .skip(1)
        .map(|p| {
            p.split("<name>")
                .nth(1)
                .unwrap()
                .split("</name>")
                .next()
                .unwrap()
        })
        .collect();
    let mut unescaped: Vec<String> = name_elements
        .iter()
        .map(|n| quick_xml::escape::unescape(n).unwrap().into_owned())
        .collect();
    unescaped.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(unescaped, expected);
    let coords: Vec<&str> = kml
        .split("<coordinates>")
        .skip(1)
        .map(|c| c.split("</coordinates>").next().unwrap())
        .collect();
    assert!(!kml.contains("&amp;amp;"), "double-escaped: {kml}");
    assert_eq!(coords.len(), names.len());
    assert!(coords.iter().all(|c| *c == "11.25,43.77"), "{coords:?}");
}

#[tokio::test]
async fn names_with_control_characters_are_refused_and_tab_and_newline_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    for c in (0u8..0x20)
        .map(char::from)
        .filter(|c| *c != '\t' && *c != '\n')
    {
        let body = json!({"name": format!("Bad{c}name"), "latlng": {"lat": 1, "lng": 2}});
        let msg = assert_error(server.post("/app/bookmark", &body).await, 400).await;
        assert!(msg.contains("control characters"), "{c:?}: {msg}");
    }
    assert!(bookmarks_db_rows(dir.path()).is_empty());
    let (_, saved) = create(&server, "Two\tcolumns\nand lines").await;
    assert_eq!(saved["name"], "Two\tcolumns\nand lines");
}

/// The `<name>` texts of a KML document, read by an XML parser to its end (which fails on a
/// document that is not well-formed).
fn kml_names(kml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(kml);
    let (mut names, mut in_name) = (Vec::<String>::new(), false);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                in_name = e.name().into_inner() == "name";
                if in_name {
                    names.push(String::new());
                }
            }
            Ok(Event::End(_)) => in_name = false,
            Ok(Event::Text(t)) if in_name => names.last_mut().unwrap().push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if in_name => {
                let entity = format!("&{};", &*r);
                let text = quick_xml::escape::unescape(&entity).unwrap().into_owned();
                names.last_mut().unwrap().push_str(&text);
            }
            Ok(Event::Eof) => return names,
            Ok(_) => {}
            Err(e) => panic!("KML is not well-formed: {e}\n{kml}"),
        }
    }
}

async fn export_kml(server: &TestServer) -> String {
    let r = server.get_as("/app/export.kmz", None, "").await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut kml = String::new();
    zip.by_name("doc.kml")
        .unwrap()
        .read_to_string(&mut kml)
        .unwrap();
    kml
}

#[tokio::test]
async fn old_rows_holding_control_characters_still_export_well_formed_kml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("data/bookmarks.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE bookmarks (id VARCHAR PRIMARY KEY, version INT, name VARCHAR, lat VARCHAR, lng VARCHAR);",
    )
    .unwrap();
    let every_control: String = (0u8..0x20).map(char::from).collect();
    let stored = [
        format!("Old{every_control}name"),
        "<b>Fish & \"Chips\"</b> 'ok' ]]>".to_string(),
        "\u{1}\u{8}".to_string(),
    ];
    for (i, name) in stored.iter().enumerate() {
        conn.execute(
            "INSERT INTO bookmarks VALUES (?1, 0, ?2, '43.77', '11.25')",
            rusqlite::params![format!("old{i}"), name],
        )
        .unwrap();
    }
    drop(conn);
    let server = TestServer::start(dir.path());
    create(&server, "New & <fresh>").await;
    let mut names = kml_names(&export_kml(&server).await);
    assert_eq!(names.remove(0), "Desert Atlas bookmarks");
    names.sort();
    let mut expected = vec![
        "Old\t\n\rname".to_string(),
        "<b>Fish & \"Chips\"</b> 'ok' ]]>".to_string(),
        String::new(),
        "New & <fresh>".to_string(),
    ];
    expected.sort();
    assert_eq!(names, expected);
}
