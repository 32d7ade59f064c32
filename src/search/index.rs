//! The place index in `search.db`, searched nearest-first.
//!
//! Layout (see docs/search.md for why):
//!
//! - `place(id, name, lat, lng, importance, aliases)`: one plain row per place.
//! - `import(id, tile_id, rows, important)`: one row per installed region (or the base map).
//! - `chunk(id, import_id, rows, cells)`: an import's places come in chunks of at most
//!   [`CHUNK_ROWS`] rows. A chunk's places are sorted along a Z-order curve of a fine grid and
//!   get the ids `chunk id << ROWID_SHIFT | position`, so every grid cell at every size is one
//!   contiguous id range; `cells` holds the sorted grid keys, the directory to those ranges.
//! - `words_<import id>`: a contentless FTS5 table of that import's normalised names (column
//!   `t`) and the marker `imp` for important places (column `k`), under the same ids.
//!
//! Replacing a region drops its FTS table and id ranges and writes new ones, in one
//! transaction; readers (WAL) keep seeing the old rows until it commits.
//!
//! Nearest-first without reading every match: for a distance `r`, the grid cells of size at
//! least `r` around the query point hold every place within `r`. The search asks FTS5 for the
//! matches in those cells' id ranges, finest cells first, and stops as soon as at least
//! [`MAX_RESULTS`] distinct titles lie within `r`: those are exactly the nearest ones.
//! Distance is the squared difference in degrees, as the old version measured it.
//!
//! A search for "Paris" near Texas should still offer Paris, France: besides the nearest
//! matches, the [`IMPORTANT_SLOTS`] most important matching places always make the list,
//! which is then ordered by distance like the rest (see docs/search.md).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::normalize::{normalize, normalize_into};
use super::query::{Term, fts_filter, matches_terms, parse};
use crate::db::number;
use crate::error::{AppError, Result};
use crate::memory::trim_heap;
use crate::tile_id::TileId;

