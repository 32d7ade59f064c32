//! Finding the candidates a search ranks, without reading every match: the places nearest to
//! the point (a best-first walk over the grid of place ids, see docs/search.md) and the
//! important places anywhere. `rank` then orders them.
//!
//! For a distance `r`, the grid cells of size at least `r` around the query point hold every
//! place within `r`. The walk asks FTS5 for the matches in those cells' id ranges, nearest
//! cells first, and stops as soon as at least [`MAX_RESULTS`] distinct titles lie within `r`:
//! those are exactly the nearest ones.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};

use super::MAX_RESULTS;
use super::index::{GRID_BITS, IMPORTANT_MARK, ROWID_SHIFT, interleave, lock};
use super::normalize::normalize;
use super::query::{Term, fts_filter, matches_terms};
use super::rank::Found;
use crate::db::number;
use crate::error::{AppError, Result};

/// Important matches read at most, most important first: enough for every country, state
/// and big city a word can start.
const IMPORTANT_CANDIDATES: usize = 500;

/// When a search must give up and answer with what it found (issue: one query must not hold
/// a reader for seconds while others wait). SQLite's progress handler stops a statement past
/// it; the walk checks it between statements.
#[derive(Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
}

impl Budget {
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// A match, with its squared distance from the query point.
struct Candidate {
    found: Found,
    distance: f64,
}

/// An import as a search sees it.
struct ImportInfo {
    id: i64,
    tile_id: String,
    important: bool,
}

/// A chunk as a search sees it.
struct ChunkInfo {
    id: i64,
    import: usize,
    directory: Arc<Directory>,
}

/// The imports `visible` accepts (by tile id), and their chunks.
fn load_chunks(
    conn: &Connection,
    cache: &Mutex<HashMap<i64, Arc<Directory>>>,
    visible: &dyn Fn(&str) -> bool,
) -> Result<(Vec<ImportInfo>, Vec<ChunkInfo>)> {
    let mut imports = Vec::new();
    let mut position = HashMap::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id, tile_id, important FROM import")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let tile_id: String = row.get(1)?;
            if !visible(&tile_id) {
                continue;
            }
            position.insert(id, imports.len());
            imports.push(ImportInfo {
                id,
                tile_id,
                important: row.get::<_, i64>(2)? > 0,
            });
        }
    }
    let mut listed = Vec::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id, import_id FROM chunk")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            listed.push((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?));
        }
    }
    let mut chunks = Vec::with_capacity(listed.len());
    let all_chunks = listed.len();
    let listed_ids: HashSet<i64> = listed.iter().map(|(id, _)| *id).collect();
    for (id, import_id) in listed {
        let Some(&import) = position.get(&import_id) else {
            continue;
        };
        let cached = lock(cache).get(&id).cloned();
        let directory = match cached {
            Some(directory) => directory,
            None => {
                let Some(directory) = read_directory(conn, id)? else {
                    continue;
                };
                let directory = Arc::new(directory);
                lock(cache).insert(id, directory.clone());
                directory
            }
        };
        chunks.push(ChunkInfo {
            id,
            import,
            directory,
        });
    }
    let mut cache = lock(cache);
    if cache.len() > all_chunks {
        cache.retain(|id, _| listed_ids.contains(id));
    }
    Ok((imports, chunks))
}

/// Every how many places a sampled chunk directory keeps the grid key. A cell's id range is
/// then known to within this many places at each end, and the walk reads those few more
/// (their matches are real matches, at their real distances, so what it finds stays exact).
/// Sampled directories weigh a quarter of a byte a place: they stay while the grain is idle.
pub(super) const DIRECTORY_STRIDE: usize = 16;

/// A chunk's directory as searches keep it: the grid keys of its places (sorted), all of
/// them, or every [`DIRECTORY_STRIDE`]th once the grain has been quiet (docs/search.md:
/// reading them all again cost the first search after a quiet second 3–5 ms at 1,200,000
/// places; the sampled ones cost a search about 1.5 ms more than the full ones).
pub(super) struct Directory {
    keys: Box<[u32]>,
    /// 1 (every key) or [`DIRECTORY_STRIDE`].
    stride: usize,
    rows: usize,
}

impl Directory {
    /// The full directory of a chunk whose places have the sorted grid keys `keys`.
    pub(super) fn from_keys(keys: impl Iterator<Item = u32>) -> Directory {
        let keys: Box<[u32]> = keys.collect();
        Directory {
            rows: keys.len(),
            keys,
            stride: 1,
        }
    }

