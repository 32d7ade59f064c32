//! The place index in `search.db`: storage, imports and the move from earlier formats.
//!
//! Layout (see docs/search.md for why):
//!
//! - `place(id, name, lat, lng, importance, aliases)`: one plain row per place.
//! - `import(id, tile_id, rows, important)`: one row per installed region (or the base map).
//! - `chunk(id, import_id, rows, cells)`: an import's places come in chunks of at most
//!   [`CHUNK_ROWS`] rows. A chunk's places are sorted along a Z-order curve of a fine grid and
//!   get the ids `chunk id << ROWID_SHIFT | position`, so every grid cell at every size is one
//!   contiguous id range; `cells` holds the sorted grid keys, the directory to those ranges.
//! - `words_<import id>`: a contentless FTS5 table of that import's normalised names and
//!   aliases, and the marker `_imp` for important places, under the same ids.
//!
//! Replacing a region drops its FTS table and id ranges and writes new ones, in one
//! transaction; readers (WAL) keep seeing the old rows until it commits.
//!
//! A search finds candidates (`nearest`), ranks them (`rank`) and, when nothing matched,
//! tries the forgiving readings of the query (joined words, one typo per word).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::admission::Admission;
use super::nearest::{Budget, Directory, candidates, read_directory};
use super::normalize::{fold_aliases, in_other_script, normalize, normalize_into};
use super::query::{Term, forgiving_readings, one_edit_away, parse};
use super::rank::{importance_of_kind, order};
use super::visible::Visible;
use crate::db::number;
use crate::error::{AppError, Result};
use crate::memory::trim_heap;
use crate::tile_id::TileId;

pub const MAX_RESULTS: usize = 50;
/// How long one search may read before it answers with what it found: long enough for any
/// query of the benchmark (docs/search.md), short enough that a hostile one cannot hold a
/// reader.
pub const SEARCH_BUDGET: Duration = Duration::from_millis(250);
/// Places at least this important (a population, say) get the `imp` marker: they are
/// candidates wherever the person looks.
pub const IMPORTANT_FROM: f64 = 100_000.0;
/// How often the import reports progress, in rows.
const PROGRESS_EVERY: u64 = 10_000;
/// Rows sorted and written together; bounds the memory an import needs. Unit tests use small
/// chunks, so that a few thousand rows span many of them.
const CHUNK_ROWS: usize = if cfg!(test) { 1 << 10 } else { 1 << 16 };
/// A place's id is its chunk's id shifted by this, plus its position in the chunk.
pub(super) const ROWID_SHIFT: u32 = 20;
const _: () = assert!(CHUNK_ROWS <= 1 << ROWID_SHIFT);
/// Page cache of each connection, in KiB (negative: SQLite's unit for a size in KiB). The
/// index's pages are read from the system's file cache in microseconds, so a bigger cache
/// hardly helps: at 1,000,000 places, 8 MB and 0.5 MB per connection gave the same import
/// rate and search latency (docs/search.md), while during a region's install the writer's
/// and the readers' caches made up 15 MB of the server's peak memory.
const CACHE_KIB: i64 = -2048;
/// Bits per axis of the finest grid (cells of 360 / 2^16 degrees, about 600 m).
pub(super) const GRID_BITS: u32 = 16;

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
    /// Chunk directories by chunk id. A chunk never changes once written and ids are never
    /// reused, so an entry stays right for every snapshot that still has the chunk.
    directories: Mutex<HashMap<i64, Arc<Directory>>>,
    /// Whether `directories` were sampled by [`SearchIndex::release_read_memory`].
    sampled_directories: AtomicBool,
    /// Which imports searches show.
    visible: Visible,
    /// How many searches run at once (used by the HTTP handler).
    admission: Admission,
    /// How long one search may read ([`SEARCH_BUDGET`]).
    budget: Duration,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS place (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    lat REAL NOT NULL, lng REAL NOT NULL, importance REAL, aliases TEXT);