pub const MAX_RESULTS: usize = 50;
/// How many of the most important matches are always offered, wherever the user is.
pub const IMPORTANT_SLOTS: usize = 5;
/// Places at least this important (a population, say) get the `imp` marker.
pub const IMPORTANT_FROM: f64 = 100_000.0;
/// How often the import reports progress, in rows.
const PROGRESS_EVERY: u64 = 10_000;
/// Rows sorted and written together; bounds the memory an import needs. Unit tests use small
/// chunks, so that a few thousand rows span many of them.
const CHUNK_ROWS: usize = if cfg!(test) { 1 << 10 } else { 1 << 16 };
/// A place's id is its chunk's id shifted by this, plus its position in the chunk.
const ROWID_SHIFT: u32 = 20;
const _: () = assert!(CHUNK_ROWS <= 1 << ROWID_SHIFT);
/// Page cache of each connection, in KiB (negative: SQLite's unit for a size in KiB). The
/// index's pages are read from the system's file cache in microseconds, so a bigger cache
/// hardly helps: at 1,000,000 places, 8 MB and 0.5 MB per connection gave the same import
/// rate and search latency (docs/search.md), while during a region's install the writer's
/// and the readers' caches made up 15 MB of the server's peak memory.
const CACHE_KIB: i64 = -2048;
/// Bits per axis of the finest grid (cells of 360 / 2^16 degrees, about 600 m).
const GRID_BITS: u32 = 16;

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
    directories: Mutex<HashMap<i64, Arc<[u32]>>>,
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
const IMPORTANT_MARK: &str = " _imp";

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
            }),
        })
    }

    fn with_reader<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = crate::db::open(&self.inner.path)?;
                conn.pragma_update(None, "cache_size", CACHE_KIB)?;
                // A few statements per import (their table names differ).
                conn.set_prepared_statement_cache_capacity(128);
                conn
            }
        };
        let out = work(&conn);
        lock(&self.inner.readers).push(conn);
        out
    }

    /// Empties what reads keep for the next read: the idle connections' page caches (up to
    /// 2 MB each) and the chunk directories (4 bytes a place). Worth keeping while a user
    /// types, not while the grain sits idle; the next search reads them again. Called once
    /// requests stop (`crate::quiet`).
    pub fn release_read_memory(&self) {
        *lock(&self.inner.directories) = HashMap::new();
        for conn in lock(&self.inner.readers).iter() {
            if let Err(e) = conn.release_memory() {
                tracing::debug!("could not release a search reader's cache: {e}");
            }
        }
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

    /// Up to [`MAX_RESULTS`] places matching `query`, nearest to (lat, lng) first, one per title.
    pub fn search(&self, query: &str, lat: f64, lng: f64) -> Result<Vec<Place>> {
        let terms = parse(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        self.with_reader(|conn| {
            // One snapshot for every statement: an import may commit meanwhile.
            let tx = conn.unchecked_transaction()?;
            let found = search_with(&tx, &self.inner.directories, &terms, lat, lng);
            tx.finish()?;
            found
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
    /// "北京" for Beijing).
    fn new(name: &str, lat: f64, lng: f64, importance: f64, aliases: &str) -> Self {
        let mut text = String::with_capacity(name.len() * 2 + aliases.len() + 8);
        text.push_str(name);
        let name_end = text.len();
        normalize_into(&mut text, name);
        let mut alias_range = (0, 0);
        if !aliases.is_empty() {
            text.push(' ');
            let start = text.len();
            normalize_into(&mut text, aliases);
            alias_range = (start as u32, text.len() as u32);
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
        let Some(place) = parse_row(&record) else {
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

fn parse_row(record: &csv::ByteRecord) -> Option<NewPlace> {
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
    if !valid {
        return None;
    }
    let aliases = field(4).unwrap_or_default();
    Some(NewPlace::new(name, lat, lng, importance, aliases))
}

/// The writer's side of an import: one transaction, committed only on `Commit`.
/// Returns the directories of the chunks written, for the readers' cache.
fn write_import(
    conn: &mut Connection,
    tile_id: &TileId,
    chunks: Receiver<Message>,
    give_back: SyncSender<Vec<NewPlace>>,
) -> Result<Vec<(i64, Arc<[u32]>)>> {
    let tx = conn.transaction()?;
    let mut import = ImportWriter::begin(&tx, tile_id.as_str())?;
    let mut directories = Vec::new();
    for message in chunks {
        match message {
            Message::Chunk(mut places) => {
                let id = import.write_chunk(&tx, &places)?;
                directories.push((id, places.iter().map(|p| p.key).collect()));
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

fn interleave(x: u32, y: u32) -> u32 {
    fn spread(v: u32) -> u32 {
        let mut v = v & 0xffff;
        v = (v | (v << 8)) & 0x00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333;
        (v | (v << 1)) & 0x5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// A match, with its squared distance from the query point.
struct Candidate {
    place: Place,
    distance: f64,
    importance: f64,
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
    cells: Arc<[u32]>,
}

fn load_chunks(
    conn: &Connection,
    cache: &Mutex<HashMap<i64, Arc<[u32]>>>,
) -> Result<(Vec<ImportInfo>, Vec<ChunkInfo>)> {
    let mut imports = Vec::new();
    let mut position = HashMap::new();
    {
        let mut stmt = conn.prepare_cached("SELECT id, tile_id, important FROM import")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            position.insert(id, imports.len());
            imports.push(ImportInfo {
                id,
                tile_id: row.get(1)?,
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
    for (id, import_id) in listed {
        let Some(&import) = position.get(&import_id) else {
            continue;
        };
        let cached = lock(cache).get(&id).cloned();
        let cells = match cached {
            Some(cells) => cells,
            None => {
                let blob: Vec<u8> =
                    conn.query_row("SELECT cells FROM chunk WHERE id = ?1", [id], |r| r.get(0))?;
                let cells: Arc<[u32]> = blob
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                lock(cache).insert(id, cells.clone());
                cells
            }
        };
        chunks.push(ChunkInfo { id, import, cells });
    }
    let mut cache = lock(cache);
    if cache.len() > chunks.len() {
        let live: HashSet<i64> = chunks.iter().map(|c| c.id).collect();
        cache.retain(|id, _| live.contains(id));
    }
    Ok((imports, chunks))
}

/// The positions in a sorted key list of the keys in the cell `cell` at `level` bits per axis.
fn cell_range(cells: &[u32], level: u32, cell: u32) -> (usize, usize) {
    let shift = 2 * (GRID_BITS - level);
    let lo = (cell as u64) << shift;
    let hi = (cell as u64 + 1) << shift;
    let start = cells.partition_point(|&k| (k as u64) < lo);
    let end = start + cells[start..].partition_point(|&k| (k as u64) < hi);
    (start, end)
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
        if check {
            let mut matched = normalize(&name);
            if let Some(aliases) = row.get::<_, Option<String>>(4)? {
                matched.push(' ');
                matched.push_str(&aliases);
            }
            if !matches_terms(terms, &matched) {
                continue;
            }
        }
        let (Some(plat), Some(plng)) = (number(row.get_ref(1)?), number(row.get_ref(2)?)) else {
            continue;
        };
        out.push(Candidate {
            place: Place {
                title: name,
                loc: [plat, plng],
                tile_id: import.tile_id.clone(),
            },
            distance: (plat - lat).powi(2) + (plng - lng).powi(2),
            importance: number(row.get_ref(3)?).unwrap_or(0.0),
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
/// Fewer matches than this in all are simply all read, without walking the grid.
const FEW_MATCHES: usize = 2000;

fn make_cell(chunks: &[ChunkInfo], level: u32, x: u32, y: u32, lat: f64, lng: f64) -> Cell {
    let key = interleave(x, y);
    let mut ranges = Vec::new();
    let mut rows = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let (a, b) = cell_range(&chunk.cells, level, key);
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

fn search_with(
    conn: &Connection,
    cache: &Mutex<HashMap<i64, Arc<[u32]>>>,
    terms: &[Term],
    lat: f64,
    lng: f64,
) -> Result<Vec<Place>> {
    let (imports, chunks) = load_chunks(conn, cache)?;
    let filters = imports
        .iter()
        .map(|import| fts_filter(terms, |prefix| words_starting(conn, import.id, prefix)))
        .collect::<Result<Vec<_>>>()?;
    let mut candidates = Vec::new();
    let mut best: HashMap<String, f64> = HashMap::new();
    // Best first: the cell nearest to the point next. Once the last of the results is nearer
    // than the nearest unread cell, nothing unread can change them.
    let mut cells = std::collections::BinaryHeap::new();
    if few_matches(conn, &imports, &filters)? {
        for (import, filter) in imports.iter().zip(&filters) {
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
                &mut candidates,
            )?;
        }
    } else {
        cells.push(make_cell(&chunks, 0, 0, 0, lat, lng));
    }
    // Places in the cells read so far, and FTS5 matches among them.
    let (mut rows_read, mut found) = (0, 0);
    while let Some(cell) = cells.pop() {
        if cell.rows == 0 {
            continue;
        }
        if last_result_distance(&best).is_some_and(|d| d < cell.min_distance) {
            break;
        }
        let read_up_to = if rows_read == 0 {
            READ_CELL_ROWS
        } else {
            READ_CELL_ROWS.max(rows_read * MATCHES_PER_READ / (found + 1))
        };
        if cell.rows > read_up_to && cell.level < GRID_BITS {
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let child = make_cell(
                    &chunks,
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
                &mut candidates,
            )?;
        }
        for c in &candidates[first..] {
            match best.get_mut(&c.place.title) {
                Some(d) => *d = d.min(c.distance),
                None => {
                    best.insert(c.place.title.clone(), c.distance);
                }
            }
        }
    }
    let mut nearest = nearest_per_title(candidates);
    nearest.truncate(MAX_RESULTS);

    let mut important = Vec::new();
    for (import, filter) in imports.iter().zip(&filters) {
        let Some((words, check)) = filter.as_ref().filter(|_| import.important) else {
            continue;
        };
        let expression = format!("{words} AND \"{}\"", IMPORTANT_MARK.trim());
        read_matches(
            conn,
            import,
            terms,
            (&expression, *check),
            i64::MIN,
            i64::MAX,
            lat,
            lng,
            &mut important,
        )?;
    }
    let mut important = nearest_per_title(important);
    important.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    important.truncate(IMPORTANT_SLOTS);
    // The important places take the slots of the farthest of the nearest ones.
    nearest.retain(|n| !important.iter().any(|i| i.place.title == n.place.title));
    nearest.truncate(MAX_RESULTS - important.len());
    nearest.extend(important);
    nearest.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(nearest.into_iter().map(|c| c.place).collect())
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
            // Earlier builds kept names and aliases in one matched text.
            let aliases = normalized
                .filter(|n| *n != normalize(&name))
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

    #[test]
    fn results_are_exact_across_many_chunks_and_overlapping_regions() {
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
            for (lat, lng) in points {
                let got: Vec<(f64, String)> = index
                    .search(q, lat, lng)
                    .unwrap()
                    .into_iter()
                    .map(|p| ((p.loc[0] - lat).powi(2) + (p.loc[1] - lng).powi(2), p.title))
                    .collect();
                assert_eq!(got, brute_force(&rows, q, lat, lng), "{q:?} at {lat},{lng}");
            }
        }
    }

    #[test]
    fn grid_keys_nest_so_a_cell_is_one_range() {
        let key = grid_key(48.85, 2.35);
        let (x, y) = (grid(2.35 + 180.0), grid(48.85 + 90.0));
        for level in 0..=GRID_BITS {
            let shift = GRID_BITS - level;
            let cell = interleave(x >> shift, y >> shift);
            assert_eq!((key as u64 >> (2 * shift)) as u32, cell);
            assert_eq!(cell_range(&[key], level, cell), (0, 1));
        }
        assert_eq!(grid(-5.0), 0);
        assert_eq!(grid(400.0), (1 << GRID_BITS) - 1);
    }
}
