//! Tutorial state per user and permission type (docs/api.md §2, §3, §4).

use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

async fn mode(server: &TestServer, user: Option<&str>, perms: &str) -> String {
    let status: Value = server
        .get_as("/app/map-download-status", user, perms)
        .await
        .json()
        .await
        .unwrap();
    status["tutorial-mode"].as_str().unwrap().to_string()
}

async fn set(server: &TestServer, path: &str, user: Option<&str>, perms: &str, mode: &str) -> u16 {
    server
        .post_as(path, user, perms, &json!({"tutorial-mode": mode}))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_users_mode_is_stored_per_user_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    assert_eq!(
        mode(&server, Some("ann"), "download,bookmarks").await,
        "TUTORIAL_INTRO"
    );
    assert_eq!(
        set(
            &server,
            "/app/tutorial-mode",
            Some("ann"),
            "download,bookmarks",
            "TUTORIAL_STARTED"
        )
        .await,
        200
    );
    assert_eq!(
        set(
            &server,
            "/app-go/tutorial-mode",
            Some("bob"),
            "bookmarks",
            "TUTORIAL_DONE"
        )
        .await,
        200
    );
    let server = server.restart();
    assert_eq!(
        mode(&server, Some("ann"), "download,bookmarks").await,
        "TUTORIAL_STARTED"
    );
    assert_eq!(
        mode(&server, Some("bob"), "bookmarks").await,
        "TUTORIAL_DONE"
    );
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/tutorial.json")).unwrap())
            .unwrap();
    assert_eq!(
        stored,
        json!({
            "ann": {"mode": "TUTORIAL_STARTED", "type": "TUTORIAL_TYPE_DOWNLOADER"},
            "bob": {"mode": "TUTORIAL_DONE", "type": "TUTORIAL_TYPE_BOOKMARKER"},
        })
    );
}

#[tokio::test]
async fn a_user_whose_permissions_changed_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    set(
        &server,
        "/app/tutorial-mode",
        Some("cy"),
        "",
        "TUTORIAL_DONE",
    )
    .await;
    assert_eq!(mode(&server, Some("cy"), "").await, "TUTORIAL_DONE");
    assert_eq!(
        mode(&server, Some("cy"), "bookmarks").await,
        "TUTORIAL_INTRO"
    );
}

#[tokio::test]
async fn anonymous_visitors_are_answered_but_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    assert_eq!(
        set(&server, "/app/tutorial-mode", None, "", "TUTORIAL_DONE").await,
        200
    );
    assert_eq!(mode(&server, None, "").await, "TUTORIAL_INTRO");
    assert!(!dir.path().join("data/tutorial.json").exists());
}

#[tokio::test]
async fn unknown_modes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    for body in [
        json!({"tutorial-mode": "TUTORIAL_SKIPPED"}),
        json!({"tutorial-mode": 3}),
        json!({}),
    ] {
        assert_error(server.post("/app/tutorial-mode", &body).await, 400).await;
    }
    assert!(!dir.path().join("data/tutorial.json").exists());
}

#[tokio::test]
async fn concurrent_posts_from_many_users_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = server.client.clone();
        let url = server.url("/app/tutorial-mode");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("X-Sandstorm-User-Id", format!("user{i}"))
                .header("X-Sandstorm-Permissions", "bookmarks")
                .json(&json!({"tutorial-mode": "TUTORIAL_DONE"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/tutorial.json")).unwrap())
            .unwrap();
    assert_eq!(stored.as_object().unwrap().len(), 40);
}

#[tokio::test]
async fn a_corrupt_tutorial_file_is_set_aside_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/tutorial.json"), b"{\"half\": ").unwrap();
    let server = TestServer::start(dir.path());
    assert_eq!(mode(&server, Some("ann"), "").await, "TUTORIAL_INTRO");
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(kept[0].path()).unwrap(), b"{\"half\": ");
}
