//! What every request meets before its handler: bodies read as JSON whatever their type,
//! cross-site posts refused, the permission checked before the body is read, and a port
//! that half-sent requests cannot take over.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Options, TestServer, assert_error};

/// Every state-changing route, with a body it accepts from the grain's owner.
fn state_changing_routes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/app/bookmark",
            json!({"name": "Duomo", "latlng": {"lat": 43.77, "lng": 11.25}}),
        ),
        ("/app/bookmark-delete", json!({"id": "nope"})),
        ("/app/download-manifest", json!({})),
        ("/app/download-map", json!({"tile-id": "nope"})),
        ("/app/map-delete", json!({"tile-id": "nope"})),
        (
            "/app/tutorial-mode",
            json!({"tutorial-mode": "TUTORIAL_DONE"}),
        ),
        (
            "/app-go/tutorial-mode",
            json!({"tutorial-mode": "TUTORIAL_DONE"}),
        ),
    ]
}

fn post_raw(server: &TestServer, path: &str, perms: &str) -> reqwest::RequestBuilder {
    server
        .client
        .post(server.url(path))
        .header("X-Sandstorm-User-Id", "u1")
        .header("X-Sandstorm-Permissions", perms)
}

#[tokio::test]
async fn json_bodies_are_read_whatever_content_type_old_clients_send() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let body = r#"{"name": "Duomo", "latlng": {"lat": 43.77, "lng": 11.25}}"#;
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = post_raw(&server, "/app/bookmark", "bookmarks").body(body);
        if let Some(t) = content_type {
            request = request.header("Content-Type", t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200, "{content_type:?}");
    }
    assert_eq!(
        server
            .get_json("/app/bookmarks")
            .await
            .as_object()
            .unwrap()
            .len(),
        3
    );
    let r = post_raw(&server, "/app-go/tutorial-mode", "")
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(r#"{"tutorial-mode": "TUTORIAL_STARTED"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status = server
        .get_as("/app/map-download-status", Some("u1"), "")
        .await;
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["tutorial-mode"], "TUTORIAL_STARTED");
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let own_origin = server.base.clone();
    let host = own_origin.trim_start_matches("http://").to_string();
    let (_, port) = host.rsplit_once(':').unwrap();
    for (path, body) in state_changing_routes() {
        for origin in [
            "http://evil.example".to_string(),
            format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
            format!("http://localhost:{port}"),
            "null".to_string(),
        ] {
            let r = post_raw(&server, path, "download,bookmarks")
                .header("Origin", &origin)
                .header("Content-Type", "text/plain")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let msg = assert_error(r, 403).await;
            assert!(msg.contains("another site"), "{path} {origin}: {msg}");
        }
    }
    assert_eq!(server.get_json("/app/bookmarks").await, json!({}));
    assert!(!dir.path().join("data/tutorial.json").exists());
    // Reads from anywhere still answer; a post from the grain's own page is served.
    let r = server
        .client
        .get(server.url("/app/bookmarks"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = post_raw(&server, "/app/bookmark", "bookmarks")
        .header("Origin", &own_origin)
        .json(&state_changing_routes()[0].1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_the_permission_a_malformed_body_is_403_not_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let needs_permission = [
        "/app/bookmark",
        "/app/bookmark-delete",
        "/app/download-manifest",
        "/app/download-map",
        "/app/map-delete",
    ];
    for path in needs_permission {
        for body in ["{", "not json", "", "[1, 2]"] {
            let r = post_raw(&server, path, "").body(body).send().await.unwrap();
            let msg = assert_error(r, 403).await;
            assert!(msg.contains("permission"), "{path} {body:?}: {msg}");
        }
    }
    // With the permission, the same body is the client's mistake.
    let r = post_raw(&server, "/app/bookmark", "bookmarks")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(r, 400).await;
}

/// Opens a connection and sends the start of a request that never ends.
fn half_sent_request(addr: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /app/bookmarks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    stream
}

#[tokio::test]
async fn half_sent_requests_do_not_keep_a_real_request_from_answering() {
    let dir = tempfile::tempdir().unwrap();
    // 64 open files: fewer than the half-sent requests below, so without a connection limit
    // the server would run out of descriptors, and without a header timeout never get them back.
    let server = TestServer::start_with(
        dir.path(),
        Options {
            open_files: Some(64),
            ..Default::default()
        },
    );
    assert_eq!(server.get("/app/bookmarks").await.status(), 200);
    let addr = server.base.trim_start_matches("http://").to_string();
    let stalled: Vec<_> = (0..80).map(|_| half_sent_request(&addr)).collect();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let r = client
        .get(server.url("/app/bookmarks"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("a real request got no answer: {e}\n{}", server.log()));
    assert_eq!(r.status(), 200);
    // The server also still opens files of its own: a bookmark is saved.
    let r = server
        .post(
            "/app/bookmark",
            &json!({"name": "Still here", "latlng": {"lat": 1, "lng": 2}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    drop(stalled);
}

#[tokio::test]
async fn an_internal_failure_is_logged_with_its_request_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    // The tutorial state cannot be saved where a directory took its file's place.
    std::fs::create_dir_all(dir.path().join("data/tutorial.json/in-the-way")).unwrap();
    let r = server
        .post(
            "/app/tutorial-mode",
            &json!({"tutorial-mode": "TUTORIAL_DONE"}),
        )
        .await;
    let msg = assert_error(r, 500).await;
    assert!(msg.contains("Something went wrong"), "{msg}");
    let log = server
        .log_once(|log| log.contains("POST /app/tutorial-mode: "))
        .await;
    let line = log
        .lines()
        .find(|l| l.contains("POST /app/tutorial-mode: "))
        .unwrap_or_else(|| panic!("no line naming the request:\n{log}"));
    // The context, then the operating system's own reason.
    assert!(line.contains("saving a file: "), "{line}");
    assert!(line.to_lowercase().contains("directory"), "{line}");
}
