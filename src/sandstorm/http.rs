//! `GET /app/powerbox` (the descriptor the page asks the Powerbox with, and whether the grain
//! is connected) and `POST /app/powerbox-claim` (redeem the Powerbox's claim token and keep
//! the access token).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::claim::{self, ClaimError};
use crate::app::SharedState;
use crate::error::{AppError, Result};
use crate::grain::{Caller, Mode, Permission};

pub async fn descriptor(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "descriptor": state.powerbox.descriptor,
        "connected": connected(&state),
    }))
}

/// Whether downloads can reach the map-data server: always outside Sandstorm, else when the
/// grain holds an access token the bridge has not refused (or needs none).
pub fn connected(state: &SharedState) -> bool {
    state.powerbox.connected()
}

#[derive(Deserialize)]
struct ClaimRequest {
    token: String,
}

pub async fn claim(
    State(state): State<SharedState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>> {
    // The permission first: a viewer learns nothing about the body.
    caller.require(Permission::Download)?;
    if state.mode == Mode::Local {
        return Err(AppError::BadRequest(
            "Outside Sandstorm there is nothing to claim: downloads go straight to the map-data server.".into(),
        ));
    }
    let request: ClaimRequest = serde_json::from_slice(&body).map_err(|_| {
        AppError::BadRequest("Send the Powerbox's claim token as JSON: {\"token\": \"…\"}.".into())
    })?;
    if request.token.trim().is_empty() {
        return Err(AppError::BadRequest(
            "The claim token is empty; ask for access to the map-data server again.".into(),
        ));
    }
    let session = caller.session_id.as_deref().ok_or_else(|| {
        AppError::BadRequest(
            "The request has no Sandstorm session (X-Sandstorm-Session-Id); reload the grain and ask again.".into(),
        )
    })?;
    let token = match claim::claim(&state.powerbox.proxy, session, &request.token).await {
        Ok(token) => token,
        Err(ClaimError::Refused(reason)) => {
            tracing::warn!("a Powerbox claim was refused: {reason}");
            return Err(AppError::BadRequest(reason));
        }
        Err(ClaimError::BridgeFailed { message, cause }) => {
            return Err(AppError::BadGateway {
                message: message.into(),
                cause: format!("claiming the access token: {cause}").into(),
            });
        }
    };
    state.powerbox.tokens.store(&token)?;
    tracing::info!("the map-data server is connected");
    Ok(Json(json!({ "connected": true })))
}
