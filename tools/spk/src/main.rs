//! `spk`: packs, signs, verifies and unpacks the Sandstorm package of Desert Atlas. A tool of its
//! own so that the grain server links none of Cap'n Proto, ed25519 or xz.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

use spk::error::{Error, IoContext, Result};
use spk::source_map::Mapping;
use spk::{Limits, keyring, pack, pkgdef, unpack, verify};

#[derive(Parser)]
#[command(
    name = "spk",
    about = "Sandstorm packages (.spk): pack, verify, unpack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Packs and signs the app described by a package definition.
    Pack {
        /// The package definition (its constant `pkgdef`).
        #[arg(long, default_value = ".sandstorm/sandstorm-pkgdef.capnp")]
        pkgdef: PathBuf,
        /// The file list to pack instead of the one the pkgdef names.
        #[arg(long)]
        file_list: Option<PathBuf>,
        /// Keyring holding the signing key (KeyFile messages).
        #[arg(long)]
        keyring: PathBuf,
        /// Sign as this app id instead of the pkgdef's `id` (the package is then another app).
        #[arg(long)]
        app_id: Option<String>,
        /// sandstorm-http-bridge from a Sandstorm install (without it the package cannot run).
        #[arg(long)]
        bridge: Option<PathBuf>,
        /// PACKAGE_PATH=DIR: show DIR at PACKAGE_PATH, searched before the pkgdef's source map.
        #[arg(long = "source-map", value_parser = parse_mapping)]
        source_maps: Vec<Mapping>,
        /// Where to write the package.
        #[arg(long)]
        out: PathBuf,
        /// Compress with xz preset 0 instead of 9 (extreme): much faster and bigger, for
        /// packages that tests unpack again.
        #[arg(long)]
        fast: bool,
    },
    /// Checks a package's signature, format and limits and says what it is.
    Verify {
        spk: PathBuf,
        /// Fail when the package lacks sandstorm-http-bridge.
        #[arg(long)]
        require_bridge: bool,
    },
    /// Verifies a package, then writes its files into a new directory.
    Unpack { spk: PathBuf, out: PathBuf },
    /// Adds a new signing key to a keyring (created if missing) and prints its app id.
    Keygen {
        #[arg(long)]
        keyring: PathBuf,
    },
}

fn parse_mapping(value: &str) -> std::result::Result<Mapping, String> {
    let (package_path, dir) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not PACKAGE_PATH=DIR"))?;
    Ok(Mapping {
        package_path: package_path.trim_matches('/').to_owned(),
        source: PathBuf::from(dir),
        hide: Vec::new(),
    })
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Pack {
            pkgdef,
            file_list,
            keyring,
            app_id,
            bridge,
            source_maps,
            out,
            fast,
        } => {
            let started = Instant::now();
            let definition = pkgdef::evaluate(&pkgdef)?;
            let signer = app_id.as_deref().unwrap_or(&definition.app_id);
            let key = keyring::find(&keyring, signer)?;
            if definition.bridge_config.is_some() && bridge.is_none() {
                eprintln!(
                    "spk: no --bridge given: the package leaves out sandstorm-http-bridge, so it is \
                     for tests and measurement only; Sandstorm cannot run it"
                );
            }
            let packed = pack::pack(&pack::Request {
                pkgdef: &definition,
                file_list: file_list.as_deref(),
                extra_mappings: source_maps,
                bridge: bridge.as_deref(),
                key: &key,
                limits: Limits::SANDSTORM,
                effort: if fast {
                    spk::xz::Effort::Fastest
                } else {
                    spk::xz::Effort::Smallest
                },
            })?;
            write_atomically(&out, &packed.spk)?;
            let c = &packed.contents;
            println!("wrote {}", out.display());
            println!("app id: {}", key.app_id());
            println!("package id: {}", spk::app_id::package_id(&packed.spk));
            print_contents(c, packed.spk.len() as u64, packed.archive_bytes);
            if c.duplicates.is_empty() {
                println!("duplicates: none");
            }
            for (path, first, bytes) in &c.duplicates {
                println!("duplicate: {path} holds the same {bytes} bytes as {first}");
            }
            println!("packed in {:.2} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Verify {
            spk,
            require_bridge,
        } => {
            let bytes = std::fs::read(&spk).at(&spk)?;
            let v = verify::verify(&bytes, Limits::SANDSTORM)
                .map_err(|e| Error::invalid(format!("{}: {e}", spk.display())))?;
            print_verified(&v);
            if require_bridge && v.needs_bridge && !v.has_bridge {
                return Err(Error::invalid(format!(
                    "{}: sandstorm-http-bridge is missing; pack with --bridge",
                    spk.display()
                )));
            }
            Ok(())
        }
        Command::Unpack { spk, out } => {
            let bytes = std::fs::read(&spk).at(&spk)?;
            let opened = verify::open(&bytes, Limits::SANDSTORM)
                .map_err(|e| Error::invalid(format!("{}: {e}", spk.display())))?;
            unpack::unpack(&opened, &out)?;
            print_verified(&opened.verified);
            println!("unpacked to {}", out.display());
            Ok(())
        }
        Command::Keygen { keyring } => {
            println!("{}", keyring::generate(&keyring)?);
            Ok(())
        }
    }
}

/// The files a package holds and its sizes, as `pack`, `verify` and `unpack` report them.
fn print_contents(c: &pack::Contents, spk_bytes: u64, archive_bytes: u64) {
    println!(
        "files: {} ({} regular, {} executable, {} symlinks) in {} directories",
        c.files(),
        c.regular,
        c.executable,
        c.symlinks,
        c.directories
    );
    println!(
        "size: {spk_bytes} bytes (archive {archive_bytes} bytes uncompressed, file contents {} bytes)",
        c.content_bytes
    );
}

fn print_verified(v: &verify::Verified) {
    let c = &v.contents;
    println!("app id: {}", v.app_id);
    println!("package id: {}", v.package_id);
    println!(
        "title: {} {} (version {})",
        v.title, v.marketing_version, v.version
    );
    print_contents(c, v.spk_bytes, v.archive_bytes);
    println!(
        "bridge: {}",
        match (v.needs_bridge, v.has_bridge) {
            (_, true) => "included",
            (true, false) =>
                "MISSING: sandstorm-http-bridge is not in the package; it is for tests and \
                 measurement only and Sandstorm cannot run it",
            (false, false) => "not used",
        }
    );
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so that a failed run
/// never leaves half a package behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).at(dir)?;
    std::io::Write::write_all(&mut file, bytes).at(path)?;
    // A package is for handing out: readable by all, as files made the usual way are.
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .at(path)?;
    file.as_file().sync_all().at(path)?;
    file.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