    /// The full directory from the `cells` column of `chunk`.
    pub(super) fn from_blob(blob: &[u8]) -> Directory {
        Directory::from_keys(
            blob.chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        )
    }

    /// Every [`DIRECTORY_STRIDE`]th key of this one.
    pub(super) fn sampled(&self) -> Directory {
        Directory {
            keys: self
                .keys
                .iter()
                .copied()
                .step_by(DIRECTORY_STRIDE / self.stride)
                .collect(),
            stride: DIRECTORY_STRIDE,
            rows: self.rows,
        }
    }

    pub(super) fn is_sampled(&self) -> bool {
        self.stride > 1
    }

    /// Positions in the chunk that hold every place in the cell `cell` at `level` bits per
    /// axis: exactly those of a full directory; with a sampled one, up to
    /// [`DIRECTORY_STRIDE`] others at each end.
    pub(super) fn range(&self, level: u32, cell: u32) -> (usize, usize) {
        let shift = 2 * (GRID_BITS - level);
        let lo = (cell as u64) << shift;
        let hi = (cell as u64 + 1) << shift;
        // Keys below `lo`: with every key, the cell's first place follows them; sampled,
        // the places up to the last of them are all below the cell.
        let below = self.keys.partition_point(|&k| (k as u64) < lo);
        // Keys below `hi`: sampled, the next key and every place after it are past the cell.
        let before_end = below + self.keys[below..].partition_point(|&k| (k as u64) < hi);
        if self.stride == 1 {
            return (below, before_end);
        }
        let start = below.saturating_sub(1) * self.stride;
        let end = (before_end * self.stride).min(self.rows);
        (start, end.max(start))
    }
}

/// The full directory of chunk `id`, or `None` when the chunk is gone.
pub(super) fn read_directory(conn: &Connection, id: i64) -> Result<Option<Directory>> {
    let blob: Option<Vec<u8>> = conn
        .query_row("SELECT cells FROM chunk WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    Ok(blob.map(|b| Directory::from_blob(&b)))
}

/// Reads the matches of `expression` in `words_<import>` with ids in `first..=last`; returns
/// how many rows FTS5 found (before the check of each candidate).
#[allow(clippy::too_many_arguments)]
fn read_matches(
    conn: &Connection,
    import: &ImportInfo,
    terms: &[Term],
    (expression, check): (&str, bool),
    first: i64,
    last: i64,
    lat: f64,
    lng: f64,
    out: &mut Vec<Candidate>,
) -> Result<usize> {
    let id = import.id;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT place.name, place.lat, place.lng, place.importance, place.aliases
         FROM words_{id} JOIN place ON place.id = words_{id}.rowid
         WHERE words_{id} MATCH ?1 AND words_{id}.rowid BETWEEN ?2 AND ?3"
    ))?;
    let mut rows = stmt.query(params![expression, first, last])?;
    let mut found = 0;
    while let Some(row) = rows.next()? {
        found += 1;
        let name: String = row.get(0)?;
        let aliases: String = row.get::<_, Option<String>>(4)?.unwrap_or_default();
        if check {
            let mut matched = normalize(&name);
            matched.push(' ');
            matched.push_str(&aliases);
            if !matches_terms(terms, &matched) {
                continue;
            }
        }
        let (Some(plat), Some(plng)) = (number(row.get_ref(1)?), number(row.get_ref(2)?)) else {
            continue;
        };
        out.push(Candidate {
            found: Found {
                title: name,
                aliases,
                lat: plat,
                lng: plng,
                importance: number(row.get_ref(3)?),
                tile_id: import.tile_id.clone(),
            },
            distance: (plat - lat).powi(2) + (plng - lng).powi(2),
        });
    }
    Ok(found)
}

/// Most words a long prefix is replaced by in a query; more, and it is cut instead.
const MAX_PREFIX_WORDS: usize = 64;

