//! The grain's way out (docs/api.md §2, §3): the Powerbox descriptor, the claim through the
//! bridge's proxy, the access token kept across restarts, and downloads through the proxy
//! with it — against the fake bridge of `bridge.rs` and a local map-data server.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::bridge::FakeBridge;
use crate::common::{Options, TestServer, assert_error};
use crate::mapserver::{Fault, MapServer};
use crate::regions::{WAIT, done, download, failed, manifest, pack_sized, titles};

/// A grain whose map-data URL has a path (`/data/`) and whose proxy is `bridge`'s.
fn start_grain(dir: &Path, map: &MapServer, proxy: Option<&str>) -> TestServer {
    let mut env = vec![("DESERT_ATLAS_RETRY_BASE_MS".to_string(), "20".to_string())];
    if let Some(proxy) = proxy {
        env.push(("HTTP_PROXY".into(), proxy.into()));
        env.push(("http_proxy".into(), proxy.into()));
        env.push(("no_proxy".into(), "localhost,127.0.0.1".into()));
    }
    TestServer::start_with(
        dir,
        Options {
            extra_args: vec!["--map-data-url".into(), map_data_url(map)],
            env,
            ..Default::default()
        },
    )
}

/// The map server's origin, as the bridge grants it (it forwards requests there).
fn origin(map: &MapServer) -> String {
    map.url.trim_end_matches('/').to_string()
}

/// The grain's map-data URL: a name, not loopback (a loopback server is fetched directly, as
/// the bridge's `no_proxy` says), with a path. The bridge routes by token, so the name need
/// not resolve.
fn map_data_url(map: &MapServer) -> String {
    format!("http://{}/data/", public_host(map))
}

fn public_host(map: &MapServer) -> String {
    let port = map.url.trim_end_matches('/').rsplit(':').next().unwrap();
    format!("map-data.test:{port}")
}

async fn claim(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .post("/app/powerbox-claim", &json!({ "token": token }))
        .await
}

async fn request_manifest(server: &TestServer) {
    let r = server.post("/app/download-manifest", &json!({})).await;
    assert_eq!(r.status(), 200);
}

async fn wait_for_region_list(server: &TestServer) -> Value {
    server
        .wait_for_status(WAIT, |s| {
            s["available-areas-status"] == "error"
                || (s["available-areas"].is_object() && s["available-areas-status"] == "")
        })
        .await
}

/// The `sandstorm` crate's schema directory, where Cargo unpacked the version Cargo.lock names.
fn sandstorm_schemas() -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(repo.join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"sandstorm\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("the sandstorm crate is in Cargo.lock")
        .trim_matches('"')
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
    std::fs::read_dir(cargo_home.join("registry/src"))
        .unwrap()
        .flatten()
        .map(|index| index.path().join(format!("sandstorm-{version}/schema")))
        .find(|dir| dir.join("powerbox.capnp").is_file())
        .expect("the sandstorm crate's sources are in Cargo's registry")
}

