//! Free disk space, asked before a download and before an install so a region that cannot
//! fit fails with a clear message instead of filling the grain's disk.

use std::path::Path;

/// Set to a number of bytes to pretend the disk has only that much free (for tests).
pub const FREE_BYTES_OVERRIDE: &str = "DESERT_ATLAS_FREE_BYTES";

pub fn free_bytes(path: &Path) -> Option<u64> {
    if let Some(v) = std::env::var(FREE_BYTES_OVERRIDE)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(v);
    }
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