/// The words of `words_<import>` that start with `prefix`, or `None` when there are more than
/// [`MAX_PREFIX_WORDS`].
fn words_starting(conn: &Connection, import: i64, prefix: &str) -> Result<Option<Vec<String>>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT term FROM words_{import}_terms WHERE term >= ?1 AND term < ?2 LIMIT ?3"
    ))?;
    // Indexed words are ASCII letters, digits and `_`, all below U+007F.
    let words = stmt
        .query_map(
            params![
                prefix,
                format!("{prefix}\u{7f}"),
                MAX_PREFIX_WORDS as i64 + 1
            ],
            |r| r.get::<_, String>(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((words.len() <= MAX_PREFIX_WORDS).then_some(words))
}

/// Whether `expression` matches fewer than [`FEW_MATCHES`] places in all imports together.
fn few_matches(
    conn: &Connection,
    imports: &[ImportInfo],
    filters: &[Option<(String, bool)>],
) -> Result<bool> {
    let mut total = 0;
    for (import, filter) in imports.iter().zip(filters) {
        let Some((expression, _)) = filter else {
            continue;
        };
        let id = import.id;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT rowid FROM words_{id} WHERE words_{id} MATCH ?1 LIMIT ?2)"
        ))?;
        total += stmt.query_row(params![expression, FEW_MATCHES as i64], |r| {
            r.get::<_, i64>(0)
        })? as usize;
        if total >= FEW_MATCHES {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One candidate per title, the nearest; sorted nearest first.
fn nearest_per_title(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut best: HashMap<String, Candidate> = HashMap::with_capacity(candidates.len());
    for c in candidates {
        match best.get(&c.found.title) {
            Some(b) if b.distance <= c.distance => {}
            _ => {
                best.insert(c.found.title.clone(), c);
            }
        }
    }
    let mut list: Vec<Candidate> = best.into_values().collect();
    list.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then_with(|| a.found.title.cmp(&b.found.title))
    });
    list
}

/// A grid cell waiting to be read, with the id ranges of its places in every chunk.
struct Cell {
    /// Squared distance from the query point to the nearest point of the cell.
    min_distance: f64,
    level: u32,
    x: u32,
    y: u32,
    ranges: Vec<(usize, usize, usize)>,
    rows: usize,
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        self.min_distance == other.min_distance
    }
}
impl Eq for Cell {}
impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cell {
    /// Nearest first in a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.min_distance.total_cmp(&self.min_distance)
    }
}

/// Cells holding at most this many places are read; bigger ones are split in four. When the
/// cells read so far had few matches per place, bigger cells are read, so that each read
/// finds about [`MATCHES_PER_READ`] matches instead of costing a query for nothing.
const READ_CELL_ROWS: usize = 1024;
const MATCHES_PER_READ: usize = 64;
/// And when the matches repeat a few titles, bigger still: each read is to bring about this
/// many new titles at the rate they came so far (900,000 matches of one name, spread over the
/// world, took 300 reads of 64 matches, 20 chunks each: 170 ms).
const NEW_TITLES_PER_READ: usize = 8;
/// Fewer matches than this in all are simply all read, without walking the grid.
const FEW_MATCHES: usize = 2000;
/// Matches (after the check of a cut prefix) the walk reads at most before it answers with
/// the nearest titles among them, even with fewer than [`MAX_RESULTS`] titles: when the
/// matches repeat a few names (a region's 900,000 "Sansansan Street"), proving that no
/// other title lies farther away meant reading every one of them, 200–280 ms, the whole
/// budget (docs/search.md).
const MAX_WALK_MATCHES: usize = if cfg!(test) { 3_000 } else { 10_000 };

fn make_cell(chunks: &[ChunkInfo], level: u32, x: u32, y: u32, lat: f64, lng: f64) -> Cell {
    let key = interleave(x, y);
    let mut ranges = Vec::new();
    let mut rows = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let (a, b) = chunk.directory.range(level, key);
        if a < b {
            ranges.push((i, a, b));
            rows += b - a;
        }
    }
    // The cell's extent in degrees, widened a hair so rounding cannot put a place outside.
    let size = 360.0 / (1u64 << level) as f64;
    let west = x as f64 * size - 180.0 - 1e-9;
    let south = y as f64 * size - 90.0 - 1e-9;
    let (east, north) = (west + size + 2e-9, south + size + 2e-9);
    let dx = (west - lng).max(lng - east).max(0.0);
    let dy = (south - lat).max(lat - north).max(0.0);
    Cell {
        min_distance: dx * dx + dy * dy,
        level,
        x,
        y,
        ranges,
        rows,
    }
}

/// The distance of the [`MAX_RESULTS`]th nearest distinct title, once there are that many.
fn last_result_distance(best: &HashMap<String, f64>) -> Option<f64> {
    if best.len() < MAX_RESULTS {
        return None;
    }
    let mut distances: Vec<f64> = best.values().copied().collect();
    let (_, nth, _) = distances.select_nth_unstable_by(MAX_RESULTS - 1, f64::total_cmp);
    Some(*nth)
}

