//! Place search over every installed region and the base map (docs/api.md §6).
//!
//! `normalize` and `query` hold the matching rules users already know; `index` stores places
//! in SQLite FTS5; `nearest` finds the candidates near the point and the important ones
//! anywhere; `rank` orders them by what the person most likely means; `visible` keeps
//! unfinished regions out; `admission` bounds how many searches run at once; `http` answers
//! `GET /app/search`.

pub mod admission;
pub mod http;
mod index;
mod nearest;
pub mod normalize;
pub mod query;
pub mod rank;
mod visible;

pub use index::{IMPORTANT_FROM, ImportReport, MAX_RESULTS, Place, SEARCH_BUDGET, SearchIndex};
