//! Redeeming the claim token the Powerbox gave the page for an access token: a POST to the
//! bridge's claim endpoint, through its proxy, for the caller's session (docs/api.md §3).

use serde::Deserialize;

use super::proxy::BridgeProxy;

/// Why a claim did not yield a token.
#[derive(Debug, PartialEq)]
pub enum ClaimError {
    /// The bridge refused the claim; its reason, for the user.
    Refused(String),
    /// The bridge could not be asked, or answered nonsense.
    Unreachable(String),
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
    let client = proxy.client().map_err(ClaimError::Unreachable)?;
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
            ClaimError::Unreachable(format!("could not reach the Sandstorm bridge: {e}"))
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        ClaimError::Unreachable(format!("the Sandstorm bridge's answer was cut off: {e}"))
    })?;
    if !status.is_success() {
        let reason = String::from_utf8_lossy(&body);
        let reason: String = reason.trim().chars().take(300).collect();
        return Err(ClaimError::Refused(if reason.is_empty() {
            format!("Sandstorm refused the access grant ({status}); ask for access again.")
        } else {
            format!("Sandstorm refused the access grant: {reason}")
        }));
    }
    match serde_json::from_slice::<Claimed>(&body) {
        Ok(claimed) if !claimed.cap.is_empty() => Ok(claimed.cap),
        _ => Err(ClaimError::Unreachable(
            "the Sandstorm bridge answered the claim without an access token".into(),
        )),
    }
}
