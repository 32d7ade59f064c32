//! SQLite helpers shared by the stores: opening a connection the way every store wants it,
//! and reading the loosely typed columns existing grains wrote.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// Opens `path` in WAL mode, so readers keep answering while a writer works, and waits for
/// a busy database instead of failing at once.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Old grains stored coordinates as text, newer rows as numbers; both read as a finite f64.
pub fn number(value: ValueRef<'_>) -> Option<f64> {
    match value {
        ValueRef::Real(f) => Some(f),
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}
