//! The persistent work queue (`data/regions.db`): which regions wait to be downloaded or
//! deleted, which failed and why, and which downloaded parts are already verified.
//!
//! Grains stop whenever they are idle; what is written here is what a restart continues.
//! One row per region: the newest request for a region replaces an older one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::tile_id::TileId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Download,
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Download => "download",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub tile_id: TileId,
    pub action: Action,
    /// Why the job failed; a failed job waits until it is asked for again.
    pub failed: Option<String>,
    /// What the page can do about the failure (`access-needed`, `access-withdrawn`), if
    /// anything.
    pub failed_key: Option<&'static str>,
}

/// The keys a failure may carry: stored as text, read back as one of these (an unknown
/// key, from a later version, reads as none).
const FAILURE_KEYS: [&str; 2] = [
    crate::sandstorm::fetcher::ACCESS_NEEDED,
    crate::sandstorm::fetcher::ACCESS_WITHDRAWN,
];

fn failure_key(stored: Option<String>) -> Option<&'static str> {
    let stored = stored?;
    FAILURE_KEYS.into_iter().find(|key| *key == stored)
}

/// Cheap to clone (one connection behind a lock); blocking calls: run them with
/// `spawn_blocking` (see [`crate::task::blocking`]).
#[derive(Clone)]
pub struct Queue {
    conn: Arc<Mutex<Connection>>,
}

impl Queue {
    pub fn open(path: &Path) -> Result<Queue> {
        let conn = crate::db::open(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                 tile_id TEXT PRIMARY KEY,
                 action TEXT NOT NULL,
                 failed TEXT,
                 seq INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS parts (
                 tile_id TEXT NOT NULL,
                 idx INTEGER NOT NULL,
                 bytes INTEGER NOT NULL,
                 sha256 TEXT NOT NULL,
                 PRIMARY KEY (tile_id, idx));",
        )?;
        // Queues written before failures kept their key: theirs read as none.
        let has_key: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'failed_key'",
            [],
            |r| r.get(0),
        )?;
        if !has_key {
            conn.execute_batch("ALTER TABLE jobs ADD COLUMN failed_key TEXT")?;
        }
        Ok(Queue {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // SQLite rolls back whatever a panicking holder left unfinished.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every job, oldest request first.
    pub fn jobs(&self) -> Result<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT tile_id, action, failed, failed_key FROM jobs ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut jobs = Vec::new();
        for row in rows {
            let (id, action, failed, key) = row?;
            let Some(tile_id) = TileId::parse(&id) else {
                continue;
            };
            let action = if action == "delete" {
                Action::Delete
            } else {
                Action::Download
            };
            jobs.push(Job {
                tile_id,
                action,
                failed,
                failed_key: failure_key(key),
            });
        }
        Ok(jobs)
    }

    pub fn job(&self, id: &TileId) -> Result<Option<Job>> {
        Ok(self.jobs()?.into_iter().find(|j| &j.tile_id == id))
    }

    /// Queues `action` for `id`, replacing any earlier request (and clearing a failure).
    pub fn put(&self, id: &TileId, action: Action) -> Result<()> {
        self.conn().execute(
            "INSERT INTO jobs (tile_id, action, failed, failed_key, seq)
               VALUES (?1, ?2, NULL, NULL, (SELECT coalesce(max(seq), 0) + 1 FROM jobs))
             ON CONFLICT (tile_id) DO UPDATE SET action = excluded.action, failed = NULL,
               failed_key = NULL, seq = excluded.seq",
            params![id.as_str(), action.as_str()],
        )?;
        Ok(())
    }

    /// `id`'s job failed: `message` says why, `key` what the page can do about it.
    pub fn fail(&self, id: &TileId, message: &str, key: Option<&'static str>) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET failed = ?2, failed_key = ?3 WHERE tile_id = ?1",
            params![id.as_str(), message, key],
        )?;
        Ok(())
    }

    /// Removes `id`'s job if it is still `action` (a newer request is kept).
    pub fn finish(&self, id: &TileId, action: Action) -> Result<()> {
        self.conn().execute(
            "DELETE FROM jobs WHERE tile_id = ?1 AND action = ?2",
            params![id.as_str(), action.as_str()],
        )?;
        Ok(())
    }

    /// Parts of `id` already downloaded and verified: index → (bytes, sha256).
    pub fn verified_parts(&self, id: &TileId) -> Result<HashMap<usize, (u64, String)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT idx, bytes, sha256 FROM parts WHERE tile_id = ?1")?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)? as usize,
                (r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?),
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_verified(&self, id: &TileId, index: usize, bytes: u64, sha256: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO parts (tile_id, idx, bytes, sha256) VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), index as i64, bytes as i64, sha256],
        )?;
        Ok(())
    }

    pub fn forget_parts(&self, id: &TileId) -> Result<()> {
        self.conn()
            .execute("DELETE FROM parts WHERE tile_id = ?1", [id.as_str()])?;
        Ok(())
    }

    pub fn is_queued(&self, id: &TileId) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM jobs WHERE tile_id = ?1",
                [id.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TileId {
        TileId::parse(s).unwrap()
    }

    #[test]
    fn the_newest_request_for_a_region_wins_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let q = Queue::open(&path).unwrap();
        q.put(&id("a"), Action::Download).unwrap();
        q.put(&id("b"), Action::Download).unwrap();
        q.fail(&id("a"), "boom", None).unwrap();
        q.put(&id("a"), Action::Delete).unwrap();
        q.mark_verified(&id("b"), 0, 10, "ab").unwrap();
        drop(q);
        let q = Queue::open(&path).unwrap();
        let jobs = q.jobs().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].tile_id, id("b"));
        assert_eq!(
            (jobs[1].action, jobs[1].failed.clone()),
            (Action::Delete, None)
        );
        assert_eq!(
            q.verified_parts(&id("b")).unwrap()[&0],
            (10, "ab".to_string())
        );
        q.finish(&id("a"), Action::Download).unwrap();
        assert!(q.is_queued(&id("a")).unwrap(), "a newer request is kept");
        q.finish(&id("a"), Action::Delete).unwrap();
        assert!(!q.is_queued(&id("a")).unwrap());
    }

    #[test]
    fn a_failure_keeps_its_key_and_an_old_queue_reads_as_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        // A queue as earlier versions wrote it: no key column, one failed job.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE jobs (tile_id TEXT PRIMARY KEY, action TEXT NOT NULL, failed TEXT,
                 seq INTEGER NOT NULL);
             INSERT INTO jobs VALUES ('old', 'download', 'it broke', 1);",
        )
        .unwrap();
        drop(old);
        let q = Queue::open(&path).unwrap();
        let old = q.job(&id("old")).unwrap().unwrap();
        assert_eq!(
            (old.failed.as_deref(), old.failed_key),
            (Some("it broke"), None)
        );

        q.put(&id("new"), Action::Download).unwrap();
        q.fail(&id("new"), "withdrawn", Some("access-withdrawn"))
            .unwrap();
        drop(q);
        let q = Queue::open(&path).unwrap();
        assert_eq!(
            q.job(&id("new")).unwrap().unwrap().failed_key,
            Some("access-withdrawn")
        );
        // Asking again clears the failure and its key.
        q.put(&id("new"), Action::Download).unwrap();
        let again = q.job(&id("new")).unwrap().unwrap();
        assert_eq!((again.failed, again.failed_key), (None, None));
    }
}
