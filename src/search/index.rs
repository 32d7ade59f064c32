//! The place index: an SQLite FTS5 table in `search.db`, searched nearest-first.
//!
//! Existing grains have the table `locations(name, normalized_name, tile_id, lat, lng)`. This
//! version keeps its rows in `places`, which adds a `keys` column of tokens that FTS5 can
//! intersect with the words of a query:
//!
//! - `c<level>x<i>y<j>`: the grid cell holding the place, at a few cell sizes;
//! - `r<hex of tile id>`: the region the place came from (deleting a region finds its rows);
//! - `imp`: the place is important (a country, a state, a big city).
//!
//! Nearest-first without reading every match: for a cell size `s`, the 3×3 block of cells
//! around the query point holds every place within `s` of it. Searching that block, if at
//! least [`MAX_RESULTS`] distinct titles lie within `s`, those are exactly the nearest ones;
//! otherwise the next, larger cell size is tried, and at last every match. Distance is the
//! squared difference in degrees, as the old version measured it.
//!
//! A search for "Paris" near Texas should still offer Paris, France: besides the nearest
//! matches, the [`IMPORTANT_SLOTS`] most important matching places always make the list,
//! which is then ordered by distance like the rest (see docs/search.md).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, params};
use serde::Serialize;

use super::normalize::normalize;
use super::query::{Term, fts_expression, matches_phrases, parse};
use crate::db::number;
use crate::error::{AppError, Result};
use crate::tile_id::TileId;

pub const MAX_RESULTS: usize = 50;
/// How many of the most important matches are always offered, wherever the user is.
pub const IMPORTANT_SLOTS: usize = 5;
/// Places at least this important (a population, say) get the `imp` key.
pub const IMPORTANT_FROM: f64 = 100_000.0;
/// Cell sizes in degrees, finest first.
const CELL_SIZES: [f64; 7] = [0.05, 0.15, 0.5, 1.5, 4.0, 10.0, 25.0];
/// How often the import reports progress, in rows.
const PROGRESS_EVERY: u64 = 10_000;

/// One search result as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub title: String,
    pub loc: [f64; 2],
    pub tile_id: String,
}

/// What an import did: rows added and rows skipped as malformed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub bad_rows: u64,
}

/// The search index. Cheap to clone; blocking calls (run them with spawn_blocking).
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Idle read connections; WAL lets them read while the writer imports.
    readers: Mutex<Vec<Connection>>,
}

const SCHEMA: &str = "CREATE VIRTUAL TABLE IF NOT EXISTS places USING fts5(
    name UNINDEXED, normalized_name, keys, tile_id UNINDEXED, lat UNINDEXED, lng UNINDEXED,
    importance UNINDEXED, prefix='2 3', detail=column, tokenize='ascii');";

