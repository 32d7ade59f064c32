//! The access token that lets the grain reach the map-data server through the bridge's proxy.
//!
//! A claim (see [`super::claim`]) yields it once; it stays valid across restarts until the
//! user revokes the grant, so it is kept in the data dir, written atomically. A file that
//! cannot be read back is treated as no token (and logged): the page then asks the user again,
//! which is better than failing every download. A grain made by the old package kept its token
//! in the old proxy's SQLite database; on first start the token for the map-data server is
//! adopted from there, so an upgraded grain is not asked again.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::layout::Layout;

/// What the token file holds: the token and the origin it was granted for, so that a grain
/// pointed at another map-data server does not send it there.
#[derive(Serialize, Deserialize)]
struct Saved {
    url: String,
    token: String,
}

pub struct AccessTokens {
    path: PathBuf,
    /// The map-data server's origin, e.g. `https://desert-atlas.danielkrol.com`.
    origin: String,
    token: RwLock<Option<String>>,
    /// Set when the bridge refused the token (the user revoked the grant); cleared by a new
    /// claim. The file is kept: a refusal is only believed for this run.
    withdrawn: AtomicBool,
}

impl AccessTokens {
    /// Reads the saved token for `origin`; on a grain's first start, adopts the old package's.
    pub fn open(layout: &Layout, origin: &str) -> AccessTokens {
        let path = layout.powerbox_token();
        let token = match std::fs::read(&path) {
            Ok(bytes) => read_saved(&path, &bytes, origin),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                adopt_old_token(&layout.old_proxy_db(), &path, origin)
            }
            Err(e) => {
                tracing::error!(
                    "cannot read the map-data access token {}: {e}; the page will ask for access again",
                    path.display()
                );
                None
            }
        };
        AccessTokens {
            path,
            origin: origin.to_string(),
            token: RwLock::new(token),
            withdrawn: AtomicBool::new(false),
        }
    }

    /// The token to send, unless none is held or the bridge refused it.
    pub fn token(&self) -> Option<String> {
        if self.withdrawn.load(Ordering::Relaxed) {
            return None;
        }
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the grain holds a token the bridge has not refused.
    pub fn connected(&self) -> bool {
        self.token().is_some()
    }

    /// Whether a token is held but the bridge refused it.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.load(Ordering::Relaxed)
    }

    /// Keeps a newly claimed token, durably, before answering the claim.
    pub fn store(&self, token: &str) -> Result<()> {
        let saved = Saved {
            url: self.origin.clone(),
            token: token.to_string(),
        };
        let bytes = serde_json::to_vec(&saved)
            .map_err(|e| crate::error::AppError::internal("saving the access token", e))?;
        crate::atomic_file::write_atomically(&self.path, &bytes)?;
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token.to_string());
        self.withdrawn.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// The bridge refused `token`: the grant was revoked.
    pub fn withdraw(&self, token: &str) {
        if self
            .token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            == Some(token)
            && !self.withdrawn.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("the map-data server's grant was revoked; the page will ask again");
        }
    }
}

fn read_saved(path: &Path, bytes: &[u8], origin: &str) -> Option<String> {
    match serde_json::from_slice::<Saved>(bytes) {
        Ok(saved) if saved.url == origin && !saved.token.is_empty() => Some(saved.token),
        Ok(saved) => {
            tracing::warn!(
                "the saved access token is for {}, not the map-data server {origin}; the page will ask for access again",
                saved.url
            );
            None
        }
        Err(e) => {
            tracing::error!(
                "the map-data access token {} is corrupt ({e}); treating it as absent, the page will ask for access again",
                path.display()
            );
            None
        }
    }
}

/// Adopts the old package's token for `origin` from its proxy database, saving it as ours.
fn adopt_old_token(old_db: &Path, path: &Path, origin: &str) -> Option<String> {
    if !old_db.exists() {
        return None;
    }
    let token = match read_old_token(old_db, origin) {
        Ok(Some(token)) => token,
        Ok(None) => {
            tracing::info!(
                "the old proxy database has no token for {origin}; the page will ask for access"
            );
            return None;
        }
        Err(e) => {
            tracing::error!(
                "cannot read the old proxy database {}: {e}; the page will ask for access",
                old_db.display()
            );
            return None;
        }
    };
    let saved = Saved {
        url: origin.to_string(),
        token: token.clone(),
    };
    match serde_json::to_vec(&saved)
        .map_err(|e| crate::error::AppError::internal("encoding", e))
        .and_then(|bytes| crate::atomic_file::write_atomically(path, &bytes))
    {
        Ok(()) => tracing::info!("adopted the old package's access token for {origin}"),
        // Still usable for this run; adopted again on the next start.
        Err(e) => tracing::error!("cannot save the adopted access token: {e}"),
    }
    Some(token)
}

