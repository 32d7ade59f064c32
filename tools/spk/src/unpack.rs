//! `spk unpack`: a verified package's file tree written to a new directory, as a grain would see
//! it as `/` (executables 0755, other files 0644, links as they are, modification times kept).

use std::fs::{File, FileTimes};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, IoContext, Result};
use crate::package_capnp::archive;
use crate::verify::Opened;

/// Writes the archive of `opened` into `out`, which must not exist yet or be an empty directory.
pub fn unpack(opened: &Opened, out: &Path) -> Result<()> {
    if out.exists() && std::fs::read_dir(out).at(out)?.next().is_some() {
        return Err(Error::invalid(format!(
            "{}: not empty; unpack into a new directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).at(out)?;
    let files = opened
        .archive
        .get_root::<archive::Reader>()
        .and_then(|root| root.get_files())
        .map_err(|e| Error::invalid(format!("the archive is malformed: {e}")))?;
    write_dir(files, out)
}

fn write_dir(files: capnp::struct_list::Reader<archive::file::Owned>, dir: &Path) -> Result<()> {
    let bad = |e: capnp::Error| Error::invalid(format!("the archive is malformed: {e}"));
    for file in files.iter() {
        // Names were checked by `verify`: no separators, `.`, `..` or duplicates.
        let name = file
            .get_name()
            .map_err(bad)?
            .to_str()
            .map_err(|e| bad(e.into()))?;
        let path = dir.join(name);
        let mtime =
            UNIX_EPOCH + Duration::from_nanos(file.get_last_modification_time_ns().max(0) as u64);
        match file.which().map_err(|e| bad(e.into()))? {
            archive::file::Regular(data) => write_file(&path, data.map_err(bad)?, 0o644, mtime)?,
            archive::file::Executable(data) => write_file(&path, data.map_err(bad)?, 0o755, mtime)?,
            archive::file::Symlink(target) => {
                let target = target.map_err(bad)?.to_str().map_err(|e| bad(e.into()))?;
                symlink(target, &path).at(&path)?;
            }
            archive::file::Directory(children) => {
                std::fs::create_dir(&path).at(&path)?;
                write_dir(children.map_err(bad)?, &path)?;
                File::open(&path)
                    .and_then(|d| d.set_times(FileTimes::new().set_modified(mtime)))
                    .at(&path)?;
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, data: &[u8], mode: u32, mtime: std::time::SystemTime) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .at(path)?;
    file.write_all(data).at(path)?;
    file.set_times(FileTimes::new().set_modified(mtime))
        .at(path)?;
    Ok(())
}
