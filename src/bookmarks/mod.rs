//! Shared bookmarks: the places a group plans a trip around. (Being built.)

pub mod http;

use std::path::Path;

use crate::error::Result;

pub struct BookmarkStore {}

impl BookmarkStore {
    pub fn open(_path: &Path) -> Result<BookmarkStore> {
        Ok(BookmarkStore {})
    }
}
