//! Search benchmark: import rate of a generated 1,000,000-row CSV and query latency at that
//! size, through the library (run by `scripts/bench/search`).
//!
//! A second part stands where the page's keystroke figure (tests/browser/figures.mjs) stands:
//! the built base map (`build/assets/base-map/places.columns`, when present) and the page's
//! 1,000,000-row region (the rows of tests/browser/fixtures.mjs, made by the same sequence:
//! few distinct names, so a broad prefix matches most rows under a handful of titles), asked
//! from around Rome at the zooms the page sends, with 1–3-letter prefixes; and each of those
//! once more "cold", as the first search after the server has been quiet for a second and
//! released its caches (what `src/quiet.rs` calls).

use std::time::Instant;

use desert_atlas::basemap::places::{self, PlacesReader};
use desert_atlas::memory::trim_heap;
use desert_atlas::search::SearchIndex;
use desert_atlas::tile_id::TileId;
use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

const SYLLABLES: [&str; 24] = [
    "san", "ta", "ro", "ma", "via", "del", "mon", "te", "ber", "lin", "sto", "ne", "ka", "ri",
    "wa", "gen", "stra", "ße", "caf", "é", "nord", "os", "ville", "burg",
];
const KINDS: [&str; 8] = [
    "Street", "Road", "Café", "School", "Church", "Park", "Station", "Hotel",
];

fn generate(rows: usize) -> String {
    let mut rng = StdRng::seed_from_u64(42);
    let mut csv = String::with_capacity(rows * 40);
    csv.push_str("name,lat,lng\n");
    let cities: Vec<(f64, f64)> = (0..200)
        .map(|_| {
            (
                rng.random::<f64>() * 120.0 - 55.0,
                rng.random::<f64>() * 340.0 - 170.0,
            )
        })
        .collect();
    for _ in 0..rows {
        let words = 1 + rng.next_u64() % 2;
        for w in 0..words {
            if w > 0 {
                csv.push(' ');
            }
            let a = SYLLABLES[(rng.next_u64() % 24) as usize];
            let b = SYLLABLES[(rng.next_u64() % 24) as usize];
            let mut word = format!("{a}{b}");
            if let Some(first) = word.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            csv.push_str(&word);
        }
        csv.push(' ');
        csv.push_str(KINDS[(rng.next_u64() % 8) as usize]);
        let (clat, clng) = cities[(rng.next_u64() % 200) as usize];
        let lat = clat + rng.random::<f64>() * 2.0 - 1.0;
        let lng = clng + rng.random::<f64>() * 2.0 - 1.0;
        csv.push_str(&format!(",{lat:.6},{lng:.6}\n"));
    }
    csv
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Median, p90, p99 and max of `times` (ms).
fn summary(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(times, 0.5),
        percentile(times, 0.9),
        percentile(times, 0.99),
        times[times.len() - 1]
    )
}

/// The rows tests/browser/fixtures.mjs adds to its town for the page's figures: the same
/// linear congruential sequence, in the same floating-point arithmetic as JavaScript's.
fn page_region_rows(rows: usize) -> String {
    let syllables = [
        "san", "ta", "ro", "ma", "via", "del", "mon", "te", "ber", "lin", "sto", "ne", "ka", "ri",
        "wa", "gen",
    ];
    let mut csv = String::with_capacity(rows * 40);
    csv.push_str("name,lat,lng\nTestville,41.9,12.5\nTestville Café,41.9025,12.5025\n");
    for i in 0..9 {
        let (a, b) = (41.88 + i as f64 * 0.005, 12.48 + i as f64 * 0.005);
        csv.push_str(&format!(
            "Testville Street {n},{a},12.5\nTestville Avenue {n},41.9,{b}\n",
            n = i + 1
        ));
    }
    let mut seed = 42.0f64;
    let mut next = || {
        seed = (seed * 1103515245.0 + 12345.0) % 2147483648.0;
        seed
    };
    for _ in 0..rows {
        let mut word = String::new();
        for _ in 0..3 {
            word.push_str(syllables[(next() % 16.0) as usize]);
        }
        let kind = KINDS[(next() % 8.0) as usize];
        let lat = (next() % 120000.0) / 1000.0 - 55.0;
        let lng = (next() % 340000.0) / 1000.0 - 170.0;
        let mut name = word;
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        csv.push_str(&format!("{name} {kind},{lat:.5},{lng:.5}\n"));
    }
    csv
}

/// Searches `queries` (one pass, `rounds` times) from points within half a degree of Rome at
/// `zoom`; `cold`: each after releasing what a quiet second releases.
fn near_rome(
    index: &SearchIndex,
    rng: &mut StdRng,
    queries: &[&str],
    zoom: Option<f64>,
    cold: bool,
    rounds: usize,
) -> (Vec<f64>, HashMap<String, f64>) {
    let mut times = Vec::new();
    let mut slowest: HashMap<String, f64> = HashMap::new();
    for _ in 0..rounds {
        for q in queries {
            let (lat, lng) = (
                41.9 + rng.random::<f64>() - 0.5,
                12.5 + rng.random::<f64>() - 0.5,
            );
            if cold {
                index.release_read_memory();
                trim_heap();
            }
            let t = Instant::now();
            index.search_at(q, lat, lng, zoom).expect("search");
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            times.push(ms);
            let worst = slowest.entry(q.to_string()).or_insert(0.0);
            *worst = worst.max(ms);
        }
    }
    (times, slowest)
}

