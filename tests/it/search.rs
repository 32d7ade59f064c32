//! Search: matching rules, nearest-first order, imports, old grains' indexes, hostile queries.

use desert_atlas::search::query::{Term, parse};
use desert_atlas::search::{MAX_RESULTS, SearchIndex, normalize::normalize, rank};
use desert_atlas::tile_id::TileId;
use serde_json::Value;

use crate::common::{TestServer, assert_error};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

fn id(s: &str) -> TileId {
    TileId::parse(s).unwrap()
}

fn index_with(csv: &str) -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
    index
        .import_region(&id("region"), &mut csv.as_bytes(), &mut |_| {})
        .unwrap();
    (dir, index)
}

/// An index in `dir` whose region `r` holds one place, "Old Place".
fn index_with_old_place(dir: &std::path::Path) -> SearchIndex {
    let index = SearchIndex::open(&dir.join("search.db")).unwrap();
    let old = "name,lat,lng\nOld Place,1,1\n";
    index
        .import_region(&id("r"), &mut old.as_bytes(), &mut |_| {})
        .unwrap();
    index
}

fn titles(index: &SearchIndex, q: &str) -> Vec<String> {
    index
        .search(q, 0.0, 0.0)
        .unwrap()
        .into_iter()
        .map(|p| p.title)
        .collect()
}

#[test]
fn the_header_row_is_not_a_place_and_bad_rows_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
    let csv =
        "name,lat,lng\nCafé Rouge,1,1\nBad,north,1\n,1,1\nFar,91,1\nToo,1,2,3,x,5\nStation,2,2\n";
    let report = index
        .import_region(&id("r1"), &mut csv.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!((report.rows, report.bad_rows), (2, 4));
    assert!(titles(&index, "name").is_empty());
    assert_eq!(titles(&index, "caf"), vec!["Café Rouge"]);
}

#[test]
fn prefixes_phrases_and_unpaired_quotes_follow_the_old_rules() {
    let (_d, index) = index_with(
        "name,lat,lng\nNew York Pizza,0,1\nYork New Bakery,0,2\nNewark,0,3\nSão Paulo,0,4\n北京,0,5\nSaint-Denis,0,6\n",
    );
    assert_eq!(titles(&index, "\"new york\""), vec!["New York Pizza"]);
    assert_eq!(
        titles(&index, "new york"),
        vec!["New York Pizza", "York New Bakery"]
    );
    assert_eq!(
        titles(&index, "\"new york"),
        vec!["New York Pizza", "York New Bakery"]
    );
    // Names that start with the words before names that hold them later.
    assert_eq!(
        titles(&index, "new"),
        vec!["New York Pizza", "Newark", "York New Bakery"]
    );
    assert_eq!(titles(&index, "sao paulo"), vec!["São Paulo"]);
    assert_eq!(titles(&index, "são"), vec!["São Paulo"]);
    assert_eq!(titles(&index, "北京"), vec!["北京"]);
    assert_eq!(titles(&index, "bei jing"), vec!["北京"]);
    assert_eq!(titles(&index, "saint_denis"), vec!["Saint-Denis"]);
    // One-letter words outside quotes are dropped; alone they leave nothing to search.
    assert_eq!(titles(&index, "n"), Vec::<String>::new());
    assert_eq!(titles(&index, "newa k"), vec!["Newark"]);
}

#[test]
fn fts_syntax_in_queries_is_never_an_operator_or_an_error() {
    let (_d, index) =
        index_with("name,lat,lng\nNear Road,0,1\nOr Street,0,2\nNot Lane,0,3\nAnd Co,0,4\n");
    let hostile = [
        "*",
        "near*",
        "NEAR(a b)",
        "NEAR",
        "OR",
        "AND",
        "NOT",
        "or street",
        "\"",
        "\"\"\"",
        ":",
        "^",
        "normalized_name:near",
        "keys:imp",
        "a OR b",
        "(",
        ")",
        "{x}",
        "[x]",
        "-near",
        "+",
        "near AND",
        "NOT near",
        "'",
        "\\",
        "\0",
        "%",
        "near\"road",
        "\u{202e}",
        "😀",
        &"x".repeat(900),
    ];
    for q in hostile {
        let result = index.search(q, 10.0, 10.0);
        assert!(result.is_ok(), "{q:?}: {:?}", result.err());
    }
    assert_eq!(titles(&index, "NEAR"), vec!["Near Road"]);
    assert_eq!(titles(&index, "or"), vec!["Or Street"]);
    assert_eq!(titles(&index, "NOT"), vec!["Not Lane"]);
    assert_eq!(titles(&index, "keys:imp"), Vec::<String>::new());
}

