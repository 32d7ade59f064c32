//! Tutorial progress per user and permission type. (Being built.)

use std::path::Path;

use crate::error::Result;
use crate::grain::Caller;

pub struct TutorialStore {}

impl TutorialStore {
    pub fn open(_path: &Path) -> Result<TutorialStore> {
        Ok(TutorialStore {})
    }

    pub async fn mode_for(&self, _caller: &Caller) -> Result<String> {
        Ok("TUTORIAL_INTRO".into())
    }
}

pub mod http {
    use crate::error::AppError;

    pub async fn set_mode() -> AppError {
        AppError::Internal("tutorial state is not built yet".into())
    }
}
