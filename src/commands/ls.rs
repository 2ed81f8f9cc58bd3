//! `cht-dev ls`: list the projects of the home.

use crate::error::Result;
use crate::printer::{Printer, Report};
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
    /// Container state: running, stopped, partly running (n/m), not created, or unknown.
    pub state: String,
}

/// Reads every project of the home into rows, sorted by name.
pub async fn rows(settings: &Settings) -> Result<Vec<Row>> {
    let home = settings.home()?;
    // A damaged project is listed as damaged, with the reason; the others as usual.
    let mut damaged = Vec::new();
    let mut projects = Vec::new();
    for name in crate::project::names(&home)? {
        match Project::load(&home, &name) {
            Ok(project) => projects.push(project),
            Err(e) => damaged.push(Row {
                version: "?".into(),
                http_port: None,
                https_port: None,
                url: None,
                dir: home.project_dir(&name).display().to_string(),
                state: format!("damaged: {e}"),
                name,
            }),
        }
    }
    // State needs the engine; without one, ls still lists projects.
    let states: Vec<String> = if projects.is_empty() {
        Vec::new()
    } else {
        super::runtime::interruptible(async {
            let Ok(engine) = settings.engine().await else {
                return Ok(vec![
                    "unknown (engine unreachable)".to_string();
                    projects.len()
                ]);
            };
            let mut out = Vec::new();
            for project in &projects {
                let rows = crate::stack::status::status(&engine, &project.target()).await?;
                out.push(super::status::summary(&rows));
            }
            Ok(out)
        })
        .await?
    };
    let mut rows: Vec<Row> = projects
        .into_iter()
        .zip(states)
        .map(|(project, state)| Row {
            state,
            version: project.cht_version().unwrap_or_else(|_| "?".into()),
            http_port: Some(project.http_port()),
            https_port: Some(project.https_port()),
            url: Some(project.url()),
            dir: project.dir.display().to_string(),
            name: project.name,
        })
        .collect();
    rows.extend(damaged);
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The projects of the home, for `ls`.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Listing(pub Vec<Row>);

/// Lists the projects.
pub async fn run(settings: &Settings) -> Result<Listing> {
    Ok(Listing(rows(settings).await?))
}

impl Report for Listing {
    fn human(&self, p: &Printer) -> Result<()> {
        if self.0.is_empty() {
            return p.info("no projects yet; create one with `cht-dev init NAME`");
        }
        let port = |p: Option<u16>| p.map_or_else(|| "?".to_string(), |p| p.to_string());
        let mut table = vec![vec![
            "NAME".to_string(),
            "VERSION".into(),
            "HTTP".into(),
            "HTTPS".into(),
            "STATE".into(),
            "URL".into(),
        ]];
        table.extend(self.0.iter().map(|r| {
            vec![
                r.name.clone(),
                r.version.clone(),
                port(r.http_port),
                port(r.https_port),
                r.state.clone(),
                r.url.clone().unwrap_or_default(),
            ]
        }));
        for line in super::table(&table) {
            p.data(line)?;
        }
        Ok(())
    }
}
