//! The package's nginx configuration, really started in front of the real binary in grain
//! mode: the client pre-compressed, the API and byte ranges proxied with the bridge headers.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::{Options, TestServer, http_client};
use crate::fixtures::{install_region, write_one_tile_pmtiles};

struct Nginx(Child);

impl Drop for Nginx {
    /// Kills nginx's whole process group: workers left behind would hold the port and the
    /// test's stderr.
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The nginx the package ships (scripts/build-nginx).
pub fn packaged_nginx() -> std::path::PathBuf {
    let nginx = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/nginx/nginx");
    assert!(nginx.exists(), "no build/nginx/nginx: run scripts/setup");
    nginx
}

fn start_nginx(work: &Path, backend: &str) -> (Nginx, String) {
    let nginx = packaged_nginx();
    let port = free_port();
    let var = work.join("var");
    for dir in ["run", "lib/nginx", "log/nginx"] {
        std::fs::create_dir_all(var.join(dir)).unwrap();
    }
    let config = shipped_config(&var, port, backend);
    let conf = work.join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let nginx = Nginx(
        Command::new(nginx)
            .arg("-c")
            .arg(&conf)
            .args(["-p"])
            .arg(work)
            .args(["-g", "daemon off;"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (nginx, format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nginx did not start with the shipped config");
}

/// A loopback port free when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shipped `nginx/nginx.conf`, with the grain's paths (`/var/` → `var`, the web client
/// in the repository's build) and ports (8003 → `front`, 3857 → `backend`) replaced by the
/// test's.
pub fn shipped_config(var: &Path, front: u16, backend: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(repo.join("nginx/nginx.conf"))
        .unwrap()
        .replace(
            "/opt/app/build/assets/web",
            &repo.join("build/assets/web").display().to_string(),
        )
        .replace("/var/", &format!("{}/", var.display()))
        .replace("127.0.0.1:8003", &format!("127.0.0.1:{front}"))
        .replace("127.0.0.1:3857", backend);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Workers of a root master would run as nobody, who cannot read the test's files.
        format!("user root;\n{config}")
    } else {
        config
    }
}

#[tokio::test]
async fn the_shipped_nginx_config_serves_the_client_and_proxies_the_api_and_ranges() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("build/assets/web/index.html.gz").exists(),
        "no built web client: run scripts/build-assets (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.src");
    write_one_tile_pmtiles(&archive, "roads");
    install_region(dir.path(), "a", &archive);
    let file = std::fs::read(&archive).unwrap();
    let server = TestServer::start_with(dir.path(), Options::default());
    let backend = server.base.trim_start_matches("http://").to_string();
    let work = tempfile::tempdir().unwrap();
    let (_nginx, base) = start_nginx(work.path(), &backend);
    let client = http_client();

    let page = client
        .get(format!("{base}/"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert_eq!(page.headers()["content-type"], "text/html");

    let add = json!({"name": "Via nginx", "latlng": {"lat": 1, "lng": 2}});
    let refused = client
        .post(format!("{base}/app/bookmark"))
        .header("X-Sandstorm-Permissions", "")
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // The page's own origin (nginx's address, port included) passes the cross-site check
    // behind nginx; another does not.
    let cross_site = client
        .post(format!("{base}/app/bookmark"))
        .header("X-Sandstorm-User-Id", "u1")
        .header("X-Sandstorm-Permissions", "bookmarks")
        .header("Origin", "http://evil.example")
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let saved = client
        .post(format!("{base}/app/bookmark"))
        .header("X-Sandstorm-User-Id", "u1")
        .header("X-Sandstorm-Permissions", "bookmarks")
        .header("Origin", &base)
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let status: serde_json::Value = client
        .get(format!("{base}/app/map-download-status"))
        .header("X-Sandstorm-User-Id", "u1")
        .header("X-Sandstorm-Permissions", "download,bookmarks")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["permissions"], json!(["download", "bookmarks"]));

    let ranged = client
        .get(format!("{base}/tiles/a.pmtiles"))
        .header("Range", "bytes=0-126")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.unwrap().to_vec(), file[..127]);
    let query = client
        .get(format!("{base}/tiles/a.pmtiles?rangeFirst=5&rangeLast=9"))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 206);
    assert_eq!(query.headers()["access-control-allow-origin"], "*");
    assert_eq!(query.bytes().await.unwrap().to_vec(), file[5..=9]);
    let whole = client
        .get(format!("{base}/tiles/a.pmtiles"))
        .send()
        .await
        .unwrap();
    assert_eq!(whole.bytes().await.unwrap().to_vec(), file);
    let tile = client
        .get(format!("{base}/tiles/10/544/373.mvt"))
        .send()
        .await
        .unwrap();
    assert_eq!(tile.status(), 200);
}

/// The bundle's and the glyphs' file names from the built page.
pub fn hashed_asset_paths(repo: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(repo.join("build/assets/web/index.html")).unwrap();
    let attr = |prefix: &str| {
        let start = html.find(prefix).expect(prefix) + prefix.len();
        html[start..start + html[start..].find('"').unwrap()].to_string()
    };
    let glyphs = attr("<meta name=\"glyphs\" content=\"");
    vec![
        format!("/{}", attr("<script type=\"module\" src=\"")),
        format!("/{}", attr("<link rel=\"stylesheet\" href=\"")),
        format!("/{glyphs}/Noto%20Sans%20Regular/0-255.pbf"),
    ]
}

#[tokio::test]
async fn the_shipped_nginx_config_keeps_hashed_assets_for_good_and_revalidates_the_page() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), Options::default());
    let backend = server.base.trim_start_matches("http://").to_string();
    let work = tempfile::tempdir().unwrap();
    let (_nginx, base) = start_nginx(work.path(), &backend);
    let client = http_client();
    for path in ["/", "/index.html", "/favicon.ico"] {
        let answer = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-cache", "{path}");
    }
    for path in hashed_asset_paths(repo) {
        let answer = client
            .get(format!("{base}{path}"))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(
            answer.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
    }
    let missing = client
        .get(format!("{base}/app-AAAAAAAA.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("cache-control").is_none());
}

#[tokio::test]
async fn local_mode_serves_the_client_with_the_same_cache_headers_as_nginx() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let assets = repo.join("build/assets").display().to_string();
    let server = TestServer::start_with(
        dir.path(),
        Options {
            grain: false,
            extra_args: vec!["--assets".into(), assets],
            ..Options::default()
        },
    );
    for path in ["/", "/favicon.ico", "/favicon.svg"] {
        let answer = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-cache", "{path}");
    }
    for path in hashed_asset_paths(repo) {
        let answer = server.client.get(server.url(&path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(
            answer.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
    }
}
