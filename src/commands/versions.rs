//! `cht-dev versions`: the CHT releases cht-dev knows.

use crate::error::Result;
use crate::project::versions;
use crate::settings::Settings;

/// Prints known versions, newest (the default) first.
pub fn run(settings: &Settings) -> Result<()> {
    let json = settings.json;
    let p = &settings.printer;
    let latest = versions::latest();
    if json {
        let list: Vec<_> = versions::known().rev().collect();
        return p.json(&serde_json::json!({
            "default": latest.version,
            "versions": list,
        }));
    }
    let rows: Vec<Vec<String>> = versions::known()
        .rev()
        .map(|v| {
            let mut row = vec![v.version.to_string(), v.family.label().to_string()];
            row.push(match v.family {
                versions::Family::V4 => "with HAProxy healthcheck".into(),
                versions::Family::V5 => "with Nouveau".into(),
            });
            if v == latest {
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
