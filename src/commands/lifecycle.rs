//! `cht-dev stop`, `down` and `destroy`: taking a project's containers away, by label.

use crate::docker::Engine;
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::progress;
use crate::project::{Project, journal};
use crate::settings::Settings;
use crate::stack::{owned, teardown};

/// What `stop` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stopped {
    /// The project.
    pub project: String,
    /// How many containers it stopped.
    pub stopped: usize,
}

impl Report for Stopped {
    fn human(&self, p: &Printer) -> Result<()> {
        let name = &self.project;
        p.info(match self.stopped {
            0 => format!("{name}: nothing was running"),
            n => format!(
                "{name}: stopped {n} containers (data kept; `cht-dev up {name}` starts them again)"
            ),
        })
    }
}

/// What `down` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Down {
    /// The project.
    pub project: String,
    /// Always true: the containers are gone.
    pub down: bool,
    /// The network the engine would not remove although nothing is attached, if any
    /// (omitted when the network went too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_stays: Option<String>,
}

impl Report for Down {
    fn human(&self, p: &Printer) -> Result<()> {
        let removed = match self.network_stays {
            Some(_) => "containers removed (the network stays)",
            None => "containers and network removed",
        };
        p.info(format!(
            "{}: {removed}; data, volumes, certificates and files kept",
            self.project
        ))
    }
}

/// What `destroy` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Destroyed {
    /// The project.
    pub project: String,
    /// Always true: nothing of it is left.
    pub destroyed: bool,
}

impl Report for Destroyed {
    fn human(&self, p: &Printer) -> Result<()> {
        p.info(format!("{}: destroyed", self.project))
    }
}

/// `stop`: stops the containers, keeps them.
pub async fn stop(settings: &Settings, name: Option<&str>) -> Result<Stopped> {
    let home = settings.home()?;
    let name = super::runtime::pick_existing(&home, name, "stop")?;
    let project = Project::load(&home, &name)?;
    let _lock = crate::project::lock(&home, &name)?;
    let reporter = progress::for_terminal(settings.printer.is_quiet());
    let count = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        teardown::stop(&engine, &project.name, reporter.as_ref()).await
    })
    .await?;
    Ok(Stopped {
        project: name,
        stopped: count,
    })
}

/// `down`: removes containers and the network, keeps volumes, data, certificates and files.
pub async fn down(settings: &Settings, name: Option<&str>) -> Result<Down> {
    let home = settings.home()?;
    let name = super::runtime::pick_existing(&home, name, "down")?;
    let project = Project::load(&home, &name)?;
    let _lock = crate::project::lock(&home, &name)?;
    let reporter = progress::for_terminal(settings.printer.is_quiet());
    let network_stays = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        teardown::down(&engine, &project.target(), reporter.as_ref()).await
    })
    .await?;
    if let Some(network) = &network_stays {
        settings.printer.always_warn(&stuck_network(
            network,
            &format!("; the next `cht-dev up {name}` uses it again"),
        ));
    }
    Ok(Down {
        project: name,
        down: true,
        network_stays,
    })
}

/// `destroy`: everything: containers, network, volumes and the project folder.
pub async fn destroy(settings: &Settings, name: &str, yes: bool) -> Result<Destroyed> {
    let home = settings.home()?;
    let project = Project::load(&home, name)?;
    let question = format!(
        "destroy {name}: delete its containers, volumes and {} (CouchDB data included)?",
        project.dir.display()
    );
    let refusal = format!(
        "destroy deletes {name}'s CouchDB data and files and needs confirmation: run it in a terminal or pass --yes"
    );
    if !yes && !super::confirm_by_name(&question, name, refusal)? {
        return Err(Error::NotConfirmed(format!(
            "{name} was not destroyed (the name did not match)"
        )));
    }
    let lock = crate::project::lock(&home, name)?;
    let reporter = progress::for_terminal(settings.printer.is_quiet());
    let journal = journal::Open::begin(&project, "destroy")?;
    let destroyed = super::runtime::interruptible(async {
        let engine = settings.engine().await?;
        // Confirmed and under way: a destroy killed from here on is finished by the next
        // command (one that fails or is interrupted is left for `destroy` to finish).
        journal.update(|j| j.destroy = true)?;
        destroy_steps(
            &engine,
            name,
            Some(&project),
            &project.dir,
            reporter.as_ref(),
        )
        .await
    })
    .await;
    match destroyed {
        Err(e) => {
            if project.dir.join(".env").is_file() {
                journal.update(|j| j.destroy = false)?;
            }
            return Err(e);
        }
        Ok(Some(network)) => settings.printer.always_warn(&stuck_network(&network, "")),
        Ok(None) => {}
    }
    drop(lock);
    Ok(Destroyed {
        project: name.to_string(),
        destroyed: true,
    })
}

/// The steps of `destroy` once confirmed, each safe to run again: the project's containers,
/// networks and volumes (when its files still load: `project`), then its folder: `.env`,
/// the compose files (which name the image the engine removes with) and the journal that
/// says a destroy is under way go last, with the folder, in one step. Returns the network
/// the engine would not remove although nothing is attached (see `teardown::down`), if any.
pub(super) async fn destroy_steps(
    engine: &Engine,
    name: &str,
    project: Option<&Project>,
    dir: &std::path::Path,
    reporter: &dyn progress::Reporter,
) -> Result<Option<String>> {
    let image = project.and_then(super::runtime::data_image);
    let mut stuck = None;
    if let Some(project) = project {
        stuck = teardown::down(engine, &project.target(), reporter).await?;
        teardown::remove_volumes(engine, name, reporter).await?;
    }
    crate::faults::point("engine-part-done");
    owned::remove_folder(
        engine,
        name,
        image.as_deref(),
        dir,
        &[
            "compose",
            crate::project::render::UPGRADE_FILE,
            ".env",
            journal::FILE,
        ],
    )
    .await?;
    Ok(stuck)
}

/// The warning for a network the engine would not remove although nothing is attached.
pub(super) fn stuck_network(network: &str, then: &str) -> String {
    format!(
        "warning: network {network} stays: the engine still holds an endpoint of a removed container (restart the engine, then `docker network rm {network}`{then})"
    )
}