/// The page's keystroke queries (tests/browser/figures.mjs) and the other 1–3-letter
/// prefixes of its region's names.
const PAGE_QUERIES: [&str; 24] = [
    "s", "sa", "ro", "mon", "ber", "ta", "ka", "te", "via", "del", "ne", "ri", "wa", "gen", "sto",
    "lin", "ma", "rosa", "tes", "san", "st", "ho", "ca", "pa",
];

/// Words of the page's region that match many rows under very few titles (894,000 rows are
/// "Sansansan Street"): the walk cannot fill its 50 titles and used to read every match.
const REPEATED_QUERIES: [&str; 6] = [
    "sansansan",
    "bersansan",
    "sanbersan",
    "sansanber",
    "linsansan",
    "sansansan street",
];

fn page_part(rows: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::open(&dir.path().join("search.db")).expect("open index");
    let base_map = std::path::Path::new("build/assets/base-map").join(places::FILE_NAME);
    match PlacesReader::open(&base_map) {
        Ok(mut file) => {
            let report = index
                .import_region(
                    &TileId::parse("base-map").expect("tile id"),
                    &mut file,
                    &mut |_| {},
                )
                .expect("import the base map");
            println!("page's data: base map, {} rows", report.rows);
        }
        Err(_) => println!("page's data: no built base map (run scripts/build-base-map)"),
    }
    let csv = page_region_rows(rows);
    let report = index
        .import_region(
            &TileId::parse("big").expect("tile id"),
            &mut csv.as_bytes(),
            &mut |_| {},
        )
        .expect("import");
    println!("page's data: region of {} rows", report.rows);
    let mut rng = StdRng::seed_from_u64(5);
    for zoom in [5.0, 12.0] {
        let (mut times, slowest) =
            near_rome(&index, &mut rng, &REPEATED_QUERIES, Some(zoom), false, 10);
        let mut worst: Vec<(String, f64)> = slowest.into_iter().collect();
        worst.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!(
            "page's data, names repeated in many rows, near Rome at zoom {zoom}: {} ({} queries; slowest {:?} {:.1})",
            summary(&mut times),
            times.len(),
            worst[0].0,
            worst[0].1
        );
    }
    for zoom in [5.0, 10.0, 12.0] {
        for cold in [false, true] {
            let (mut times, slowest) = near_rome(
                &index,
                &mut rng,
                &PAGE_QUERIES,
                Some(zoom),
                cold,
                if cold { 5 } else { 17 },
            );
            let mut worst: Vec<(String, f64)> = slowest.into_iter().collect();
            worst.sort_by(|a, b| b.1.total_cmp(&a.1));
            let worst: Vec<String> = worst
                .iter()
                .take(3)
                .map(|(q, ms)| format!("{q:?} {ms:.1}"))
                .collect();
            println!(
                "page's data, 1-4 letters near Rome at zoom {zoom}{}: {} ({} queries; slowest {})",
                if cold { ", cold" } else { "" },
                summary(&mut times),
                times.len(),
                worst.join(", ")
            );
        }
    }
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // `search_bench ROWS page`: only the second part (the page's data).
    if std::env::args().nth(2).as_deref() == Some("page") {
        page_part(rows);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = generate(rows);
    let index = SearchIndex::open(&dir.path().join("search.db")).expect("open index");
    let region = TileId::parse("bench").expect("tile id");
    let start = Instant::now();
    let report = index
        .import_region(&region, &mut csv.as_bytes(), &mut |_| {})
        .expect("import");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "import: {} rows in {:.2} s = {:.0} rows/s",
        report.rows,
        secs,
        report.rows as f64 / secs
    );

    let mut rng = StdRng::seed_from_u64(9);
    let many = [
        "sa", "ro", "ma", "ta", "mon", "ber", "street", "caf", "station", "ka",
    ];
    latency(
        &index,
        &mut rng,
        &many,
        report.rows,
        None,
        "prefix queries matching many rows",
    );
    // The page sends the view's zoom (docs/api.md §6): zoomed out, importance weighs most.
    for zoom in [4.0, 12.0] {
        latency(
            &index,
            &mut rng,
            &many,
            report.rows,
            Some(zoom),
            &format!("the same at zoom {zoom}"),
        );
    }
    let other = [
        "santa",
        "monteber",
        "sa street",
        "\"roma station\"",
        "caf ka",
        "villeburg",
        "zzz",
        "berlin hotel",
    ];
    latency(
        &index,
        &mut rng,
        &other,
        report.rows,
        None,
        "longer prefixes, several words, phrases, no match",
    );

    // Replacing the region: its old rows go in the same transaction.
    let start = Instant::now();
    let again = index
        .import_region(&region, &mut csv.as_bytes(), &mut |_| {})
        .expect("import again");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "import replacing the same region: {} rows in {:.2} s = {:.0} rows/s",
        again.rows,
        secs,
        again.rows as f64 / secs
    );
    drop(index);
    drop(dir);

    page_part(rows);
}

fn latency(
    index: &SearchIndex,
    rng: &mut StdRng,
    queries: &[&str],
    rows: u64,
    zoom: Option<f64>,
    what: &str,
) {
    let mut times = Vec::new();
    let mut matched = 0usize;
    for i in 0..400 {
        let q = queries[i % queries.len()];
        let (lat, lng) = (
            rng.random::<f64>() * 120.0 - 55.0,
            rng.random::<f64>() * 340.0 - 170.0,
        );
        let t = Instant::now();
        let found = index.search_at(q, lat, lng, zoom).expect("search");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        matched += found.len();
    }
    println!(
        "search at {rows} rows, {what}: {} ({} results per query on average)",
        summary(&mut times),
        matched / 400
    );
}
