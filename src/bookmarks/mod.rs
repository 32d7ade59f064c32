//! Shared bookmarks: the places a group plans a trip around.
//!
//! Stored in the SQLite file existing grains already have (`data/bookmarks.db`, table
//! `bookmarks(id, version, name, lat, lng)`), whose lat/lng columns hold text in old rows and
//! numbers in newer ones. Edits use optimistic versioning: an update names the version it
//! started from, and loses (409) if someone else saved first.

pub mod http;
pub mod kml;
mod store;

pub use store::{Bookmark, BookmarkStore, NewBookmark};