/// Every row matching `q` by the contract's rules, checked word by word.
fn brute_force_matches<'a>(rows: &'a [(String, f64, f64)], q: &str) -> Vec<&'a (String, f64, f64)> {
    let terms = parse(q);
    rows.iter()
        .filter(|(name, _, _)| {
            let words: Vec<String> = normalize(name)
                .split_whitespace()
                .map(String::from)
                .collect();
            !terms.is_empty()
                && terms.iter().all(|t| match t {
                    Term::Prefix(p) => words.iter().any(|w| w.starts_with(p.as_str())),
                    Term::Phrase(p) => format!(" {} ", words.join(" ")).contains(&format!(" {p} ")),
                    Term::AnyOf(any) => words.iter().any(|w| any.contains(w)),
                })
        })
        .collect()
}

#[test]
fn results_match_are_ordered_by_score_and_show_the_nearest_best_match() {
    let syllables = [
        "san", "ta", "ro", "ma", "via", "del", "mon", "te", "ber", "lin", "sto", "ne",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let mut rows = Vec::new();
    let mut csv = String::from("name,lat,lng\n");
    for _ in 0..20_000 {
        let words = 1 + rng.next_u64() % 3;
        let name: Vec<String> = (0..words)
            .map(|_| {
                let a = syllables[(rng.next_u64() % 12) as usize];
                let b = syllables[(rng.next_u64() % 12) as usize];
                format!("{a}{b}")
            })
            .collect();
        let name = name.join(" ");
        // Clustered around a few cities, plus some spread over the world.
        let (lat, lng) = if rng.next_u64().is_multiple_of(4) {
            (
                rng.random::<f64>() * 170.0 - 85.0,
                rng.random::<f64>() * 358.0 - 179.0,
            )
        } else {
            let c = (rng.next_u64() % 5) as f64;
            (
                40.0 + c + rng.random::<f64>() * 0.5,
                10.0 + c + rng.random::<f64>() * 0.5,
            )
        };
        csv.push_str(&format!("{name},{lat},{lng}\n"));
        rows.push((name, lat, lng));
    }
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
    index
        .import_region(&id("gen"), &mut csv.as_bytes(), &mut |_| {})
        .unwrap();
    let queries = [
        "sa",
        "ro",
        "mon",
        "santa",
        "\"santa ro\"",
        "ber lin",
        "vi de",
        "tene",
        "x",
        "berlin",
        "stone delvia",
        "\"stone\"",
        "mamonte",
    ];
    // Inside the clusters, at their edges, between them, on cell boundaries, at the corners
    // of the world, and a few anywhere.
    let mut points = vec![
        (40.2, 10.2),
        (43.1, 13.3),
        (44.5, 14.5),
        (45.0, 15.0),
        (-30.0, 100.0),
        (0.0, 0.0),
        (89.0, 179.0),
        (-90.0, -180.0),
        (90.0, 180.0),
        (42.1875, 11.25),
    ];
    for _ in 0..10 {
        points.push((
            rng.random::<f64>() * 180.0 - 90.0,
            rng.random::<f64>() * 360.0 - 180.0,
        ));
    }
    for q in queries {
        for &(lat, lng) in &points {
            let got = index.search(q, lat, lng).unwrap();
            let matches = brute_force_matches(&rows, q);
            assert_eq!(got.is_empty(), matches.is_empty(), "{q:?} at {lat},{lng}");
            assert!(got.len() <= MAX_RESULTS);
            let terms = parse(q);
            let mut last = f64::INFINITY;
            for place in &got {
                assert!(
                    matches
                        .iter()
                        .any(|(n, a, b)| *n == place.title && [*a, *b] == place.loc),
                    "{} does not match {q:?}",
                    place.title
                );
                let quality = rank::quality(&terms, false, &place.title, "").unwrap();
                let found = rank::Found {
                    title: place.title.clone(),
                    aliases: String::new(),
                    lat: place.loc[0],
                    lng: place.loc[1],
                    importance: None,
                    tile_id: place.tile_id.clone(),
                };
                let score = rank::score(&found, quality, false, lat, lng, rank::DEFAULT_ZOOM);
                assert!(score <= last + 1e-9, "{q:?} at {lat},{lng}: not best first");
                last = score;
            }
            // The nearest of the best-matching places is always shown.
            let best_quality = matches
                .iter()
                .filter_map(|(n, _, _)| rank::quality(&terms, false, n, ""))
                .min();
            let nearest_best = matches
                .iter()
                .filter(|(n, _, _)| rank::quality(&terms, false, n, "") == best_quality)
                .min_by(|a, b| {
                    let d = |r: &&&(String, f64, f64)| (r.1 - lat).powi(2) + (r.2 - lng).powi(2);
                    d(a).total_cmp(&d(b))
                });
            if let Some((name, _, _)) = nearest_best {
                assert!(
                    got.iter().any(|p| &p.title == name),
                    "{q:?} at {lat},{lng}: {name} missing"
                );
            }
        }
    }
}

#[test]
fn without_a_zoom_near_places_lead_and_a_famous_exact_match_is_in_the_top_three() {
    let mut csv = String::from("name,lat,lng,importance\n\"Paris, France\",48.85,2.35,2100000\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "Paris Street {i},{},-97.0,0\n",
            31.0 + i as f64 * 0.01
        ));
    }
    let (_d, index) = index_with(&csv);
    let places = index.search("paris", 31.0, -97.0).unwrap();
    assert_eq!(places.len(), MAX_RESULTS);
    assert_eq!(places[0].title, "Paris Street 0");
    assert_eq!(places[1].title, "Paris Street 1");
    assert_eq!(places[2].title, "Paris, France");
    // With the zoom of a street map, the street; of a continent, the capital.
    let street = index.search_at("paris", 31.0, -97.0, Some(15.0)).unwrap();
    assert!(street.iter().take(3).all(|p| p.title != "Paris, France"));
    let world = index.search_at("paris", 31.0, -97.0, Some(3.0)).unwrap();
    assert_eq!(world[0].title, "Paris, France");
}

