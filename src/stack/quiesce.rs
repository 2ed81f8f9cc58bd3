//! Taking a project's data out of use for the shortest time, for a consistent copy or a
//! restore, and bringing the services back: the services the profile puts in quiet groups
//! stop group by group (the upgrade service first: its compose would start them again),
//! and start again in the reverse order.

use std::sync::Mutex;

use futures_util::future::try_join_all;

use super::STOP_GRACE;
use super::load::companion_project;
use super::profile::Profile;
use super::status::containers;
use super::teardown::pause_upgrade_service;
use crate::docker::{ContainerInfo, Engine, labels};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// What [`quiesce`] stopped, recorded as it goes, so whatever happens next (an error,
/// Ctrl-C) [`resume`] starts exactly that again.
#[derive(Debug, Default)]
pub struct Quiesced {
    /// The upgrade service was running and is paused.
    pub upgrade_paused: bool,
    /// The containers stopped, in stop order.
    pub stopped: Vec<ContainerInfo>,
}

/// Stops the upgrade service and the running services the profile puts in a quiet group,
/// group by group, recording each in `record` as soon as it is stopped.
pub async fn quiesce(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    record: &Mutex<Quiesced>,
    reporter: &dyn Reporter,
) -> Result<()> {
    if pause_upgrade_service(engine, &project.name, reporter).await?
        && let Ok(mut r) = record.lock()
    {
        r.upgrade_paused = true;
    }
    let list = containers(engine, &project.name).await?;
    for group in 0..profile.quiet_group_count() {
        let running: Vec<&ContainerInfo> = list
            .iter()
            .filter(|c| {
                c.project == project.name
                    && profile.quiet_group(&c.service) == Some(group)
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

/// Starts again what [`quiesce`] stopped, the last group first, then the upgrade service.
pub async fn resume(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    quiesced: &Quiesced,
) -> Result<()> {
    for group in (0..profile.quiet_group_count()).rev() {
        try_join_all(
            quiesced
                .stopped
                .iter()
                .filter(|c| profile.quiet_group(&c.service) == Some(group))
                .map(|c| engine.start(&c.id, &c.name)),
        )
        .await?;
    }
    if quiesced.upgrade_paused {
        let upgrade = engine
            .containers(&[(labels::PROJECT, &companion_project(&project.name))])
            .await?;
        try_join_all(upgrade.iter().map(|c| engine.start(&c.id, &c.name))).await?;
    }
    Ok(())
}
