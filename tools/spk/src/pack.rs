//! `spk pack`: the package's file tree gathered from the file list, `alwaysInclude` and the
//! source map (as Sandstorm's `spk pack` gathers it), written as an `Archive` message, signed and
//! compressed into an spk.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use capnp::message::{Builder, HeapAllocator};
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256, Sha512};

use crate::error::{Error, IoContext, Result};
use crate::keyring::Key;
use crate::package_capnp::{archive, signature};
use crate::pkgdef::PackageDefinition;
use crate::source_map::{self, Mapping};
use crate::{Limits, MAGIC};

/// What to pack and how.
pub struct Request<'a> {
    pub pkgdef: &'a PackageDefinition,
    /// The file list to use instead of the one the pkgdef names.
    pub file_list: Option<&'a Path>,
    /// Mappings searched before the pkgdef's own (e.g. `opt/app` → this checkout).
    pub extra_mappings: Vec<Mapping>,
    /// sandstorm-http-bridge from a Sandstorm install; without it the package cannot run.
    pub bridge: Option<&'a Path>,
    pub key: &'a Key,
    pub limits: Limits,
    pub effort: crate::xz::Effort,
}

/// A written package and what it holds.
pub struct Packed {
    pub spk: Vec<u8>,
    pub archive_bytes: u64,
    pub contents: Contents,
}

/// Counts and sizes of a package's files.
#[derive(Debug, Default, Clone)]
pub struct Contents {
    pub regular: u64,
    pub executable: u64,
    pub symlinks: u64,
    pub directories: u64,
    /// Bytes of file content (regular and executable).
    pub content_bytes: u64,
    /// Files whose content another file already holds: (path, the earlier path, bytes).
    pub duplicates: Vec<(String, String, u64)>,
}

impl Contents {
    pub fn files(&self) -> u64 {
        self.regular + self.executable + self.symlinks
    }
}

/// A node of the package tree before it is written.
#[derive(Default)]
struct Node {
    /// The file on this machine it comes from.
    source: Option<PathBuf>,
    /// Content made by the packer (manifest, bridge configuration, empty /proc/cpuinfo).
    generated: Option<Vec<u8>>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn follow(&mut self, path: &str) -> &mut Node {
        if path.is_empty() {
            return self;
        }
        path.split('/').fold(self, |node, part| {
            node.children.entry(part.to_owned()).or_default()
        })
    }
}

/// Builds, signs and compresses the package.
pub fn pack(request: &Request) -> Result<Packed> {
    let tree = gather(request)?;
    let mut contents = Contents::default();
    let archive = write_archive(&tree, request.limits, &mut contents)?;
    if archive.len() as u64 > request.limits.archive_bytes {
        return Err(Error::invalid(format!(
            "the package is {} bytes uncompressed; Sandstorm accepts at most {} bytes",
            archive.len(),
            request.limits.archive_bytes
        )));
    }

    let hash = Sha512::digest(&archive);
    let mut signed = request.key.signing.sign(&hash).to_bytes().to_vec();
    signed.extend_from_slice(&hash);
    let mut message = Builder::new_default();
    {
        let mut root = message.init_root::<signature::Builder>();
        root.set_public_key(request.key.signing.verifying_key().as_bytes());
        root.set_signature(&signed);
    }
    let signature = capnp::serialize::write_message_to_words(&message);

    let size = (signature.len() + archive.len()) as u64;
    let mut spk = MAGIC.to_vec();
    spk.extend(crate::xz::compress(
        signature.as_slice().chain(archive.as_slice()),
        size,
        request.effort,
    )?);
    Ok(Packed {
        spk,
        archive_bytes: archive.len() as u64,
        contents,
    })
}

