//! Project names: compose's project-name rule plus the folders cht-dev reserves.

use crate::error::{Error, Result};

/// Longest name accepted, so container, network and volume names stay readable.
pub const MAX_LEN: usize = 63;

/// Names that would collide with cht-dev's own folders in the home.
const RESERVED: &[&str] = &["ca"];

/// Checks `name` against compose's rule: lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit.
pub fn validate(name: &str) -> Result<()> {
    let fail = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    let Some(first) = name.chars().next() else {
        return fail("it is empty; use lowercase letters, digits, '-' and '_', e.g. my-app");
    };
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return fail("it must start with a lowercase letter or a digit, e.g. my-app");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        let reason = if bad.is_ascii_uppercase() {
            format!(
                "{bad:?} is uppercase; compose project names are lowercase, e.g. {}",
                name.to_ascii_lowercase()
            )
        } else {
            format!("{bad:?} is not allowed; use lowercase letters, digits, '-' and '_'")
        };
        return fail(&reason);
    }
    if name.len() > MAX_LEN {
        return fail(&format!("it is longer than {MAX_LEN} characters"));
    }
    if RESERVED.contains(&name) {
        return fail("it is reserved for the home's certificate authority folder");
    }
    if name.ends_with("-upgrade") {
        return fail("names ending in -upgrade are reserved for projects' upgrade services");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_compose_style_names() {
        for ok in ["a", "cht", "my-app", "my_app_2", "4x", "0-test"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("-a", "must start"),
            ("_a", "must start"),
            ("My", "must start"),
            ("aB", "uppercase"),
            ("a.b", "'.'"),
            ("a b", "' '"),
            ("a/b", "'/'"),
            ("é", "must start"),
            ("ca", "reserved"),
            ("a-upgrade", "reserved"),
        ];
        for (bad, why) in cases {
            let msg = validate(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains(why), "{bad:?}: {msg}");
            assert!(!msg.contains('\n'), "{bad:?}: one line");
        }
        assert!(validate(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(validate(&"a".repeat(MAX_LEN)).is_ok());
    }
}
