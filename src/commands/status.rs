//! `cht-dev status` and `cht-dev logs`: what a project's containers are doing.

use futures_util::StreamExt;
use futures_util::stream::select_all;

use crate::docker::ContainerState;
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::project::Project;
use crate::settings::Settings;
use crate::stack::status::containers;
use crate::stack::status::{self as stack_status, ServiceState};

/// A project's state, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The project.
    pub project: String,
    /// Its HTTPS URL on this machine.
    pub url: String,
    /// One word for all of it (see [`summary`]).
    pub state: String,
    /// Each service.
    pub services: Vec<ServiceState>,
}

/// `status`: each service's state, health, image and ports, and the URL.
pub async fn status(settings: &Settings, name: Option<&str>) -> Result<Status> {
    let home = settings.home()?;
    let name = super::runtime::pick_existing(&home, name, "status")?;
    let project = Project::load(&home, &name)?;
    let rows = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        stack_status::status(&engine, &project.target()).await
    })
    .await?;
    Ok(Status {
        url: project.url(),
        state: summary(&rows),
        project: project.name,
        services: rows,
    })
}

impl Report for Status {
    fn human(&self, p: &Printer) -> Result<()> {
        let mut table = vec![vec![
            "SERVICE".to_string(),
            "STATE".into(),
            "HEALTH".into(),
            "IMAGE".into(),
            "PORTS".into(),
        ]];
        table.extend(self.services.iter().map(|r| {
            vec![
                r.service.clone(),
                r.state_word().to_string(),
                r.health.clone().unwrap_or_else(|| "-".into()),
                r.image.clone(),
                r.ports.join(", "),
            ]
        }));
        for line in super::table(&table) {
            p.data(line)?;
        }
        p.data(format!("{}: {} at {}", self.project, self.state, self.url))
    }
}

/// One word for a project's state from its services' states.
pub fn summary(rows: &[ServiceState]) -> String {
    let running = rows
        .iter()
        .filter(|r| r.state == Some(ContainerState::Running))
        .count();
    let present = rows.iter().filter(|r| r.state.is_some()).count();
    match (running, present) {
        (_, 0) => "not created".into(),
        (r, _) if r == rows.len() => "running".into(),
        (0, _) => "stopped".into(),
        (r, _) => format!("partly running ({r}/{})", rows.len()),
    }
}

/// What `logs` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsRequest {
    /// The project.
    pub name: String,
    /// Only this service.
    pub service: Option<String>,
    /// Keep printing new lines.
    pub follow: bool,
    /// Only the last N lines of each container.
    pub tail: Option<u64>,
}

/// `logs`: a project's (or one service's) container logs, optionally followed.
pub async fn logs(settings: &Settings, req: &LogsRequest) -> Result<()> {
    let (name, service, follow, tail) = (
        req.name.as_str(),
        req.service.as_deref(),
        req.follow,
        req.tail,
    );
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let p = settings.printer;
    let json = settings.printer.is_json();
    super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        let all = containers(&engine, &project.name).await?;
        let chosen: Vec<_> = match service {
            Some(s) => all.iter().filter(|c| c.service == s).collect(),
            None => all.iter().collect(),
        };
        if chosen.is_empty() {
            let mut services: Vec<&str> = all.iter().map(|c| c.service.as_str()).collect();
            services.dedup();
            return Err(match service {
                Some(service) if !services.is_empty() => Error::UnknownService {
                    project: name.to_string(),
                    service: service.to_string(),
                    known: services.join(", "),
                },
                _ => Error::NoContainers {
                    project: name.to_string(),
                },
            });
        }
        let prefix = chosen.len() > 1;
        let width = chosen.iter().map(|c| c.service.len()).max().unwrap_or(0);
        let streams = chosen.iter().map(|c| {
            let label = if prefix {
                format!("{:<width$} | ", c.service)
            } else {
                String::new()
            };
            engine
                .logs(&c.id, follow, tail)
                .map(move |chunk| chunk.map(|text| (label.clone(), text)))
        });
        let mut merged = select_all(streams.map(Box::pin));
        // JSON: one document of all lines; with --follow, one JSON object per line.
        let mut collected = Vec::new();
        while let Some(item) = merged.next().await {
            let (label, text) = item?;
            let service = label.trim_end_matches(" | ").trim().to_string();
            for line in text.lines() {
                match (json, follow) {
                    (false, _) => p.data(format!("{label}{line}"))?,
                    (true, true) => {
                        p.data(serde_json::json!({ "service": service, "line": line }).to_string())?
                    }
                    (true, false) => {
                        collected.push(serde_json::json!({ "service": service, "line": line }))
                    }
                }
            }
        }
        if json && !follow {
            return p.json(&serde_json::json!({ "project": name, "lines": collected }));
        }
        Ok(())
    })
    .await
}