CREATE TABLE IF NOT EXISTS import (id INTEGER PRIMARY KEY AUTOINCREMENT,
    tile_id TEXT NOT NULL UNIQUE, rows INTEGER NOT NULL, important INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (id INTEGER PRIMARY KEY AUTOINCREMENT,
    import_id INTEGER NOT NULL, rows INTEGER NOT NULL, cells BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_by_import ON chunk(import_id);";

/// Marks an important place in its matched text. Normalised text never holds `_`, so no
/// query word can match or start it.
pub(super) const IMPORTANT_MARK: &str = " _imp";

/// Opens the connection that writes, with its page cache size.
fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let writer = crate::db::open(path)?;
    writer.pragma_update(None, "cache_size", CACHE_KIB)?;
    Ok(writer)
}

/// Hands what the writer holds after an import or a migration back to the system: its page
/// cache, and the schema, FTS5 tables and statements the connection keeps once used, by
/// replacing it with a fresh connection; then the heap's free memory. Kept, an idle grain
/// would hold the memory of its last import (docs/performance.md: 88.7 MB two seconds after a
/// 200 MB region's install when nothing was released). Failing only costs memory, so it is
/// not an error.
fn release_writer(writer: &mut Connection, path: &Path) {
    match open_writer(path) {
        Ok(fresh) => *writer = fresh,
        Err(e) => {
            tracing::debug!("could not reopen the search writer: {e}");
            if let Err(e) = writer.execute_batch("PRAGMA shrink_memory") {
                tracing::debug!("could not release the search writer's cache: {e}");
            }
        }
    }
    trim_heap();
}

/// The FTS table of one import. Contentless (names live in `place`), no word positions
/// (a phrase is checked on each candidate instead), no per-row sizes (nothing ranks by them),
/// and prefix indexes for the short prefixes that match the most words. `_` is a word
/// character only for [`IMPORTANT_MARK`].
fn create_words(id: i64) -> String {
    format!(
        "CREATE VIRTUAL TABLE words_{id} USING fts5(t, content='', detail=none,
            columnsize=0, prefix='2 3', tokenize=\"ascii tokenchars '_'\");
         INSERT INTO words_{id} (words_{id}, rank) VALUES ('automerge', 0);
         INSERT INTO words_{id} (words_{id}, rank) VALUES ('crisismerge', 64);
         CREATE TABLE words_{id}_terms (term TEXT PRIMARY KEY) WITHOUT ROWID;"
    )
}

impl SearchIndex {
    /// Opens (or creates) the index, moving the rows of an earlier format into it in one
    /// transaction the first time.
    pub fn open(path: &Path) -> Result<SearchIndex> {
        let mut writer = open_writer(path)?;
        writer.execute_batch(SCHEMA)?;
        if migrate_earlier_tables(&mut writer)? {
            release_writer(&mut writer, path);
        }
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                directories: Mutex::new(HashMap::new()),
                sampled_directories: AtomicBool::new(false),
                visible: Visible::All,
                admission: Admission::for_this_machine(),
                budget: SEARCH_BUDGET,
            }),
        })
    }

    /// Opens the index so that searches show only the base map and the regions whose marker
    /// is in `markers` (`search_imported/`): rows of a region being installed, or left by an
    /// install that never finished, stay hidden.
    pub fn open_showing_installed(path: &Path, markers: PathBuf) -> Result<SearchIndex> {
        let mut index = SearchIndex::open(path)?;
        if let Some(inner) = Arc::get_mut(&mut index.inner) {
            inner.visible = Visible::installed(markers);
        }
        Ok(index)
    }

    /// The same index with another time budget per search: for evaluations that must not
    /// depend on the machine's speed. Call before cloning.
    pub fn with_budget(mut self, budget: Duration) -> SearchIndex {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.budget = budget;
        }
        self
    }

    /// The gate searches over HTTP pass (`search::admission`).
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    fn with_reader<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.with_reader_until(None, work)
    }

    /// [`with_reader`], with SQLite stopping any statement once `deadline` has passed.
    fn with_reader_until<T>(
        &self,
        deadline: Option<Instant>,
        work: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let pooled = lock(&self.inner.readers).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = crate::db::open(&self.inner.path)?;
                conn.pragma_update(None, "cache_size", CACHE_KIB)?;
                // A few statements per import (their table names differ).
                conn.set_prepared_statement_cache_capacity(128);
                conn
            }
        };
        if let Some(deadline) = deadline {
            // Called every thousand virtual-machine steps: a few microseconds.
            conn.progress_handler(1000, Some(move || Instant::now() >= deadline))?;
        }
        let out = work(&conn);
        if deadline.is_some() {
            conn.progress_handler(0, None::<fn() -> bool>)?;
        }
        lock(&self.inner.readers).push(conn);
        out
    }

    /// Empties what reads keep for the next read: the idle connections' page caches (up to
    /// 2 MB each), and all but every 16th key of the chunk directories (4 bytes a place). Worth
    /// keeping while a user types, not while the grain sits idle; the next search reads its
    /// pages again and walks the sampled directories (reading the full ones first cost it
    /// 3–5 ms at 1,200,000 places, docs/search.md), and then they are read again
    /// ([`SearchIndex::restore_directories`]). Called once requests stop (`crate::quiet`).
    pub fn release_read_memory(&self) {
        {
            let mut directories = lock(&self.inner.directories);
            for directory in directories.values_mut() {
                if !directory.is_sampled() {
                    *directory = Arc::new(directory.sampled());
                }
            }
            self.inner
                .sampled_directories
                .store(!directories.is_empty(), Ordering::Release);
        }
        for conn in lock(&self.inner.readers).iter() {
            if let Err(e) = conn.release_memory() {
                tracing::debug!("could not release a search reader's cache: {e}");
            }
        }
    }

    /// Whether the chunk directories are the sampled ones a quiet second left: then
    /// [`SearchIndex::restore_directories`] is worth calling once a search has answered.
    pub fn directories_sampled(&self) -> bool {
        self.inner.sampled_directories.load(Ordering::Acquire)
    }

    /// Reads the full directories of the chunks whose directory was sampled when the grain
    /// went quiet: the searches that follow walk exact id ranges again. Run after a search
    /// has answered, not before it, so that the first search after a pause does not wait
    /// for it.
    pub fn restore_directories(&self) -> Result<()> {
        if !self.inner.sampled_directories.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let sampled: Vec<i64> = lock(&self.inner.directories)
            .iter()
            .filter(|(_, d)| d.is_sampled())
            .map(|(id, _)| *id)
            .collect();
        self.with_reader(|conn| {
            for id in sampled {
                if let Some(full) = read_directory(conn, id)? {
                    lock(&self.inner.directories).insert(id, Arc::new(full));
                }
            }
            Ok(())
        })
    }

    /// Bytes the idle read connections hold in their page caches (for tests: rusqlite
    /// exposes no counter for it).
    #[cfg(test)]
    pub fn reader_cache_bytes(&self) -> u64 {
        lock(&self.inner.readers)
            .iter()
            .map(|conn| {
                let (mut current, mut highest) = (0, 0);
                // SAFETY: the handle is live while the pool's lock is held; the call only
                // reads the connection's counters into the two integers.
                unsafe {
                    rusqlite::ffi::sqlite3_db_status(
                        conn.handle(),
                        rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                        &mut current,
                        &mut highest,
                        0,
                    );
                }
                current.max(0) as u64
            })
            .sum()
    }

    /// Up to [`MAX_RESULTS`] places matching `query` around (lat, lng), best first, one per
    /// place, for a client that sends no zoom.
    pub fn search(&self, query: &str, lat: f64, lng: f64) -> Result<Vec<Place>> {
        self.search_at(query, lat, lng, None)
    }

    /// Up to [`MAX_RESULTS`] places matching `query`, best first for a person looking at
    /// (lat, lng) at `zoom` (docs/api.md §6), one per place. When nothing matches, adjacent
    /// words joined and then one typo per long word are tried. A search that runs past
    /// [`SEARCH_BUDGET`] answers with what it found by then.
    pub fn search_at(
        &self,
        query: &str,
        lat: f64,
        lng: f64,
        zoom: Option<f64>,
    ) -> Result<Vec<Place>> {
        let terms = parse(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let other_script = in_other_script(query);
        let shown = self.inner.visible.current();
        let visible = |tile_id: &str| shown.shows(tile_id);
        let budget = Budget {
            deadline: Instant::now() + self.inner.budget,
        };
        let cache = &self.inner.directories;
        self.with_reader_until(Some(budget.deadline), |conn| {
            // One snapshot for every statement: an import may commit meanwhile.
            let tx = conn.unchecked_transaction()?;
            let found = candidates(&tx, cache, &terms, lat, lng, &visible, budget)?;
            let mut places = order(found, &terms, other_script, false, lat, lng, zoom);
            if places.is_empty() && !budget.expired() {
                let mut readings = forgiving_readings(&terms);
                readings.extend(typo_reading(&tx, &terms, &visible)?);
                for reading in readings {
                    if budget.expired() {
                        break;
                    }
                    let found = candidates(&tx, cache, &reading, lat, lng, &visible, budget)?;
                    places = order(found, &reading, other_script, true, lat, lng, zoom);
                    if !places.is_empty() {
                        break;
                    }
                }
            }
            tx.finish()?;
            Ok(places)
        })
        .or_else(|e| {
            if budget.expired() {
                tracing::debug!("a search ran out of time: {e}");
                Ok(Vec::new())
            } else {
                Err(e)
            }
        })
    }

    /// Replaces every row of `tile_id` with the places of `csv` (header `name,lat,lng`, then
    /// optionally `importance` and `aliases`, which the base map uses), in one transaction;
    /// `progress` is called with the rows read so far, now and then. Malformed rows are
    /// counted and skipped.
    ///
    /// The calling thread reads, checks and normalises rows and sorts each chunk; a second
    /// thread writes the chunks to SQLite meanwhile.
    pub fn import_region(
        &self,
        tile_id: &TileId,
        csv: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport> {
        let mut writer = lock(&self.inner.writer);
        let conn: &mut Connection = &mut writer;
        let mut report = ImportReport::default();
        let imported = std::thread::scope(|scope| {
            let (to_writer, chunks) = sync_channel::<Message>(0);
            // The writer hands each chunk's emptied vector back for the next chunk, so two
            // vectors serve the whole import.
            let (give_back, emptied) = sync_channel::<Vec<NewPlace>>(1);
            let written = scope.spawn(move || write_import(conn, tile_id, chunks, give_back));
            let handover = Handover { to_writer, emptied };
            let read = read_csv(csv, &handover, &mut report, progress);
            let Handover { to_writer, .. } = handover;
            if let Err(e) = read {
                // Dropping the channel without `Commit` makes the writer roll back.
                drop(to_writer);
                let _ = written.join();
                return Err(e);
            }
            let _ = to_writer.send(Message::Commit);
            drop(to_writer);
            match written.join() {
                Ok(result) => result,
                Err(_) => Err(AppError::Internal("the search import thread failed".into())),
            }
        })
        .map(|directories| {
            // The first search need not read them back.
            lock(&self.inner.directories).extend(directories);
        });
        release_writer(&mut writer, &self.inner.path);
        imported?;
        progress(report.rows);
        Ok(report)
    }

    /// Removes every row of `tile_id`, in one transaction.
    pub fn delete_region(&self, tile_id: &TileId) -> Result<()> {
        let mut writer = lock(&self.inner.writer);
        let tx = writer.transaction()?;
        delete_import(&tx, tile_id.as_str())?;
        tx.commit()?;
        release_writer(&mut writer, &self.inner.path);
        Ok(())
    }

    /// Every region (and the base map) that has rows in the index, installed or not.
    pub fn imported_regions(&self) -> Result<Vec<TileId>> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare("SELECT tile_id FROM import")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ids.iter().filter_map(|id| TileId::parse(id)).collect())
        })
    }

    /// How many rows a region has (for status and tests).
    pub fn count_region(&self, tile_id: &TileId) -> Result<u64> {
        self.with_reader(|conn| {
            let rows: Option<i64> = conn
                .query_row(
                    "SELECT rows FROM import WHERE tile_id = ?1",
                    [tile_id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(rows.unwrap_or(0) as u64)
        })
    }
}

/// The query with each word that starts no indexed word replaced by the indexed words one
/// typo away from it (`query::one_edit_away`), or `None` when no word could be corrected.
/// The variants are looked up in each shown import's word list in one statement.
fn typo_reading(
    conn: &Connection,
    terms: &[Term],
    visible: &dyn Fn(&str) -> bool,
) -> Result<Option<Vec<Term>>> {
    let imports: Vec<i64> = conn
        .prepare_cached("SELECT id, tile_id FROM import")?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(|r| r.ok())
        .filter(|(_, tile)| visible(tile))
        .map(|(id, _)| id)
        .collect();
    let mut reading = terms.to_vec();
    let mut corrected = false;
    for term in reading.iter_mut() {
        let Term::Prefix(word) = term else { continue };
        let variants = one_edit_away(word);
        if variants.is_empty() {
            continue;
        }
        let mut known = false;
        for &id in &imports {
            if words_starting_any(conn, id, word)? {
                known = true;
                break;
            }
        }
        if known {
            continue;
        }
        let list = serde_json::to_string(&variants)
            .map_err(|e| AppError::internal("listing typo variants", e))?;
        let mut found: Vec<String> = Vec::new();
        for &id in &imports {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT term FROM words_{id}_terms WHERE term IN (SELECT value FROM json_each(?1))"
            ))?;
            let words = stmt.query_map([&list], |r| r.get::<_, String>(0))?;
            for w in words {
                found.push(w?);
            }
        }
        found.sort();
        found.dedup();
        if !found.is_empty() {
            *term = Term::AnyOf(found);
            corrected = true;
        }
    }
    Ok(corrected.then_some(reading))
}