#[test]
fn importing_a_region_again_replaces_its_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
    let a = "name,lat,lng\nAlpha Old,1,1\n";
    let b = "name,lat,lng\nBeta,1,1\n";
    index
        .import_region(&id("a"), &mut a.as_bytes(), &mut |_| {})
        .unwrap();
    index
        .import_region(&id("b"), &mut b.as_bytes(), &mut |_| {})
        .unwrap();
    let a2 = "name,lat,lng\nAlpha New,1,1\n";
    index
        .import_region(&id("a"), &mut a2.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(titles(&index, "alpha"), vec!["Alpha New"]);
    assert_eq!(titles(&index, "beta"), vec!["Beta"]);
    index.delete_region(&id("a")).unwrap();
    assert!(titles(&index, "alpha").is_empty());
    assert_eq!(index.count_region(&id("b")).unwrap(), 1);
}

#[test]
fn searches_keep_answering_with_the_old_rows_during_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let index = index_with_old_place(dir.path());

    // An import that pauses half-way (inside its transaction) until the reader has looked.
    let (to_reader, reader_rx) = std::sync::mpsc::channel::<()>();
    let (to_writer, writer_rx) = std::sync::mpsc::channel::<()>();
    let writer_index = index.clone();
    let writer = std::thread::spawn(move || {
        let mut csv = String::from("name,lat,lng\n");
        for i in 0..30_000 {
            csv.push_str(&format!("New Place {i},1,1\n"));
        }
        let mut paused = false;
        writer_index
            .import_region(&id("r"), &mut csv.as_bytes(), &mut |done| {
                if done >= 10_000 && !paused {
                    paused = true;
                    to_reader.send(()).unwrap();
                    writer_rx.recv().unwrap();
                }
            })
            .unwrap()
    });
    reader_rx.recv().unwrap();
    assert_eq!(titles(&index, "place"), vec!["Old Place"]);
    to_writer.send(()).unwrap();
    let report = writer.join().unwrap();
    assert_eq!(report.rows, 30_000);
    assert!(titles(&index, "old").is_empty());
    assert_eq!(titles(&index, "new place").len(), MAX_RESULTS);
}

