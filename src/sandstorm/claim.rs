//! Redeeming the claim token the Powerbox gave the page for an access token: a POST to the
//! bridge's claim endpoint, through its proxy, for the caller's session (docs/api.md §3).

use serde::Deserialize;

use super::proxy::BridgeProxy;
use crate::error::chain;

/// Why a claim did not yield a token.
#[derive(Debug, PartialEq)]
pub enum ClaimError {
    /// The bridge refused the claim (a 4xx); its reason, for the user.
    Refused(String),
    /// The bridge could not be asked, failed (a 5xx) or answered nonsense: `message` says
    /// what the person can do, `cause` what happened, for the log.
    BridgeFailed {
        message: &'static str,
        cause: String,
    },
}

/// The bridge could not be asked: the claim token was not used, so the same one may work.
pub const UNREACHABLE: &str = "The Sandstorm bridge could not be reached to claim access to the map-data server; try again, and restart the grain if it keeps happening.";
/// The bridge took the claim but gave no token back: the claim token may be spent.
pub const FAILED: &str = "The Sandstorm bridge failed to claim access to the map-data server; ask for access again, and restart the grain if it keeps happening.";

fn unreachable(cause: String) -> ClaimError {
    ClaimError::BridgeFailed {
        message: UNREACHABLE,
        cause,
    }
}

/// At most 300 characters of what the bridge said, for a sentence or the log.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(300)
        .collect()
}

/// Everything but RFC 3986's unreserved characters is escaped in the session id.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Deserialize)]
struct Claimed {
    cap: String,
}

/// Claims `request_token` for the session `session_id`, requiring the `download` permission;
/// returns the access token.
pub async fn claim(
    proxy: &BridgeProxy,
    session_id: &str,
    request_token: &str,
) -> Result<String, ClaimError> {
    let client = proxy.client().map_err(unreachable)?;
    let session = percent_encoding::utf8_percent_encode(session_id, PATH_SEGMENT);
    let url = format!("http://http-bridge/session/{session}/claim");
    let response = client
        .post(url)
        .json(&serde_json::json!({
            "requestToken": request_token,
            "requiredPermissions": ["download"],
        }))
        .send()
        .await
        .map_err(|e| {
            unreachable(format!(
                "could not reach the Sandstorm bridge: {}",
                chain(&e)
            ))
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        unreachable(format!(
            "the Sandstorm bridge's answer was cut off: {}",
            chain(&e)
        ))
    })?;
    if status.is_server_error() {
        return Err(ClaimError::BridgeFailed {
            message: FAILED,
            cause: format!(
                "the Sandstorm bridge answered the claim with {status}: {}",
                excerpt(&body)
            ),
        });
    }
    if !status.is_success() {
        let reason = excerpt(&body);
        return Err(ClaimError::Refused(if reason.is_empty() {
            format!("Sandstorm refused the access grant ({status}); ask for access again.")
        } else {
            format!("Sandstorm refused the access grant: {reason}")
        }));
    }
    match serde_json::from_slice::<Claimed>(&body) {
        Ok(claimed) if !claimed.cap.is_empty() => Ok(claimed.cap),
        _ => Err(ClaimError::BridgeFailed {
            message: FAILED,
            cause: format!(
                "the Sandstorm bridge answered the claim with {status} but no access token: {}",
                excerpt(&body)
            ),
        }),
    }
}