/// The candidates for `terms` around (lat, lng): the [`MAX_RESULTS`] nearest distinct titles
/// (exactly those), and up to [`IMPORTANT_CANDIDATES`] important matches from anywhere. When
/// `budget` runs out, what was found so far.
#[allow(clippy::too_many_arguments)]
pub fn candidates(
    conn: &Connection,
    cache: &Mutex<HashMap<i64, Arc<Directory>>>,
    terms: &[Term],
    lat: f64,
    lng: f64,
    visible: &dyn Fn(&str) -> bool,
    budget: Budget,
) -> Result<Vec<Found>> {
    let (imports, chunks) = load_chunks(conn, cache, visible)?;
    let filters = imports
        .iter()
        .map(|import| fts_filter(terms, |prefix| words_starting(conn, import.id, prefix)))
        .collect::<Result<Vec<_>>>()?;
    // The important places first: few, and what a wide view needs most when time is short.
    let mut important = Vec::new();
    for (import, filter) in imports.iter().zip(&filters) {
        let Some((words, check)) = filter.as_ref().filter(|_| import.important) else {
            continue;
        };
        if budget.expired() {
            break;
        }
        let expression = format!("{words} AND \"{}\"", IMPORTANT_MARK.trim());
        let read = read_matches(
            conn,
            import,
            terms,
            (&expression, *check),
            i64::MIN,
            i64::MAX,
            lat,
            lng,
            &mut important,
        );
        if let Err(e) = read
            && !budget.expired()
        {
            return Err(e);
        }
    }
    let mut candidates = Vec::new();
    let walked = walk(
        conn,
        &imports,
        &chunks,
        &filters,
        terms,
        lat,
        lng,
        budget,
        &mut candidates,
    );
    if let Err(e) = walked {
        if !budget.expired() {
            return Err(e);
        }
        tracing::debug!("a search ran out of time while walking; answering with what it found");
    }
    // Stopped at its bound, the walk may have left out a place whose name is the query
    // beyond the matches it read (docs/search.md): read the whole-word matches of the imports
    // that have few of them.
    let mut whole_words = Vec::new();
    if candidates.len() >= MAX_WALK_MATCHES && !budget.expired() {
        let read = read_whole_word_matches(conn, &imports, terms, lat, lng, &mut whole_words);
        if let Err(e) = read
            && !budget.expired()
        {
            return Err(e);
        }
    }
    let mut nearest = nearest_per_title(candidates);
    nearest.truncate(MAX_RESULTS);
    whole_words.retain(|c| {
        !nearest.iter().any(|n| {
            n.found.title == c.found.title
                && n.found.lat == c.found.lat
                && n.found.lng == c.found.lng
        })
    });

    important.sort_by(|a, b| {
        let importance = |c: &Candidate| c.found.importance.unwrap_or(0.0);
        importance(b).total_cmp(&importance(a))
    });
    important.truncate(IMPORTANT_CANDIDATES);
    Ok(nearest
        .into_iter()
        .chain(important)
        .chain(whole_words)
        .map(|c| c.found)
        .collect())
}

/// Reads, from each import where the query's words taken as whole words match fewer than
/// [`FEW_MATCHES`] places, all of those places ("street" in the base map: Street, United
/// Kingdom, where a region has 900,000 "… Street").
fn read_whole_word_matches(
    conn: &Connection,
    imports: &[ImportInfo],
    terms: &[Term],
    lat: f64,
    lng: f64,
    out: &mut Vec<Candidate>,
) -> Result<()> {
    let whole: Vec<Term> = terms
        .iter()
        .map(|t| match t {
            Term::Prefix(w) => Term::Phrase(w.clone()),
            other => other.clone(),
        })
        .collect();
    // Without prefixes, no word list is needed.
    let Some((expression, check)) = fts_filter(&whole, |_| Ok::<_, AppError>(None))? else {
        return Ok(());
    };
    for import in imports {
        let filter = [Some((expression.clone(), check))];
        if few_matches(conn, std::slice::from_ref(import), &filter)? {
            read_matches(
                conn,
                import,
                &whole,
                (&expression, check),
                i64::MIN,
                i64::MAX,
                lat,
                lng,
                out,
            )?;
        }
    }
    Ok(())
}

