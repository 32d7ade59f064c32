//! Installing a downloaded region: its parts, concatenated, are a gzip'd tar holding
//! `pkg/tiles.pmtiles` and `pkg/search.csv` (docs/api.md §5). They are decompressed and
//! unpacked as one stream, so memory stays bounded whatever the region's size, and each part
//! is read as soon as the download has verified it (see [`super::handoff`]), so unpacking
//! overlaps the download instead of following it. The search rows are set aside on disk
//! meanwhile ([`super::spool`]) and imported once every part is in.
//!
//! Order, so that a crash at any point leaves the old state or the new one: search rows are
//! imported (one transaction), then the tiles are renamed into place, then the marker is
//! written. The marker is the one step that makes the region installed: until it exists
//! neither the region's rows nor its tiles are shown, and a restart removes them.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::download::Stop;
use super::spool;
use super::unpack_limits::{Compressed, CsvBounds, Expansion, Tripped};
use crate::error::{AppError, DISK_FULL, is_disk_full};
use crate::layout::Layout;
use crate::search::{ImportReport, SearchIndex};
use crate::tile_id::TileId;

const TILES_MEMBER: &[u8] = b"pkg/tiles.pmtiles";
const SEARCH_MEMBER: &[u8] = b"pkg/search.csv";

/// Reads several files as one, each once `wait` says it is ready.
struct Concatenated<'a> {
    files: std::iter::Enumerate<std::vec::IntoIter<PathBuf>>,
    current: Option<File>,
    wait: &'a dyn Fn(usize) -> io::Result<()>,
}

impl Read for Concatenated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(file) = &mut self.current {
                let n = file.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            match self.files.next() {
                Some((index, path)) => {
                    (self.wait)(index)?;
                    self.current = Some(File::open(path)?);
                }
                None => return Ok(0),
            }
        }
    }
}

/// What an install reports on the way, in rows: the search rows in the archive once they are
/// set aside, then how many are imported so far.
pub enum Step {
    SearchRows(u64),
    SearchImported(u64),
}

/// A region's downloaded parts: part `i` is read only once `wait(i)` returns (the download
/// may still be fetching later ones; an error from `wait` abandons the install).
pub struct Parts<'a> {
    pub paths: Vec<PathBuf>,
    pub wait: &'a dyn Fn(usize) -> io::Result<()>,
}

/// Installs region `id` from `parts`. `cancel` stops the import of the search rows (a
/// delete, a shutdown).
pub fn install(
    layout: &Layout,
    search: &SearchIndex,
    id: &TileId,
    parts: Parts<'_>,
    work_dir: &Path,
    cancel: &CancellationToken,
    report: &mut dyn FnMut(Step),
) -> Result<ImportReport, Stop> {
    let tiles_tmp = work_dir.join("tiles.pmtiles.tmp");
    let search_csv = work_dir.join("search.csv");
    let tripped = Tripped::default();
    let result = unpack(
        parts,
        &tiles_tmp,
        &search_csv,
        layout.root(),
        &tripped,
        report,
    )
    .and_then(|()| import(search, id, &search_csv, cancel, report))
    .and_then(|imported| {
        finish(layout, id, &tiles_tmp)?;
        Ok(imported)
    })
    // A bound crossed is the reason, whatever the readers above made of it.
    .map_err(|stop| tripped.take().unwrap_or(stop));
    let _ = std::fs::remove_file(&search_csv);
    if result.is_err() {
        let _ = std::fs::remove_file(&tiles_tmp);
        if let Err(e) = search.delete_region(id) {
            tracing::error!("region {id}: cannot remove the rows of a failed install: {e}");
        }
    }
    result
}

