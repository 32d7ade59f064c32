//! The text forms of a package's identity, as Sandstorm shows them: the app id is the signer's
//! public key in Sandstorm's base32, the package id the hex of the first 16 bytes of the SHA-256
//! of the whole spk file.
//!
//! Written here because Sandstorm's base32 (`id-to-text.c++`) is its own: Crockford's alphabet in
//! lower case without padding, which no base32 crate offers as such.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789acdefghjkmnpqrstuvwxyz";

/// The app id of a 32-byte ed25519 public key (52 characters).
pub fn app_id(public_key: &[u8]) -> String {
    let mut text = String::with_capacity((public_key.len() * 8).div_ceil(5));
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in public_key {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(ALPHABET[((buffer >> bits) & 0x1f) as usize] as char);
        }
    }
    if bits > 0 {
        text.push(ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    text
}

/// The package id of a whole spk file (32 hex characters).
pub fn package_id(spk: &[u8]) -> String {
    hex::encode(&Sha256::digest(spk)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_pads_the_last_group_with_zero_bits() {
        assert_eq!(app_id(&[0; 32]), "0".repeat(52));
        // 256 one-bits: 51 groups of 11111, then 1 followed by four padding zeros (16 = 'h').
        assert_eq!(app_id(&[0xff; 32]), format!("{}h", "z".repeat(51)));
        // 0x08 = 00001|000: the first group is 1, the rest zeros.
        assert_eq!(app_id(&[0x08]), "10");
    }

    #[test]
    fn package_id_is_the_start_of_the_sha256() {
        // SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 …
        assert_eq!(package_id(b""), "e3b0c44298fc1c149afbf4c8996fb924");
    }
}
