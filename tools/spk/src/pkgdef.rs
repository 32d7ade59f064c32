//! The package definition (`.sandstorm/sandstorm-pkgdef.capnp`), evaluated.
//!
//! The pkgdef is Cap'n Proto schema text with a constant `pkgdef` that imports
//! `/sandstorm/package.capnp`. Only the reference compiler reads that language completely (the
//! `capnp` crate reads messages, not schema text), so it is evaluated by Debian's `capnp eval
//! --binary` — the tool the build already needs for `build.rs` — against this project's schema,
//! written for the run to a temporary directory as `sandstorm/package.capnp`. The binary message it
//! prints is then read with the readers generated from that same schema.

use std::path::{Path, PathBuf};
use std::process::Command;

use capnp::message::{Builder, ReaderOptions};

use crate::error::{Error, IoContext, Result};
use crate::package_capnp::{bridge_config, manifest, package_definition};
use crate::source_map::Mapping;

/// The schema `build.rs` compiled, written out for `capnp eval`.
const SCHEMA: &str = include_str!("../schema/package.capnp");

/// What packing needs from a package definition.
pub struct PackageDefinition {
    /// The app id the package is meant to be signed as.
    pub app_id: String,
    /// `sandstorm-manifest`: the manifest as a message of its own.
    pub manifest: Vec<u8>,
    /// `sandstorm-http-bridge-config`, when the app runs behind sandstorm-http-bridge.
    pub bridge_config: Option<Vec<u8>>,
    /// The source map's search path, relative paths resolved against the pkgdef's directory.
    pub search_path: Vec<Mapping>,
    /// The file list named by the pkgdef, resolved against the pkgdef's directory.
    pub file_list: Option<PathBuf>,
    /// Paths always packed, directories with all they hold.
    pub always_include: Vec<String>,
}

/// Evaluates the constant `pkgdef` of the package definition at `path`.
pub fn evaluate(path: &Path) -> Result<PackageDefinition> {
    let schema_dir = tempfile::tempdir().at(Path::new("temporary directory"))?;
    let schema_path = schema_dir.path().join("sandstorm/package.capnp");
    std::fs::create_dir_all(schema_path.parent().expect("has a parent")).at(&schema_path)?;
    std::fs::write(&schema_path, SCHEMA).at(&schema_path)?;

    let output = Command::new("capnp")
        .arg("eval")
        .arg("--binary")
        .arg("--no-standard-import")
        .arg("-I")
        .arg(schema_dir.path())
        .arg(path)
        .arg("pkgdef")
        // kj warns when PWD is not the working directory (as under `cargo test`); let it ask.
        .env_remove("PWD")
        .output()
        .map_err(|e| {
            Error::invalid(format!(
                "running `capnp` failed ({e}); install Debian's capnproto package"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "{}: the package definition does not evaluate: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    read(&output.stdout, base).map_err(|e| match e {
        Error::Invalid(why) => Error::invalid(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// Reads the evaluated `PackageDefinition` message; relative source paths are taken from `base`.
fn read(message: &[u8], base: &Path) -> Result<PackageDefinition> {
    let bad = |e: capnp::Error| Error::invalid(format!("the evaluated pkgdef is unreadable: {e}"));
    let message = capnp::serialize::read_message(message, ReaderOptions::new()).map_err(bad)?;
    let pkgdef = message
        .get_root::<package_definition::Reader>()
        .map_err(bad)?;

    if !pkgdef.has_manifest() {
        return Err(Error::invalid("`manifest` is missing"));
    }
    let manifest = pkgdef.get_manifest().map_err(bad)?;
    check_manifest(manifest)?;

    let mut search_path = Vec::new();
    for mapping in pkgdef
        .get_source_map()
        .map_err(bad)?
        .get_search_path()
        .map_err(bad)?
    {
        let source = text(mapping.get_source_path())?;
        let hide = mapping
            .get_hide_paths()
            .map_err(bad)?
            .iter()
            .map(text)
            .collect::<Result<Vec<_>>>()?;
        search_path.push(Mapping {
            package_path: text(mapping.get_package_path())?,
            source: base.join(source),
            hide,
        });
    }

    let bridge_command = manifest
        .get_continue_command()
        .and_then(|c| c.get_argv())
        .ok()
        .and_then(|argv| argv.iter().next())
        .and_then(|first| first.ok()?.to_str().ok().map(str::to_owned))
        .is_some_and(|exe| {
            matches!(
                exe.as_str(),
                "/sandstorm-http-bridge" | "./sandstorm-http-bridge" | "sandstorm-http-bridge"
            )
        });
    let bridge_config = if pkgdef.has_bridge_config() || bridge_command {
        Some(message_bytes::<bridge_config::Owned>(
            pkgdef.get_bridge_config().map_err(bad)?,
        )?)
    } else {
        None
    };

    Ok(PackageDefinition {
        app_id: text(pkgdef.get_id())?,
        manifest: message_bytes::<manifest::Owned>(manifest)?,
        bridge_config,
        search_path,
        file_list: if pkgdef.has_file_list() {
            Some(base.join(text(pkgdef.get_file_list())?))
        } else {
            None
        },
        always_include: pkgdef
            .get_always_include()
            .map_err(bad)?
            .iter()
            .map(text)
            .collect::<Result<Vec<_>>>()?,
    })
}

/// What Sandstorm's `spk pack` requires of a manifest before packing it.
fn check_manifest(manifest: manifest::Reader) -> Result<()> {
    if !manifest.has_app_title() {
        return Err(Error::invalid(
            "`manifest.appTitle` is missing; add `appTitle = (defaultText = \"My App\")`",
        ));
    }
    if !manifest.has_app_marketing_version() {
        return Err(Error::invalid(
            "`manifest.appMarketingVersion` is missing; add `appMarketingVersion = (defaultText = \"0.0.0\")`",
        ));
    }
    // Sandstorm defines API version 0 only.
    if manifest.get_min_api_version() > 0 || manifest.get_max_api_version() > 0 {
        return Err(Error::invalid(
            "`minApiVersion`/`maxApiVersion` above 0 are unknown to Sandstorm's packer",
        ));
    }
    let words = manifest
        .total_size()
        .map_err(|e| Error::invalid(format!("the manifest is unreadable: {e}")))?
        .word_count;
    if words > crate::Limits::SANDSTORM.manifest_words {
        return Err(Error::invalid(format!(
            "the manifest is {words} words; Sandstorm accepts at most {} (8 MiB)",
            crate::Limits::SANDSTORM.manifest_words
        )));
    }
    Ok(())
}

/// A struct copied into a message of its own, framed as Sandstorm writes files.
fn message_bytes<T: capnp::traits::Owned>(
    root: impl capnp::traits::SetterInput<T>,
) -> Result<Vec<u8>> {
    let mut message = Builder::new_default();
    message
        .set_root(root)
        .map_err(|e| Error::invalid(format!("copying a pkgdef part failed: {e}")))?;
    Ok(capnp::serialize::write_message_to_words(&message))
}

fn text(value: capnp::Result<capnp::text::Reader>) -> Result<String> {
    value
        .and_then(|t| t.to_string().map_err(Into::into))
        .map_err(|e| Error::invalid(format!("a text of the pkgdef is unreadable: {e}")))
}
