//! Region downloads, installs and deletions, supervised in the background. (Being built.)

pub mod http;
pub mod pack;

use serde_json::{Value, json};

use crate::app::SharedState;
use crate::error::Result;
use crate::layout::Layout;

pub struct Regions {
    layout: Layout,
}

impl Regions {
    pub fn open(layout: &Layout, _map_data_url: &str) -> Result<Regions> {
        Ok(Regions {
            layout: layout.clone(),
        })
    }

    /// Starts the background supervisor; called once the server is about to answer.
    pub fn start(&self, _state: SharedState) {}

    /// The download part of the status answer (CONTRACT §2).
    pub fn status_json(&self) -> Value {
        let done: Vec<String> = self
            .layout
            .installed_regions()
            .iter()
            .map(|id| id.to_string())
            .collect();
        json!({
            "available-areas": null,
            "available-areas-status": "",
            "in-progress": {},
            "queued-for-download": [],
            "queued-for-deletion": [],
            "done": done,
        })
    }
}
