//! Refusing cross-site requests that change state.
//!
//! Request bodies are read as JSON whatever their `Content-Type` (`crate::json_body`), so a
//! page on another site could post one with a plain HTML form, which browsers send without
//! asking. Browsers name the page's origin in `Origin` on every such post; a state-changing
//! request whose `Origin` is not the origin it was sent to (its `Host`) answers 403 before
//! any handler runs. Requests without `Origin` (scripts, curl, old browsers for same-origin
//! posts) are let through: a cross-site post from a browser always carries one.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The middleware: passes reads through, and state-changing requests from this origin.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS];
    if !reads.contains(request.method()) && !same_origin(request.headers()) {
        return AppError::Forbidden(
            "This request came from a page of another site, so it was refused; use Desert Atlas's own page."
                .into(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the request carries no `Origin`, or one whose host and port are its `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    // `null` (sandboxed frames, file pages) names no origin at all.
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let without_default_port = |authority: &str| -> String {
        let authority = authority.to_ascii_lowercase();
        match authority.rsplit_once(':') {
            Some((host, port)) if port == default_port => host.to_string(),
            _ => authority,
        }
    };
    without_default_port(authority) == without_default_port(host.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(origin: Option<&str>, host: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        same_origin(&h)
    }

    #[test]
    fn the_same_host_and_port_is_the_same_origin() {
        assert!(check(None, "grain.example"));
        assert!(check(Some("https://grain.example"), "grain.example"));
        assert!(check(Some("https://Grain.Example"), "grain.example:443"));
        assert!(check(Some("http://127.0.0.1:3857"), "127.0.0.1:3857"));
        assert!(check(Some("http://[::1]:8080"), "[::1]:8080"));
        assert!(check(Some("http://[::1]"), "[::1]:80"));
    }

    #[test]
    fn another_host_port_or_no_origin_at_all_is_refused() {
        assert!(!check(Some("https://evil.example"), "grain.example"));
        assert!(!check(Some("http://127.0.0.1:9999"), "127.0.0.1:3857"));
        assert!(!check(Some("https://grain.example.evil"), "grain.example"));
        assert!(!check(Some("null"), "grain.example"));
        assert!(!check(Some("ftp://grain.example"), "grain.example"));
    }
}
