//! A stand-in for sandstorm-http-bridge, as docs/api.md §3 describes it:
//! - its HTTP proxy (what the grain's `HTTP_PROXY` names): the Powerbox claim
//!   (`POST http://http-bridge/session/<id>/claim` → `{"cap": token}`), and requests with
//!   `Authorization: Bearer <token>` sent to the granted server — only their path kept, `Range`,
//!   `Content-Range` and `Retry-After` dropped; a revoked or unknown token answers 403;
//! - its front: one listener per role in front of the grain's port 8003 (nginx), adding the
//!   `X-Sandstorm-*` headers of that role, `Connection: close`, dropping `Range` both ways and
//!   whatever `X-Sandstorm-*` a client sent itself.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

/// Who the front says is asking.
#[derive(Clone, Copy, Debug)]
pub struct Role {
    pub name: &'static str,
    /// `None` for an anonymous visitor.
    pub user_id: Option<&'static str>,
    pub permissions: &'static str,
}

pub const OWNER: Role = Role {
    name: "owner",
    user_id: Some("0ba26e59c64ec75dedbc11679f267a40"),
    permissions: "download,bookmarks",
};
pub const BOOKMARKER: Role = Role {
    name: "bookmarker",
    user_id: Some("1cb37f6ad75fd86efecd22780a378b51"),
    permissions: "bookmarks",
};
pub const VIEWER: Role = Role {
    name: "viewer",
    user_id: Some("2dc48a7be860e97fafde33891b489c62"),
    permissions: "",
};
pub const ANONYMOUS: Role = Role {
    name: "anonymous",
    user_id: None,
    permissions: "",
};
pub const ROLES: [Role; 4] = [OWNER, BOOKMARKER, VIEWER, ANONYMOUS];

/// A request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target as sent (absolute form).
    pub target: String,
    pub bearer: Option<String>,
    /// The `Range` the grain asked for (dropped before the granted server sees it).
    pub range: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Claim tokens the "Powerbox" handed out, not yet claimed.
    claimable: HashSet<String>,
    /// Access tokens claimed, and the session that claimed each.
    granted: HashMap<String, String>,
    revoked: HashSet<String>,
    seen: Vec<Seen>,
    next: u32,
}

#[derive(Clone)]
struct ProxyState {
    /// The granted API's canonicalUrl: the map-data server's origin.
    canonical_url: String,
    inner: Arc<Mutex<Inner>>,
    client: reqwest::Client,
}

