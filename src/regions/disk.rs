//! Free disk space, asked before a download and before an install so a region that cannot
//! fit fails with a clear message instead of filling the grain's disk; and a little space
//! held back, so that deleting a region, the way out of a full disk, works on a full disk.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// Set to a number of bytes to pretend the disk has only that much free (for tests).
pub const FREE_BYTES_OVERRIDE: &str = "DESERT_ATLAS_FREE_BYTES";

pub fn free_bytes(path: &Path) -> Option<u64> {
    if let Some(v) = std::env::var(FREE_BYTES_OVERRIDE)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(v);
    }
    real_free_bytes(path)
}

/// What the filesystem says, whatever [`FREE_BYTES_OVERRIDE`] pretends.
fn real_free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Free space an install leaves on the disk while it unpacks, for everything else the grain
/// writes (bookmarks, the queue).
pub const KEEP_FREE: u64 = 8 * 1024 * 1024;

/// Room a region needs, as a multiple of its download: the parts, the unpacked tiles and the
/// search rows.
pub const INSTALL_FACTOR: u64 = 3;

/// Fails with a sentence when `needed` bytes do not fit under `path`.
pub fn ensure_room(path: &Path, needed: u64) -> Result<(), String> {
    match free_bytes(path) {
        Some(free) if free < needed => Err(format!(
            "not enough disk space: this region needs about {} MB and the grain has {} MB free; delete a region to make room",
            needed / 1_000_000 + 1,
            free / 1_000_000
        )),
        _ => Ok(()),
    }
}

/// Size of the space held back for deletes: a delete is recorded in the queue (SQLite) before
/// anything is removed, and that write needs a few pages.
pub const RESERVE_BYTES: u64 = 1024 * 1024;

/// A file of [`RESERVE_BYTES`] that holds space back. On a full disk, a delete removes it to
/// be recorded; it is written again once the disk has room.
pub struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub fn new(path: PathBuf) -> Reserve {
        Reserve { path }
    }

    /// Writes the reserve if it is missing and the disk has room for it beyond
    /// [`KEEP_FREE`]. Failing leaves no partial file.
    pub fn refill(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return;
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        if real_free_bytes(dir).is_none_or(|free| free < RESERVE_BYTES + KEEP_FREE) {
            return;
        }
        // Zeros written, not a sparse file: the blocks must really be taken.
        let written = File::create(&self.path).and_then(|mut file| {
            let zeros = vec![0u8; 64 * 1024];
            for _ in 0..RESERVE_BYTES / zeros.len() as u64 {
                file.write_all(&zeros)?;
            }
            file.sync_all()
        });
        if let Err(e) = written {
            tracing::warn!("cannot hold back space for deletes: {e}");
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Runs `write`; if the disk is full, frees the reserve and runs it once more.
    pub fn or_release<T>(&self, write: impl Fn() -> Result<T, AppError>) -> Result<T, AppError> {
        match write() {
            Err(AppError::InsufficientStorage(_)) if std::fs::remove_file(&self.path).is_ok() => {
                tracing::info!("the disk is full: space held back for deletes released");
                write()
            }
            other => other,
        }
    }
}
