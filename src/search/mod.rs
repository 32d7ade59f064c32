//! Place search over every installed region and the base map (docs/api.md §6).
//!
//! `normalize` and `query` hold the matching rules users already know; `index` stores places
//! in SQLite FTS5 and finds the nearest matches; `http` answers `GET /app/search`.

pub mod http;
mod index;
pub mod normalize;
pub mod query;

pub use index::{IMPORTANT_FROM, IMPORTANT_SLOTS, ImportReport, MAX_RESULTS, Place, SearchIndex};
