//! The bookmarks table: reads, versioned writes, deletes.

use std::path::Path;
use std::sync::Mutex;

use rand::RngExt;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::number;
use crate::error::{AppError, Result};

/// A bookmark as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bookmark {
    #[serde(skip)]
    pub id: String,
    pub version: i64,
    pub name: String,
    pub latlng: LatLng,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// A validated bookmark to create or to save over an existing one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBookmark {
    pub name: String,
    pub lat: f64,
    pub lng: f64,
}

pub struct BookmarkStore {
    conn: Mutex<Connection>,
}

impl BookmarkStore {
    pub fn open(path: &Path) -> Result<BookmarkStore> {
        let conn = crate::db::open(path)?;
        // The schema of existing grains, kept as it is so their file works unchanged.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bookmarks (
                 id VARCHAR PRIMARY KEY, version INT, name VARCHAR, lat VARCHAR, lng VARCHAR);",
        )?;
        Ok(BookmarkStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection inconsistent (SQLite
        // rolls back an unfinished transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn list(&self) -> Result<Vec<Bookmark>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, version, name, lat, lng FROM bookmarks")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<String>>(2)?,
                number(row.get_ref(3)?),
                number(row.get_ref(4)?),
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, version, name, lat, lng) = row?;
            match (lat, lng) {
                (Some(lat), Some(lng)) => out.push(Bookmark {
                    id,
                    version: version.unwrap_or(0),
                    name: name.unwrap_or_default(),
                    latlng: LatLng { lat, lng },
                }),
                _ => tracing::warn!("bookmark {id} has no readable position; not listed"),
            }
        }
        Ok(out)
    }

    pub fn create(&self, new: &NewBookmark) -> Result<Bookmark> {
        let id = new_id();
        self.conn().execute(
            "INSERT INTO bookmarks (id, version, name, lat, lng) VALUES (?1, 0, ?2, ?3, ?4)",
            params![id, new.name, new.lat, new.lng],
        )?;
        Ok(Bookmark {
            id,
            version: 0,
            name: new.name.clone(),
            latlng: LatLng {
                lat: new.lat,
                lng: new.lng,
            },
        })
    }

    /// Saves over bookmark `id` if its stored version is still `version`.
    pub fn update(&self, id: &str, version: i64, new: &NewBookmark) -> Result<Bookmark> {
        let conn = self.conn();
        // One statement: the version check and the write cannot be split by another writer.
        let changed = conn.execute(
            "UPDATE bookmarks SET version = version + 1, name = ?3, lat = ?4, lng = ?5
             WHERE id = ?1 AND version = ?2",
            params![id, version, new.name, new.lat, new.lng],
        )?;
        if changed == 0 {
            let stored: Option<Option<i64>> = conn
                .query_row("SELECT version FROM bookmarks WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            return Err(match stored {
                None => AppError::NotFound(format!(
                    "There is no bookmark {id}; it may have been deleted. Reload the bookmarks."
                )),
                Some(_) => AppError::Conflict(
                    "Someone else changed this bookmark first; reload it and make your change again."
                        .into(),
                ),
            });
        }
        Ok(Bookmark {
            id: id.to_string(),
            version: version + 1,
            name: new.name.clone(),
            latlng: LatLng {
                lat: new.lat,
                lng: new.lng,
            },
        })
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM bookmarks WHERE id = ?1", [id])?;
        if changed == 0 {
            return Err(AppError::NotFound(format!(
                "There is no bookmark {id}; it may already have been deleted."
            )));
        }
        Ok(())
    }
}

/// 128 random bits as hex: unguessable and safe in URLs and file names.
fn new_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BookmarkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BookmarkStore::open(&dir.path().join("b.db")).unwrap();
        (dir, store)
    }

    fn place(name: &str) -> NewBookmark {
        NewBookmark {
            name: name.into(),
            lat: 1.5,
            lng: 2.5,
        }
    }

    #[test]
    fn an_update_from_a_stale_version_loses() {
        let (_d, s) = store();
        let b = s.create(&place("a")).unwrap();
        s.update(&b.id, 0, &place("b")).unwrap();
        assert!(matches!(
            s.update(&b.id, 0, &place("c")),
            Err(AppError::Conflict(_))
        ));
        assert_eq!(s.list().unwrap()[0].name, "b");
    }

    #[test]
    fn text_coordinates_of_old_grains_read_as_numbers() {
        let (d, s) = store();
        drop(s);
        let conn = Connection::open(d.path().join("b.db")).unwrap();
        conn.execute(
            "INSERT INTO bookmarks VALUES ('old', 3, 'Old', '43.77', '11.25')",
            [],
        )
        .unwrap();
        let s = BookmarkStore::open(&d.path().join("b.db")).unwrap();
        let list = s.list().unwrap();
        assert_eq!(
            list[0].latlng,
            LatLng {
                lat: 43.77,
                lng: 11.25
            }
        );
        assert_eq!(list[0].version, 3);
    }
}
