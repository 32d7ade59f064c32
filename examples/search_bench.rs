//! Search benchmark: import rate of a generated 1,000,000-row CSV and query latency at that
//! size, through the library (run by `scripts/bench/search`).

use std::time::Instant;

use desert_atlas::search::SearchIndex;
use desert_atlas::tile_id::TileId;
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

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
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
    times.sort_by(f64::total_cmp);
    println!(
        "search at {rows} rows, {what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} results per query on average)",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times[times.len() - 1],
        matched / times.len()
    );
}
