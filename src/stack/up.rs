//! `up` as a whole: images, compose's hashes, resources, containers in order, the upgrade
//! service last, readiness; and what the upgrade service's next start would do.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::FutureExt;

use super::compose_hash::{self, Learned, UpgradeService};
use super::images::{PullPolicy, ensure_images};
use super::load::{Stacks, load};
use super::profile::Profile;
use super::readiness::wait_ready;
use super::reconcile::{
    Desired, Preparing, check_published_ports, ensure_resources, is_settled, prepare,
};
use super::start::{Sequence, start_in_order};
use super::status::{ServiceState, containers, rows_of, status_with};
use super::teardown::pause_upgrade_service;
use crate::docker::timeline::Span;
use crate::docker::{ContainerInfo, Engine, ImageInfo, labels};
use crate::error::{EngineFailure, Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// How `up` runs.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Pull policy.
    pub pull: PullPolicy,
    /// How long to wait for readiness.
    pub timeout: Duration,
    /// Skip the readiness wait.
    pub wait: bool,
}

/// What `up` did besides its states: one-line notes the user should read.
#[derive(Debug, Clone, Default)]
pub struct UpOutcome {
    /// Each service's state after `up`.
    pub services: Vec<ServiceState>,
    /// Things worth one line each (e.g. why compose's hashes could not be learned).
    pub notes: Vec<String>,
}

/// What the upgrade service's compose computes for the CHT services, given the images
/// as present: the hashes, or why they are unknown.
async fn learn_compose_hashes(
    engine: &Engine,
    project: &Target,
    stacks: &Stacks,
    images: &BTreeMap<String, ImageInfo>,
) -> Learned {
    let Some(spec) = compose_hash::find_upgrade_service(stacks.companion.services.values()) else {
        return Learned::Unknown(format!(
            "{} defines no service that mounts the compose folder at {}",
            project
                .companion_files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            compose_hash::COMPOSE_MOUNT
        ));
    };
    let Some(image) = images.get(&spec.image) else {
        return Learned::Unknown(format!("the image {} is not present", spec.image));
    };
    compose_hash::learn(engine, project, &UpgradeService { spec, image }).await
}

/// Makes the networks and volumes both stacks declare, one stack after the other: both
/// declare the same network, and older engines would create two networks of one name if
/// asked at once.
async fn ensure_both_resources(
    engine: &Engine,
    project: &Target,
    stacks: &Stacks,
    reporter: &dyn Reporter,
) -> Result<()> {
    ensure_resources(engine, &project.name, &stacks.main, reporter).await?;
    ensure_resources(engine, &project.name, &stacks.companion, reporter).await
}

/// The one line said when compose's hashes are unknown.
pub fn unknown_hashes_note(why: &str) -> String {
    format!(
        "cannot learn the upgrade service's compose hashes ({why}); using cht-dev's own, so its next start may recreate CHT's containers"
    )
}

/// The bind mounts whose source is missing outside the project's folder (the socket of an
/// engine that is not there, say), as (service, source, target). Missing folders inside
/// the project are made when needed.
pub fn missing_mount_sources(project: &Target, stacks: &Stacks) -> Vec<(String, String, String)> {
    let mut missing = Vec::new();
    for stack in [&stacks.main, &stacks.companion] {
        for spec in stack.services.values() {
            for m in spec.mounts.iter().filter(|m| m.bind) {
                let source = std::path::Path::new(&m.source);
                if !source.exists() && !source.starts_with(&project.dir) {
                    missing.push((spec.name.clone(), m.source.clone(), m.target.clone()));
                }
            }
        }
    }
    missing
}

/// Refuses, before anything changes, a bind mount whose source is missing outside the
/// project's folder on the engine's machine: the engine would make a folder there as
/// root. Only this machine can be looked at: an engine in a VM (Docker Desktop, Colima)
/// has its own `/var/run/docker.sock`.
async fn check_mount_sources(engine: &Engine, project: &Target, stacks: &Stacks) -> Result<()> {
    let missing = missing_mount_sources(project, stacks);
    let Some((service, path, target)) = missing.into_iter().next() else {
        return Ok(());
    };
    if !engine.facts().await?.runs_here() {
        return Ok(());
    }
    Err(Error::MissingMountSource {
        service,
        path: path.into(),
        target,
    })
}

/// Gives the running container that mounts the profile's volume its files and runs the
/// reload command there; returns the container's name, or `None` when none runs (`up`
/// gives a stopped one the files as it starts it).
pub async fn reload_files(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
) -> Result<Option<String>> {
    let Some(files) = &profile.volume_files else {
        return Ok(None);
    };
    let stacks = load(project)?;
    super::reconcile::reload_files(engine, &stacks.main, files).await
}

