//! The Powerbox descriptor the web client hands to the Sandstorm shell when it asks the user
//! for access to the map-data server: one `ApiSession` tag whose value names the server's
//! origin (`canonicalUrl`). Built with the `capnp` crate and the schemas the `sandstorm` crate
//! ships, packed, base64: the form `powerboxRequest`'s `query` takes.

use base64::Engine;
use capnp::message::Builder;
use capnp::traits::HasTypeId;
use sandstorm::api_session_capnp::api_session;
use sandstorm::powerbox_capnp::powerbox_descriptor;

/// The origin (scheme, host and any non-default port) of `url`, as the bridge's proxy and the
/// old package's token table name a granted server: `https://example.org` for
/// `https://example.org/some/path/`. `None` for a URL that is not http(s).
pub fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// The packed `PowerboxDescriptor` for an HTTP API at `canonical_url`.
pub fn packed(canonical_url: &str) -> Vec<u8> {
    let mut message = Builder::new_default();
    {
        let descriptor = message.init_root::<powerbox_descriptor::Builder>();
        let mut tag = descriptor.init_tags(1).get(0);
        tag.set_id(<api_session::Client as HasTypeId>::TYPE_ID);
        let mut value = tag
            .init_value()
            .init_as::<api_session::powerbox_tag::Builder>();
        value.set_canonical_url(canonical_url);
    }
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = capnp::serialize_packed::write_message(&mut bytes, &message);
    bytes
}

/// [`packed`], in standard base64 with padding, as `GET /app/powerbox` answers it.
pub fn base64(canonical_url: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(packed(canonical_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptor existing clients of the public map-data server were granted with.
    const PUBLIC_SERVER: &str = "EA5QAQEAABEBF1EEAQH/x80lxnnjecgAQAMxCSIBAAH/aHR0cHM6Ly8DZGVzZXJ0LWF0bGFzLmRhbmllbGtyb2wuB2NvbQ==";

    #[test]
    fn descriptor_of_the_public_server_matches_the_known_bytes() {
        assert_eq!(base64("https://desert-atlas.danielkrol.com"), PUBLIC_SERVER);
    }

    #[test]
    fn the_tag_is_api_session() {
        assert_eq!(
            <api_session::Client as HasTypeId>::TYPE_ID,
            0xc879e379c625cdc7
        );
    }

    #[test]
    fn origin_drops_the_path_and_keeps_a_port() {
        assert_eq!(
            origin_of(crate::cli::DEFAULT_MAP_DATA_URL).as_deref(),
            Some("https://desert-atlas.danielkrol.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/data/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("file:///tmp/x"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
