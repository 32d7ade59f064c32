//! Sandstorm packages (`.spk`) built, signed, checked and unpacked on any Linux machine, without a
//! Sandstorm install: the format is Sandstorm's (`spk.c++`, `package.capnp`), written with the
//! `capnp` crate and this project's own schema (`schema/package.capnp`).
//!
//! An spk is the 8-byte [`MAGIC`] followed by one xz stream holding two Cap'n Proto messages: a
//! `Signature` (the signer's ed25519 public key, which is the app id, and libsodium's combined
//! `crypto_sign` of the SHA-512 of the second message) and the `Archive` (the package's file tree).

pub mod app_id;
pub mod error;
pub mod keyring;
pub mod pack;
pub mod pkgdef;
pub mod source_map;
pub mod unpack;
pub mod verify;
pub mod xz;

/// The readers and builders generated from `schema/package.capnp` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, dead_code, unused_qualifications)]
pub mod package_capnp {
    include!(concat!(env!("OUT_DIR"), "/package_capnp.rs"));
}

pub use error::{Error, Result};

/// The first bytes of every spk (`magicNumber` in Sandstorm's package.capnp).
pub const MAGIC: [u8; 8] = [0x8f, 0xc6, 0xcd, 0xef, 0x45, 0x1a, 0xea, 0x96];

/// Sizes Sandstorm accepts; `pack` and `verify` hold packages to them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The Archive message, uncompressed (Sandstorm's `APP_SIZE_LIMIT`, 1 GiB).
    pub archive_bytes: u64,
    /// One file's content (spk.c++ refuses files of 512 MiB and more).
    pub file_bytes: u64,
    /// The manifest message (`Manifest.sizeLimitInWords`, 1 Mi words).
    pub manifest_words: u64,
}

impl Limits {
    pub const SANDSTORM: Limits = Limits {
        archive_bytes: 1 << 30,
        file_bytes: (1 << 29) - 1,
        manifest_words: crate::package_capnp::manifest::SIZE_LIMIT_IN_WORDS,
    };
}