/// The package tree: Sandstorm's fixed entries, the file list, then `alwaysInclude`.
fn gather(request: &Request) -> Result<Node> {
    let pkgdef = request.pkgdef;
    let mut search = request.extra_mappings.clone();
    search.extend(pkgdef.search_path.iter().cloned());
    let mut root = Node::default();

    // Mounted over by the supervisor in a grain, but they must exist.
    root.follow("dev");
    root.follow("tmp");
    root.follow("var");
    root.follow("proc/cpuinfo").generated = Some(Vec::new());
    root.follow("sandstorm-manifest").generated = Some(pkgdef.manifest.clone());
    if let Some(config) = &pkgdef.bridge_config {
        root.follow("sandstorm-http-bridge-config").generated = Some(config.clone());
        if let Some(bridge) = request.bridge {
            root.follow("sandstorm-http-bridge").source = Some(bridge.to_path_buf());
        }
    }

    let list_path = request
        .file_list
        .map(Path::to_path_buf)
        .or(pkgdef.file_list.clone());
    if let Some(list_path) = list_path {
        let list = std::fs::read_to_string(&list_path).at(&list_path)?;
        for (number, line) in list.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let origin = format!("{} line {}", list_path.display(), number + 1);
            add(&mut root, &search, line, false, &origin)?;
        }
    }
    for path in &pkgdef.always_include {
        add(&mut root, &search, path, true, "the pkgdef's alwaysInclude")?;
    }
    Ok(root)
}

/// Adds package path `path` (with everything under it when `recursive`).
fn add(
    root: &mut Node,
    search: &[Mapping],
    path: &str,
    recursive: bool,
    origin: &str,
) -> Result<()> {
    let path = if path == "." { "" } else { path };
    if path.starts_with('/')
        || path
            .split('/')
            .any(|part| part == "." || part == ".." || (part.is_empty() && !path.is_empty()))
    {
        return Err(Error::invalid(format!(
            "{origin}: `{path}` is not a package path (relative, no `.`, `..` or `//`)"
        )));
    }
    match path {
        // Made by the packer, not found on disk (as in Sandstorm's spk).
        "sandstorm-manifest"
        | "sandstorm-http-bridge-config"
        | "sandstorm-http-bridge"
        | "proc/cpuinfo" => return Ok(()),
        _ => {}
    }
    let found = source_map::find(search, path);
    if found.sources.is_empty() && found.virtual_children.is_empty() {
        return Err(Error::invalid(format!(
            "{origin}: no file found for `{path}` in the source map"
        )));
    }
    init(root.follow(path), search, path, found, recursive)
}

fn init(
    node: &mut Node,
    search: &[Mapping],
    path: &str,
    found: source_map::Found,
    recursive: bool,
) -> Result<()> {
    let primary_is_dir = found
        .sources
        .first()
        .map(|s| std::fs::symlink_metadata(s).is_ok_and(|m| m.is_dir()))
        .unwrap_or(true);
    if recursive && primary_is_dir {
        let mut children: std::collections::BTreeSet<String> =
            found.virtual_children.into_iter().collect();
        for source in &found.sources {
            if !std::fs::symlink_metadata(source).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            for entry in std::fs::read_dir(source).at(source)? {
                let entry = entry.at(source)?;
                children.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        for child in children {
            let sub = if path.is_empty() {
                child.clone()
            } else {
                format!("{path}/{child}")
            };
            let sub_found = source_map::find(search, &sub);
            if sub_found.sources.is_empty() && sub_found.virtual_children.is_empty() {
                continue; // hidden
            }
            init(node.follow(&child), search, &sub, sub_found, recursive)?;
        }
    }
    if let Some(first) = found.sources.into_iter().next() {
        node.source = Some(first);
    }
    Ok(())
}

/// The Archive message of `root`, framed as Sandstorm writes it (segment table first).
fn write_archive(root: &Node, limits: Limits, contents: &mut Contents) -> Result<Vec<u8>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let total = content_bytes(root, "", limits)?;
    if total > limits.archive_bytes {
        return Err(Error::invalid(format!(
            "the package's files add up to {total} bytes; Sandstorm accepts at most {} bytes",
            limits.archive_bytes
        )));
    }
    // One segment for the whole archive: content plus its bookkeeping.
    let words = (total / 8 + (1 << 17)) as u32;
    let mut message = Builder::new(HeapAllocator::new().first_segment_words(words));
    let mut seen = HashMap::new();
    {
        let archive = message.init_root::<archive::Builder>();
        let mut writer = Writer {
            limits,
            now,
            contents,
            seen: &mut seen,
        };
        let files = archive.init_files(root.children.len() as u32);
        writer.children(files, "", root)?;
    }
    Ok(capnp::serialize::write_message_to_words(&message))
}

/// The bytes of content under `node` (`path`), refusing any file over the limits before a byte
/// is read.
fn content_bytes(node: &Node, path: &str, limits: Limits) -> Result<u64> {
    let mut total = node.generated.as_ref().map_or(0, |g| g.len() as u64);
    if let Some(source) = &node.source {
        let meta = std::fs::symlink_metadata(source).at(source)?;
        if meta.is_file() {
            if meta.len() > limits.file_bytes {
                return Err(Error::invalid(format!(
                    "{} (`{path}`): {} bytes; Sandstorm packages hold files of at most {} bytes",
                    source.display(),
                    meta.len(),
                    limits.file_bytes
                )));
            }
            total += meta.len();
        }
    }
    for (name, child) in &node.children {
        let sub = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        total += content_bytes(child, &sub, limits)?;
    }
    Ok(total)
}

struct Writer<'a> {
    limits: Limits,
    now: i64,
    contents: &'a mut Contents,
    /// SHA-256 of each content seen → its path, to report duplicates.
    seen: &'a mut HashMap<[u8; 32], String>,
}

