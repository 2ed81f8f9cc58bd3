//! A project's containers, found by label, and each service's state.

use std::collections::BTreeMap;

use super::load::{Stacks, companion_project, load};
use crate::docker::{ContainerInfo, ContainerState, Engine, labels};
use crate::error::Result;
use crate::stack::Target;

/// The state of one service, for `status` and `up`'s summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceState {
    /// Service name.
    pub service: String,
    /// Compose project it belongs to.
    pub project: String,
    /// Container name ("" when missing).
    pub container: String,
    /// Its container's state; `None` (shown as `missing`) when it has none.
    #[serde(serialize_with = "state_word")]
    pub state: Option<ContainerState>,
    /// Engine status text.
    pub status: String,
    /// Health, when reported.
    pub health: Option<String>,
    /// Image reference.
    pub image: String,
    /// Published ports.
    pub ports: Vec<String>,
}

/// Every container of a cht-dev project, found by label: cht-dev's own, and compose's
/// project labels (containers compose made after an in-app upgrade carry only those).
pub async fn containers(engine: &Engine, name: &str) -> Result<Vec<ContainerInfo>> {
    let upgrade = companion_project(name);
    // Three label filters (the engine ANDs labels within one call), asked at once.
    let (own, cht, upgrades) = futures_util::future::try_join3(
        engine.containers(&[(labels::CHT_DEV_PROJECT, name)]),
        engine.containers(&[(labels::PROJECT, name)]),
        engine.containers(&[(labels::PROJECT, upgrade.as_str())]),
    )
    .await?;
    let all: BTreeMap<String, ContainerInfo> = own
        .into_iter()
        .chain(cht)
        .chain(upgrades)
        .map(|c| (c.id.clone(), c))
        .collect();
    let mut list: Vec<ContainerInfo> = all.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// Each service's container state, CHT first, then the upgrade service; extra
/// containers (made by compose, or orphans) follow.
pub async fn status(engine: &Engine, project: &Target) -> Result<Vec<ServiceState>> {
    // The compose files are read on a blocking thread while the engine lists; unreadable
    // ones still leave the containers to report.
    let target = project.clone();
    let reading = tokio::task::spawn_blocking(move || load(&target).ok());
    let list = containers(engine, &project.name).await?;
    let stacks = reading.await.ok().flatten();
    Ok(rows_of(&list, stacks.as_ref()))
}

/// [`status`] for stacks already loaded (or none).
pub(crate) async fn status_with(
    engine: &Engine,
    project: &Target,
    stacks: Option<&Stacks>,
) -> Result<Vec<ServiceState>> {
    let list = containers(engine, &project.name).await?;
    Ok(rows_of(&list, stacks))
}

/// [`status_with`] for containers already listed.
pub(crate) fn rows_of(list: &[ContainerInfo], stacks: Option<&Stacks>) -> Vec<ServiceState> {
    let mut rows = Vec::new();
    let mut seen = Vec::new();
    if let Some(stacks) = stacks {
        for stack in [&stacks.main, &stacks.companion] {
            for spec in stack.services.values() {
                let found = list
                    .iter()
                    .find(|c| c.service == spec.name && c.project == stack.project);
                if let Some(c) = found {
                    seen.push(c.id.clone());
                }
                rows.push(row(&spec.name, &stack.project, found, &spec.image));
            }
        }
    }
    // Containers of no compose project are cht-dev's own one-offs, not services.
    for c in list
        .iter()
        .filter(|c| !seen.contains(&c.id) && !c.project.is_empty())
    {
        rows.push(row(&c.service, &c.project, Some(c), &c.image));
    }
    rows
}

impl ServiceState {
    /// The state as one word: the engine's, or `missing`.
    pub fn state_word(&self) -> &'static str {
        self.state.map_or("missing", ContainerState::as_str)
    }
}

/// Serialises a row's state as one word (`missing` for none), as `status --json` always has.
fn state_word<S: serde::Serializer>(
    state: &Option<ContainerState>,
    out: S,
) -> std::result::Result<S::Ok, S::Error> {
    out.serialize_str(state.map_or("missing", ContainerState::as_str))
}

/// One status row from a service and its container, if any.
fn row(service: &str, project: &str, c: Option<&ContainerInfo>, image: &str) -> ServiceState {
    ServiceState {
        service: service.to_string(),
        project: project.to_string(),
        container: c.map(|c| c.name.clone()).unwrap_or_default(),
        state: c.map(|c| c.state),
        status: c.map(|c| c.status.clone()).unwrap_or_default(),
        health: c.and_then(|c| c.health.clone()),
        image: c.map_or_else(|| image.to_string(), |c| c.image.clone()),
        ports: c.map(|c| c.ports.clone()).unwrap_or_default(),
    }
}
