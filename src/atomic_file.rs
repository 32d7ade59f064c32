//! Replacing a file so that a reader, or a crash at any moment, sees the old file or the new
//! one and never half of either: write a temporary file beside it, fsync, rename, fsync the
//! directory.

use std::io::Write;
use std::path::Path;

use crate::error::{AppError, Result};

/// Replaces `path` with `bytes` so that a reader or a crash sees the old file or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| AppError::internal("saving a file", e.error))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