/// The best-first walk: reads matches cell by cell, nearest cell first, into `candidates`,
/// until the [`MAX_RESULTS`]th nearest distinct title is nearer than every unread cell.
#[allow(clippy::too_many_arguments)]
fn walk(
    conn: &Connection,
    imports: &[ImportInfo],
    chunks: &[ChunkInfo],
    filters: &[Option<(String, bool)>],
    terms: &[Term],
    lat: f64,
    lng: f64,
    budget: Budget,
    candidates: &mut Vec<Candidate>,
) -> Result<()> {
    let mut best: HashMap<String, f64> = HashMap::new();
    // Best first: the cell nearest to the point next. Once the last of the results is nearer
    // than the nearest unread cell, nothing unread can change them.
    let mut cells = std::collections::BinaryHeap::new();
    if few_matches(conn, imports, filters)? {
        for (import, filter) in imports.iter().zip(filters) {
            let Some((words, check)) = filter else {
                continue;
            };
            read_matches(
                conn,
                import,
                terms,
                (words, *check),
                i64::MIN,
                i64::MAX,
                lat,
                lng,
                candidates,
            )?;
        }
    } else {
        cells.push(make_cell(chunks, 0, 0, 0, lat, lng));
    }
    // Places in the cells read so far, and FTS5 matches among them.
    let (mut rows_read, mut found) = (0, 0);
    while let Some(cell) = cells.pop() {
        if cell.rows == 0 {
            continue;
        }
        if last_result_distance(&best).is_some_and(|d| d < cell.min_distance)
            || candidates.len() >= MAX_WALK_MATCHES
            || budget.expired()
        {
            break;
        }
        let read_up_to = if rows_read == 0 {
            READ_CELL_ROWS
        } else {
            READ_CELL_ROWS
                .max(rows_read * MATCHES_PER_READ / (found + 1))
                .max(rows_read * NEW_TITLES_PER_READ / (best.len() + 1))
        };
        if cell.rows > read_up_to && cell.level < GRID_BITS {
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let child = make_cell(
                    chunks,
                    cell.level + 1,
                    cell.x * 2 + dx,
                    cell.y * 2 + dy,
                    lat,
                    lng,
                );
                if child.rows > 0 {
                    cells.push(child);
                }
            }
            continue;
        }
        let first = candidates.len();
        rows_read += cell.rows;
        for &(i, a, b) in &cell.ranges {
            let chunk = &chunks[i];
            let Some((words, check)) = &filters[chunk.import] else {
                continue;
            };
            let base = chunk.id << ROWID_SHIFT;
            found += read_matches(
                conn,
                &imports[chunk.import],
                terms,
                (words, *check),
                base + a as i64,
                base + b as i64 - 1,
                lat,
                lng,
                candidates,
            )?;
        }
        for c in &candidates[first..] {
            match best.get_mut(&c.found.title) {
                Some(d) => *d = d.min(c.distance),
                None => {
                    best.insert(c.found.title.clone(), c.distance);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The exact positions of the keys in a cell, from the full key list.
    fn exact(keys: &[u32], level: u32, cell: u32) -> (usize, usize) {
        let shift = 2 * (GRID_BITS - level);
        let (lo, hi) = ((cell as u64) << shift, (cell as u64 + 1) << shift);
        let start = keys.partition_point(|&k| (k as u64) < lo);
        (
            start,
            start + keys[start..].partition_point(|&k| (k as u64) < hi),
        )
    }

    #[test]
    fn a_cells_range_is_exact_and_sampled_holds_all_its_places_and_at_most_a_stride_more() {
        let mut rng = StdRng::seed_from_u64(7);
        for size in [0, 1, 15, 16, 17, 1000, 5000] {
            // Clustered keys, with runs of one key, as dense places give.
            let mut keys: Vec<u32> = (0..size)
                .map(|i| {
                    let base = if i % 3 == 0 {
                        0x1234_5678
                    } else {
                        rng.next_u32()
                    };
                    base & !(rng.next_u32() % 64)
                })
                .collect();
            keys.sort_unstable();
            let full = Directory::from_keys(keys.iter().copied());
            let directory = full.sampled();
            for _ in 0..2000 {
                let level = rng.next_u32() % (GRID_BITS + 1);
                let probe = if keys.is_empty() || rng.next_u32() % 4 == 0 {
                    rng.next_u32()
                } else {
                    keys[rng.next_u32() as usize % keys.len()]
                };
                let cell = ((probe as u64) >> (2 * (GRID_BITS - level))) as u32;
                let (a, b) = exact(&keys, level, cell);
                let (start, end) = directory.range(level, cell);
                assert_eq!(full.range(level, cell), (a, b));
                assert!(start <= end && end <= keys.len(), "{size} {level} {cell}");
                if a < b {
                    assert!(
                        start <= a && b <= end,
                        "{size} {level} {cell}: {a}..{b} in {start}..{end}"
                    );
                    assert!(a - start <= DIRECTORY_STRIDE && end - b <= DIRECTORY_STRIDE);
                } else {
                    assert!(end - start <= 2 * DIRECTORY_STRIDE);
                }
            }
        }
    }
}