/// An old grain's search.db, as the previous version wrote it.
pub fn write_legacy_search_db(path: &std::path::Path, rows: &[(&str, &str, &str, &str)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE locations USING fts5(name UNINDEXED, normalized_name, tile_id UNINDEXED, lat UNINDEXED, lng UNINDEXED);",
    )
    .unwrap();
    for (name, tile, lat, lng) in rows {
        conn.execute(
            "INSERT INTO locations VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![name, normalize(name), tile, lat, lng],
        )
        .unwrap();
    }
}

#[test]
fn an_old_grains_index_is_still_searchable_after_the_move() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.db");
    write_legacy_search_db(
        &path,
        &[
            ("Ponte Vecchio", "florence", "43.768", "11.253"),
            ("Uffizi", "florence", "43.7678", "11.2553"),
        ],
    );
    let index = SearchIndex::open(&path).unwrap();
    let found = index.search("ponte", 43.0, 11.0).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].loc, [43.768, 11.253]);
    assert_eq!(found[0].tile_id, "florence");
    assert_eq!(index.count_region(&id("florence")).unwrap(), 2);
    drop(index);
    // Opening again does not move or duplicate anything.
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.count_region(&id("florence")).unwrap(), 2);
}

#[tokio::test]
async fn search_over_http_answers_nearest_first_and_refuses_bad_points() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_search_db(
        &dir.path().join("search.db"),
        &[("Café Near", "r", "1", "1"), ("Café Far", "r", "10", "10")],
    );
    // Rows are searchable while their region is installed (a restart removes the others).
    let tiles = dir.path().join("r.src.pmtiles");
    crate::fixtures::write_one_tile_pmtiles(&tiles, "roads");
    crate::fixtures::install_region(dir.path(), "r", &tiles);
    let server = TestServer::start(dir.path());
    let found: Value = server.get_json("/app/search?q=caf&lat=0&lng=0").await;
    assert_eq!(
        found,
        serde_json::json!([
            {"title": "Café Near", "loc": [1.0, 1.0], "tile_id": "r"},
            {"title": "Café Far", "loc": [10.0, 10.0], "tile_id": "r"},
        ])
    );
    assert_eq!(
        server.get_json("/app/search?q=&lat=0&lng=0").await,
        serde_json::json!([])
    );
    assert_eq!(
        server.get_json("/app/search?q=%22*%3A(&lat=0&lng=0").await,
        serde_json::json!([])
    );
    for bad in [
        "/app/search?q=caf",
        "/app/search?q=caf&lat=0",
        "/app/search?q=caf&lat=north&lng=0",
        "/app/search?q=caf&lat=NaN&lng=0",
        "/app/search?q=caf&lat=0&lng=inf",
        "/app/search?q=caf&lat=95&lng=0",
        "/app/search?q=%FF%FE&lat=0&lng=0",
        "/app/search?q=caf&lat=0&lng=0&lat=1",
    ] {
        assert_error(server.get_as(bad, None, "").await, 400).await;
    }
}

#[test]
fn an_index_of_an_earlier_build_with_one_places_table_is_moved_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("search.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE places USING fts5(name UNINDEXED, normalized_name, keys,
                tile_id UNINDEXED, lat UNINDEXED, lng UNINDEXED, importance UNINDEXED,
                prefix='2 3', detail=column, tokenize='ascii');
             INSERT INTO places VALUES ('Beijing', 'beijing bei jing', 'rbase', 'base-map',
                39.9, 116.4, 21000000);
             INSERT INTO places VALUES ('Uffizi', 'uffizi', 'rflorence', 'florence',
                43.7678, 11.2553, 0);",
        )
        .unwrap();
    }
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(titles(&index, "bei jing"), vec!["Beijing"]);
    assert_eq!(titles(&index, "\"bei jing\""), vec!["Beijing"]);
    assert_eq!(titles(&index, "uff"), vec!["Uffizi"]);
    assert_eq!(index.count_region(&id("florence")).unwrap(), 1);
    assert_eq!(index.count_region(&id("base-map")).unwrap(), 1);
}