fn read_old_token(old_db: &Path, origin: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::{OpenFlags, OptionalExtension};
    let db = rusqlite::Connection::open_with_flags(
        old_db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The old proxy wrote the origin as it saw it; a trailing slash is the same server.
    db.query_row(
        "SELECT token FROM powerbox_proxy_tokens
         WHERE (url = ?1 OR url = ?1 || '/') AND token <> '' LIMIT 1",
        [origin],
        |row| row.get::<_, String>(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://desert-atlas.danielkrol.com";

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.prepare().unwrap();
        (dir, layout)
    }

    fn old_db(layout: &Layout, rows: &[(&str, &str)]) {
        let db = rusqlite::Connection::open(layout.old_proxy_db()).unwrap();
        db.execute_batch("CREATE TABLE powerbox_proxy_tokens (url TEXT, token TEXT)")
            .unwrap();
        for (url, token) in rows {
            db.execute(
                "INSERT INTO powerbox_proxy_tokens (url, token) VALUES (?1, ?2)",
                [url, token],
            )
            .unwrap();
        }
    }

    #[test]
    fn a_stored_token_is_there_after_a_restart() {
        let (_dir, layout) = layout();
        let tokens = AccessTokens::open(&layout, ORIGIN);
        assert!(!tokens.connected());
        tokens.store("tok-1").unwrap();
        assert_eq!(tokens.token().as_deref(), Some("tok-1"));
        let reopened = AccessTokens::open(&layout, ORIGIN);
        assert_eq!(reopened.token().as_deref(), Some("tok-1"));
    }

    #[test]
    fn a_corrupt_token_file_is_no_token() {
        let (_dir, layout) = layout();
        std::fs::write(layout.powerbox_token(), b"{\"url\": \"https://desert").unwrap();
        let tokens = AccessTokens::open(&layout, ORIGIN);
        assert!(!tokens.connected());
        // A new claim replaces it.
        tokens.store("tok-2").unwrap();
        assert_eq!(
            AccessTokens::open(&layout, ORIGIN).token().as_deref(),
            Some("tok-2")
        );
    }

    #[test]
    fn a_token_for_another_server_is_not_used() {
        let (_dir, layout) = layout();
        AccessTokens::open(&layout, "https://elsewhere.example")
            .store("tok")
            .unwrap();
        assert!(!AccessTokens::open(&layout, ORIGIN).connected());
    }

    #[test]
    fn the_old_packages_token_is_adopted_on_first_start() {
        let (_dir, layout) = layout();
        old_db(
            &layout,
            &[("https://other.example", "wrong"), (ORIGIN, "old-token")],
        );
        let tokens = AccessTokens::open(&layout, ORIGIN);
        assert_eq!(tokens.token().as_deref(), Some("old-token"));
        // Saved as ours: the old database is no longer needed.
        std::fs::remove_file(layout.old_proxy_db()).unwrap();
        assert_eq!(
            AccessTokens::open(&layout, ORIGIN).token().as_deref(),
            Some("old-token")
        );
    }

    #[test]
    fn a_claimed_token_wins_over_the_old_packages() {
        let (_dir, layout) = layout();
        old_db(&layout, &[(ORIGIN, "old-token")]);
        AccessTokens::open(&layout, ORIGIN).store("new").unwrap();
        assert_eq!(
            AccessTokens::open(&layout, ORIGIN).token().as_deref(),
            Some("new")
        );
    }

    #[test]
    fn an_old_database_without_our_server_or_unreadable_adopts_nothing() {
        let (_dir, layout) = layout();
        old_db(&layout, &[("https://other.example", "t")]);
        assert!(!AccessTokens::open(&layout, ORIGIN).connected());
        std::fs::write(layout.old_proxy_db(), b"not a database at all, just text").unwrap();
        assert!(!AccessTokens::open(&layout, ORIGIN).connected());
        assert!(!layout.powerbox_token().exists());
    }

    #[test]
    fn a_withdrawn_token_is_not_sent_until_a_new_claim() {
        let (_dir, layout) = layout();
        let tokens = AccessTokens::open(&layout, ORIGIN);
        tokens.store("tok").unwrap();
        tokens.withdraw("tok");
        assert!(!tokens.connected() && tokens.is_withdrawn());
        tokens.store("tok-2").unwrap();
        assert!(tokens.connected() && !tokens.is_withdrawn());
        // A refusal of an older token does not withdraw the new one.
        tokens.withdraw("tok");
        assert!(tokens.connected());
    }
}