/// Whether some word of `words_<import>` starts with `prefix`.
fn words_starting_any(conn: &Connection, import: i64, prefix: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT 1 FROM words_{import}_terms WHERE term >= ?1 AND term < ?2 LIMIT 1"
    ))?;
    Ok(stmt.exists(params![prefix, format!("{prefix}\u{7f}")])?)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a connection list or an SQLite handle inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A place ready to be written: checked, normalised and placed on the grid. Its texts share
/// one allocation: the name, then what FTS5 indexes (the normalised name, the normalised
/// aliases, the important mark).
struct NewPlace {
    key: u32,
    name_end: u32,
    /// Where the aliases start in `text` (0: none) and where they end.
    aliases: (u32, u32),
    lat: f64,
    lng: f64,
    importance: f64,
    text: String,
}

impl NewPlace {
    /// `aliases` are other names the place is found by but not shown as (the base map's
    /// "北京" for Beijing), separated by `|`; they are kept normalised, separated by `|`,
    /// without repeats and without the ones that read as the name.
    fn new(name: &str, lat: f64, lng: f64, importance: f64, aliases: &str) -> Self {
        let mut text = String::with_capacity(name.len() * 2 + aliases.len() + 8);
        text.push_str(name);
        let name_end = text.len();
        normalize_into(&mut text, name);
        let mut alias_range = (0, 0);
        if !aliases.is_empty() {
            let own = text[name_end..]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let normalized = fold_aliases(&own, aliases);
            if !normalized.is_empty() {
                text.push(' ');
                let start = text.len();
                text.push_str(&normalized);
                alias_range = (start as u32, text.len() as u32);
            }
        }
        if importance >= IMPORTANT_FROM {
            text.push_str(IMPORTANT_MARK);
        }
        NewPlace {
            key: grid_key(lat, lng),
            name_end: name_end as u32,
            aliases: alias_range,
            lat,
            lng,
            importance,
            text,
        }
    }

