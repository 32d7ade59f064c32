//! Where a path of the package comes from: the pkgdef's `sourceMap`, read as Sandstorm's
//! `mapFile` (union-fs.c++) reads it. Mappings are searched in order; a mapping covers the
//! package paths under its `packagePath`, minus its `hidePaths`; the first existing source wins,
//! and a directory gathers the children of every mapping that has one there.

use std::path::PathBuf;

/// One entry of the search path.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Where in the package this mapping is mounted ("" for the root).
    pub package_path: String,
    /// The directory on this machine it shows.
    pub source: PathBuf,
    /// Paths under `package_path` it does not show.
    pub hide: Vec<String>,
}

/// What a package path maps to.
#[derive(Debug, Default)]
pub struct Found {
    /// Existing sources, best first.
    pub sources: Vec<PathBuf>,
    /// Names of children that exist because a mapping is mounted below this path.
    pub virtual_children: Vec<String>,
}

/// `path` below `prefix`: `Some("")` when equal, `Some(rest)` when `prefix` is one of its parent
/// directories (or empty), `None` otherwise.
fn below<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return (!path.starts_with('/')).then_some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// The sources of package path `name` (canonical, no leading slash; "" is the root).
pub fn find(search_path: &[Mapping], name: &str) -> Found {
    let mut found = Found::default();
    for mapping in search_path {
        if let Some(sub) = below(name, &mapping.package_path) {
            if !sub.is_empty() && mapping.hide.iter().any(|h| below(sub, h).is_some()) {
                continue;
            }
            let candidate = if sub.is_empty() {
                mapping.source.clone()
            } else {
                mapping.source.join(sub)
            };
            if std::fs::symlink_metadata(&candidate).is_ok() {
                found.sources.push(candidate);
            }
        } else if let Some(child) = below(&mapping.package_path, name) {
            let first = child.split('/').next().unwrap_or(child);
            found.virtual_children.push(first.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_end_at_a_slash() {
        assert_eq!(below("foo/bar", "foo"), Some("bar"));
        assert_eq!(below("foo", "foo"), Some(""));
        assert_eq!(below("foobar/baz", "foo"), None);
        assert_eq!(below("anything", ""), Some("anything"));
    }

    #[test]
    fn hidden_paths_fall_through_to_the_next_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        for root in [&first, &second] {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(root.join("etc/passwd"), "x").unwrap();
        }
        let search = vec![
            Mapping {
                package_path: String::new(),
                source: first.clone(),
                hide: vec!["etc/passwd".into()],
            },
            Mapping {
                package_path: String::new(),
                source: second.clone(),
                hide: vec![],
            },
        ];
        assert_eq!(
            find(&search, "etc/passwd").sources,
            vec![second.join("etc/passwd")]
        );
        assert_eq!(
            find(&search, "etc").sources,
            vec![first.join("etc"), second.join("etc")]
        );
        assert!(find(&search, "missing").sources.is_empty());
    }

    #[test]
    fn a_mapping_mounted_deeper_shows_as_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let search = vec![Mapping {
            package_path: "opt/app".into(),
            source: dir.path().to_path_buf(),
            hide: vec![],
        }];
        assert_eq!(
            find(&search, "opt").virtual_children,
            vec!["app".to_string()]
        );
        assert_eq!(find(&search, "").virtual_children, vec!["opt".to_string()]);
        assert_eq!(
            find(&search, "opt/app").sources,
            vec![dir.path().to_path_buf()]
        );
    }
}
