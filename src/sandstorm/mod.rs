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

use crate::regions::fetcher::{AnyFetcher, DirectFetcher};

use crate::layout::Layout;

/// What the Powerbox handlers and the bridge fetcher share.
pub struct Powerbox {
    /// Base64 of the packed descriptor, computed once.
    pub descriptor: String,
    /// Whether downloads need the user's grant: in a grain, unless the map-data server is on
    /// loopback (which the bridge's `no_proxy=localhost,127.0.0.1` says to reach directly,
    /// and which the bridge could not reach for the grain anyway).
    pub needs_grant: bool,
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
        let needs_grant = grain && !is_loopback(map_data_url);
        let proxy = if needs_grant {
            BridgeProxy::from_env()
        } else {
            BridgeProxy::new(None)
        };
        Powerbox {
            descriptor: descriptor::base64(&origin),
            needs_grant,
            proxy: Arc::new(proxy),
            tokens: Arc::new(AccessTokens::open(layout, &origin)),
        }
    }

    /// The fetcher for downloads: through the bridge when they need the grant, else direct.
    pub fn fetcher(&self) -> AnyFetcher {
        if self.needs_grant {
            AnyFetcher::Bridge(BridgeFetcher::new(self.proxy.clone(), self.tokens.clone()))
        } else {
            AnyFetcher::Direct(DirectFetcher::default())
        }
    }

    /// Whether downloads can reach the map-data server now.
    pub fn connected(&self) -> bool {
        !self.needs_grant || self.tokens.connected()
    }
}

/// Whether `url` names this machine: 127.0.0.0/8, ::1 or localhost.
fn is_loopback(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_map_servers_are_reached_directly() {
        assert!(super::is_loopback("http://127.0.0.1:8080/data/"));
        assert!(super::is_loopback("http://localhost/"));
        assert!(super::is_loopback("http://[::1]:80/"));
        assert!(!super::is_loopback(crate::cli::DEFAULT_MAP_DATA_URL));
        assert!(!super::is_loopback("http://map-data.test:8080/"));
    }
}
