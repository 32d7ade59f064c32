//! The search evaluation (tests/search-eval/): queries a person would type, from a world
//! view, a country's and a street's, each with the place meant, run against the built base
//! map and a small hand-made region. Prints the share of queries whose intended place comes
//! first and in the top 3 (`scripts/search-eval` runs it), and fails below the floor in
//! tests/search-eval/floor.txt, which may only rise.

use std::path::Path;

use desert_atlas::basemap::places::{self, PlacesReader};
use desert_atlas::search::SearchIndex;
use desert_atlas::tile_id::TileId;

struct Query {
    text: String,
    lat: f64,
    lng: f64,
    zoom: Option<f64>,
    intended: String,
}

fn queries(dir: &Path) -> Vec<Query> {
    std::fs::read_to_string(dir.join("queries.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "five tab-separated fields: {line:?}");
            Query {
                text: f[0].replace("\\t", "\t"),
                lat: f[1].parse().unwrap(),
                lng: f[2].parse().unwrap(),
                zoom: (f[3] != "-").then(|| f[3].parse().unwrap()),
                intended: f[4].to_string(),
            }
        })
        .collect()
}

fn floor(dir: &Path, name: &str) -> f64 {
    std::fs::read_to_string(dir.join("floor.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn search_evaluation_meets_its_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base_map = root.join("build/assets/base-map").join(places::FILE_NAME);
    assert!(
        base_map.exists(),
        "{} is missing: run scripts/build-assets (scripts/test does) before these tests",
        base_map.display()
    );
    let eval = root.join("tests/search-eval");
    let dir = tempfile::tempdir().unwrap();
    // Without a time limit: the figures must not depend on how busy the machine is.
    let index = SearchIndex::open(&dir.path().join("search.db"))
        .unwrap()
        .with_budget(std::time::Duration::from_secs(3600));
    let rows: [(&str, Box<dyn std::io::Read>); 2] = [
        ("base-map", Box::new(PlacesReader::open(&base_map).unwrap())),
        (
            "helsinki",
            Box::new(std::fs::File::open(eval.join("region.csv")).unwrap()),
        ),
    ];
    for (id, mut rows) in rows {
        index
            .import_region(&TileId::parse(id).unwrap(), &mut rows, &mut |_| {})
            .unwrap();
    }
    let queries = queries(&eval);
    assert!(queries.len() >= 100, "at least 100 queries");
    let (mut first, mut top3) = (0, 0);
    for q in &queries {
        let found = index.search_at(&q.text, q.lat, q.lng, q.zoom).unwrap();
        let at = found.iter().position(|p| p.title == q.intended);
        match at {
            Some(0) => first += 1,
            _ => {
                let shown: Vec<&str> = found.iter().take(3).map(|p| p.title.as_str()).collect();
                println!(
                    "miss: {:?} at {},{} zoom {:?}: {:?} is {}; first: {shown:?}",
                    q.text,
                    q.lat,
                    q.lng,
                    q.zoom,
                    q.intended,
                    at.map_or("not listed".to_string(), |i| format!("#{}", i + 1))
                );
            }
        }
        if at.is_some_and(|i| i < 3) {
            top3 += 1;
        }
    }
    let share = |n: usize| n as f64 * 100.0 / queries.len() as f64;
    println!(
        "search evaluation: {} queries, intended place first {:.1} %, in the top 3 {:.1} %",
        queries.len(),
        share(first),
        share(top3)
    );
    assert!(
        share(first) >= floor(&eval, "first"),
        "first below the floor"
    );
    assert!(share(top3) >= floor(&eval, "top3"), "top 3 below the floor");
}
