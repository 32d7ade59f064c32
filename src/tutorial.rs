//! Tutorial progress per user and permission type.
//!
//! Kept in `data/tutorial.json`, the file existing grains have:
//! `{"<user-id>": {"mode": "TUTORIAL_…", "type": "TUTORIAL_TYPE_…"}}`. The tutorial a user sees
//! depends on what they may do, so a user whose permissions changed type starts again.
//! Writes are serialised by a lock and land atomically (temp file, fsync, rename), so
//! concurrent posts never lose an update and a crash never leaves half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::atomic_file::write_atomically;
use crate::error::{AppError, Result};
use crate::grain::{Caller, Permission};

pub const MODES: [&str; 3] = ["TUTORIAL_INTRO", "TUTORIAL_STARTED", "TUTORIAL_DONE"];
const INTRO: &str = "TUTORIAL_INTRO";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    mode: String,
    #[serde(rename = "type")]
    kind: String,
}

pub struct TutorialStore {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

/// The tutorial type follows the caller's strongest permission.
fn tutorial_type(caller: &Caller) -> &'static str {
    if caller.has(Permission::Download) {
        "TUTORIAL_TYPE_DOWNLOADER"
    } else if caller.has(Permission::Bookmarks) {
        "TUTORIAL_TYPE_BOOKMARKER"
    } else {
        "TUTORIAL_TYPE_VIEWER"
    }
}

impl TutorialStore {
    /// Reads the file; a corrupt one is set aside (never deleted) and the store starts empty.
    pub fn open(path: &Path) -> Result<TutorialStore> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(entries) => entries,
                Err(e) => {
                    let aside = path.with_extension(format!(
                        "json.corrupt-{}",
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0)
                    ));
                    tracing::warn!(
                        "{} is not valid ({e}); kept it as {} and starting the tutorial afresh",
                        path.display(),
                        aside.display()
                    );
                    std::fs::rename(path, &aside)?;
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(AppError::internal("reading the tutorial state", e)),
        };
        Ok(TutorialStore {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    pub async fn mode_for(&self, caller: &Caller) -> Result<String> {
        let Some(user) = &caller.user_id else {
            return Ok(INTRO.into());
        };
        let entries = self.entries.lock().await;
        Ok(match entries.get(user) {
            Some(e) if e.kind == tutorial_type(caller) => e.mode.clone(),
            _ => INTRO.into(),
        })
    }

    /// Stores `mode` for the caller; anonymous visitors are answered but not stored.
    pub async fn set_mode(&self, caller: &Caller, mode: &str) -> Result<()> {
        if !MODES.contains(&mode) {
            return Err(AppError::BadRequest(format!(
                "\"tutorial-mode\" must be one of {}.",
                MODES.join(", ")
            )));
        }
        let Some(user) = &caller.user_id else {
            return Ok(());
        };
        let mut entries = self.entries.lock().await;
        let mut next = entries.clone();
        next.insert(
            user.clone(),
            Entry {
                mode: mode.into(),
                kind: tutorial_type(caller).into(),
            },
        );
        let path = self.path.clone();
        let bytes = serde_json::to_vec(&next)
            .map_err(|e| AppError::internal("encoding the tutorial state", e))?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| AppError::internal("saving the tutorial state", e))??;
        *entries = next;
        Ok(())
    }
}

pub mod http {
    //! Handler for POST /app/tutorial-mode (and its old alias /app-go/tutorial-mode).

    use axum::Json;
    use axum::extract::State;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use crate::app::SharedState;
    use crate::error::{AppError, Result};
    use crate::grain::Caller;
    use crate::json_body::JsonBody;

    #[derive(Deserialize)]
    pub struct SetMode {
        #[serde(rename = "tutorial-mode")]
        mode: Option<Value>,
    }

    pub async fn set_mode(
        State(state): State<SharedState>,
        caller: Caller,
        body: JsonBody<SetMode>,
    ) -> Result<Json<Value>> {
        let req = body.parse()?;
        let mode = req.mode.as_ref().and_then(Value::as_str).ok_or_else(|| {
            AppError::BadRequest("Send {\"tutorial-mode\": \"TUTORIAL_…\"}.".into())
        })?;
        state.tutorial.set_mode(&caller, mode).await?;
        Ok(Json(json!({})))
    }
}