#[tokio::test]
async fn the_descriptor_decodes_with_capnp_as_an_api_session_for_the_map_servers_origin() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, None);
    let answer = server.get_json("/app/powerbox").await;
    assert_eq!(answer["connected"], false);
    let packed = base64_decode(answer["descriptor"].as_str().unwrap());

    let schemas = sandstorm_schemas();
    let decode = |schema: &Path, file: &str, ty: &str| {
        let mut child = Command::new("capnp")
            .args(["decode", "--packed", "-I", "/usr/include", "-I"])
            .arg(&schemas)
            .arg(schema.join(file))
            .arg(ty)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("capnp is installed (scripts/setup)");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&packed).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = decode(&schemas, "powerbox.capnp", "PowerboxDescriptor");
    assert!(
        text.contains(&format!("id = {}", 0xc879e379c625cdc7u64)),
        "one ApiSession tag: {text}"
    );
    // The tag's value read as ApiSession.PowerboxTag: the same layout as the descriptor,
    // with the value's type spelled out.
    let check = tempfile::tempdir().unwrap();
    std::fs::write(
        check.path().join("check.capnp"),
        "@0xd4f1e2c3b4a59687;\n\
         using Api = import \"/api-session.capnp\";\n\
         struct Descriptor { tags @0 :List(Tag); quality @1 :UInt16;\n\
           struct Tag { id @0 :UInt64; value @1 :Api.ApiSession.PowerboxTag; } }\n",
    )
    .unwrap();
    let text = decode(check.path(), "check.capnp", "Descriptor");
    assert!(
        text.contains(&format!("canonicalUrl = \"http://{}\"", public_host(&map))),
        "canonicalUrl is the map server's origin: {text}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[tokio::test]
async fn a_claimed_token_downloads_through_the_bridge_and_survives_a_restart() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Bridgetown"], 4096, 20_000);
    let map = MapServer::start(out.path()).await;
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));

    let r = claim(&server, &bridge.powerbox_grant()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"connected": true}));
    assert_eq!(server.get_json("/app/powerbox").await["connected"], true);
    let seen = bridge.seen();
    assert_eq!(
        seen[0].target, "http://http-bridge/session/test-session/claim",
        "claimed for the caller's session"
    );

    request_manifest(&server).await;
    let status = wait_for_region_list(&server).await;
    assert_eq!(status["available-areas-status"], "", "{status:#}");
    assert_eq!(status["connected"], true);
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(titles(&server, "bridgetown").await, vec!["Bridgetown"]);

    // Every download went through the proxy, plain http, with the token, path kept.
    let fetches: Vec<_> = bridge
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET")
        .collect();
    assert!(fetches.len() > 2);
    let host = public_host(&map);
    for fetch in &fetches {
        assert!(
            fetch.target.starts_with(&format!("http://{host}/data/")),
            "{fetch:?}"
        );
        assert_eq!(fetch.bearer.as_deref(), Some("access-2"), "{fetch:?}");
    }

    let server = server.restart();
    assert_eq!(server.get_json("/app/powerbox").await["connected"], true);
    let status = server.get_json("/app/map-download-status").await;
    assert_eq!(status["connected"], true);
    assert!(done(&status, "r"));
}

#[tokio::test]
async fn a_refused_claim_answers_the_bridges_reason_and_stores_nothing() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));
    let message = assert_error(claim(&server, "never-granted").await, 400).await;
    assert!(message.contains("invalid or was already used"), "{message}");
    assert_eq!(server.get_json("/app/powerbox").await["connected"], false);
    assert!(!server.data_path("data/powerbox-token.json").exists());
    // A claim token works once.
    let token = bridge.powerbox_grant();
    assert_eq!(claim(&server, &token).await.status(), 200);
    assert_error(claim(&server, &token).await, 400).await;
    assert_eq!(server.get_json("/app/powerbox").await["connected"], true);
}

#[tokio::test]
async fn claims_need_the_download_permission_a_session_and_a_token() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));
    let url = server.url("/app/powerbox-claim");

    // A viewer or bookmarker is refused before the body is even read as JSON.
    for perms in ["", "bookmarks"] {
        let r = server
            .client
            .post(&url)
            .header("X-Sandstorm-User-Id", "someone")
            .header("X-Sandstorm-Permissions", perms)
            .header("X-Sandstorm-Session-Id", "s")
            .body("this is not JSON")
            .send()
            .await
            .unwrap();
        assert_error(r, 403).await;
    }
    // No session to claim for.
    let r = server
        .client
        .post(&url)
        .header("X-Sandstorm-User-Id", "owner")
        .header("X-Sandstorm-Permissions", "download,bookmarks")
        .json(&json!({"token": bridge.powerbox_grant()}))
        .send()
        .await
        .unwrap();
    let message = assert_error(r, 400).await;
    assert!(message.contains("session"), "{message}");
    // Bad bodies.
    for body in [json!({}), json!({"token": ""}), json!({"token": 5})] {
        assert_error(server.post("/app/powerbox-claim", &body).await, 400).await;
    }
    assert!(bridge.seen().is_empty(), "nothing reached the bridge");
    assert_eq!(server.get_json("/app/powerbox").await["connected"], false);
}

