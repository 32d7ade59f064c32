//! The grain's only way out: sandstorm-http-bridge's HTTP proxy, named by `HTTP_PROXY` /
//! `http_proxy` in the grain's environment.
//!
//! The proxy does not do CONNECT, so every request through it is a plain `http://`
//! absolute-form request; the bridge itself decides where it goes (the claim endpoint, or the
//! granted server for a request with a Bearer token). The HTTP client is built on first use:
//! most wake-ups of a grain neither claim nor download.

use std::sync::OnceLock;
use std::time::Duration;

pub struct BridgeProxy {
    url: Option<String>,
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl BridgeProxy {
    /// The proxy the bridge named in the environment; a missing one is logged once, here, and
    /// every claim or download then says so.
    pub fn from_env() -> BridgeProxy {
        let url = ["http_proxy", "HTTP_PROXY"]
            .into_iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.trim().is_empty());
        if url.is_none() {
            tracing::error!(
                "HTTP_PROXY is not set: sandstorm-http-bridge did not give this grain its proxy, so regions cannot be downloaded"
            );
        }
        BridgeProxy::new(url)
    }

    pub fn new(url: Option<String>) -> BridgeProxy {
        BridgeProxy {
            url,
            client: OnceLock::new(),
        }
    }

    /// A client that sends every request through the proxy.
    pub fn client(&self) -> Result<&reqwest::Client, String> {
        let Some(url) = &self.url else {
            return Err(
                "the grain has no HTTP proxy from Sandstorm (HTTP_PROXY is not set), so it cannot reach the map-data server; restart the grain, and report it if it keeps happening".into(),
            );
        };
        self.client
            .get_or_init(|| {
                let proxy = reqwest::Proxy::http(url)
                    .map_err(|e| format!("the grain's HTTP_PROXY ({url}) is not usable: {e}"))?;
                let builder = reqwest::Client::builder().proxy(proxy);
                #[cfg(feature = "tls")]
                let builder = {
                    // reqwest is built without a default TLS provider; one must be chosen per
                    // process even for a client that only speaks plain HTTP.
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    // Only plain HTTP goes to the bridge, so no trust roots: the grain has no
                    // certificate store, and the system verifier fails to start without one.
                    builder.tls_certs_only([])
                };
                builder
                    .connect_timeout(Duration::from_secs(15))
                    .read_timeout(Duration::from_secs(30))
                    .redirect(crate::regions::fetcher::same_origin_redirects())
                    .user_agent(concat!("desert-atlas/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| {
                        use std::error::Error;
                        let cause = e.source().map(|c| format!(" ({c})")).unwrap_or_default();
                        format!("cannot set up requests through the bridge: {e}{cause}")
                    })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}