/// Imports the rows set aside in `search_csv`: the search writer is held for local reads only.
fn import(
    search: &SearchIndex,
    id: &TileId,
    search_csv: &Path,
    cancel: &CancellationToken,
    report: &mut dyn FnMut(Step),
) -> Result<ImportReport, Stop> {
    let file = File::open(search_csv).map_err(file_failure("cannot read the search rows"))?;
    let mut csv = spool::Cancellable {
        inner: BufReader::with_capacity(256 * 1024, file),
        cancel: cancel.clone(),
    };
    let imported =
        search.import_region(id, &mut csv, &mut |rows| report(Step::SearchImported(rows)));
    if cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    let imported = imported.map_err(|e| match e {
        AppError::InsufficientStorage(message) => Stop::NoRoom(message),
        e => Stop::Failed(format!("the search data could not be imported: {e}")),
    })?;
    // Malformed rows were read too: every row of the archive is dealt with.
    report(Step::SearchImported(imported.rows + imported.bad_rows));
    Ok(imported)
}

fn unpack(
    parts: Parts<'_>,
    tiles_tmp: &Path,
    search_csv: &Path,
    disk_root: &Path,
    tripped: &Tripped,
    report: &mut dyn FnMut(Step),
) -> Result<(), Stop> {
    let stream = Concatenated {
        files: parts.paths.into_iter().enumerate(),
        current: None,
        wait: parts.wait,
    };
    let (stream, compressed) = Compressed::new(stream);
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(256 * 1024, stream));
    let unpacked = Expansion::new(gz, compressed, disk_root.to_path_buf(), tripped.clone());
    let mut archive = tar::Archive::new(unpacked);
    let damaged = |e: io::Error| {
        Stop::Failed(format!(
            "the downloaded archive is damaged ({e}); try again"
        ))
    };
    let mut tiles_done = false;
    let mut spooled = false;
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let kind = entry.header().entry_type();
        let path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&path).into_owned();
        match (path.as_slice(), kind) {
            (b"pkg/" | b"pkg", tar::EntryType::Directory) => {}
            (TILES_MEMBER, tar::EntryType::Regular) if !tiles_done => {
                write_file(&mut entry, tiles_tmp)?;
                tiles_done = true;
            }
            (SEARCH_MEMBER, tar::EntryType::Regular) if !spooled => {
                let mut bounded = CsvBounds::new(&mut entry, tripped.clone());
                let rows = spool::spool(&mut bounded, search_csv)
                    .map_err(file_failure("cannot set the search rows aside"))?;
                report(Step::SearchRows(rows));
                spooled = true;
            }
            _ => {
                return Err(Stop::Refused(format!(
                    "the archive holds an unexpected member {shown:?} ({kind:?}); it was not installed"
                )));
            }
        }
    }
    match (tiles_done, spooled) {
        // The region counts as installed only with tiles the tile server can read.
        (true, true) => crate::tiles::validate::check_file(tiles_tmp).map_err(Stop::Refused),
        _ => Err(Stop::Refused(
            "the archive lacks pkg/tiles.pmtiles or pkg/search.csv; it was not installed".into(),
        )),
    }
}

/// A file operation's failure as the region's: the disk being full, or `doing` failing.
fn file_failure(doing: &'static str) -> impl Fn(io::Error) -> Stop + Copy {
    move |e| {
        if is_disk_full(&e) {
            Stop::NoRoom(DISK_FULL.into())
        } else {
            Stop::Failed(format!("{doing}: {e}"))
        }
    }
}

fn write_file(from: &mut impl Read, to: &Path) -> Result<(), Stop> {
    let fail = file_failure("cannot write the region's tiles");
    let mut file = File::create(to).map_err(fail)?;
    io::copy(from, &mut file).map_err(fail)?;
    file.flush().map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}

/// Moves the tiles into place and writes the marker, each made durable before the next.
fn finish(layout: &Layout, id: &TileId, tiles_tmp: &Path) -> Result<(), Stop> {
    let fail = file_failure("cannot put the region in place");
    std::fs::rename(tiles_tmp, layout.tiles_file(id)).map_err(fail)?;
    File::open(layout.tiles_dir())
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    File::create(layout.installed_marker(id))
        .and_then(|f| f.sync_all())
        .map_err(fail)?;
    File::open(layout.search_imported_dir())
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}