    fn name(&self) -> &str {
        &self.text[..self.name_end as usize]
    }

    /// What FTS5 indexes.
    fn words(&self) -> &str {
        &self.text[self.name_end as usize..]
    }

    fn aliases(&self) -> Option<&str> {
        let (start, end) = self.aliases;
        (start > 0).then(|| &self.text[start as usize..end as usize])
    }
}

enum Message {
    /// Places sorted by grid key.
    Chunk(Vec<NewPlace>),
    /// Everything was read: commit.
    Commit,
}

/// The reader's ends of the two channels between the import's threads.
struct Handover {
    to_writer: SyncSender<Message>,
    /// Vectors of written chunks, emptied, to fill again.
    emptied: Receiver<Vec<NewPlace>>,
}

impl Handover {
    /// Sorts `rows` along the grid and hands them to the writer, leaving `rows` an empty
    /// vector to fill; false when the writer stopped.
    fn send_chunk(&self, rows: &mut Vec<NewPlace>) -> bool {
        let mut chunk = std::mem::take(rows);
        chunk.sort_by_key(|p| p.key);
        if self.to_writer.send(Message::Chunk(chunk)).is_err() {
            return false;
        }
        // The writer has taken this chunk, so it is done with the one before.
        *rows = self
            .emptied
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_ROWS));
        true
    }
}

