//! Taking a project's data out of use for the shortest time, for a consistent copy or a
//! restore, and bringing the services back. For a copy ([`Hold::Freeze`]) the services the
//! profile puts in quiet groups and the upgrade service are frozen where they stand (the
//! cgroup freezer: no process of theirs runs, nothing restarts), so their files stay as
//! at one instant, as a power cut would leave them; engines that cannot freeze (rootless
//! on cgroup v1) stop them instead. For a restore ([`Hold::Stop`]) they stop group by
//! group (the upgrade service is paused beside the first group, before any later group
//! stops: its compose would start them again), and start again in the reverse order.

use std::sync::Mutex;

use futures_util::future::try_join_all;

use super::STOP_GRACE;
use super::load::companion_project;
use super::profile::Profile;
use super::status::containers;
use super::teardown::pause_upgrade_service;
use crate::docker::{ContainerInfo, ContainerState, Engine, labels};
use crate::error::{EngineFailure, Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// How the quiet services are held while their data is read or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Frozen, for a copy; stopped where the engine cannot freeze.
    Freeze,
    /// Stopped, for a restore: the services must open the new files when they start.
    Stop,
}

/// How many times freezing lists the project again for a quiet service that started
/// meanwhile (the upgrade service's compose, before it froze, may start one).
const FREEZE_ROUNDS: usize = 3;

/// What [`quiesce`] froze or stopped, recorded as it goes, so whatever happens next (an
/// error, Ctrl-C) [`resume`] lets exactly that run again.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Quiesced {
    /// The upgrade service was running and is stopped.
    pub upgrade_paused: bool,
    /// The containers stopped, in stop order.
    pub stopped: Vec<ContainerInfo>,
    /// The containers frozen (the upgrade service's included).
    pub frozen: Vec<ContainerInfo>,
}

impl Quiesced {
    /// Whether any service was held.
    pub fn held_any(&self) -> bool {
        !self.stopped.is_empty() || !self.frozen.is_empty()
    }
}

/// Where a [`Record`] writes each change.
type Save<'a> = dyn Fn(&Quiesced) -> Result<()> + Send + Sync + 'a;

/// What [`quiesce`] has held so far, handed to `save` (a journal, which a kill leaves for
/// the next command) before each service is held, so nothing is ever held unrecorded.
pub struct Record<'a> {
    /// What is held.
    state: Mutex<Quiesced>,
    /// Told each change before the engine is asked.
    save: Box<Save<'a>>,
}

impl<'a> Record<'a> {
    /// An empty record handing each change to `save`.
    pub fn new(save: impl Fn(&Quiesced) -> Result<()> + Send + Sync + 'a) -> Record<'a> {
        Record {
            state: Mutex::new(Quiesced::default()),
            save: Box::new(save),
        }
    }

    /// Changes the record and saves it.
    fn note(&self, change: impl FnOnce(&mut Quiesced)) -> Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::engine("record the services held", "a thread failed"))?;
        change(&mut state);
        (self.save)(&state)
    }

    /// What is held.
    pub fn into_inner(self) -> Quiesced {
        self.state.into_inner().unwrap_or_default()
    }
}

/// Stops the upgrade service and the running services the profile puts in a quiet group,
/// group by group, recording each in `record` as soon as it is stopped. The upgrade
/// service stops beside the first group: only the later groups hold the data, and none of
/// them stops before it is paused. With [`Hold::Freeze`] they freeze instead, all at
/// once; if the engine refuses, what froze runs again and they stop.
pub async fn quiesce(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    hold: Hold,
    record: &Record<'_>,
    reporter: &dyn Reporter,
) -> Result<()> {
    if hold == Hold::Freeze {
        let Err(refused) = freeze(engine, project, profile, record, reporter).await else {
            return Ok(());
        };
        let frozen = record
            .state
            .lock()
            .map(|r| r.frozen.clone())
            .unwrap_or_default();
        thaw(engine, project, &frozen).await?;
        record.note(|r| r.frozen.clear())?;
        reporter.step(&format!(
            "stopping the services instead of pausing them: {refused}"
        ));
    }
    let list = containers(engine, &project.name).await?;
    let stop_group = |group: usize| {
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
            record.note(|r| r.stopped.push(c.clone()))?;
            engine.stop(&c.id, &c.name, STOP_GRACE).await?;
            reporter.step(&format!("stopped {}", c.name));
            Ok::<(), Error>(())
        }))
    };
    record.note(|r| r.upgrade_paused = true)?;
    let (paused, first) = tokio::join!(
        pause_upgrade_service(engine, &project.name, reporter),
        stop_group(0)
    );
    if !paused? {
        record.note(|r| r.upgrade_paused = false)?;
    }
    first?;
    for group in 1..profile.quiet_group_count() {
        stop_group(group).await?;
    }
    Ok(())
}