impl Writer<'_> {
    fn children(
        &mut self,
        mut list: capnp::struct_list::Builder<archive::file::Owned>,
        parent: &str,
        node: &Node,
    ) -> Result<()> {
        for (index, (name, child)) in node.children.iter().enumerate() {
            let path = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}/{name}")
            };
            let mut file = list.reborrow().get(index as u32);
            file.set_name(name);
            self.file(file, &path, child)?;
        }
        Ok(())
    }

    fn file(&mut self, mut file: archive::file::Builder, path: &str, node: &Node) -> Result<()> {
        if let Some(data) = &node.generated {
            file.set_last_modification_time_ns(self.now);
            file.set_regular(data);
            self.contents.regular += 1;
            self.contents.content_bytes += data.len() as u64;
            return Ok(());
        }
        let Some(source) = &node.source else {
            file.set_last_modification_time_ns(self.now);
            self.contents.directories += 1;
            let list = file.init_directory(node.children.len() as u32);
            return self.children(list, path, node);
        };
        let meta = std::fs::symlink_metadata(source).at(source)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(self.now, |d| d.as_nanos() as i64);
        file.set_last_modification_time_ns(mtime);
        let kind = meta.file_type();
        if kind.is_dir() {
            self.contents.directories += 1;
            let list = file.init_directory(node.children.len() as u32);
            return self.children(list, path, node);
        }
        if !node.children.is_empty() {
            return Err(Error::invalid(format!(
                "`{path}` is a directory in the package but {} is not one",
                source.display()
            )));
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(source).at(source)?;
            let target = target.to_str().ok_or_else(|| {
                Error::invalid(format!(
                    "{}: the link's target is not UTF-8",
                    source.display()
                ))
            })?;
            file.set_symlink(target);
            self.contents.symlinks += 1;
            return Ok(());
        }
        if !kind.is_file() {
            return Err(Error::invalid(format!(
                "{}: not a regular file, directory or symbolic link; it cannot be packed",
                source.display()
            )));
        }
        let size = meta.len();
        if size > self.limits.file_bytes {
            return Err(Error::invalid(format!(
                "{}: {size} bytes; Sandstorm packages hold files of at most {} bytes",
                source.display(),
                self.limits.file_bytes
            )));
        }
        let executable = meta.permissions().mode() & 0o100 != 0;
        let buffer = if executable {
            self.contents.executable += 1;
            file.init_executable(size as u32)
        } else {
            self.contents.regular += 1;
            file.init_regular(size as u32)
        };
        File::open(source)
            .and_then(|mut f| f.read_exact(buffer))
            .at(source)?;
        self.contents.content_bytes += size;
        if size > 0 {
            let digest: [u8; 32] = Sha256::digest(&*buffer).into();
            if let Some(first) = self.seen.get(&digest) {
                self.contents
                    .duplicates
                    .push((path.to_owned(), first.clone(), size));
            } else {
                self.seen.insert(digest, path.to_owned());
            }
        }
        Ok(())
    }
}
