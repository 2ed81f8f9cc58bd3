//! The CHT releases cht-dev can render, and which template family each uses.

use crate::error::{Error, Result};

/// The two shapes upstream's single-node templates have taken since 4.12.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// 4.12.0 to 4.22.0: CouchDB, HAProxy, HAProxy healthcheck, API, Sentinel, nginx.
    #[serde(rename = "4.x")]
    V4,
    /// 5.0.0 onwards: the healthcheck is gone and Nouveau runs beside CouchDB.
    #[serde(rename = "5.x")]
    V5,
}

impl Family {
    /// A short label, "4.x" or "5.x".
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "4.x",
            Family::V5 => "5.x",
        }
    }
}

/// Every release tag whose upstream templates cht-dev reproduces, oldest first.
///
/// Upstream's `cht-core.yml.template` and `cht-couchdb-single-node.yml.template`
/// are identical across 4.12.0..=4.22.0 and across 5.0.0..=5.2.0.
const KNOWN: &[(&str, Family)] = &[
    ("4.12.0", Family::V4),
    ("4.13.0", Family::V4),
    ("4.14.0", Family::V4),
    ("4.15.0", Family::V4),
    ("4.16.0", Family::V4),
    ("4.17.0", Family::V4),
    ("4.18.0", Family::V4),
    ("4.19.0", Family::V4),
    ("4.20.0", Family::V4),
    ("4.20.1", Family::V4),
    ("4.21.0", Family::V4),
    ("4.21.1", Family::V4),
    ("4.22.0", Family::V4),
    ("5.0.0", Family::V5),
    ("5.0.1", Family::V5),
    ("5.0.2", Family::V5),
    ("5.0.3", Family::V5),
    ("5.1.0", Family::V5),
    ("5.1.1", Family::V5),
    ("5.1.2", Family::V5),
    ("5.1.3", Family::V5),
    ("5.2.0", Family::V5),
];

/// A known CHT release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ChtVersion {
    /// The release tag, e.g. "5.2.0".
    pub version: &'static str,
    /// Its template family.
    pub family: Family,
}

/// All known releases, oldest first.
pub fn known() -> impl DoubleEndedIterator<Item = ChtVersion> {
    KNOWN
        .iter()
        .map(|&(version, family)| ChtVersion { version, family })
}

/// The newest known release, the default for new projects.
pub fn latest() -> ChtVersion {
    let (version, family) = KNOWN[KNOWN.len() - 1];
    ChtVersion { version, family }
}

/// `a.b.c` as numbers, for ordering releases (a part that is not a number counts as 0),
/// e.g. to refuse a downgrade or a snapshot of a newer release.
pub fn order(version: &str) -> (u64, u64, u64) {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// `a.b.c` as numbers when it is exactly that (three parts of 1 to 9 digits); `None` for
/// anything else, so a record read back cannot pass for an old release by being
/// unreadable (see [`order`]).
pub fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| {
        (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u64>().ok())
            .flatten()
    });
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

/// Looks up a release by tag (a leading `v` is accepted).
pub fn find(version: &str) -> Result<ChtVersion> {
    let wanted = version.strip_prefix('v').unwrap_or(version);
    known()
        .find(|v| v.version == wanted)
        .ok_or_else(|| Error::UnknownVersion {
            version: version.to_string(),
            known: KNOWN.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_numbers_are_three_numbers_and_nothing_else() {
        assert_eq!(parse("4.22.0"), Some((4, 22, 0)));
        for bad in [
            "",
            "5",
            "5.2",
            "5.2.0.1",
            "5.x.0",
            "v5.2.0",
            "5.2.0-beta",
            "5..0",
            "1234567890.0.0",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn latest_is_newest_and_default_family_is_5x() {
        assert_eq!(latest().version, "5.2.0");
        assert_eq!(latest().family, Family::V5);
    }

    #[test]
    fn finds_both_lines_and_accepts_v_prefix() {
        assert_eq!(find("4.22.0").map(|v| v.family).ok(), Some(Family::V4));
        assert_eq!(find("v5.1.3").map(|v| v.version).ok(), Some("5.1.3"));
    }

    #[test]
    fn unknown_version_lists_known_ones() {
        let err = find("4.11.0")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown CHT version \"4.11.0\""), "{err}");
        assert!(err.contains("4.12.0") && err.contains("5.2.0"), "{err}");
    }
}