const INSERT: &str =
    "INSERT INTO places (name, normalized_name, keys, tile_id, lat, lng, importance)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl SearchIndex {
    /// Opens (or creates) the index, moving an old grain's `locations` rows into `places`
    /// in one transaction the first time.
    pub fn open(path: &Path) -> Result<SearchIndex> {
        let mut writer = crate::db::open(path)?;
        writer.execute_batch(SCHEMA)?;
        migrate_legacy_table(&mut writer)?;
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    fn with_reader<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => crate::db::open(&self.inner.path)?,
        };
        let out = work(&conn);
        lock(&self.inner.readers).push(conn);
        out
    }

    /// Up to [`MAX_RESULTS`] places matching `query`, nearest to (lat, lng) first, one per title.
    pub fn search(&self, query: &str, lat: f64, lng: f64) -> Result<Vec<Place>> {
        let terms = parse(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        self.with_reader(|conn| search_with(conn, &terms, lat, lng))
    }

    /// Replaces every row of `tile_id` with the places of `csv` (header `name,lat,lng`, then
    /// optionally `importance` and `aliases`, which the base map uses), in one transaction; `progress` is called with the
    /// rows done so far, now and then. Malformed rows are counted and skipped.
    pub fn import_region(
        &self,
        tile_id: &TileId,
        csv: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport> {
        let mut writer = lock(&self.inner.writer);
        let tx = writer.transaction()?;
        // Merging segments while rows stream in costs more than merging once at the end.
        tx.execute_batch(
            "INSERT INTO places (places, rank) VALUES ('automerge', 0);
             INSERT INTO places (places, rank) VALUES ('crisismerge', 64);",
        )?;
        delete_rows(&tx, tile_id)?;
        let mut report = ImportReport::default();
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(csv);
            let mut record = csv::ByteRecord::new();
            let region_key = region_key(tile_id);
            let mut keys = String::with_capacity(128);
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) if e.is_io_error() => {
                        return Err(AppError::internal("reading the search rows", e));
                    }
                    Err(_) => {
                        report.bad_rows += 1;
                        continue;
                    }
                }
                let Some(row) = parse_row(&record) else {
                    report.bad_rows += 1;
                    continue;
                };
                keys.clear();
                place_keys(&mut keys, row.lat, row.lng, row.importance);
                keys.push_str(&region_key);
                let mut matched = normalize(row.name);
                if !row.aliases.is_empty() {
                    matched.push(' ');
                    matched.push_str(&normalize(row.aliases));
                }
                insert.execute(params![
                    row.name,
                    matched,
                    keys,
                    tile_id.as_str(),
                    row.lat,
                    row.lng,
                    row.importance
                ])?;
                report.rows += 1;
                if report.rows % PROGRESS_EVERY == 0 {
                    progress(report.rows);
                }
            }
        }
        tx.execute_batch(
            "INSERT INTO places (places) VALUES ('optimize');
             INSERT INTO places (places, rank) VALUES ('automerge', 4);
             INSERT INTO places (places, rank) VALUES ('crisismerge', 16);",
        )?;
        tx.commit()?;
        progress(report.rows);
        Ok(report)
    }

    /// Removes every row of `tile_id`, in one transaction.
    pub fn delete_region(&self, tile_id: &TileId) -> Result<()> {
        let mut writer = lock(&self.inner.writer);
        let tx = writer.transaction()?;
        delete_rows(&tx, tile_id)?;
        tx.commit()?;
        Ok(())
    }

    /// How many rows a region has (for status and tests).
    pub fn count_region(&self, tile_id: &TileId) -> Result<u64> {
        self.with_reader(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM places WHERE places MATCH ?1",
                [format!("keys:\"{}\"", region_key(tile_id).trim())],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a connection list or an SQLite handle inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Row<'a> {
    name: &'a str,
    lat: f64,
    lng: f64,
    importance: f64,
    /// Other names the place is found by but not shown as (the base map's "北京" for Beijing).
    aliases: &'a str,
}

fn parse_row(record: &csv::ByteRecord) -> Option<Row<'_>> {
    if !(3..=5).contains(&record.len()) {
        return None;
    }
    let field = |i: usize| std::str::from_utf8(record.get(i)?).ok();
    let name = field(0)?.trim();
    let lat: f64 = field(1)?.trim().parse().ok()?;
    let lng: f64 = field(2)?.trim().parse().ok()?;
    let importance: f64 = match field(3) {
        Some(s) if !s.trim().is_empty() => s.trim().parse().ok()?,
        _ => 0.0,
    };
    let valid = !name.is_empty()
        && lat.is_finite()
        && lng.is_finite()
        && lat.abs() <= 90.0
        && lng.abs() <= 180.0
        && importance.is_finite()
        && importance >= 0.0;
    valid.then_some(Row {
        name,
        lat,
        lng,
        importance,
        aliases: field(4).unwrap_or_default(),
    })
}

fn region_key(tile_id: &TileId) -> String {
    format!("r{}", hex::encode(tile_id.as_str()))
}

fn cell(lat: f64, lng: f64, size: f64) -> (i64, i64) {
    (
        ((lng + 180.0) / size).floor() as i64,
        ((lat + 90.0) / size).floor() as i64,
    )
}

fn cell_key(level: usize, x: i64, y: i64) -> String {
    format!("c{level}x{x}y{y}")
}

/// The keys of a place: its cell at every size, and `imp` when it is important.
fn place_keys(out: &mut String, lat: f64, lng: f64, importance: f64) {
    use std::fmt::Write;
    for (level, size) in CELL_SIZES.iter().enumerate() {
        let (x, y) = cell(lat, lng, *size);
        let _ = write!(out, "c{level}x{x}y{y} ");
    }
    if importance >= IMPORTANT_FROM {
        out.push_str("imp ");
    }
}

fn delete_rows(conn: &Connection, tile_id: &TileId) -> Result<()> {
    conn.execute(
        "DELETE FROM places WHERE rowid IN (SELECT rowid FROM places WHERE places MATCH ?1)",
        [format!("keys:\"{}\"", region_key(tile_id))],
    )?;
    Ok(())
}

/// A match, with its squared distance from the query point.
struct Candidate {
    place: Place,
    distance: f64,
    importance: f64,
}

