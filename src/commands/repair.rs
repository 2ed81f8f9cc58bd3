//! Start-up repair: what a command killed part-way left half done, put right from its
//! journal (see `project::journal`) before the command that runs now. For each project of
//! the home that holds a journal and whose lock is free (so no live command owns it):
//! folder swaps undone and files put back first (no engine needed), then, with the
//! engine, a destroy finished, a certificate put in place and handed to nginx, and the
//! services that were paused or stopped let run again. One line per project says what was
//! done, or why it could not be (the journal then stays for the next command).

use crate::error::{Error, Result};
use crate::home::Home;
use crate::progress::Silent;
use crate::project::journal::{self, Journal};
use crate::project::{self, Project, certs, snapshots, upgrade};
use crate::settings::Settings;
use crate::stack::quiesce::bring_back;
use crate::stack::readiness::probe::wait_serving;

/// How long a repaired certificate may take to be served after nginx reloads.
const SERVING_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Repairs every project a killed command left a journal in; returns what to say.
pub async fn run(settings: &Settings) -> Vec<String> {
    let Ok(home) = settings.home() else {
        return Vec::new();
    };
    let Ok(names) = home.folders_holding(journal::FILE) else {
        return Vec::new();
    };
    let mut said = Vec::new();
    for name in names {
        match repair(settings, &home, &name).await {
            Ok(Some(line)) => said.push(line),
            Ok(None) => {}
            Err(e) => said.push(format!(
                "{name} was left part-way by an interrupted command, and repairing it failed (the next command tries again): {e}"
            )),
        }
    }
    said
}

/// Repairs project `name` from its journal; `None` when there was nothing to do or a live
/// command holds it.
async fn repair(settings: &Settings, home: &Home, name: &str) -> Result<Option<String>> {
    let _lock = match project::lock(home, name) {
        Err(Error::Busy { .. }) => return Ok(None),
        held => held?,
    };
    let dir = home.project_dir(name);
    let Some(mut left) = journal::read(name, &dir)? else {
        return Ok(None);
    };
    let command = left.command.clone();
    let mut done = Vec::new();
    if !left.swaps.is_empty() {
        let undone = snapshots::undo_swaps(&left.swaps)?;
        left.swaps.clear();
        journal::write(&dir, &left)?;
        done.push(
            if undone > 0 {
                "swapped the data folders back, so the data is as it was before the restore"
            } else {
                "the data folders had not been swapped: the data is as it was before the restore"
            }
            .to_string(),
        );
    }
    if let Some(files) = left.files.take() {
        upgrade::put_back(&files)?;
        journal::write(&dir, &left)?;
        done.push(format!("put back the files {} had replaced", files.change));
    }
    if left.destroy {
        let engine = settings.engine().await?;
        let project = Project::load(home, name).ok();
        let stuck =
            super::lifecycle::destroy_steps(&engine, name, project.as_ref(), &dir, &Silent).await?;
        let mut line = format!(
            "finished destroying {name}, which an interrupted `{command}` had left half removed"
        );
        if let Some(network) = stuck {
            line = format!("{line}; {}", super::lifecycle::stuck_network(&network, ""));
        }
        return Ok(Some(line));
    }
    with_engine(settings, home, name, &mut left, &mut done).await?;
    journal::write(&dir, &left)?;
    Ok((!done.is_empty()).then(|| {
        format!(
            "repaired {name} after an interrupted `{command}`: {}",
            done.join("; ")
        )
    }))
}

/// The repairs that need the engine: the certificate in place and handed to nginx, then
/// the services held let run again; each cleared from the journal once done.
async fn with_engine(
    settings: &Settings,
    home: &Home,
    name: &str,
    left: &mut Journal,
    done: &mut Vec<String>,
) -> Result<()> {
    if left.certificates.is_none() && left.held.is_none() {
        return Ok(());
    }
    let engine = settings.engine().await?;
    let mut project = Project::load(home, name)?;
    if let Some(pair) = left.certificates.clone() {
        certs::put_in_place(&mut project, &pair)?;
        let profile =
            project::profile::profile(&project, &crate::tls::CaFiles::of(home).cert, true)?;
        let handed = crate::stack::up::reload_files(&engine, &project.target(), &profile).await?;
        if handed.is_some() {
            // nginx's old workers answer a few more handshakes after the reload.
            wait_serving(project.https_port(), &pair.cert, SERVING_WITHIN).await?;
        }
        left.certificates = None;
        journal::write(&project.dir, left)?;
        done.push(match handed {
            Some(nginx) => format!("put the new certificate in place and reloaded {nginx}"),
            None => "put the new certificate in place (nginx gets it when it starts)".into(),
        });
    }
    if let Some(held) = left.held.clone() {
        let profile = super::profile_of(home, &project)?;
        bring_back(&engine, &project.target(), &profile, &held).await?;
        left.held = None;
        journal::write(&project.dir, left)?;
        let how = if held.frozen.is_empty() {
            "started again the services it had stopped"
        } else {
            "let run again the services it had paused"
        };
        done.push(how.to_string());
    }
    Ok(())
}
