//! `cht-dev ls`: list the projects of the home.

use crate::error::Result;
use crate::project::Project;
use crate::settings::Settings;

/// One project as `ls` shows it.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// Project name.
    pub name: String,
    /// CHT version, from the compose files ("?" when unreadable).
    pub version: String,
    /// nginx's host HTTP port.
    pub http_port: Option<u16>,
    /// nginx's host HTTPS port.
    pub https_port: Option<u16>,
    /// The HTTPS URL on this machine.
    pub url: Option<String>,
    /// The project folder.
    pub dir: String,
}

/// Reads every project of the home into rows, sorted by name.
pub fn rows(settings: &Settings) -> Result<Vec<Row>> {
    let home = settings.home()?;
    home.project_names()?
        .into_iter()
        .map(|name| {
            let project = Project::load(&home, &name)?;
            Ok(Row {
                version: project.cht_version().unwrap_or_else(|_| "?".into()),
                http_port: project.http_port(),
                https_port: project.https_port(),
                url: project.url(),
                dir: project.dir.display().to_string(),
                name,
            })
        })
        .collect()
}

/// Prints the projects as a table or JSON.
pub fn run(settings: &Settings, json: bool) -> Result<()> {
    let rows = rows(settings)?;
    let p = &settings.printer;
    if json {
        return p.json(&rows);
    }
    if rows.is_empty() {
        return p.info("no projects yet; create one with `cht-dev init NAME`");
    }
    let port = |p: Option<u16>| p.map_or_else(|| "?".to_string(), |p| p.to_string());
    let mut table = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "HTTP".into(),
        "HTTPS".into(),
        "URL".into(),
    ]];
    table.extend(rows.iter().map(|r| {
        vec![
            r.name.clone(),
            r.version.clone(),
            port(r.http_port),
            port(r.https_port),
            r.url.clone().unwrap_or_default(),
        ]
    }));
    for line in super::table(&table) {
        p.data(line)?;
    }
    Ok(())
}
