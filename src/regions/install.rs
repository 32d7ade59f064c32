//! Installing a downloaded region: its parts, concatenated, are a gzip'd tar holding
//! `pkg/tiles.pmtiles` and `pkg/search.csv` (CONTRACT §5). They are decompressed and
//! unpacked as one stream, so memory stays bounded whatever the region's size, and each part
//! is read as soon as the download has verified it (see [`super::gate`]), so unpacking
//! overlaps the download instead of following it.
//!
//! Order, so that a crash at any point leaves the old state or the new one: search rows are
//! imported (one transaction), then the tiles are renamed into place, then the marker is
//! written. Until the marker exists the region is not installed, and a restart cleans up.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::download::Stop;
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

/// Counts what passes through, for import progress.
struct Counting<'a, R> {
    inner: R,
    on_read: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// What an install reports on the way: the search CSV's size once known, then bytes read.
pub enum Step {
    SearchSize(u64),
    SearchRead(u64),
}

/// Installs region `id` from `parts`, reading part `i` only once `wait(i)` returns (the
/// download may still be fetching later ones; an error from `wait` abandons the install).
pub fn install(
    layout: &Layout,
    search: &SearchIndex,
    id: &TileId,
    parts: Vec<PathBuf>,
    wait: &dyn Fn(usize) -> io::Result<()>,
    work_dir: &Path,
    report: &mut dyn FnMut(Step),
) -> Result<ImportReport, Stop> {
    let tiles_tmp = work_dir.join("tiles.pmtiles.tmp");
    let tripped = Tripped::default();
    let parts = Concatenated {
        files: parts.into_iter().enumerate(),
        current: None,
        wait,
    };
    let result = unpack(
        search,
        id,
        parts,
        &tiles_tmp,
        layout.root(),
        &tripped,
        report,
    )
    .and_then(|imported| {
        finish(layout, id, &tiles_tmp)?;
        Ok(imported)
    })
    // A bound crossed is the reason, whatever the readers above made of it.
    .map_err(|stop| tripped.take().unwrap_or(stop));
    if result.is_err() {
        let _ = std::fs::remove_file(&tiles_tmp);
        if let Err(e) = search.delete_region(id) {
            tracing::error!("region {id}: cannot remove the rows of a failed install: {e}");
        }
    }
    result
}

fn unpack(
    search: &SearchIndex,
    id: &TileId,
    parts: Concatenated,
    tiles_tmp: &Path,
    disk_root: &Path,
    tripped: &Tripped,
    report: &mut dyn FnMut(Step),
) -> Result<ImportReport, Stop> {
    let (stream, compressed) = Compressed::new(parts);
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(256 * 1024, stream));
    let unpacked = Expansion::new(gz, compressed, disk_root.to_path_buf(), tripped.clone());
    let mut archive = tar::Archive::new(unpacked);
    let damaged = |e: io::Error| {
        Stop::Failed(format!(
            "the downloaded archive is damaged ({e}); try again"
        ))
    };
    let mut tiles_done = false;
    let mut imported = None;
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
            (SEARCH_MEMBER, tar::EntryType::Regular) if imported.is_none() => {
                report(Step::SearchSize(entry.size()));
                let mut counted = Counting {
                    inner: CsvBounds::new(&mut entry, tripped.clone()),
                    on_read: &mut |n| report(Step::SearchRead(n)),
                };
                let rows = search
                    .import_region(id, &mut counted, &mut |_| {})
                    .map_err(|e| match e {
                        AppError::InsufficientStorage(message) => Stop::NoRoom(message),
                        e => Stop::Failed(format!("the search data could not be imported: {e}")),
                    })?;
                imported = Some(rows);
            }
            _ => {
                return Err(Stop::Refused(format!(
                    "the archive holds an unexpected member {shown:?} ({kind:?}); it was not installed"
                )));
            }
        }
    }
    match (tiles_done, imported) {
        (true, Some(rows)) => {
            // The region counts as installed only with tiles the tile server can read.
            crate::tiles::validate::check_file(tiles_tmp).map_err(Stop::Refused)?;
            Ok(rows)
        }
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
