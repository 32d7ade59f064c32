//! Who is asking, and what they may do.
//!
//! In grain mode the headers added by sandstorm-http-bridge are the only source of identity
//! (docs/api.md §3). In local mode every request is the user `local` with every permission.
//! Handlers take a `Caller` and ask it for a permission; a missing one is a 403 before
//! anything changes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::SharedState;
use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Inside a Sandstorm grain, behind sandstorm-http-bridge and nginx.
    Grain,
    /// On a developer's or user's own machine, serving the web client too.
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Download,
    Bookmarks,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::Download => "download",
            Permission::Bookmarks => "bookmarks",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// `None` for anonymous visitors.
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub download: bool,
    pub bookmarks: bool,
}

impl Caller {
    pub fn local() -> Caller {
        Caller {
            user_id: Some("local".into()),
            session_id: None,
            download: true,
            bookmarks: true,
        }
    }

    pub fn from_bridge_headers(headers: &axum::http::HeaderMap) -> Caller {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let permissions = text("x-sandstorm-permissions").unwrap_or_default();
        let has = |p: Permission| permissions.split(',').any(|s| s.trim() == p.name());
        Caller {
            user_id: text("x-sandstorm-user-id"),
            session_id: text("x-sandstorm-session-id"),
            download: has(Permission::Download),
            bookmarks: has(Permission::Bookmarks),
        }
    }

    pub fn has(&self, permission: Permission) -> bool {
        match permission {
            Permission::Download => self.download,
            Permission::Bookmarks => self.bookmarks,
        }
    }

    /// Answers 403 unless the caller has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "You need the \"{}\" permission for this; ask the grain's owner to share it with you.",
                permission.name()
            )))
        }
    }

    /// The permission names in the order of docs/api.md §3, as the status endpoint lists them.
    pub fn permission_names(&self) -> Vec<&'static str> {
        [Permission::Download, Permission::Bookmarks]
            .into_iter()
            .filter(|p| self.has(*p))
            .map(Permission::name)
            .collect()
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, AppError> {
        Ok(match state.mode {
            Mode::Local => Caller::local(),
            Mode::Grain => Caller::from_bridge_headers(&parts.headers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn reads_identity_and_permissions_from_bridge_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-sandstorm-user-id", "abc".parse().unwrap());
        h.insert("x-sandstorm-permissions", "bookmarks".parse().unwrap());
        let c = Caller::from_bridge_headers(&h);
        assert_eq!(c.user_id.as_deref(), Some("abc"));
        assert!(c.bookmarks && !c.download);
        assert_eq!(c.permission_names(), vec!["bookmarks"]);
    }

    #[test]
    fn anonymous_visitor_without_headers_has_nothing() {
        let c = Caller::from_bridge_headers(&HeaderMap::new());
        assert_eq!(c.user_id, None);
        assert!(c.require(Permission::Download).is_err());
        assert!(c.require(Permission::Bookmarks).is_err());
    }

    #[test]
    fn permission_names_are_matched_whole() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-sandstorm-permissions",
            "downloads,bookmark".parse().unwrap(),
        );
        let c = Caller::from_bridge_headers(&h);
        assert!(!c.download && !c.bookmarks);
    }
}