/// Whether every service of both stacks has a running container among `before`: then
/// their networks and volumes exist (the engine removes neither while a container uses it).
pub(crate) fn all_running(before: &[ContainerInfo], stacks: &Stacks) -> bool {
    [&stacks.main, &stacks.companion].iter().all(|stack| {
        stack.services.values().all(|spec| {
            before.iter().any(|c| {
                c.project == stack.project && c.service == spec.name && c.state.is_running()
            })
        })
    })
}

/// What `up` found before changing anything, and what it aims for.
struct Survey {
    /// Both stacks, loaded.
    stacks: Stacks,
    /// The project's containers as they were.
    before: Vec<ContainerInfo>,
    /// Whether every service ran.
    all_running: bool,
    /// The main stack's target.
    cht_target: Desired,
    /// The upgrade service's target.
    upgrade_target: Desired,
    /// Notes (compose's hashes unknown).
    notes: Vec<String>,
}

/// Loads the files and looks at what runs, changing nothing but missing images, networks
/// and volumes: mounts and ports checked, images present, compose's hashes learned.
async fn survey(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<Survey> {
    let step = |what: &'static str| Span::open(engine.timeline(), || format!("up: {what}"));
    let loading = step("read files");
    let stacks = load(project)?;
    check_mount_sources(engine, project, &stacks).await?;
    drop(loading);
    let checking = step("list containers, check ports and images");
    let (before, images) = futures_util::future::try_join(
        containers(engine, &project.name),
        ensure_images(engine, &stacks, opts.pull, reporter),
    )
    .await?;
    check_published_ports(&before, &stacks, profile)?;
    drop(checking);
    let all_running = all_running(&before, &stacks);
    // Learning compose's hashes (a one-off container unless cached) overlaps with the
    // network and volumes, which it does not need.
    let (learned, ()) = futures_util::future::try_join(
        async {
            let _learning = step("learn compose hashes");
            Ok(learn_compose_hashes(engine, project, &stacks, &images).await)
        },
        async {
            if all_running {
                return Ok(());
            }
            ensure_both_resources(engine, project, &stacks, reporter).await
        },
    )
    .await?;
    let mut notes = Vec::new();
    let compose = match &learned {
        Learned::Known(c) => Some(c),
        Learned::Unknown(why) => {
            notes.push(unknown_hashes_note(why));
            None
        }
    };
    Ok(Survey {
        cht_target: Desired::of(&stacks.main, &images, compose),
        upgrade_target: Desired::of(&stacks.companion, &images, None),
        stacks,
        before,
        all_running,
        notes,
    })
}

/// Both stacks' containers prepared (see [`prepare`]), the main one with the profile's
/// files, the upgrade service's without.
async fn prepare_both<'a>(
    engine: &'a Engine,
    project: &'a Target,
    survey: &'a Survey,
    profile: &'a Profile,
    reporter: &'a dyn Reporter,
) -> Result<(
    BTreeMap<String, Preparing<'a>>,
    BTreeMap<String, Preparing<'a>>,
)> {
    futures_util::future::try_join(
        prepare(
            engine,
            project,
            "cht",
            &survey.stacks.main,
            &survey.cht_target,
            profile.volume_files.as_ref(),
            reporter,
        ),
        prepare(
            engine,
            project,
            "upgrade",
            &survey.stacks.companion,
            &survey.upgrade_target,
            None,
            reporter,
        ),
    )
    .await
}