/// Where the optional columns of a search CSV are. The header names them (`importance` or
/// `population`, `aliases`, `kind`); a header of only `name,lat,lng` keeps the earlier
/// convention of importance and aliases in the fourth and fifth fields.
struct Columns {
    importance: Option<usize>,
    aliases: Option<usize>,
    kind: Option<usize>,
    /// Most fields a row may have.
    most: usize,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Columns {
        let find = |names: &[&str]| {
            header.iter().position(|h| {
                let h = String::from_utf8_lossy(h).trim().to_ascii_lowercase();
                names.contains(&h.as_str())
            })
        };
        let named = header.len() > 3;
        Columns {
            importance: if named {
                find(&["importance", "population"])
            } else {
                Some(3)
            },
            aliases: if named { find(&["aliases"]) } else { Some(4) },
            kind: find(&["kind"]),
            most: header.len().max(5),
        }
    }
}

fn read_csv(
    csv: &mut dyn Read,
    handover: &Handover,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(csv);
    let columns = match reader.byte_headers() {
        Ok(header) => Columns::from_header(header),
        Err(e) if e.is_io_error() => {
            return Err(AppError::internal("reading the search rows", e));
        }
        Err(_) => Columns::from_header(&csv::ByteRecord::new()),
    };
    let mut record = csv::ByteRecord::new();
    let mut rows = Vec::with_capacity(CHUNK_ROWS);
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
        let Some(place) = parse_row(&record, &columns) else {
            report.bad_rows += 1;
            continue;
        };
        rows.push(place);
        report.rows += 1;
        if rows.len() == CHUNK_ROWS && !handover.send_chunk(&mut rows) {
            // The writer failed; its error is what the caller gets.
            return Ok(());
        }
        if report.rows.is_multiple_of(PROGRESS_EVERY) {
            progress(report.rows);
        }
    }
    if !rows.is_empty() {
        handover.send_chunk(&mut rows);
    }
    Ok(())
}

fn parse_row(record: &csv::ByteRecord, columns: &Columns) -> Option<NewPlace> {
    if !(3..=columns.most).contains(&record.len()) {
        return None;
    }
    let field = |i: usize| std::str::from_utf8(record.get(i)?).ok();
    let optional = |i: Option<usize>| i.and_then(field).map(str::trim).filter(|s| !s.is_empty());
    let name = field(0)?.trim();
    let lat: f64 = field(1)?.trim().parse().ok()?;
    let lng: f64 = field(2)?.trim().parse().ok()?;
    let importance: f64 = match optional(columns.importance) {
        Some(s) => s.parse().ok()?,
        // A row's kind stands for its importance; none is neutral (stored as unknown).
        None => optional(columns.kind).map_or(0.0, importance_of_kind),
    };
    let valid = !name.is_empty()
        && lat.is_finite()
        && lng.is_finite()
        && lat.abs() <= 90.0
        && lng.abs() <= 180.0
        && importance.is_finite()
        && importance >= 0.0;
    if !valid {
        return None;
    }
    let aliases = optional(columns.aliases).unwrap_or_default();
    Some(NewPlace::new(name, lat, lng, importance, aliases))
}

/// The writer's side of an import: one transaction, committed only on `Commit`.
/// Returns the directories of the chunks written, for the readers' cache.
fn write_import(
    conn: &mut Connection,
    tile_id: &TileId,
    chunks: Receiver<Message>,
    give_back: SyncSender<Vec<NewPlace>>,
) -> Result<Vec<(i64, Arc<Directory>)>> {
    let tx = conn.transaction()?;
    let mut import = ImportWriter::begin(&tx, tile_id.as_str())?;
    let mut directories = Vec::new();
    for message in chunks {
        match message {
            Message::Chunk(mut places) => {
                let id = import.write_chunk(&tx, &places)?;
                directories.push((
                    id,
                    Arc::new(Directory::from_keys(places.iter().map(|p| p.key))),
                ));
                places.clear();
                // Full only when the reader has not taken back the previous one: it has
                // finished, so this vector is simply dropped.
                let _ = give_back.try_send(places);
            }
            Message::Commit => {
                import.finish(&tx)?;
                tx.commit()?;
                return Ok(directories);
            }
        }
    }
    Err(AppError::Internal(
        "the search import stopped before its end".into(),
    ))
}

