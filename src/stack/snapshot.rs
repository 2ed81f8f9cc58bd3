//! Taking CouchDB's data folders (one per node) out of use for the shortest time, for a consistent copy or
//! a restore, and bringing the services back.
//!
//! CouchDB's own documentation allows copying its files while it runs only in a careful
//! order, and Nouveau's Lucene index not at all; so the services that write the folder
//! (CouchDB, Nouveau) and those that write through CouchDB (API, Sentinel) are stopped,
//! the upgrade service is paused (its compose would start them again), the folder is
//! copied or swapped, and everything is started again in dependency order.

use std::sync::Mutex;

use futures_util::future::try_join_all;

use super::STOP_GRACE;
use super::load::upgrade_project;
use super::status::containers;
use super::teardown::pause_upgrade_service;
use crate::docker::{ContainerInfo, Engine, labels};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::project::layout::is_couchdb;
use crate::report::Reporter;

/// How many groups [`quiet_group`] sorts services into.
const GROUPS: usize = 2;

/// The group a service stops in, `None` when it keeps running: writers through CouchDB
/// (API, Sentinel) stop first, then the services that write the data folders (every
/// CouchDB node, Nouveau). They start again in the reverse order.
pub fn quiet_group(service: &str) -> Option<usize> {
    match service {
        "api" | "sentinel" => Some(0),
        "nouveau" => Some(1),
        s if is_couchdb(s) => Some(1),
        _ => None,
    }
}

/// What [`quiesce`] stopped, recorded as it goes, so whatever happens next (an error,
/// Ctrl-C) [`resume`] starts exactly that again.
#[derive(Debug, Default)]
pub struct Quiesced {
    /// The upgrade service was running and is paused.
    pub upgrade_paused: bool,
    /// The containers stopped, in stop order.
    pub stopped: Vec<ContainerInfo>,
}

/// Stops the upgrade service and the services [`quiet_group`] names that run, recording each in
/// `record` as soon as it is stopped.
pub async fn quiesce(
    engine: &Engine,
    project: &Project,
    record: &Mutex<Quiesced>,
    reporter: &dyn Reporter,
) -> Result<()> {
    if pause_upgrade_service(engine, &project.name, reporter).await?
        && let Ok(mut r) = record.lock()
    {
        r.upgrade_paused = true;
    }
    let list = containers(engine, &project.name).await?;
    for group in 0..GROUPS {
        let running: Vec<&ContainerInfo> = list
            .iter()
            .filter(|c| {
                c.project == project.name
                    && quiet_group(&c.service) == Some(group)
                    && c.state.is_running()
            })
            .collect();
        try_join_all(running.into_iter().map(|c| async move {
            // Recorded first: a stop cut short still leaves it to be started again.
            if let Ok(mut r) = record.lock() {
                r.stopped.push(c.clone());
            }
            engine.stop(&c.id, &c.name, STOP_GRACE).await?;
            reporter.step(&format!("stopped {}", c.name));
            Ok::<(), Error>(())
        }))
        .await?;
    }
    Ok(())
}

/// Starts again what [`quiesce`] stopped: the CouchDB nodes and Nouveau, then API and
/// Sentinel, then the upgrade service.
pub async fn resume(engine: &Engine, project: &Project, quiesced: &Quiesced) -> Result<()> {
    for group in (0..GROUPS).rev() {
        try_join_all(
            quiesced
                .stopped
                .iter()
                .filter(|c| quiet_group(&c.service) == Some(group))
                .map(|c| engine.start(&c.id, &c.name)),
        )
        .await?;
    }
    if quiesced.upgrade_paused {
        let upgrade = engine
            .containers(&[(labels::PROJECT, &upgrade_project(&project.name))])
            .await?;
        try_join_all(upgrade.iter().map(|c| engine.start(&c.id, &c.name))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_couchdb_node_stops_after_its_writers() {
        for (service, group) in [
            ("api", Some(0)),
            ("sentinel", Some(0)),
            ("couchdb", Some(1)),
            ("couchdb-1.local", Some(1)),
            ("couchdb-3.local", Some(1)),
            ("nouveau", Some(1)),
            ("haproxy", None),
            ("healthcheck", None),
            ("nginx", None),
        ] {
            assert_eq!(quiet_group(service), group, "{service}");
        }
    }
}
