//! Region download benchmark (run by `scripts/bench/download`): how long a large region takes
//! to install compared with what the link and the search import alone need, how much memory
//! the server uses meanwhile, and how quickly it keeps answering searches and tiles.
//!
//! Subcommands:
//!
//! - `generate OUT_DIR TILE_BYTES ROWS`: `OUT_DIR/bench/tiles.pmtiles` (vector tiles whose
//!   geometry is random, so they barely compress) and `OUT_DIR/bench/search.csv`, plus
//!   `OUT_DIR/florence/search.csv` for the region the probes search and draw during the run.
//! - `import CSV`: seconds to import that CSV alone into a fresh search index.
//! - `run PACKAGES_DIR DATA_DIR BIN RATE IMPORT_SECS`: serves `PACKAGES_DIR` at RATE bytes/s,
//!   starts `BIN serve --local` on DATA_DIR, installs `florence`, then installs `bench` the way
//!   the web client asks for it while searches and tile requests go on, and prints the figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use desert_atlas::search::SearchIndex;
use desert_atlas::tile_id::TileId;
use desert_atlas::tiles::grid;
use desert_atlas::tiles::mvt::{Feature, Layer, Tile};
use desert_atlas::tiles::ranges::{self, Wanted};
use pmtiles::{Compression, PmTilesWriter, TileCoord, TileType};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

/// Florence, where the probes search and fetch tiles (west, south, east, north).
const FLORENCE: [f64; 4] = [11.15, 43.72, 11.33, 43.84];
/// The generated region's first z14 column and row: the Balkans, far from Florence.
const BENCH_ORIGIN: (u32, u32) = (9100, 5850);
const BENCH_ZOOM: u8 = 14;
const BENCH_TILE_BYTES: usize = 8_000;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&str, String> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| "see the doc comment of examples/download_bench.rs".to_string())
    };
    let number = |i: usize| -> Result<f64, String> {
        arg(i)?
            .parse::<f64>()
            .map_err(|e| format!("argument {i}: {e}"))
    };
    match arg(0)? {
        "generate" => generate(Path::new(arg(1)?), number(2)? as usize, number(3)? as usize),
        "import" => {
            let secs = import_alone(Path::new(arg(1)?))?;
            println!("{secs:.3}");
            Ok(())
        }
        "run" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(RunArgs {
                packages: PathBuf::from(arg(1)?),
                data: PathBuf::from(arg(2)?),
                bin: PathBuf::from(arg(3)?),
                rate: number(4)?,
                import_secs: number(5)?,
            })),
        other => Err(format!("unknown subcommand {other}")),
    }
}

// ---- generate ----

/// A valid vector tile whose one line feature has `bytes` of random geometry.
fn random_tile(rng: &mut StdRng, bytes: usize) -> Vec<u8> {
    let geometry: Vec<u32> = (0..bytes / 4)
        .map(|_| (rng.next_u64() as u32) & 0x0fff_ffff | 0x0020_0000)
        .collect();
    Tile {
        layers: vec![Layer {
            version: 2,
            name: "noise".into(),
            features: vec![Feature {
                id: Some(1),
                tags: vec![],
                r#type: Some(2),
                geometry,
            }],
            keys: vec![],
            values: vec![],
            extent: Some(4096),
        }],
    }
    .encode_to_vec()
}