#[tokio::test]
async fn without_a_token_the_region_list_says_access_is_needed_at_once() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Nowhere"], 4096, 1000);
    let map = MapServer::start(out.path()).await;
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));
    request_manifest(&server).await;
    let status = wait_for_region_list(&server).await;
    assert_eq!(status["available-areas-status"], "error");
    assert_eq!(status["available-areas-error-key"], "access-needed");
    assert!(
        status["available-areas-error"]
            .as_str()
            .unwrap()
            .contains("allow access"),
        "{status:#}"
    );
    assert_eq!(status["connected"], false);
    assert!(bridge.seen().is_empty(), "nothing sent without a token");
    assert_eq!(map.hits("manifest.json"), 0);

    // Once connected, the same grain fetches the list.
    assert_eq!(claim(&server, &bridge.powerbox_grant()).await.status(), 200);
    request_manifest(&server).await;
    let status = wait_for_region_list(&server).await;
    assert_eq!(status["available-areas-status"], "", "{status:#}");
    assert!(status["available-areas-error-key"].is_null());
}

#[tokio::test]
async fn a_revoked_grant_fails_the_download_once_and_asks_again() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Revoked"], 4096, 20_000);
    let map = MapServer::start(out.path()).await;
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));
    assert_eq!(claim(&server, &bridge.powerbox_grant()).await.status(), 200);
    request_manifest(&server).await;
    assert_eq!(
        wait_for_region_list(&server).await["available-areas-status"],
        ""
    );

    bridge.revoke_all();
    download(&server, "r").await;
    let status = server.wait_for_status(WAIT, |s| failed(s, "r")).await;
    let region = &status["in-progress"]["r"];
    assert_eq!(region["errorKey"], "access-withdrawn", "{status:#}");
    assert_eq!(
        region["error"],
        "Access to the map-data server was withdrawn; ask again."
    );
    assert_eq!(status["available-areas-status"], "error");
    assert_eq!(status["available-areas-error-key"], "access-withdrawn");
    assert_eq!(status["connected"], false);
    assert_eq!(server.get_json("/app/powerbox").await["connected"], false);
    // Not retried: one refused request per part tried, none reached the map server.
    let parts = manifest(out.path())["r"]["files"].as_array().unwrap().len();
    let part_requests = bridge
        .seen()
        .iter()
        .filter(|s| s.target.contains("r.tar.gz"))
        .count();
    assert!(
        part_requests <= parts,
        "{part_requests} requests for {parts} parts"
    );
    assert_eq!(map.hits("r.tar.gz.00"), 0);

    // After a restart the failure still says what to do, so the page offers the Powerbox.
    let server = server.restart();
    let status = server.get_json("/app/map-download-status").await;
    let region = &status["in-progress"]["r"];
    assert_eq!(region["downloadError"], true, "{status:#}");
    assert_eq!(region["errorKey"], "access-withdrawn", "{status:#}");
    assert_eq!(
        region["error"],
        "Access to the map-data server was withdrawn; ask again."
    );

    // Asking again: a new grant, and the region downloads.
    assert_eq!(claim(&server, &bridge.powerbox_grant()).await.status(), 200);
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(titles(&server, "revoked").await, vec!["Revoked"]);
}

