//! `desert-atlas region pack`: makes a region package in the map-data server's format
//! (docs/api.md §5): `pkg/` with `tiles.pmtiles` and `search.csv`, tar'd, gzip'd, split into
//! parts of a fixed size, and an entry in `manifest.json` with each part's size and sha256.
//! Parts are written under temporary names and renamed when complete; the manifest is
//! replaced atomically, keeping the other regions in it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::cli::PackArgs;
use crate::tile_id::TileId;

pub fn run(args: &PackArgs) -> Result<(), String> {
    let id = TileId::parse(&args.id).ok_or("--id must be 1 to 100 letters, digits, '-' or '_'")?;
    if args.part_size == 0 {
        return Err("--part-size must be at least 1 byte".into());
    }
    let bounds = match &args.bounds {
        Some(text) => parse_bounds(text)?,
        None => header_bounds(&args.tiles)?,
    };
    File::open(&args.search).map_err(|e| format!("cannot read {}: {e}", args.search.display()))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let parts = write_parts(&id, args)?;
    let entry = json!({
        "files": parts.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "bounds": bounds,
        "sha256": parts.iter().map(|p| &p.sha256).collect::<Vec<_>>(),
        "bytes": parts.iter().map(|p| p.bytes).collect::<Vec<_>>(),
    });
    update_manifest(&args.out.join("manifest.json"), &id, entry)?;
    eprintln!(
        "desert-atlas: packed region {id} into {} part(s) in {}",
        parts.len(),
        args.out.display()
    );
    Ok(())
}

/// `MINLAT,MINLNG,MAXLAT,MAXLNG` → `[[minlat, minlng], [maxlat, maxlng]]`.
fn parse_bounds(text: &str) -> Result<[[f64; 2]; 2], String> {
    let n: Vec<f64> = text
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| "--bounds is MINLAT,MINLNG,MAXLAT,MAXLNG in degrees")?;
    match n.as_slice() {
        [a, b, c, d]
            if a.abs() <= 90.0 && c.abs() <= 90.0 && b.abs() <= 180.0 && d.abs() <= 180.0 =>
        {
            Ok([[*a, *b], [*c, *d]])
        }
        _ => Err("--bounds is MINLAT,MINLNG,MAXLAT,MAXLNG in degrees".into()),
    }
}

fn header_bounds(tiles: &Path) -> Result<[[f64; 2]; 2], String> {
    let mut header = vec![0u8; 127];
    File::open(tiles)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read the PMTiles header of {}: {e}", tiles.display()))?;
    let h = pmtiles::Header::try_from_bytes(header.into())
        .map_err(|e| format!("{} is not a PMTiles v3 archive: {e}", tiles.display()))?;
    Ok([
        [h.min_latitude, h.min_longitude],
        [h.max_latitude, h.max_longitude],
    ])
}

struct Part {
    name: String,
    bytes: u64,
    sha256: String,
}

/// Splits what is written into files of `part_size` bytes, hashing each.
struct PartWriter {
    dir: PathBuf,
    prefix: String,
    part_size: u64,
    done: Vec<Part>,
    current: Option<(File, Sha256, u64)>,
}

impl PartWriter {
    fn tmp_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!(".{}{index:02}.tmp", self.prefix))
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((file, hasher, bytes)) = self.current.take() {
            file.sync_all()?;
            self.done.push(Part {
                name: format!("{}{:02}", self.prefix, self.done.len()),
                bytes,
                sha256: hex::encode(hasher.finalize()),
            });
        }
        Ok(())
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, n)| *n >= self.part_size)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            let file = File::create(self.tmp_path(self.done.len()))?;
            self.current = Some((file, Sha256::new(), 0));
        }
        let Some((file, hasher, written)) = self.current.as_mut() else {
            return Ok(0);
        };
        let room = (self.part_size - *written).min(buf.len() as u64) as usize;
        let n = file.write(&buf[..room])?;
        hasher.update(&buf[..n]);
        *written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((file, _, _)) => file.flush(),
            None => Ok(()),
        }
    }
}

fn write_parts(id: &TileId, args: &PackArgs) -> Result<Vec<Part>, String> {
    let prefix = format!("{id}.tar.gz.");
    let mut parts = PartWriter {
        dir: args.out.clone(),
        prefix: prefix.clone(),
        part_size: args.part_size,
        done: Vec::new(),
        current: None,
    };
    let fail = |what: &str, e: io::Error| format!("cannot write the package ({what}): {e}");
    {
        let gz = flate2::write::GzEncoder::new(&mut parts, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        dir.set_mtime(0);
        tar.append_data(&mut dir, "pkg/", io::empty())
            .map_err(|e| fail("pkg/", e))?;
        for (source, name) in [
            (&args.tiles, "pkg/tiles.pmtiles"),
            (&args.search, "pkg/search.csv"),
        ] {
            let mut file =
                File::open(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
            tar.append_file(name, &mut file)
                .map_err(|e| fail(name, e))?;
        }
        let gz = tar.into_inner().map_err(|e| fail("tar", e))?;
        gz.finish().map_err(|e| fail("gzip", e))?;
    }
    parts.close_current().map_err(|e| fail("last part", e))?;
    for (index, part) in parts.done.iter().enumerate() {
        std::fs::rename(parts.tmp_path(index), args.out.join(&part.name))
            .map_err(|e| fail(&part.name, e))?;
    }
    // Parts of an earlier, longer package of the same region would be left dangling.
    for stale in parts.done.len().. {
        let path = args.out.join(format!("{prefix}{stale:02}"));
        if std::fs::remove_file(&path).is_err() {
            break;
        }
    }
    Ok(parts.done)
}

fn update_manifest(path: &Path, id: &TileId, entry: Value) -> Result<(), String> {
    let mut manifest: Map<String, Value> = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a JSON object ({e}); fix or remove it",
                path.display()
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    manifest.insert(id.to_string(), entry);
    let text = serde_json::to_vec_pretty(&Value::Object(manifest))
        .map_err(|e| format!("cannot write the manifest: {e}"))?;
    crate::atomic_file::write_atomically(path, &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
