//! `spk verify`: checks a package the way Sandstorm checks one before installing it — magic
//! number, xz stream, signature over the archive, size limits — and also what its archive holds
//! (file names, the manifest, whether sandstorm-http-bridge is there).

use std::collections::HashSet;
use std::io::Read;

use capnp::message::{Reader, ReaderOptions};
use capnp::serialize::OwnedSegments;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

use crate::app_id::{app_id, package_id};
use crate::error::{Error, Result};
use crate::pack::Contents;
use crate::package_capnp::{archive, manifest, signature};
use crate::{Limits, MAGIC};

/// The largest signature message read (a real one is 28 words).
const SIGNATURE_BYTES: u64 = 64 << 10;

/// What a verified package is.
#[derive(Debug, Clone)]
pub struct Verified {
    pub app_id: String,
    pub package_id: String,
    pub spk_bytes: u64,
    pub archive_bytes: u64,
    pub title: String,
    pub version: u32,
    pub marketing_version: String,
    pub contents: Contents,
    /// The package runs behind sandstorm-http-bridge (it has the bridge's configuration).
    pub needs_bridge: bool,
    /// `/sandstorm-http-bridge` is in the package.
    pub has_bridge: bool,
}

/// A verified package with its archive, ready to be unpacked.
pub struct Opened {
    pub verified: Verified,
    pub archive: Reader<OwnedSegments>,
}

/// Verifies the spk file content `spk`.
pub fn verify(spk: &[u8], limits: Limits) -> Result<Verified> {
    open(spk, limits).map(|opened| opened.verified)
}

/// Verifies `spk` and keeps its archive.
pub fn open(spk: &[u8], limits: Limits) -> Result<Opened> {
    let Some(compressed) = spk.strip_prefix(&MAGIC) else {
        return Err(Error::invalid(
            "not an spk: the file does not start with the spk magic number",
        ));
    };

    let mut plain = Vec::new();
    let ceiling = limits.archive_bytes + SIGNATURE_BYTES;
    crate::xz::decoder(compressed)?
        .take(ceiling + 1)
        .read_to_end(&mut plain)
        .map_err(|e| {
            Error::invalid(format!(
                "the package's compressed data is damaged or cut short (xz: {e})"
            ))
        })?;
    if plain.len() as u64 > ceiling {
        return Err(Error::invalid(format!(
            "the package unpacks to more than {ceiling} bytes; Sandstorm accepts at most {} bytes",
            limits.archive_bytes
        )));
    }

    let mut rest: &[u8] = &plain;
    let options =
        *ReaderOptions::new().traversal_limit_in_words(Some(SIGNATURE_BYTES as usize / 8));
    let signature_message = capnp::serialize::read_message(&mut rest, options)
        .map_err(|e| Error::invalid(format!("the signature is malformed: {e}")))?;
    let archive_bytes = rest;
    let (public_key, hash) = check_signature(&signature_message, archive_bytes)?;
    if archive_bytes.len() as u64 > limits.archive_bytes {
        return Err(Error::invalid(format!(
            "the archive is {} bytes; Sandstorm accepts at most {} bytes",
            archive_bytes.len(),
            limits.archive_bytes
        )));
    }
    debug_assert_eq!(hash.len(), 64);

    let mut archive_rest = archive_bytes;
    // Checking, reading the manifest and unpacking each read the tree once; a limit of a few
    // times its size allows that and still stops a message whose pointers share data to make
    // readers go round in circles.
    let words = (archive_bytes.len() / 8 + 1024) * 4;
    let archive = capnp::serialize::read_message(
        &mut archive_rest,
        *ReaderOptions::new().traversal_limit_in_words(Some(words)),
    )
    .map_err(|e| Error::invalid(format!("the archive is malformed: {e}")))?;
    if !archive_rest.is_empty() {
        return Err(Error::invalid("the archive is followed by unexpected data"));
    }

    let mut verified = Verified {
        app_id: app_id(&public_key),
        package_id: package_id(spk),
        spk_bytes: spk.len() as u64,
        archive_bytes: archive_bytes.len() as u64,
        title: String::new(),
        version: 0,
        marketing_version: String::new(),
        contents: Contents::default(),
        needs_bridge: false,
        has_bridge: false,
    };
    inspect(&archive, limits, &mut verified)?;
    Ok(Opened { verified, archive })
}