/// Writes one import's chunks inside the caller's transaction.
struct ImportWriter {
    id: i64,
    rows: u64,
    important: u64,
}

impl ImportWriter {
    /// Removes the old rows of `tile_id` and starts its new import.
    fn begin(tx: &Transaction, tile_id: &str) -> Result<ImportWriter> {
        delete_import(tx, tile_id)?;
        tx.execute(
            "INSERT INTO import (tile_id, rows, important) VALUES (?1, 0, 0)",
            [tile_id],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute_batch(&create_words(id))?;
        Ok(ImportWriter {
            id,
            rows: 0,
            important: 0,
        })
    }

    /// Writes places already sorted by grid key as one chunk; returns the chunk's id.
    fn write_chunk(&mut self, tx: &Transaction, places: &[NewPlace]) -> Result<i64> {
        let mut cells = Vec::with_capacity(places.len() * 4);
        for p in places {
            cells.extend_from_slice(&p.key.to_le_bytes());
        }
        tx.execute(
            "INSERT INTO chunk (import_id, rows, cells) VALUES (?1, ?2, ?3)",
            params![self.id, places.len() as i64, cells],
        )?;
        let id = tx.last_insert_rowid();
        self.insert(tx, id << ROWID_SHIFT, places)?;
        self.rows += places.len() as u64;
        Ok(id)
    }

    /// Inserts `places` with the ids from `first` on.
    fn insert(&mut self, tx: &Transaction, first: i64, places: &[NewPlace]) -> Result<()> {
        let id = self.id;
        let mut place = tx.prepare_cached(
            "INSERT INTO place (id, name, lat, lng, importance, aliases)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut words = tx.prepare_cached(&format!(
            "INSERT INTO words_{id} (rowid, t) VALUES (?1, ?2)"
        ))?;
        for (i, p) in places.iter().enumerate() {
            let rowid = first + i as i64;
            place.raw_bind_parameter(1, rowid)?;
            place.raw_bind_parameter(2, p.name())?;
            place.raw_bind_parameter(3, p.lat)?;
            place.raw_bind_parameter(4, p.lng)?;
            place.raw_bind_parameter(5, (p.importance > 0.0).then_some(p.importance))?;
            place.raw_bind_parameter(6, p.aliases())?;
            place.raw_execute()?;
            words.raw_bind_parameter(1, rowid)?;
            words.raw_bind_parameter(2, p.words())?;
            self.important += (p.importance >= IMPORTANT_FROM) as u64;
            words.raw_execute()?;
        }
        Ok(())
    }

    fn finish(self, tx: &Transaction) -> Result<()> {
        let id = self.id;
        tx.execute_batch(&format!(
            "INSERT INTO words_{id} (words_{id}) VALUES ('optimize');
             INSERT INTO words_{id} (words_{id}, rank) VALUES ('automerge', 4);
             CREATE VIRTUAL TABLE temp.vocab_{id} USING fts5vocab(main, words_{id}, 'row');
             INSERT INTO words_{id}_terms SELECT term FROM temp.vocab_{id};
             DROP TABLE temp.vocab_{id};"
        ))?;
        tx.execute(
            "UPDATE import SET rows = ?2, important = ?3 WHERE id = ?1",
            params![id, self.rows as i64, self.important as i64],
        )?;
        Ok(())
    }
}

/// Removes the import of `tile_id`, if any: its places, chunks and FTS table.
fn delete_import(tx: &Transaction, tile_id: &str) -> Result<()> {
    let id: Option<i64> = tx
        .query_row("SELECT id FROM import WHERE tile_id = ?1", [tile_id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(id) = id else { return Ok(()) };
    let chunks: Vec<i64> = tx
        .prepare("SELECT id FROM chunk WHERE import_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for chunk in chunks {
        tx.execute(
            "DELETE FROM place WHERE id >= ?1 AND id < ?2",
            params![chunk << ROWID_SHIFT, (chunk + 1) << ROWID_SHIFT],
        )?;
    }
    tx.execute("DELETE FROM chunk WHERE import_id = ?1", [id])?;
    tx.execute("DELETE FROM import WHERE id = ?1", [id])?;
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS words_{id}_terms; DROP TABLE IF EXISTS words_{id}"
    ))?;
    Ok(())
}

/// A coordinate on the finest grid: cells of 360 / 2^GRID_BITS degrees on both axes
/// (latitudes use the lower half). Monotonic, so a place within `r` of a point lies between
/// the grid positions of the point minus and plus `r`.
fn grid(degrees_from_origin: f64) -> u32 {
    let cells = (1u32 << GRID_BITS) as f64;
    (degrees_from_origin / 360.0 * cells)
        .floor()
        .clamp(0.0, cells - 1.0) as u32
}

/// The Z-order key of a point: the bits of its grid x and y, interleaved.
fn grid_key(lat: f64, lng: f64) -> u32 {
    interleave(grid(lng + 180.0), grid(lat + 90.0))
}