/// Brings the project up: images, network, volumes, containers in order, the profile's
/// files, then waits for readiness (unless `opts.wait` is false).
///
/// CHT's containers carry the config hash the upgrade service's own compose computes, and
/// the upgrade service starts only once they all run, so its boot-time `up` keeps them.
pub async fn up(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<UpOutcome> {
    let mut tries = 1;
    loop {
        match up_once(engine, project, profile, opts, reporter).await {
            // A container listed by the survey went away before `up` used it: another
            // client's removal (a compose run, a killed command's last request) landed
            // meanwhile. `up` converges from any state, so it looks again.
            Err(e)
                if e.engine_kind() == Some(EngineFailure::NotFound) && tries < VANISHED_TRIES =>
            {
                reporter.step(&format!("looking again: {e}"));
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// How many times `up` runs when containers vanish under it.
const VANISHED_TRIES: u32 = 3;

/// One run of [`up`] from a fresh survey.
async fn up_once(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    opts: &UpOptions,
    reporter: &dyn Reporter,
) -> Result<UpOutcome> {
    let survey = survey(engine, project, profile, opts, reporter).await?;
    let stacks = &survey.stacks;
    let step = |what: &'static str| Span::open(engine.timeline(), || format!("up: {what}"));
    let wait = async || {
        let _waiting = step("wait until ready");
        wait_ready(
            engine,
            project,
            &profile.readiness,
            stacks,
            opts.timeout,
            reporter,
        )
        .await
    };
    let files_changed = profile.volume_files.as_ref().is_some_and(|f| f.changed);
    let cht_settled = is_settled(&survey.before, &stacks.main, &survey.cht_target);
    if survey.all_running
        && cht_settled
        && is_settled(&survey.before, &stacks.companion, &survey.upgrade_target)
        && !files_changed
    {
        // Nothing to change: what runs is what the files say.
        if opts.wait {
            wait().await?;
        }
        return Ok(UpOutcome {
            services: rows_of(&survey.before, Some(stacks)),
            notes: survey.notes,
        });
    }
    if survey.all_running {
        ensure_both_resources(engine, project, stacks, reporter).await?;
    }
    // The upgrade service's compose must not act while CHT's containers change: it
    // stops, and starts again last.
    if !cht_settled {
        pause_upgrade_service(engine, &project.name, reporter).await?;
    }
    let preparing = step("list containers, remove orphans");
    let (cht, upgrade) = prepare_both(engine, project, &survey, profile, reporter).await?;
    drop(preparing);
    // The upgrade service runs compose on the main stack's files as it boots, so it starts
    // only once every main container is in place and labelled and has started, but for the
    // last start, which runs beside it: its compose then keeps them all (the last one still
    // starting, it starts it again, harmlessly).
    let (tell, told) = tokio::sync::oneshot::channel();
    // The upgrade service's container is made once CHT's are: it starts last, and every
    // create beside the first starts slows them.
    let (tell_made, made_told) = tokio::sync::oneshot::channel();
    let cht_started = async {
        let _starting = step("create and start CHT in dependency order");
        let cht_sequence = Sequence {
            issued: Some(tell),
            all_made: Some(tell_made),
            ..Sequence::default()
        };
        start_in_order(engine, &stacks.main, cht, cht_sequence, reporter).await
    };
    let upgrade_after: futures_util::future::BoxFuture<'_, bool> =
        Box::pin(async { told.await.is_ok() });
    let cht_made: futures_util::future::BoxFuture<'_, ()> = Box::pin(async {
        let _ = made_told.await;
    });
    let upgrade_sequence = Sequence {
        after: Some(upgrade_after.shared()),
        make_after: Some(cht_made.shared()),
        ..Sequence::default()
    };
    let upgrade_started = start_in_order(
        engine,
        &stacks.companion,
        upgrade,
        upgrade_sequence,
        reporter,
    );
    let before = &survey.before;
    let cht_started = async {
        cht_started.await?;
        restart_followers(engine, project, profile, &stacks.main, before, reporter).await
    };
    if opts.wait {
        // Probes start once CHT's services have started: a connection the engine's port
        // proxy takes before the container's network is up waits a TCP retransmit (1 s).
        let ready = async {
            cht_started.await?;
            wait().await
        };
        futures_util::future::try_join(ready, upgrade_started).await?;
    } else {
        futures_util::future::try_join(cht_started, upgrade_started).await?;
    }
    Ok(UpOutcome {
        services: status_with(engine, project, Some(stacks)).await?,
        notes: survey.notes,
    })
}

/// The services of `rules` (`(service, of)`, see [`Profile::restart_with`]) to restart:
/// those whose `of` has a container now (`now`: service and container id) that it did not
/// have `before`, and that have a container themselves.
fn followers_to_restart<'a>(
    rules: &'a [(String, String)],
    before: &[(&str, &str)],
    now: &[(&str, &str)],
) -> Vec<&'a str> {
    let id = |list: &[(&str, &str)], service: &str| {
        list.iter()
            .find(|(s, _)| *s == service)
            .map(|(_, id)| id.to_string())
    };
    rules
        .iter()
        .filter(|(service, of)| {
            id(now, service).is_some() && id(now, of).is_some() && id(now, of) != id(before, of)
        })
        .map(|(service, _)| service.as_str())
        .collect()
}

/// Restarts the services [`followers_to_restart`] names, once the main stack has started
/// (one more container listing, only when the profile has such rules), each followed by
/// the services that share its network namespace (`network_mode`): a restarted container
/// gets a new namespace on Podman, and the ones that joined the old one must join again.
async fn restart_followers(
    engine: &Engine,
    project: &Target,
    profile: &Profile,
    stack: &super::model::Stack,
    before: &[ContainerInfo],
    reporter: &dyn Reporter,
) -> Result<()> {
    if profile.restart_with.is_empty() {
        return Ok(());
    }
    let now = containers(engine, &project.name).await?;
    fn pairs<'a>(list: &'a [ContainerInfo], project: &str) -> Vec<(&'a str, &'a str)> {
        list.iter()
            .filter(|c| c.project == project)
            .map(|c| (c.service.as_str(), c.id.as_str()))
            .collect()
    }
    let (was, is) = (pairs(before, &project.name), pairs(&now, &project.name));
    for service in followers_to_restart(&profile.restart_with, &was, &is) {
        let joiners = stack
            .services
            .values()
            .filter(|s| stack.network_owner(s).is_some_and(|o| o.name == service))
            .map(|s| s.name.as_str());
        let of_service = |name: &str| {
            now.iter()
                .find(|c| c.project == project.name && c.service == name)
        };
        let Some(c) = of_service(service) else {
            continue;
        };
        let joined: Vec<&ContainerInfo> = joiners.filter_map(of_service).collect();
        // A short grace: the stack has only just started, and what it serves waits for it.
        for j in &joined {
            engine.stop(&j.id, &j.name, 2).await?;
        }
        engine.stop(&c.id, &c.name, 2).await?;
        engine.start(&c.id, &c.name).await?;
        for j in &joined {
            engine.start(&j.id, &j.name).await?;
        }
        reporter.step(&format!(
            "restarted {} (it reads the address of a service whose container is new only when it starts)",
            c.name
        ));
    }
    Ok(())
}