/// The signer's public key and the signed hash, once the signature is checked against `archive`.
fn check_signature(message: &Reader<OwnedSegments>, archive: &[u8]) -> Result<([u8; 32], Vec<u8>)> {
    let bad = |e: capnp::Error| Error::invalid(format!("the signature is malformed: {e}"));
    let root = message.get_root::<signature::Reader>().map_err(bad)?;
    let public: [u8; 32] = root
        .get_public_key()
        .map_err(bad)?
        .try_into()
        .map_err(|_| {
            Error::invalid("the signature's public key is not 32 bytes: not an ed25519 key")
        })?;
    let signed = root.get_signature().map_err(bad)?;
    if signed.len() != 128 {
        return Err(Error::invalid(format!(
            "the signature is {} bytes, not 128 (an ed25519 signature and the SHA-512 it signs)",
            signed.len()
        )));
    }
    let key = VerifyingKey::from_bytes(&public)
        .map_err(|_| Error::invalid("the signature's public key is not a valid ed25519 key"))?;
    let signature = Signature::from_slice(&signed[..64])
        .map_err(|_| Error::invalid("the signature is not a valid ed25519 signature"))?;
    key.verify_strict(&signed[64..], &signature).map_err(|_| {
        Error::invalid("the signature does not verify: the package was altered after signing")
    })?;
    if Sha512::digest(archive).as_slice() != &signed[64..] {
        return Err(Error::invalid(
            "the signature does not match the package's contents: the archive was altered",
        ));
    }
    Ok((public, signed[64..].to_vec()))
}

/// Checks every file of the archive and reads the manifest.
fn inspect(archive: &Reader<OwnedSegments>, limits: Limits, verified: &mut Verified) -> Result<()> {
    let bad = |e: capnp::Error| Error::invalid(format!("the archive is malformed: {e}"));
    let files = archive
        .get_root::<archive::Reader>()
        .and_then(|root| root.get_files())
        .map_err(bad)?;
    walk(files, "", limits, &mut verified.contents)?;

    let mut manifest = None;
    for file in files.iter() {
        let name = file.get_name().map_err(bad)?.to_str().unwrap_or("");
        match (name, file.which().map_err(|e| bad(e.into()))?) {
            ("sandstorm-manifest", archive::file::Regular(data)) => {
                manifest = Some(data.map_err(bad)?);
            }
            ("sandstorm-manifest", _) => {
                return Err(Error::invalid("sandstorm-manifest is not a regular file"));
            }
            ("sandstorm-http-bridge-config", _) => verified.needs_bridge = true,
            ("sandstorm-http-bridge", archive::file::Regular(_) | archive::file::Executable(_)) => {
                verified.has_bridge = true
            }
            _ => {}
        }
    }
    let Some(mut data) = manifest else {
        return Err(Error::invalid("the package has no sandstorm-manifest"));
    };
    let message = capnp::serialize::read_message(
        &mut data,
        *ReaderOptions::new().traversal_limit_in_words(Some(limits.manifest_words as usize)),
    )
    .map_err(|e| Error::invalid(format!("sandstorm-manifest is malformed: {e}")))?;
    let bad = |e: capnp::Error| Error::invalid(format!("sandstorm-manifest is malformed: {e}"));
    let manifest = message.get_root::<manifest::Reader>().map_err(bad)?;
    let text = |t: capnp::Result<crate::package_capnp::localized_text::Reader>| -> Result<String> {
        Ok(t.and_then(|t| t.get_default_text())
            .map_err(bad)?
            .to_string()
            .unwrap_or_default())
    };
    verified.title = text(manifest.get_app_title())?;
    verified.marketing_version = text(manifest.get_app_marketing_version())?;
    verified.version = manifest.get_app_version();
    Ok(())
}

/// Checks names and sizes in one directory, and below it.
fn walk(
    files: capnp::struct_list::Reader<archive::file::Owned>,
    parent: &str,
    limits: Limits,
    contents: &mut Contents,
) -> Result<()> {
    let bad = |e: capnp::Error| Error::invalid(format!("the archive is malformed: {e}"));
    let mut names = HashSet::new();
    for file in files.iter() {
        let name = file
            .get_name()
            .map_err(bad)?
            .to_str()
            .map_err(|_| Error::invalid(format!("a file name in `/{parent}` is not UTF-8")))?;
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(Error::invalid(format!(
                "the archive names a file `{name}` in `/{parent}`: not a file name"
            )));
        }
        if !names.insert(name) {
            return Err(Error::invalid(format!(
                "the archive has two files named `{name}` in `/{parent}`"
            )));
        }
        let path = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}/{name}")
        };
        let size = |data: capnp::data::Reader| -> Result<u64> {
            let size = data.len() as u64;
            if size > limits.file_bytes {
                return Err(Error::invalid(format!(
                    "`{path}` is {size} bytes; Sandstorm packages hold files of at most {} bytes",
                    limits.file_bytes
                )));
            }
            Ok(size)
        };
        match file.which().map_err(|e| bad(e.into()))? {
            archive::file::Regular(data) => {
                contents.regular += 1;
                contents.content_bytes += size(data.map_err(bad)?)?;
            }
            archive::file::Executable(data) => {
                contents.executable += 1;
                contents.content_bytes += size(data.map_err(bad)?)?;
            }
            archive::file::Symlink(target) => {
                target.map_err(bad)?;
                contents.symlinks += 1;
            }
            archive::file::Directory(children) => {
                contents.directories += 1;
                walk(children.map_err(bad)?, &path, limits, contents)?;
            }
        }
    }
    Ok(())
}
