//! `cht-dev versions`: the CHT releases cht-dev knows.

use serde::Serialize;

use crate::error::Result;
use crate::printer::{Printer, Report};
use crate::project::versions::{self, ChtVersion, Family};

/// The known releases, newest (the default) first.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// The release new projects get.
    pub default: &'static str,
    /// Every release, newest first.
    pub versions: Vec<ChtVersion>,
}

/// Lists the known versions.
pub fn run() -> Versions {
    Versions {
        default: versions::latest().version,
        versions: versions::known().rev().collect(),
    }
}

impl Report for Versions {
    fn human(&self, p: &Printer) -> Result<()> {
        let rows: Vec<Vec<String>> = self
            .versions
            .iter()
            .map(|v| {
                let mut row = vec![
                    v.version.to_string(),
                    v.family.label().to_string(),
                    match v.family {
                        Family::V4 => "with HAProxy healthcheck".into(),
                        Family::V5 => "with Nouveau".into(),
                    },
                ];
                if v.version == self.default {
                    row.push("(default)".into());
                }
                row
            })
            .collect();
        for line in super::table(&rows) {
            p.data(line)?;
        }
        Ok(())
    }
}