fn generate(out: &Path, tile_bytes: usize, rows: usize) -> Result<(), String> {
    let bench = out.join("bench");
    let florence = out.join("florence");
    for dir in [&bench, &florence] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let count = tile_bytes.div_ceil(BENCH_TILE_BYTES);
    let side = (count as f64).sqrt().ceil() as u32;
    let (x0, y0) = BENCH_ORIGIN;
    let mut coords: Vec<TileCoord> = (0..count as u32)
        .map(|i| TileCoord::new(BENCH_ZOOM, x0 + i % side, y0 + i / side))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    coords.sort_by_key(|c| u64::from(pmtiles::TileId::from(*c)));
    let [west, _, _, north] = grid::tile_bounds(BENCH_ZOOM, x0, y0);
    let [_, south, east, _] = grid::tile_bounds(BENCH_ZOOM, x0 + side - 1, y0 + side - 1);
    let bounds = [west, south, east, north];
    let file = std::fs::File::create(bench.join("tiles.pmtiles")).map_err(|e| e.to_string())?;
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .tile_compression(Compression::None)
        .min_zoom(BENCH_ZOOM)
        .max_zoom(BENCH_ZOOM)
        .bounds(bounds[0], bounds[1], bounds[2], bounds[3])
        .metadata(r#"{"vector_layers": [{"id": "noise", "fields": {}}]}"#)
        .create(file)
        .map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(7);
    for coord in coords {
        let size = BENCH_TILE_BYTES / 2 + (rng.next_u64() as usize % BENCH_TILE_BYTES);
        writer
            .add_tile(coord, &random_tile(&mut rng, size))
            .map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    let [west, south, east, north] = bounds;
    write_csv(
        &bench.join("search.csv"),
        rows,
        [west, south, east, north],
        1,
    )?;
    write_csv(&florence.join("search.csv"), rows / 3, FLORENCE, 2)?;
    eprintln!(
        "generated {count} tiles ({side}×{side} at z{BENCH_ZOOM}) and {rows} places in {}",
        out.display()
    );
    Ok(())
}

const SYLLABLES: [&str; 24] = [
    "san", "ta", "ro", "ma", "via", "del", "mon", "te", "ber", "lin", "sto", "ne", "ka", "ri",
    "wa", "gen", "stra", "ße", "caf", "é", "nord", "os", "ville", "burg",
];
const KINDS: [&str; 8] = [
    "Street", "Road", "Café", "School", "Church", "Park", "Station", "Hotel",
];

/// Place names of one or two made-up words and a kind, in clusters within `bounds`.
fn write_csv(path: &Path, rows: usize, bounds: [f64; 4], seed: u64) -> Result<(), String> {
    use std::io::Write;
    let [west, south, east, north] = bounds;
    let mut rng = StdRng::seed_from_u64(seed);
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let towns: Vec<(f64, f64)> = (0..50)
        .map(|_| {
            (
                south + rng.random::<f64>() * (north - south),
                west + rng.random::<f64>() * (east - west),
            )
        })
        .collect();
    let mut line = String::new();
    let mut write = || -> std::io::Result<()> {
        writeln!(out, "name,lat,lng")?;
        for _ in 0..rows {
            line.clear();
            for w in 0..1 + rng.next_u64() % 2 {
                if w > 0 {
                    line.push(' ');
                }
                let mut word = format!(
                    "{}{}",
                    SYLLABLES[(rng.next_u64() % 24) as usize],
                    SYLLABLES[(rng.next_u64() % 24) as usize]
                );
                if let Some(first) = word.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                line.push_str(&word);
            }
            line.push(' ');
            line.push_str(KINDS[(rng.next_u64() % 8) as usize]);
            let (lat, lng) = towns[(rng.next_u64() % 50) as usize];
            let spread = (north - south).min(east - west) * 0.1;
            writeln!(
                out,
                "{line},{:.6},{:.6}",
                (lat + (rng.random::<f64>() - 0.5) * spread).clamp(south, north),
                (lng + (rng.random::<f64>() - 0.5) * spread).clamp(west, east)
            )?;
        }
        out.flush()
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

// ---- import ----

fn import_alone(csv: &Path) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let index = SearchIndex::open(&dir.path().join("search.db")).map_err(|e| e.to_string())?;
    let id = TileId::parse("bench").ok_or("tile id")?;
    let mut file = std::fs::File::open(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let start = Instant::now();
    index
        .import_region(&id, &mut file, &mut |_| {})
        .map_err(|e| e.to_string())?;
    Ok(start.elapsed().as_secs_f64())
}

// ---- the rate-limited map-data server ----

/// One link shared by every connection: each chunk sent books its transmission time.
struct Link {
    dir: PathBuf,
    rate: f64,
    next_free: Mutex<Instant>,
}

impl Link {
    async fn send(&self, bytes: usize) {
        let due = {
            let mut next = self.next_free.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.rate);
            *next
        };
        tokio::time::sleep_until(due.into()).await;
    }
}

async fn serve_file(
    State(link): State<Arc<Link>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if name.contains('/') || name.starts_with('.') {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(mut file) = tokio::fs::File::open(link.dir.join(&name)).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(total) = file.metadata().await.map(|m| m.len()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| match ranges::from_header(v, total) {
            Wanted::Part(range) => Some(*range.start()),
            _ => None,
        });
    if let Some(s) = start {
        use tokio::io::AsyncSeekExt;
        if file.seek(std::io::SeekFrom::Start(s)).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let body = futures_util::stream::unfold((file, link), |(mut file, link)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                link.send(n).await;
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                    (file, link),
                ))
            }
            Err(e) => Some((Err(e), (file, link))),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let length = total - start.unwrap_or(0);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, length.into());
    if let Some(s) = start {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = format!("bytes {s}-{}/{total}", total - 1).parse() {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    response
}

async fn start_map_server(dir: &Path, rate: f64) -> Result<String, String> {
    let link = Arc::new(Link {
        dir: dir.to_path_buf(),
        rate,
        next_free: Mutex::new(Instant::now()),
    });
    let app = Router::new()
        .route("/{file}", get(serve_file))
        .with_state(link);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/"))
}

// ---- run ----

struct RunArgs {
    packages: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    rate: f64,
    import_secs: f64,
}

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(socket.local_addr().map_err(|e| e.to_string())?.port())
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn status(client: &reqwest::Client, server: &Server) -> Result<Value, String> {
    client
        .get(format!("{}/app/map-download-status", server.url))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<Value>()
        .await
        .map_err(|e| e.to_string())
}

async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: Value,
) -> Result<(), String> {
    let response = client
        .post(format!("{}{path}", server.url))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{path}: {}", response.status()));
    }
    Ok(())
}

/// What the status showed of one region's install, in seconds from the request.
#[derive(Default, Debug)]
struct Phases {
    downloaded: Option<f64>,
    installing: Option<f64>,
    done: f64,
}

/// Asks for `id` as the web client does and polls the status until it is installed.
async fn install(client: &reqwest::Client, server: &Server, id: &str) -> Result<Phases, String> {
    let start = Instant::now();
    post(client, server, "/app/download-map", json!({"tile-id": id})).await?;
    let mut phases = Phases::default();
    loop {
        let s = status(client, server).await?;
        let now = start.elapsed().as_secs_f64();
        if s["done"]
            .as_array()
            .is_some_and(|d| d.iter().any(|v| v == id))
        {
            phases.done = now;
            return Ok(phases);
        }
        let progress = &s["in-progress"][id];
        if progress["downloadError"] == true {
            return Err(format!("{id} failed: {}", progress["error"]));
        }
        if phases.downloaded.is_none()
            && progress["downloadTotal"].as_u64().is_some_and(|t| t > 0)
            && progress["downloadDone"] == progress["downloadTotal"]
        {
            phases.downloaded = Some(now);
        }
        if phases.installing.is_none() && progress["phase"] == "installing" {
            phases.installing = Some(now);
        }
        if start.elapsed() > Duration::from_secs(1800) {
            return Err(format!("{id} not installed after 30 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests one of `paths` after another until `stop`, recording each latency in ms.
async fn probe(client: reqwest::Client, paths: Vec<String>, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let ok = match client.get(&paths[i % paths.len()]).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        } else {
            eprintln!("probe failed: {}", paths[i % paths.len()]);
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies
}

async fn run(args: RunArgs) -> Result<(), String> {
    let map_url = start_map_server(&args.packages, args.rate).await?;
    let port = free_port()?;
    let mut command = Command::new(&args.bin);
    // SAFETY: prctl is async-signal-safe; the server dies with this process, panics included.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .args(["serve", "--local", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&args.data)
        .args(["--map-data-url", &map_url])
        .env_remove("SANDSTORM")
        .stderr(Stdio::from(
            std::fs::File::create(args.data.with_extension("log")).map_err(|e| e.to_string())?,
        ))
        .spawn()
        .map_err(|e| format!("{}: {e}", args.bin.display()))?;
    let pid = child.id();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // reqwest is built without a default TLS provider; the server's loopback needs none, but
    // building a client asks for one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&client, &server).await.is_err() {
        if Instant::now() > deadline {
            return Err("the server did not answer".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("server up; fetching the region list");
    post(&client, &server, "/app/download-manifest", json!({})).await?;
    while status(&client, &server).await?["available-areas"].is_null() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("installing florence");
    install(&client, &server, "florence").await?;
    eprintln!("installing bench");

    let bytes: u64 = {
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(args.packages.join("manifest.json")).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        manifest["bench"]["bytes"]
            .as_array()
            .ok_or("no bench in the manifest")?
            .iter()
            .filter_map(Value::as_u64)
            .sum()
    };

    let mut rng = StdRng::seed_from_u64(11);
    let mut search_paths = Vec::new();
    let mut tile_paths = Vec::new();
    for _ in 0..200 {
        let word = format!(
            "{}{}",
            SYLLABLES[(rng.next_u64() % 24) as usize],
            SYLLABLES[(rng.next_u64() % 24) as usize]
                .chars()
                .next()
                .unwrap_or('a')
        );
        let lat = FLORENCE[1] + rng.random::<f64>() * (FLORENCE[3] - FLORENCE[1]);
        let lng = FLORENCE[0] + rng.random::<f64>() * (FLORENCE[2] - FLORENCE[0]);
        search_paths.push(format!(
            "{}/app/search?q={}&lat={lat:.4}&lng={lng:.4}",
            server.url,
            percent_encode(&word)
        ));
        let z = 10 + (rng.next_u64() % 5) as u8;
        let (x, y) = grid::tile_containing(lat, lng, z);
        tile_paths.push(format!("{}/tiles/{z}/{x}/{y}.mvt", server.url));
    }

    let rss_before = proc_status(pid, "VmRSS:").unwrap_or(0);
    // The peak from here on is the install's (Linux resets VmHWM on "5" to clear_refs).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    let stop = Arc::new(AtomicBool::new(false));
    let searches = tokio::spawn(probe(client.clone(), search_paths, stop.clone()));
    let tiles = tokio::spawn(probe(client.clone(), tile_paths, stop.clone()));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = proc_status(pid, "VmRSS:") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let phases = install(&client, &server, "bench").await;
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let mut search_ms = searches.await.map_err(|e| e.to_string())?;
    let mut tile_ms = tiles.await.map_err(|e| e.to_string())?;
    // What an idle grain keeps of the install once the probes have stopped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = proc_status(pid, "VmRSS:").unwrap_or(0);
    let _ = sampler.await;
    let phases = phases?;
    search_ms.sort_by(f64::total_cmp);
    tile_ms.sort_by(f64::total_cmp);

    let link_secs = bytes as f64 / args.rate;
    let ideal = link_secs + args.import_secs;
    let mb = |b: f64| b / 1e6;
    println!(
        "region: {:.1} MB in parts; link {:.0} MB/s",
        mb(bytes as f64),
        mb(args.rate)
    );
    println!("  bytes / link rate:              {link_secs:.2} s");
    println!(
        "  search import alone:            {:.2} s",
        args.import_secs
    );
    println!(
        "  install (request to done):      {:.2} s (all parts in at {}, installing from {})",
        phases.done,
        phases
            .downloaded
            .map_or("-".into(), |s| format!("{s:.2} s")),
        phases
            .installing
            .map_or("-".into(), |s| format!("{s:.2} s")),
    );
    println!(
        "  total / (bytes/rate + import):  {:.2} (target ≤ 1.2)",
        phases.done / ideal
    );
    println!(
        "  server memory during install:   VmHWM {:.1} MB, VmRSS peak sampled {:.1} MB, {:.1} MB before (target ≤ 64 MB)",
        mb(hwm as f64),
        mb(peak_rss.load(Ordering::Relaxed) as f64),
        mb(rss_before as f64)
    );
    println!(
        "  server memory 2 s after:         VmRSS {:.1} MB",
        mb(rss_after as f64)
    );
    println!(
        "  search latency meanwhile:       median {:.1} ms, p90 {:.1} ms ({} requests; target median ≤ 20 ms)",
        percentile(&search_ms, 0.5),
        percentile(&search_ms, 0.9),
        search_ms.len()
    );
    println!(
        "  tile latency meanwhile:         median {:.1} ms, p90 {:.1} ms ({} requests; target median ≤ 20 ms)",
        percentile(&tile_ms, 0.5),
        percentile(&tile_ms, 0.9),
        tile_ms.len()
    );
    Ok(())
}

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