#[tokio::test]
async fn a_part_cut_off_comes_back_whole_through_the_bridge_and_is_started_over() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Resumed"], 8192, 20_000);
    let map = MapServer::start(out.path()).await;
    map.fail_next("r.tar.gz.01", &[Fault::Truncate(3000)]);
    let bridge = FakeBridge::start(([127, 0, 0, 1], 0).into(), &origin(&map)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, Some(&bridge.proxy_url));
    assert_eq!(claim(&server, &bridge.powerbox_grant()).await.status(), 200);
    request_manifest(&server).await;
    wait_for_region_list(&server).await;
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    // The grain asked to resume; the bridge dropped the Range and the part came back whole.
    let resumed: Vec<_> = bridge
        .seen()
        .into_iter()
        .filter(|s| s.target.ends_with("r.tar.gz.01"))
        .collect();
    assert_eq!(resumed.len(), 2, "{resumed:?}\n{}", server.log());
    assert_eq!(
        resumed[1].range.as_deref(),
        Some("bytes=3000-"),
        "{resumed:?}\n{}",
        server.log()
    );
    assert_eq!(map.hits("r.tar.gz.01"), 2);
    assert_eq!(titles(&server, "resumed").await, vec!["Resumed"]);
}

#[tokio::test]
async fn without_http_proxy_the_log_and_the_region_list_say_so() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_grain(dir.path(), &map, None);
    let log = server
        .log_once(|log| log.contains("HTTP_PROXY is not set"))
        .await;
    assert!(log.contains("HTTP_PROXY is not set"), "{log}");
    request_manifest(&server).await;
    let status = wait_for_region_list(&server).await;
    assert_eq!(status["available-areas-status"], "error");
    assert!(
        status["available-areas-error"]
            .as_str()
            .unwrap()
            .contains("HTTP_PROXY"),
        "{status:#}"
    );
}

#[tokio::test]
async fn a_map_server_on_loopback_is_fetched_directly_without_a_grant() {
    let out = tempfile::tempdir().unwrap();
    pack_sized(out.path(), "r", &["Loopton"], 8192, 1000);
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            extra_args: vec!["--map-data-url".into(), format!("{}data/", map.url)],
            ..Default::default()
        },
    );
    assert_eq!(server.get_json("/app/powerbox").await["connected"], true);
    request_manifest(&server).await;
    assert_eq!(
        wait_for_region_list(&server).await["available-areas-status"],
        ""
    );
    download(&server, "r").await;
    server.wait_for_status(WAIT, |s| done(s, "r")).await;
    assert_eq!(titles(&server, "loopton").await, vec!["Loopton"]);
}

#[tokio::test]
async fn a_local_app_is_always_connected_and_has_nothing_to_claim() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            grain: false,
            extra_args: vec!["--map-data-url".into(), map.url.clone()],
            ..Default::default()
        },
    );
    assert_eq!(server.get_json("/app/powerbox").await["connected"], true);
    assert_eq!(
        server.get_json("/app/map-download-status").await["connected"],
        true
    );
    assert_error(claim(&server, "x").await, 400).await;
}

/// A stand-in for the bridge's proxy that answers every request with `status` and `body`.
async fn broken_proxy(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .fallback(move || async move { (axum::http::StatusCode::from_u16(status).unwrap(), body) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// A loopback port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn a_claim_the_bridge_cannot_answer_is_502_stores_nothing_and_is_logged() {
    let out = tempfile::tempdir().unwrap();
    let map = MapServer::start(out.path()).await;
    let (failing, _failing) = broken_proxy(500, "ERROR: the server application threw").await;
    let (garbage, _garbage) = broken_proxy(200, "<html>not the bridge</html>").await;
    for (proxy, sentence, cause) in [
        (closed_port_url(), "could not be reached", "refused"),
        (failing, "ask for access again", "500"),
        (garbage, "ask for access again", "not the bridge"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_grain(dir.path(), &map, Some(&proxy));
        let message = assert_error(claim(&server, "claim-1").await, 502).await;
        assert!(message.contains(sentence), "{proxy}: {message}");
        assert!(!server.data_path("data/powerbox-token.json").exists());
        assert_eq!(server.get_json("/app/powerbox").await["connected"], false);
        let logged = |log: &str| log.contains("POST /app/powerbox-claim") && log.contains(cause);
        let log = server.log_once(logged).await;
        assert!(
            logged(&log),
            "{proxy}: the cause is logged with the route:\n{log}"
        );
    }
}