fn matches(
    conn: &Connection,
    terms: &[Term],
    expression: &str,
    lat: f64,
    lng: f64,
) -> Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, tile_id, lat, lng, importance, normalized_name FROM places WHERE places MATCH ?1",
    )?;
    let phrases = terms.iter().any(|t| matches!(t, Term::Phrase(_)));
    let mut rows = stmt.query([expression])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if phrases && !matches_phrases(terms, row.get_ref(5)?.as_str().unwrap_or_default()) {
            continue;
        }
        let (Some(plat), Some(plng)) = (number(row.get_ref(2)?), number(row.get_ref(3)?)) else {
            continue;
        };
        let distance = (plat - lat).powi(2) + (plng - lng).powi(2);
        out.push(Candidate {
            place: Place {
                title: row.get(0)?,
                loc: [plat, plng],
                tile_id: row.get(1)?,
            },
            distance,
            importance: number(row.get_ref(4)?).unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// One candidate per title, the nearest; sorted nearest first.
fn nearest_per_title(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut best: HashMap<String, Candidate> = HashMap::with_capacity(candidates.len());
    for c in candidates {
        match best.get(&c.place.title) {
            Some(b) if b.distance <= c.distance => {}
            _ => {
                best.insert(c.place.title.clone(), c);
            }
        }
    }
    let mut list: Vec<Candidate> = best.into_values().collect();
    list.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then_with(|| a.place.title.cmp(&b.place.title))
    });
    list
}

fn search_with(conn: &Connection, terms: &[Term], lat: f64, lng: f64) -> Result<Vec<Place>> {
    let words = fts_expression(terms, "normalized_name");
    let mut nearest = None;
    for (level, size) in CELL_SIZES.iter().enumerate() {
        let (cx, cy) = cell(lat, lng, *size);
        let block: Vec<String> = (-1..=1)
            .flat_map(|dx| (-1..=1).map(move |dy| (cx + dx, cy + dy)))
            // Cells past the poles or the antimeridian hold no places.
            .filter(|(x, y)| *x >= 0 && *y >= 0)
            .map(|(x, y)| cell_key(level, x, y))
            .collect();
        let expression = format!("({words}) AND keys:({})", block.join(" OR "));
        let found = nearest_per_title(matches(conn, terms, &expression, lat, lng)?);
        let radius = size * size;
        if found.iter().filter(|c| c.distance <= radius).count() >= MAX_RESULTS {
            nearest = Some(found);
            break;
        }
    }
    let mut nearest = match nearest {
        Some(found) => found,
        None => nearest_per_title(matches(conn, terms, &words, lat, lng)?),
    };
    nearest.truncate(MAX_RESULTS);

    let mut important = nearest_per_title(matches(
        conn,
        terms,
        &format!("({words}) AND keys:imp"),
        lat,
        lng,
    )?);
    important.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    important.truncate(IMPORTANT_SLOTS);
    // The important places take the slots of the farthest of the nearest ones.
    nearest.retain(|n| !important.iter().any(|i| i.place.title == n.place.title));
    nearest.truncate(MAX_RESULTS - important.len());
    nearest.extend(important);
    nearest.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(nearest.into_iter().map(|c| c.place).collect())
}

/// Moves the rows of an old grain's `locations` table into `places`, in one transaction.
fn migrate_legacy_table(conn: &mut Connection) -> Result<()> {
    let legacy: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'locations'",
        [],
        |r| r.get(0),
    )?;
    if !legacy {
        return Ok(());
    }
    tracing::info!("moving the search index of the previous version into the new format");
    let tx = conn.transaction()?;
    let mut moved = 0u64;
    {
        let mut read = tx.prepare("SELECT name, tile_id, lat, lng FROM locations")?;
        let mut insert = tx.prepare(INSERT)?;
        let mut rows = read.query([])?;
        let mut keys = String::new();
        while let Some(row) = rows.next()? {
            let name: Option<String> = row.get(0)?;
            let tile: Option<String> = row.get(1)?;
            let (Some(name), Some(tile)) = (name, tile.as_deref().and_then(TileId::parse)) else {
                continue;
            };
            let (Some(lat), Some(lng)) = (number(row.get_ref(2)?), number(row.get_ref(3)?)) else {
                continue;
            };
            keys.clear();
            place_keys(&mut keys, lat, lng, 0.0);
            keys.push_str(&region_key(&tile));
            insert.execute(params![
                name,
                normalize(&name),
                keys,
                tile.as_str(),
                lat,
                lng,
                0.0
            ])?;
            moved += 1;
        }
    }
    tx.execute_batch("DROP TABLE locations")?;
    tx.commit()?;
    tracing::info!("moved {moved} places into the new search index");
    Ok(())
}
