//! Signing keys: a keyring (Sandstorm's `~/.sandstorm-keyring`) is `KeyFile` messages one after
//! the other, each an ed25519 key pair in libsodium's layout (public key 32 bytes; private key 64
//! bytes: the seed, then the public key again).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use capnp::message::{Builder, ReaderOptions};
use ed25519_dalek::SigningKey;

use crate::app_id::app_id;
use crate::error::{Error, IoContext, Result};
use crate::package_capnp::key_file;

/// One key of a keyring.
pub struct Key {
    pub signing: SigningKey,
}

impl Key {
    pub fn app_id(&self) -> String {
        app_id(self.signing.verifying_key().as_bytes())
    }
}

/// Every key of the keyring at `path`, in order.
pub fn read(path: &Path) -> Result<Vec<Key>> {
    let bytes = std::fs::read(path).at(path)?;
    let malformed = |entry: usize, why: &str| {
        Error::invalid(format!(
            "{}: entry {entry} is not a key ({why}); a keyring is a sequence of KeyFile messages \
             as `spk keygen` writes them",
            path.display()
        ))
    };
    let mut rest: &[u8] = &bytes;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        let entry = keys.len() + 1;
        let message =
            capnp::serialize::read_message_from_flat_slice(&mut rest, ReaderOptions::new())
                .map_err(|e| malformed(entry, &e.to_string()))?;
        let file = message
            .get_root::<key_file::Reader>()
            .map_err(|e| malformed(entry, &e.to_string()))?;
        let public = file
            .get_public_key()
            .map_err(|e| malformed(entry, &e.to_string()))?;
        let private = file
            .get_private_key()
            .map_err(|e| malformed(entry, &e.to_string()))?;
        let pair: &[u8; 64] = private.try_into().map_err(|_| {
            malformed(
                entry,
                &format!("its private key has {} bytes, not 64", private.len()),
            )
        })?;
        if public.len() != 32 {
            return Err(malformed(
                entry,
                &format!("its public key has {} bytes, not 32", public.len()),
            ));
        }
        if &pair[32..] != public {
            return Err(malformed(
                entry,
                "its private key's second half is not its public key",
            ));
        }
        let signing = SigningKey::from_keypair_bytes(pair).map_err(|_| {
            malformed(
                entry,
                "its public key is not the one its private key's seed gives",
            )
        })?;
        keys.push(Key { signing });
    }
    if keys.is_empty() {
        return Err(Error::invalid(format!(
            "{}: the keyring is empty; make a key with `spk keygen --keyring {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(keys)
}

/// The key of the keyring at `path` whose app id is `wanted`.
pub fn find(path: &Path, wanted: &str) -> Result<Key> {
    let keys = read(path)?;
    let ids: Vec<String> = keys.iter().map(Key::app_id).collect();
    let index = ids.iter().position(|id| id.eq_ignore_ascii_case(wanted));
    match index {
        Some(i) => Ok(keys.into_iter().nth(i).expect("index of an element")),
        None => Err(Error::invalid(format!(
            "{}: no key for app id {wanted} (it holds keys for: {}); sign with the app's own \
             keyring, or pass --app-id to sign as another app",
            path.display(),
            ids.join(", ")
        ))),
    }
}

/// Makes a new key from the system's randomness, appends it to the keyring at `path` (created
/// with mode 0600 if missing) and returns its app id.
pub fn generate(path: &Path) -> Result<String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| Error::invalid(format!("no randomness for a new key: {e}")))?;
    let signing = SigningKey::from_bytes(&seed);
    let mut message = Builder::new_default();
    {
        let mut file = message.init_root::<key_file::Builder>();
        file.set_public_key(signing.verifying_key().as_bytes());
        file.set_private_key(&signing.to_keypair_bytes());
    }
    let bytes = capnp::serialize::write_message_to_words(&message);
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(path).at(path)?;
    out.write_all(&bytes).at(path)?;
    out.sync_all().at(path)?;
    Ok(app_id(signing.verifying_key().as_bytes()))
}