pub(super) fn interleave(x: u32, y: u32) -> u32 {
    fn spread(v: u32) -> u32 {
        let mut v = v & 0xffff;
        v = (v | (v << 8)) & 0x00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333;
        (v | (v << 1)) & 0x5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// Moves the rows of an earlier format into the index, in one transaction: an old grain's
/// `locations` table, and the single `places` FTS table of earlier development builds. True
/// when there was something to move.
fn migrate_earlier_tables(conn: &mut Connection) -> Result<bool> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name IN ('locations', 'places') ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if tables.is_empty() {
        return Ok(false);
    }
    tracing::info!("moving the search index of the previous version into the new format");
    let tx = conn.transaction()?;
    let mut by_tile: HashMap<String, Vec<NewPlace>> = HashMap::new();
    for table in &tables {
        let sql = if table == "locations" {
            "SELECT name, tile_id, lat, lng, 0, NULL FROM locations"
        } else {
            "SELECT name, tile_id, lat, lng, importance, normalized_name FROM places"
        };
        let mut read = tx.prepare(sql)?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let name: Option<String> = row.get(0)?;
            let tile: Option<String> = row.get(1)?;
            let (Some(name), Some(tile)) = (name, tile.as_deref().and_then(TileId::parse)) else {
                continue;
            };
            let (Some(lat), Some(lng)) = (number(row.get_ref(2)?), number(row.get_ref(3)?)) else {
                continue;
            };
            let normalized: Option<String> = row.get(5)?;
            // Earlier builds kept the name and then its aliases in one matched text; what
            // follows the name is kept as one alias.
            let own = normalize(&name);
            let aliases = normalized
                .map(|n| {
                    n.strip_prefix(own.as_str())
                        .unwrap_or(&n)
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let importance = number(row.get_ref(4)?).unwrap_or(0.0);
            by_tile
                .entry(tile.as_str().to_string())
                .or_default()
                .push(NewPlace::new(&name, lat, lng, importance, &aliases));
        }
    }
    let mut moved = 0u64;
    for (tile, mut places) in by_tile {
        let mut import = ImportWriter::begin(&tx, &tile)?;
        while !places.is_empty() {
            let rest = places.split_off(places.len().min(CHUNK_ROWS));
            let mut chunk = std::mem::replace(&mut places, rest);
            chunk.sort_by_key(|p| p.key);
            import.write_chunk(&tx, &chunk)?;
            moved += chunk.len() as u64;
        }
        import.finish(&tx)?;
    }
    for table in &tables {
        tx.execute_batch(&format!("DROP TABLE {table}"))?;
    }
    tx.commit()?;
    tracing::info!("moved {moved} places into the new search index");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::query::matches_terms;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngExt, SeedableRng};

    /// Every match, nearest per title, by squared degrees, as (distance, title).
    fn brute_force(rows: &[(String, f64, f64)], q: &str, lat: f64, lng: f64) -> Vec<(f64, String)> {
        let terms = parse(q);
        let mut best: HashMap<&str, f64> = HashMap::new();
        for (name, plat, plng) in rows {
            if matches_terms(&terms, &normalize(name)) {
                let d = (plat - lat).powi(2) + (plng - lng).powi(2);
                let e = best.entry(name).or_insert(f64::MAX);
                *e = e.min(d);
            }
        }
        let mut list: Vec<(f64, String)> = best.into_iter().map(|(n, d)| (d, n.into())).collect();
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        list.truncate(MAX_RESULTS);
        list
    }

    /// The nearest candidates of the walk (the ones before the important places).
    fn nearest(
        index: &SearchIndex,
        q: &str,
        lat: f64,
        lng: f64,
    ) -> Vec<crate::search::rank::Found> {
        let terms = parse(q);
        index
            .with_reader(|conn| {
                let budget = Budget {
                    deadline: Instant::now() + Duration::from_secs(60),
                };
                candidates(
                    conn,
                    &index.inner.directories,
                    &terms,
                    lat,
                    lng,
                    &|_| true,
                    budget,
                )
            })
            .unwrap()
    }

    #[test]
    fn the_walk_finds_exactly_the_nearest_titles_across_chunks_and_overlapping_regions() {
        let syllables = ["san", "ta", "ro", "ma", "via", "del", "mon", "te"];
        let mut rng = StdRng::seed_from_u64(3);
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
        let mut rows = Vec::new();
        for region in ["north", "south", "world"] {
            let mut csv = String::from("name,lat,lng\n");
            for _ in 0..6_000 {
                // Many words share the prefix "stra": long prefixes are cut or expanded.
                let name = format!(
                    "{}{} {} stra{}",
                    syllables[(rng.next_u64() % 8) as usize],
                    syllables[(rng.next_u64() % 8) as usize],
                    syllables[(rng.next_u64() % 8) as usize],
                    rng.next_u64() % 200
                );
                let (lat, lng) = match region {
                    "north" => (
                        45.0 + rng.random::<f64>() * 3.0,
                        5.0 + rng.random::<f64>() * 3.0,
                    ),
                    "south" => (
                        44.0 + rng.random::<f64>() * 2.0,
                        6.0 + rng.random::<f64>() * 2.0,
                    ),
                    _ => (
                        rng.random::<f64>() * 180.0 - 90.0,
                        rng.random::<f64>() * 360.0 - 180.0,
                    ),
                };
                csv.push_str(&format!("{name},{lat},{lng}\n"));
                rows.push((name, lat, lng));
            }
            let report = index
                .import_region(
                    &TileId::parse(region).unwrap(),
                    &mut csv.as_bytes(),
                    &mut |_| {},
                )
                .unwrap();
            assert_eq!(report.rows, 6_000);
        }
        let points = [
            (46.0, 6.5),
            (44.0, 8.0),
            (0.0, 0.0),
            (-89.9, 179.9),
            (45.0, 5.0),
        ];
        // Exact with the full directories, with the sampled ones a quiet second leaves, and
        // with the full ones read again.
        for round in ["full", "sampled", "restored"] {
            match round {
                "sampled" => {
                    index.release_read_memory();
                    assert!(index.directories_sampled());
                }
                "restored" => {
                    index.restore_directories().unwrap();
                    assert!(!index.directories_sampled());
                    assert!(
                        lock(&index.inner.directories)
                            .values()
                            .all(|d| !d.is_sampled())
                    );
                }
                _ => {}
            }
            the_walk_is_exact(&index, &rows, &points, round);
        }
    }

    fn the_walk_is_exact(
        index: &SearchIndex,
        rows: &[(String, f64, f64)],
        points: &[(f64, f64)],
        round: &str,
    ) {
        for q in [
            "sa",
            "ro te",
            "santa",
            "\"via del\"",
            "monte",
            "stra",
            "stra1",
            "stra15",
            "stra15 ro",
            "stra199",
            "stra7 mon",
        ] {
            for &(lat, lng) in points {
                let got: Vec<(f64, String)> = nearest(index, q, lat, lng)
                    .into_iter()
                    .map(|p| ((p.lat - lat).powi(2) + (p.lng - lng).powi(2), p.title))
                    .collect();
                assert_eq!(
                    got,
                    brute_force(rows, q, lat, lng),
                    "{q:?} at {lat},{lng}, {round} directories"
                );
            }
        }
    }

    #[test]
    fn a_walk_over_many_matches_of_few_titles_stops_at_its_match_limit_and_whole_names_are_read() {
        // 8,000 places named alike within a degree of (0, 0), across eight 1,024-row chunks,
        // and one other name far away: past the limit (3,000 matches in unit tests) the walk
        // answers with the nearest of what it read instead of reading every match.
        let mut rng = StdRng::seed_from_u64(11);
        let mut csv = String::from("name,lat,lng\nSansansan Road,50,50\n");
        let mut nearest_street = f64::MAX;
        for _ in 0..8_000 {
            let (lat, lng) = (
                rng.random::<f64>() * 2.0 - 1.0,
                rng.random::<f64>() * 2.0 - 1.0,
            );
            nearest_street = nearest_street.min(lat * lat + lng * lng);
            csv.push_str(&format!("Sansansan Street,{lat},{lng}\n"));
        }
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(&dir.path().join("search.db")).unwrap();
        index
            .import_region(
                &TileId::parse("r").unwrap(),
                &mut csv.as_bytes(),
                &mut |_| {},
            )
            .unwrap();
        // Another import whose places have the query as a whole word only a few times: they
        // are read whatever the walk left out.
        let towns = "name,lat,lng\n\"Sansansan, Elsewhere\",-40,100\nSansansanville,-41,100\n";
        index
            .import_region(
                &TileId::parse("towns").unwrap(),
                &mut towns.as_bytes(),
                &mut |_| {},
            )
            .unwrap();
        let found = nearest(&index, "sansansan", 0.0, 0.0);
        let titles: Vec<&str> = found.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["Sansansan Street", "Sansansan, Elsewhere"]);
        assert_eq!(found[0].lat.powi(2) + found[0].lng.powi(2), nearest_street);
        // Near the other name, all are found: the street's nearest places come first.
        let titles: Vec<String> = nearest(&index, "sansansan", 50.0, 50.0)
            .into_iter()
            .map(|p| p.title)
            .collect();
        assert_eq!(
            titles,
            [
                "Sansansan Road",
                "Sansansan Street",
                "Sansansan, Elsewhere",
                "Sansansanville"
            ]
        );
    }

    #[test]
    fn grid_keys_nest_so_a_cell_is_one_range() {
        let key = grid_key(48.85, 2.35);
        let (x, y) = (grid(2.35 + 180.0), grid(48.85 + 90.0));
        for level in 0..=GRID_BITS {
            let shift = GRID_BITS - level;
            let cell = interleave(x >> shift, y >> shift);
            assert_eq!((key as u64 >> (2 * shift)) as u32, cell);
            assert_eq!(
                Directory::from_keys([key].into_iter()).range(level, cell),
                (0, 1)
            );
        }
        assert_eq!(grid(-5.0), 0);
        assert_eq!(grid(400.0), (1 << GRID_BITS) - 1);
    }
}