pub struct FakeBridge {
    /// What the grain's `HTTP_PROXY` says, e.g. `http://127.0.0.1:15239/`.
    pub proxy_url: String,
    inner: Arc<Mutex<Inner>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FakeBridge {
    /// The proxy on `proxy_addr` (port 0 for any), granting access to `canonical_url`.
    pub async fn start(proxy_addr: SocketAddr, canonical_url: &str) -> FakeBridge {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = ProxyState {
            canonical_url: canonical_url.trim_end_matches('/').to_string(),
            inner: inner.clone(),
            client: crate::common::http_client(),
        };
        let app = Router::new().fallback(proxy).with_state(state);
        let listener = tokio::net::TcpListener::bind(proxy_addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeBridge {
            proxy_url: format!("http://{addr}/"),
            inner,
            tasks: vec![task],
        }
    }

    /// What the Powerbox gives the page when the user grants access: a claim token.
    pub fn powerbox_grant(&self) -> String {
        let mut inner = self.inner.lock().unwrap();
        inner.next += 1;
        let token = format!("claim-{}", inner.next);
        inner.claimable.insert(token.clone());
        token
    }

    /// The user revokes every grant.
    pub fn revoke_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        let all: Vec<String> = inner.granted.keys().cloned().collect();
        inner.revoked.extend(all);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Starts a front listener on `listen` (port 0 for any) for `role`, in front of
    /// `backend` (`host:port`); returns its base URL.
    pub async fn front(&mut self, listen: SocketAddr, backend: &str, role: Role) -> String {
        let state = FrontState {
            backend: backend.to_string(),
            role,
            client: crate::common::http_client(),
        };
        let app = Router::new().fallback(front).with_state(state);
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        self.tasks.push(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
        format!("http://{addr}")
    }
}

impl Drop for FakeBridge {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Headers the bridge lets through from the granted server to the grain.
const PASSED_BACK: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ETAG,
    header::LAST_MODIFIED,
];

async fn proxy(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    state.inner.lock().unwrap().seen.push(Seen {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        bearer: bearer.clone(),
        range: parts
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if parts.uri.host() == Some("http-bridge") {
        return claim(&state, &parts.method, parts.uri.path(), body).await;
    }
    let Some(token) = bearer else {
        return (
            StatusCode::BAD_GATEWAY,
            "this grain has no network access without a Powerbox grant",
        )
            .into_response();
    };
    {
        let inner = state.inner.lock().unwrap();
        if !inner.granted.contains_key(&token) || inner.revoked.contains(&token) {
            return (StatusCode::FORBIDDEN, "the capability was revoked").into_response();
        }
    }
    // Only the path is kept, appended to the granted canonicalUrl; Range is not passed on.
    let mut url = format!("{}{}", state.canonical_url, parts.uri.path());
    if let Some(q) = parts.uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let upstream = match state.client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for name in PASSED_BACK {
        if let Some(v) = upstream.headers().get(&name) {
            response = response.header(name, v.clone());
        }
    }
    response
        .body(Body::from_stream(
            upstream.bytes_stream().map_err(std::io::Error::other),
        ))
        .unwrap()
}

async fn claim(state: &ProxyState, method: &Method, path: &str, body: Body) -> Response {
    let session = path
        .strip_prefix("/session/")
        .and_then(|rest| rest.strip_suffix("/claim"));
    let (Some(session), true) = (session, method == Method::POST) else {
        return (StatusCode::NOT_FOUND, "no such bridge endpoint").into_response();
    };
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let token = request["requestToken"].as_str().unwrap_or_default();
    if request["requiredPermissions"] != serde_json::json!(["download"]) {
        return (
            StatusCode::BAD_REQUEST,
            "requiredPermissions must name the permission the grant needs",
        )
            .into_response();
    }
    let mut inner = state.inner.lock().unwrap();
    if !inner.claimable.remove(token) {
        return (
            StatusCode::FORBIDDEN,
            "the claim token is invalid or was already used",
        )
            .into_response();
    }
    inner.next += 1;
    let cap = format!("access-{}", inner.next);
    inner.granted.insert(cap.clone(), session.to_string());
    axum::Json(serde_json::json!({ "cap": cap })).into_response()
}

#[derive(Clone)]
struct FrontState {
    backend: String,
    role: Role,
    client: reqwest::Client,
}

/// The headers the real bridge sends the app for `role`.
pub fn bridge_headers(role: Role) -> HeaderMap {
    let mut h = HeaderMap::new();
    let name = match role.user_id {
        Some(_) => format!("Test%20{}", role.name),
        None => "Anonymous%20User".to_string(),
    };
    h.insert(
        "x-sandstorm-username",
        HeaderValue::from_str(&name).unwrap(),
    );
    if let Some(id) = role.user_id {
        h.insert("x-sandstorm-user-id", HeaderValue::from_static(id));
    }
    h.insert(
        "x-sandstorm-permissions",
        HeaderValue::from_static(role.permissions),
    );
    h.insert(
        "x-sandstorm-session-id",
        HeaderValue::from_str(&format!("session-{}", role.name)).unwrap(),
    );
    h.insert(
        "x-sandstorm-tab-id",
        HeaderValue::from_str(&format!("tab-{}", role.name)).unwrap(),
    );
    h
}

async fn front(State(state): State<FrontState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n.starts_with("x-sandstorm-")
            || name == header::RANGE
            || name == header::HOST
            || name == header::CONNECTION
            || name == header::CONTENT_LENGTH
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.extend(bridge_headers(state.role));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    let body: Bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let upstream = state
        .client
        .request(method, format!("http://{}{path}", state.backend))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if name == header::CONTENT_RANGE
            || name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(
            upstream.bytes_stream().map_err(std::io::Error::other),
        ))
        .unwrap()
}