/// Starts again what [`quiesce`] stopped, the last group first; the upgrade service starts
/// beside the first group, when the data is in use again. A container removed meanwhile
/// (by `down`, or by hand) is left to the next `up`.
pub async fn resume(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    quiesced: &Quiesced,
) -> Result<()> {
    thaw(engine, project, &quiesced.frozen).await?;
    let start_group = |group: usize| {
        try_join_all(
            quiesced
                .stopped
                .iter()
                .filter(move |c| profile.quiet_group(&c.service) == Some(group))
                .map(|c| start_kept(engine, c)),
        )
    };
    for group in (1..profile.quiet_group_count()).rev() {
        start_group(group).await?;
    }
    let upgrade = async {
        if quiesced.upgrade_paused {
            let upgrade = engine
                .containers(&[(labels::PROJECT, &companion_project(&project.name))])
                .await?;
            try_join_all(upgrade.iter().map(|c| start_kept(engine, c))).await?;
        }
        Ok::<(), Error>(())
    };
    tokio::try_join!(start_group(0), upgrade)?;
    Ok(())
}

/// [`resume`] for a command that died while holding the services: a stop or a freeze it
/// had asked for may still be under way in the engine (which finishes what it was asked
/// after the asker is gone), so each stopped container is stopped (again: the engine
/// answers once it has stopped) before it starts, and the frozen ones are thawed until a
/// listing a moment later finds none of them paused.
pub async fn bring_back(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    held: &Quiesced,
) -> Result<()> {
    // (A container gone meanwhile is fine: `Engine::stop` tolerates it.)
    try_join_all(
        held.stopped
            .iter()
            .map(|c| engine.stop(&c.id, &c.name, STOP_GRACE)),
    )
    .await?;
    resume(engine, project, profile, held).await?;
    if held.frozen.is_empty() {
        return Ok(());
    }
    for _ in 0..THAW_ROUNDS {
        tokio::time::sleep(THAW_SETTLE).await;
        if thaw(engine, project, &held.frozen).await? == 0 {
            return Ok(());
        }
    }
    Ok(())
}

/// How many times [`bring_back`] looks again for a freeze that landed late.
const THAW_ROUNDS: usize = 5;

/// How long [`bring_back`] waits before it looks again.
const THAW_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Freezes the running quiet services and the upgrade service at once, recording each
/// before it is frozen; lists the project again until no quiet service runs unfrozen.
async fn freeze(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    record: &Record<'_>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let companion = companion_project(&project.name);
    for _ in 0..FREEZE_ROUNDS {
        let frozen: Vec<String> = record
            .state
            .lock()
            .map(|r| r.frozen.iter().map(|c| c.id.clone()).collect())
            .unwrap_or_default();
        let due: Vec<ContainerInfo> = containers(engine, &project.name)
            .await?
            .into_iter()
            .filter(|c| {
                let quiet = c.project == project.name && profile.quiet_group(&c.service).is_some();
                (quiet || c.project == companion) && c.state.is_running() && !frozen.contains(&c.id)
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        try_join_all(due.iter().map(|c| async move {
            // Recorded first: a freeze cut short still leaves it to be thawed.
            record.note(|r| r.frozen.push(c.clone()))?;
            engine.pause(&c.id, &c.name).await?;
            reporter.step(&format!("paused {}", c.name));
            Ok::<(), Error>(())
        }))
        .await?;
    }
    Ok(())
}

/// Lets frozen containers run again: those of `frozen` the engine lists as paused (a
/// freeze refused or cut short left some running, and engines refuse to unpause those);
/// returns how many it found paused.
async fn thaw(engine: &Engine, project: &Target, frozen: &[ContainerInfo]) -> Result<usize> {
    if frozen.is_empty() {
        return Ok(0);
    }
    let paused: Vec<ContainerInfo> = containers(engine, &project.name)
        .await?
        .into_iter()
        .filter(|c| c.state == ContainerState::Paused && frozen.iter().any(|f| f.id == c.id))
        .collect();
    try_join_all(paused.iter().map(|c| engine.unpause(&c.id, &c.name))).await?;
    Ok(paused.len())
}

/// Starts a container, unless it is gone.
async fn start_kept(engine: &Engine, c: &ContainerInfo) -> Result<()> {
    match engine.start(&c.id, &c.name).await {
        Err(e) if e.engine_kind() == Some(EngineFailure::NotFound) => Ok(()),
        done => done,
    }
}