/// A reader that fails after `ok` bytes, like a download cut off in the middle.
struct FailingAfter<'a> {
    data: &'a [u8],
    ok: usize,
}

impl std::io::Read for FailingAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("connection lost"));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn an_import_that_fails_half_way_leaves_the_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let index = index_with_old_place(dir.path());
    let mut csv = String::from("name,lat,lng\n");
    for i in 0..400_000 {
        csv.push_str(&format!("New Place {i},{},1\n", i % 80));
    }
    // Past the first chunk of rows, so some were already written when it fails.
    let mut failing = FailingAfter {
        data: csv.as_bytes(),
        ok: csv.len() * 3 / 4,
    };
    assert!(
        index
            .import_region(&id("r"), &mut failing, &mut |_| {})
            .is_err()
    );
    assert_eq!(titles(&index, "place"), vec!["Old Place"]);
    assert_eq!(index.count_region(&id("r")).unwrap(), 1);
    // And the index takes the next import.
    let report = index
        .import_region(&id("r"), &mut csv.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(report.rows, 400_000);
    assert!(titles(&index, "old").is_empty());
}

#[tokio::test]
async fn query_length_counts_characters_and_bad_parameters_get_sentences() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_search_db(&dir.path().join("search.db"), &[("東京駅", "r", "1", "1")]);
    std::fs::create_dir_all(dir.path().join("search_imported")).unwrap();
    let tiles = dir.path().join("r.src.pmtiles");
    crate::fixtures::write_one_tile_pmtiles(&tiles, "roads");
    crate::fixtures::install_region(dir.path(), "r", &tiles);
    let server = TestServer::start(dir.path());
    // 400 CJK characters are 1,200 bytes, well within 1,000 characters.
    let cjk = "東".repeat(400);
    let resp = server
        .get(&format!("/app/search?q={}&lat=0&lng=0", urlencode(&cjk)))
        .await;
    assert_eq!(resp.status(), 200);
    let long = "é".repeat(1001);
    let msg = assert_error(
        server
            .get(&format!("/app/search?q={}&lat=0&lng=0", urlencode(&long)))
            .await,
        400,
    )
    .await;
    assert!(msg.contains("1000 characters"), "{msg}");
    for (path, says) in [
        ("/app/search?q=a&q=b&lat=0&lng=0", "\"q\" only once"),
        ("/app/search?q=a&lat=0&lng=0&zoom=far", "\"zoom\""),
        ("/app/search?q=a&lat=0&lng=0&zoom=23", "\"zoom\""),
        ("/app/search?q=a&lat=0&lng=0&lng=2", "\"lng\" only once"),
    ] {
        let msg = assert_error(server.get_as(path, None, "").await, 400).await;
        assert!(msg.contains(says), "{path}: {msg}");
        assert!(!msg.contains("duplicate field"), "{path}: {msg}");
    }
    let found = server
        .get_json(&format!(
            "/app/search?q={}&lat=1&lng=1&zoom=14",
            urlencode("東京")
        ))
        .await;
    assert_eq!(found[0]["title"], "東京駅");
}

#[tokio::test]
async fn only_the_base_map_and_installed_regions_are_found() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_search_db(
        &dir.path().join("search.db"),
        &[
            ("Kauppatori", "helsinki", "60.1675", "24.9525"),
            ("Kauppatori Halfway", "unfinished", "60.1676", "24.9526"),
            ("Kauppatori World", "base-map", "60.0", "25.0"),
        ],
    );
    // An installed region (tiles and marker); "unfinished" has rows only.
    let tiles = dir.path().join("helsinki.src.pmtiles");
    crate::fixtures::write_one_tile_pmtiles(&tiles, "roads");
    crate::fixtures::install_region(dir.path(), "helsinki", &tiles);
    let server = TestServer::start(dir.path());
    let titles = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_string())
            .collect()
    };
    let path = "/app/search?q=kauppatori&lat=60.17&lng=24.95";
    let mut found = titles(server.get_json(path).await);
    found.sort();
    assert_eq!(found, vec!["Kauppatori", "Kauppatori World"]);
    // The marker's removal is the step that hides a region.
    std::fs::remove_file(dir.path().join("search_imported/helsinki")).unwrap();
    assert_eq!(
        titles(server.get_json(path).await),
        vec!["Kauppatori World"]
    );
}

