//! Living in a Sandstorm grain: the Powerbox descriptor that asks the user for access to the
//! map-data server, the claim that turns the Powerbox's answer into an access token, the
//! token kept across restarts, and the fetcher that downloads through the bridge with it.
//!
//! In local mode none of this is used: downloads go straight to the server.

pub mod claim;
pub mod descriptor;
pub mod fetcher;
pub mod http;
pub mod proxy;
pub mod tokens;

use std::sync::Arc;

pub use fetcher::BridgeFetcher;

use crate::layout::Layout;

/// What the Powerbox handlers and the bridge fetcher share.
pub struct Powerbox {
    /// Base64 of the packed descriptor, computed once.
    pub descriptor: String,
    pub proxy: Arc<BridgeProxy>,
    pub tokens: Arc<AccessTokens>,
}

pub use proxy::BridgeProxy;
pub use tokens::AccessTokens;

impl Powerbox {
    /// For the map-data server at `map_data_url`; reads the proxy from the environment when
    /// `grain` (a local app has no bridge).
    pub fn open(layout: &Layout, map_data_url: &str, grain: bool) -> Powerbox {
        let origin = descriptor::origin_of(map_data_url)
            .unwrap_or_else(|| map_data_url.trim_end_matches('/').to_string());
        let proxy = if grain {
            BridgeProxy::from_env()
        } else {
            BridgeProxy::new(None)
        };
        Powerbox {
            descriptor: descriptor::base64(&origin),
            proxy: Arc::new(proxy),
            tokens: Arc::new(AccessTokens::open(layout, &origin)),
        }
    }

    /// The fetcher for downloads in grain mode.
    pub fn fetcher(&self) -> BridgeFetcher {
        BridgeFetcher::new(self.proxy.clone(), self.tokens.clone())
    }
}