/// Whether the upgrade service's next start would recreate CHT's containers: the
/// services whose running container does not carry compose's hash and image id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextBoot {
    /// Every CHT container is kept (or there is none to recreate).
    Keeps(usize),
    /// These services' containers would be recreated, each with the reason.
    Recreates(Vec<(String, String)>),
    /// It cannot be told: why.
    Unknown(String),
}

/// Tells what the upgrade service's next start would do to CHT's containers, without
/// pulling anything (an absent image means it cannot be told).
pub async fn next_boot(engine: &Engine, project: &Target) -> Result<NextBoot> {
    let stacks = match load(project) {
        Ok(s) => s,
        Err(e) => return Ok(NextBoot::Unknown(e.to_string())),
    };
    let mut images = BTreeMap::new();
    for spec in stacks
        .main
        .services
        .values()
        .chain(stacks.companion.services.values())
    {
        if let Some(info) = engine.image(&spec.image).await? {
            images.insert(spec.image.clone(), info);
        }
    }
    let compose = match learn_compose_hashes(engine, project, &stacks, &images).await {
        Learned::Known(c) => c,
        Learned::Unknown(why) => return Ok(NextBoot::Unknown(why)),
    };
    let list = engine
        .containers(&[(labels::PROJECT, &stacks.main.project)])
        .await?;
    let target = Desired::of(&stacks.main, &images, Some(&compose));
    let mut recreated = Vec::new();
    let mut kept = 0;
    for spec in stacks.main.services.values() {
        let Some(c) = list.iter().find(|c| c.service == spec.name) else {
            continue;
        };
        match target.mismatch(spec, c) {
            Some(why) => recreated.push((spec.name.clone(), why.to_string())),
            None => kept += 1,
        }
    }
    Ok(if recreated.is_empty() {
        NextBoot::Keeps(kept)
    } else {
        NextBoot::Recreates(recreated)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::ContainerState;
    use crate::stack::testing::{container, load_text};

    #[test]
    fn a_follower_restarts_only_when_what_it_reads_got_a_new_container() {
        let rules = [("haproxy".to_string(), "healthcheck".to_string())];
        let now = [("haproxy", "h2"), ("healthcheck", "c2")];
        // The healthcheck recreated (or made for the first time): HAProxy restarts.
        assert_eq!(
            followers_to_restart(&rules, &[("haproxy", "h1"), ("healthcheck", "c1")], &now),
            ["haproxy"]
        );
        assert_eq!(followers_to_restart(&rules, &[], &now), ["haproxy"]);
        // The same healthcheck container: nothing to do.
        assert!(followers_to_restart(&rules, &[("healthcheck", "c2")], &now).is_empty());
        // No healthcheck in these files (5.x, one node), or no HAProxy: nothing.
        assert!(followers_to_restart(&rules, &[], &[("haproxy", "h2")]).is_empty());
        assert!(followers_to_restart(&rules, &[], &[("healthcheck", "c2")]).is_empty());
    }

    #[test]
    fn every_service_of_both_stacks_must_run() {
        let main = load_text(
            "services:\n  web:\n    image: w\n    networks: [net]\nnetworks:\n  net: {}\n",
            &[],
        )
        .expect("main");
        let mut upgrade = main.clone();
        upgrade.project = "p-upgrade".into();
        let stacks = Stacks {
            main,
            companion: upgrade,
        };
        let running = |project: &str, state| container(project, "web", state);
        let both = [
            running("p", ContainerState::Running),
            running("p-upgrade", ContainerState::Running),
        ];
        assert!(all_running(&both, &stacks));
        assert!(!all_running(&both[..1], &stacks));
        let stopped = [
            running("p", ContainerState::Exited),
            running("p-upgrade", ContainerState::Running),
        ];
        assert!(!all_running(&stopped, &stacks));
    }
}
