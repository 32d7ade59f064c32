//! Fetching region files through the bridge's proxy with the user's grant (grain mode).
//!
//! The bridge keeps only a request's path and appends it to the granted `canonicalUrl` (the
//! map-data server's origin), so a file at `https://host/base/file` is asked for as
//! `http://host/base/file` through the proxy with `Authorization: Bearer <token>`. The bridge
//! drops `Range` and `Content-Range`: a resumed part comes back whole, with 200, and the
//! download starts that part over. With no token, or one the bridge refuses, the fetch fails
//! at once with an access key the page acts on; it is never retried.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;

use super::proxy::BridgeProxy;
use super::tokens::AccessTokens;
use crate::regions::fetcher::{self, FetchError, Fetched, Fetcher};

/// The status key and sentence when the grain holds no token.
pub const ACCESS_NEEDED: &str = "access-needed";
pub const ACCESS_NEEDED_MESSAGE: &str =
    "The map-data server has not been connected yet; allow access to it to download regions.";
/// The status key and sentence when the bridge refused the token: the grant was revoked.
pub const ACCESS_WITHDRAWN: &str = "access-withdrawn";
pub const ACCESS_WITHDRAWN_MESSAGE: &str =
    "Access to the map-data server was withdrawn; ask again.";

pub struct BridgeFetcher {
    proxy: Arc<BridgeProxy>,
    tokens: Arc<AccessTokens>,
}

impl BridgeFetcher {
    pub fn new(proxy: Arc<BridgeProxy>, tokens: Arc<AccessTokens>) -> BridgeFetcher {
        BridgeFetcher { proxy, tokens }
    }
}

/// `url` as the bridge's proxy takes it: plain `http://`, same host and path.
fn through_bridge(url: &str) -> Result<String, FetchError> {
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|e| FetchError::Permanent(format!("the map-data URL {url} is not valid: {e}")))?;
    if parsed.scheme() == "https" && parsed.set_scheme("http").is_err() {
        return Err(FetchError::Permanent(format!(
            "the map-data URL {url} cannot be sent through the bridge"
        )));
    }
    Ok(parsed.into())
}

impl Fetcher for BridgeFetcher {
    async fn get(&self, url: &str, from: u64) -> Result<Fetched, FetchError> {
        let client = self.proxy.client().map_err(FetchError::Permanent)?;
        let Some(token) = self.tokens.token() else {
            let withdrawn = self.tokens.is_withdrawn();
            return Err(FetchError::Access {
                key: if withdrawn {
                    ACCESS_WITHDRAWN
                } else {
                    ACCESS_NEEDED
                },
                message: if withdrawn {
                    ACCESS_WITHDRAWN_MESSAGE
                } else {
                    ACCESS_NEEDED_MESSAGE
                }
                .into(),
            });
        };
        let request = client
            .get(through_bridge(url)?)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        let response = fetcher::send(request, from).await?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            self.tokens.withdraw(&token);
            return Err(FetchError::Access {
                key: ACCESS_WITHDRAWN,
                message: ACCESS_WITHDRAWN_MESSAGE.into(),
            });
        }
        fetcher::answer(response, url, from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_go_to_the_bridge_as_plain_http_with_their_path() {
        assert_eq!(
            through_bridge("https://desert-atlas.danielkrol.com/1700/1700/manifest.json").unwrap(),
            "http://desert-atlas.danielkrol.com/1700/1700/manifest.json"
        );
        assert_eq!(
            through_bridge("http://127.0.0.1:8080/data/a.tar.gz.00").unwrap(),
            "http://127.0.0.1:8080/data/a.tar.gz.00"
        );
    }
}