#[test]
fn symbols_are_dropped_whitespace_separates_and_joined_words_and_typos_are_forgiven() {
    let (_d, index) = index_with(
        "name,lat,lng\nKauppatori,60.1675,24.9525\nLondon,51.5,-0.12\nNew York,40.7,-74.0\nYork,53.96,-1.08\n",
    );
    assert_eq!(titles(&index, "kauppatori 🦄"), vec!["Kauppatori"]);
    assert_eq!(titles(&index, "kauppa\ttori"), vec!["Kauppatori"]);
    assert_eq!(titles(&index, "kauppa\u{3000}tori"), vec!["Kauppatori"]);
    assert_eq!(titles(&index, "lodnon"), vec!["London"]);
    assert_eq!(titles(&index, "new yrok"), vec!["New York"]);
    // A typo is forgiven only when nothing matches as typed.
    assert_eq!(titles(&index, "york")[0], "York");
    assert!(titles(&index, "xqzvw").is_empty());
}

fn urlencode(q: &str) -> String {
    percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The characters the search box's rules name, sent the way a browser sends them: whitespace
/// of every kind splits words, symbols (emoji, enclosed letters, currency, quotes of other
/// scripts) are dropped. The unit table in `src/search/normalize.rs` covers every code point.
#[tokio::test]
async fn over_http_symbols_are_dropped_and_every_whitespace_splits_words() {
    let dir = tempfile::tempdir().unwrap();
    write_legacy_search_db(
        &dir.path().join("search.db"),
        &[("Kauppatori", "helsinki", "60.1675", "24.9525")],
    );
    let tiles = dir.path().join("helsinki.src.pmtiles");
    crate::fixtures::write_one_tile_pmtiles(&tiles, "roads");
    crate::fixtures::install_region(dir.path(), "helsinki", &tiles);
    let server = TestServer::start(dir.path());
    for q in [
        "kauppatori",
        "kauppatori 🦄",
        "🇫🇮 kauppatori 👨‍👩‍👧",
        "kauppatori 🅰🅱",
        "Ⓚⓐ kauppatori",
        "«kauppatori»",
        "kauppatori €©™→",
        "kauppa\ttori",
        "kauppa\u{2003}tori",
        "kauppa\u{3000}tori",
        "kauppa\u{a0}tori",
        "kauppa\u{2028}tori",
    ] {
        let path = format!("/app/search?q={}&lat=60.17&lng=24.95", urlencode(q));
        let found: Value = server.get_json(&path).await;
        assert_eq!(found[0]["title"], "Kauppatori", "{q:?} found {found}");
    }
}

#[test]
fn an_alias_from_another_script_answers_only_a_query_in_another_script() {
    // Lomé in Japanese katakana is ロメ, which folds to "rome"; Rome in Cyrillic is Рим.
    // Aliases arrive in their own script (a region's CSV) or folded and marked (the base map).
    let (_d, index) = index_with(
        "name,lat,lng,importance,aliases\n\
         \"Lomé, Togo\",6.129,1.222,2200000,Lome|ロメ\n\
         \"Rome, Italy\",41.892,12.511,9300000,Roma|~rim\n\
         \"Rome, Georgia\",34.257,-85.165,36000,\n\
         Rimini,44.06,12.57,150000,\n",
    );
    let near_lome = |q: &str| -> Vec<String> {
        index
            .search_at(q, 6.13, 1.22, Some(6.0))
            .unwrap()
            .into_iter()
            .map(|p| p.title)
            .collect()
    };
    assert_eq!(near_lome("rome"), vec!["Rome, Italy", "Rome, Georgia"]);
    // Typed in katakana, the alias answers: Lomé is near and its alias is the query.
    assert_eq!(near_lome("ロメ")[0], "Lomé, Togo");
    // A Latin alias still answers a Latin query; a marked one a Cyrillic query only.
    assert_eq!(near_lome("lome"), vec!["Lomé, Togo"]);
    assert_eq!(near_lome("rim"), vec!["Rimini"]);
    assert_eq!(near_lome("Рим")[0], "Rome, Italy");
}
