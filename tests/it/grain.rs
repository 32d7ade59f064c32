//! The package, run as Sandstorm runs a grain (docs/api.md §3), behind the fake bridge.
//!
//! The file tree is built from exactly what the package holds — `scripts/file-list`'s list
//! plus the pkgdef's `alwaysInclude` — and run with bubblewrap: that tree read-only as `/`, a
//! writable `/var`, a 16 MiB `/tmp`, a minimal `/dev`, uid 1000, the environment exactly the
//! pkgdef's `environ` (plus the proxy variables the bridge adds), working dir `/`, the pkgdef's
//! command, in a network namespace with loopback only. A file the package lacks makes the
//! grain fail here. [`run_grain_journeys`] takes any tree, so an unpacked spk can be run too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::bridge::{self, FakeBridge, Role};
use crate::common::{BIN, http_client};
use crate::mapserver::{Fault, MapServer};
use crate::regions::{WAIT, manifest, pack_sized};

/// The port sandstorm-http-bridge's proxy listens on in every grain.
const BRIDGE_PROXY: &str = "127.0.0.1:15239";

/// The quoted strings of the pkgdef's `name = [ … ]`, comments left out.
fn pkgdef_list(pkgdef: &str, name: &str) -> Vec<String> {
    let start = pkgdef
        .find(&format!("{name} = ["))
        .unwrap_or_else(|| panic!("the pkgdef has {name}"));
    let body = &pkgdef[start..];
    let body = &body[..body.find(']').unwrap()];
    body.lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(|l| {
            l.split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub struct Package {
    pub always_include: Vec<String>,
    /// The grain's command, after the bridge's `/sandstorm-http-bridge 8003 --`.
    pub argv: Vec<String>,
    pub environ: Vec<(String, String)>,
}

impl Package {
    /// Where the package holds the server: the program the grain's command runs, as a path
    /// in the package (`opt/app/…`).
    pub fn server_entry(&self) -> String {
        self.argv[0].trim_start_matches('/').to_string()
    }
}

pub fn read_pkgdef() -> Package {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pkgdef = std::fs::read_to_string(repo.join(".sandstorm/sandstorm-pkgdef.capnp")).unwrap();
    let argv = pkgdef_list(&pkgdef, "argv");
    let after = argv
        .iter()
        .position(|a| a == "--")
        .expect("argv runs the bridge")
        + 1;
    let environ = pkgdef_list(&pkgdef, "environ");
    Package {
        always_include: pkgdef_list(&pkgdef, "alwaysInclude"),
        argv: argv[after..].to_vec(),
        environ: environ
            .chunks(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect(),
    }
}

/// Copies `entry` (a path relative to `/` in the package) from `source` into `tree`: a
/// symlink as a symlink, a directory with everything in it.
fn copy_entry(source: &Path, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let meta = std::fs::symlink_metadata(source)
        .unwrap_or_else(|e| panic!("{} is listed but missing: {e}", source.display()));
    if dest.symlink_metadata().is_ok() {
        return;
    }
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(source).unwrap(), dest).unwrap();
    } else if meta.is_dir() {
        std::fs::create_dir_all(dest).unwrap();
        for child in std::fs::read_dir(source).unwrap().flatten() {
            copy_entry(&child.path(), &dest.join(child.file_name()));
        }
    } else if std::fs::hard_link(source, dest).is_err() {
        std::fs::copy(source, dest).unwrap();
    }
}

/// The binary the grain runs: the package's build (without the `tls` feature) when
/// `scripts/test` made one and named it in `DESERT_ATLAS_GRAIN_BIN`, else the binary under test.
fn grain_binary() -> String {
    std::env::var("DESERT_ATLAS_GRAIN_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// `scripts/file-list` run on the binary under test, written to `list`.
fn write_file_list(list: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(repo.join("scripts/file-list"))
        .args(["--binary", &grain_binary(), "--out"])
        .arg(list)
        .status()
        .expect("run scripts/file-list");
    assert!(status.success(), "scripts/file-list failed");
}

/// The package's tree from this checkout: `scripts/file-list` (run on the binary under test)
/// and the pkgdef's `alwaysInclude`; `opt/app` is the repository, the rest the system.
pub fn build_tree(package: &Package, tree: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = tree.with_extension("list");
    write_file_list(&list);
    let listed = std::fs::read_to_string(&list).unwrap();
    let entries = listed
        .lines()
        .map(str::to_string)
        .chain(package.always_include.iter().cloned());
    for entry in entries {
        let source = if entry == package.server_entry() {
            PathBuf::from(grain_binary())
        } else if let Some(rel) = entry.strip_prefix("opt/app/") {
            repo.join(rel)
        } else {
            Path::new("/").join(&entry)
        };
        copy_entry(&source, &tree.join(&entry));
    }
    // The mount points every spk has.
    for dir in ["dev", "proc", "tmp", "var"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
}

/// A grain running in bubblewrap; killed (SIGKILL, the whole sandbox) when dropped.
pub struct Grain {
    child: Child,
}

impl Grain {
    pub fn start(tree: &Path, var: &Path, package: &Package) -> Grain {
        let mut cmd = Command::new("bwrap");
        cmd.args(["--unshare-user", "--uid", "1000", "--gid", "1000"])
            .args(["--unshare-pid", "--die-with-parent"])
            .arg("--ro-bind")
            .arg(tree)
            .arg("/")
            .arg("--bind")
            .arg(var)
            .arg("/var")
            .args(["--size", "16777216", "--tmpfs", "/tmp", "--dev", "/dev"])
            .args(["--chdir", "/", "--clearenv"]);
        let bridge_env = [
            ("HTTP_PROXY", "http://127.0.0.1:15239/"),
            ("http_proxy", "http://127.0.0.1:15239/"),
            ("no_proxy", "localhost,127.0.0.1"),
        ];
        let environ = package
            .environ
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(bridge_env);
        for (k, v) in environ {
            cmd.args(["--setenv", k, v]);
        }
        let child = cmd
            .arg("--")
            .args(&package.argv)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bubblewrap is installed (scripts/setup)");
        Grain { child }
    }

    /// SIGKILL, as when the grain's machine dies; returns once its processes are gone (the
    /// sandbox's processes die after bwrap itself, so their ports are watched).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for port in [8003, 3857] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Grain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the grain answers through the front (nginx and the server both up).
async fn wait_until_up(front: &str, grain: &mut Grain) {
    let client = http_client();
    for _ in 0..600 {
        if let Ok(r) = client
            .get(format!("{front}/app/map-download-status"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = grain.child.try_wait() {
            panic!("the grain exited while starting: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the grain never answered through nginx");
}

/// One role's view through the fake bridge.
struct Visitor {
    base: String,
    role: Role,
    client: reqwest::Client,
}

impl Visitor {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{} GET {path}", self.role.name);
        r.json().await.unwrap()
    }
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }
    async fn wait_for_status(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let status = self.json("/app/map-download-status").await;
            if done(&status) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "status never got there: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    async fn titles(&self, q: &str) -> Vec<String> {
        self.json(&format!("/app/search?q={q}&lat=43.7&lng=11.2"))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_string())
            .collect()
    }
}

fn done(status: &Value, id: &str) -> bool {
    status["done"].as_array().unwrap().iter().any(|d| d == id)
}

/// The journeys of every role through the grain running `tree`; must run inside a network
/// namespace of its own (see [`in_own_network`]).
pub async fn run_grain_journeys(tree: &Path, package: &Package) {
    // The map-data server, published as the public one (the grain's default map-data URL).
    let data = tempfile::tempdir().unwrap();
    pack_sized(data.path(), "r", &["Atlasgrainburg"], 8192, 20_000);
    pack_sized(data.path(), "s", &["Resumeton"], 2048, 20_000);
    let s_parts = manifest(data.path())["s"]["files"]
        .as_array()
        .unwrap()
        .len();
    assert!(s_parts >= 4);
    let map = MapServer::start(data.path()).await;
    let mut fake =
        FakeBridge::start(BRIDGE_PROXY.parse().unwrap(), map.url.trim_end_matches('/')).await;
    let mut visitors = Vec::new();
    for role in bridge::ROLES {
        let base = fake
            .front(([127, 0, 0, 1], 0).into(), "127.0.0.1:8003", role)
            .await;
        visitors.push(Visitor {
            base,
            role,
            client: http_client(),
        });
    }
    let [owner, bookmarker, viewer, anonymous] = &visitors[..] else {
        unreachable!()
    };

    let var = tempfile::tempdir().unwrap();
    let mut grain = Grain::start(tree, var.path(), package);
    wait_until_up(&owner.base, &mut grain).await;

    // The base map is installed in the background on a grain's first start.
    for _ in 0..1200 {
        if !owner.titles("paris").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for v in &visitors {
        let page = v.get("/").await;
        assert_eq!(page.status(), 200, "{}: the page", v.role.name);
        let html = page.text().await.unwrap();
        assert!(html.contains("<html"));
        // The page's bundled script, whatever its hashed name, is in the package too.
        let script = html
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page names its script");
        assert_eq!(v.get(&format!("/{script}")).await.status(), 200, "{script}");
        // The package holds it uncompressed; nginx compresses it on the way.
        let compressed = v
            .client
            .get(format!("{}/{script}", v.base))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(compressed.status(), 200);
        assert_eq!(compressed.headers()["content-encoding"], "gzip", "{script}");
        let found = v.titles("paris").await;
        assert!(
            found.iter().any(|t| t.starts_with("Paris")),
            "{}: base-map search: {found:?}",
            v.role.name
        );
        let add =
            json!({"name": format!("Pin of {}", v.role.name), "latlng": {"lat": 1, "lng": 2}});
        let saved = v.post("/app/bookmark", &add).await.status();
        let may_bookmark = v.role.permissions.contains("bookmarks");
        assert_eq!(
            saved,
            if may_bookmark { 200 } else { 403 },
            "{}",
            v.role.name
        );
        let status = v.json("/app/map-download-status").await;
        assert_eq!(
            status["permissions"].as_array().unwrap().len(),
            v.role
                .permissions
                .split(',')
                .filter(|p| !p.is_empty())
                .count(),
            "{}: {status}",
            v.role.name
        );
        assert_eq!(status["connected"], false);
        assert_eq!(v.json("/app/powerbox").await["connected"], false);
    }
    // Only the owner may connect the map-data server or download.
    for v in [bookmarker, viewer, anonymous] {
        let token = json!({"token": fake.powerbox_grant()});
        let claim = v.post("/app/powerbox-claim", &token).await;
        assert_eq!(claim.status(), 403, "{}", v.role.name);
        assert_eq!(
            v.post("/app/download-manifest", &json!({})).await.status(),
            403
        );
    }
    let claim = owner
        .post(
            "/app/powerbox-claim",
            &json!({"token": fake.powerbox_grant()}),
        )
        .await;
    assert_eq!(claim.status(), 200, "{:?}", claim.text().await);
    assert_eq!(
        owner
            .post("/app/download-manifest", &json!({}))
            .await
            .status(),
        200
    );
    owner
        .wait_for_status(|s| s["available-areas"].is_object() && s["available-areas-status"] == "")
        .await;
    assert_eq!(
        owner
            .post("/app/download-map", &json!({"tile-id": "r"}))
            .await
            .status(),
        200
    );
    owner.wait_for_status(|s| done(s, "r")).await;
    for v in &visitors {
        assert_eq!(
            v.titles("atlasgrainburg").await,
            vec!["Atlasgrainburg"],
            "{}",
            v.role.name
        );
        let tiles = v.get("/tiles/r.pmtiles?rangeFirst=0&rangeLast=126").await;
        assert_eq!(tiles.status(), 206);
        assert_eq!(tiles.bytes().await.unwrap().len(), 127);
    }
    // Requests went to the public server's path, through the proxy, with the token.
    assert!(fake.seen().iter().any(|s| s.target
        == "http://desert-atlas.danielkrol.com/1700099624.161532/1700099624.161532/manifest.json"
        && s.bearer.is_some()));

    // A download cut off by the grain being killed: two parts in, the rest held.
    for i in 2..s_parts {
        map.fail_next(&format!("s.tar.gz.{i:02}"), &[Fault::Hold]);
    }
    assert_eq!(
        owner
            .post("/app/download-map", &json!({"tile-id": "s"}))
            .await
            .status(),
        200
    );
    owner
        .wait_for_status(|s| s["in-progress"]["s"]["downloadDone"] == 2)
        .await;
    grain.kill();

    // Started again, as the bridge does: everything is still there, and the download resumes.
    map.release();
    let mut grain = Grain::start(tree, var.path(), package);
    wait_until_up(&owner.base, &mut grain).await;
    let bookmarks = anonymous.json("/app/bookmarks").await;
    assert_eq!(bookmarks.as_object().unwrap().len(), 2, "{bookmarks}");
    assert_eq!(owner.json("/app/powerbox").await["connected"], true);
    let status = owner.wait_for_status(|s| done(s, "s")).await;
    assert!(done(&status, "r"));
    assert_eq!(viewer.titles("resumeton").await, vec!["Resumeton"]);
    assert_eq!(
        viewer.titles("atlasgrainburg").await,
        vec!["Atlasgrainburg"]
    );
    assert_eq!(
        map.hits("s.tar.gz.00"),
        1,
        "a verified part is not fetched again"
    );
    assert_eq!(
        map.hits("s.tar.gz.01"),
        1,
        "a verified part is not fetched again"
    );
    grain.kill();
}

/// Runs `work` on a thread of its own in a new network namespace with only loopback up: every
/// socket it opens, and every process it starts, sees only that namespace.
pub fn in_own_network<F: std::future::Future<Output = ()>>(
    work: impl FnOnce() -> F + Send + 'static,
) {
    std::thread::spawn(move || {
        // SAFETY: unshare(2) changes only this thread's network namespace.
        let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            unshared,
            0,
            "cannot create a network namespace (the grain test needs root): {}",
            std::io::Error::last_os_error()
        );
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip (iproute2) is installed");
        assert!(up.success());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work());
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

/// `tools/spk`, built with the test binaries (`cargo test` builds the workspace); built here
/// when a filtered run left it out.
fn spk_tool() -> PathBuf {
    let tool = Path::new(BIN).with_file_name("spk");
    if !tool.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "spk"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build -p spk failed");
    }
    tool
}

fn spk(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(spk_tool()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "spk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The package's tree as Sandstorm gets it: `scripts/file-list` (run on the binary under test),
/// packed and signed into an spk by `tools/spk` with the pkgdef, verified, then unpacked.
fn tree_from_spk(work: &Path, package: &Package) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = work.join("sandstorm-files.list");
    write_file_list(&list);
    let keyring = work.join("keyring");
    let app_id = spk(&["keygen".as_ref(), "--keyring".as_ref(), keyring.as_os_str()]);
    let binary = format!("{}={}", package.server_entry(), grain_binary());
    let spk_file = work.join("desert-atlas.spk");
    let checkout = format!("opt/app={}", repo.display());
    spk(&[
        "pack".as_ref(),
        "--fast".as_ref(),
        "--pkgdef".as_ref(),
        repo.join(".sandstorm/sandstorm-pkgdef.capnp").as_os_str(),
        "--file-list".as_ref(),
        list.as_os_str(),
        "--keyring".as_ref(),
        keyring.as_os_str(),
        "--app-id".as_ref(),
        app_id.trim().as_ref(),
        "--source-map".as_ref(),
        binary.as_ref(),
        "--source-map".as_ref(),
        checkout.as_ref(),
        "--out".as_ref(),
        spk_file.as_os_str(),
    ]);
    let tree = work.join("tree");
    spk(&["unpack".as_ref(), spk_file.as_os_str(), tree.as_os_str()]);
    tree
}

/// The grain test proper: what the spk holds, run as a grain.
#[test]
fn the_package_runs_as_a_grain_for_every_role_and_survives_a_kill() {
    let package = read_pkgdef();
    let work = tempfile::tempdir().unwrap();
    let tree = tree_from_spk(work.path(), &package);
    assert!(
        !tree.join("opt/app/build/assets/web/index.html.gz").exists(),
        "the package holds the web client uncompressed only"
    );
    in_own_network(move || async move {
        run_grain_journeys(&tree, &package).await;
    });
}

/// The same tree built without packing (`scripts/file-list` and `alwaysInclude` copied from
/// this machine) behaves the same: a file the list lacks fails either way.
#[test]
fn the_file_list_alone_makes_a_tree_that_runs_as_a_grain() {
    let package = read_pkgdef();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    build_tree(&package, &tree);
    in_own_network(move || async move {
        run_grain_journeys(&tree, &package).await;
    });
}
