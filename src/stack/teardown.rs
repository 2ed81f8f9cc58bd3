//! Taking a project's containers, network and volumes away, the upgrade service first.

use futures_util::future::try_join_all;

use super::load::{Stacks, companion_project, load};
use super::status::containers;
use super::{STOP_GRACE, UPGRADE_GRACE};
use crate::docker::{ContainerInfo, Engine, labels};
use crate::error::{EngineFailure, Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// A project's containers split for teardown: the upgrade service's first, so it cannot
/// recreate CHT's containers while they are being taken away, then the rest; each with
/// the grace it gets to stop.
fn upgrade_first(name: &str, list: Vec<ContainerInfo>) -> [(Vec<ContainerInfo>, i32); 2] {
    let upgrade = companion_project(name);
    let (first, rest) = list.into_iter().partition(|c| c.project == upgrade);
    [(first, UPGRADE_GRACE), (rest, STOP_GRACE)]
}

/// Stops the upgrade service, if it runs, so its compose cannot act while cht-dev changes
/// CHT's containers or files; `up` starts it again last. Returns whether it ran.
pub async fn pause_upgrade_service(
    engine: &Engine,
    name: &str,
    reporter: &dyn Reporter,
) -> Result<bool> {
    let running: Vec<ContainerInfo> = engine
        .containers(&[(labels::PROJECT, &companion_project(name))])
        .await?
        .into_iter()
        .filter(|c| c.state.is_running())
        .collect();
    try_join_all(running.iter().map(|c| async move {
        engine.stop(&c.id, &c.name, UPGRADE_GRACE).await?;
        reporter.step(&format!("paused {} while CHT's containers change", c.name));
        Ok::<(), Error>(())
    }))
    .await?;
    Ok(!running.is_empty())
}

/// Stops every container of the project (they stay, with their data), the upgrade
/// service first; returns how many. The project is listed again until none runs (one the
/// upgrade service's compose started just before it stopped runs after the first
/// listing), a few times at most.
pub async fn stop(engine: &Engine, name: &str, reporter: &dyn Reporter) -> Result<usize> {
    let mut count = 0;
    for _ in 0..DOWN_ROUNDS {
        let list = containers(engine, name).await?;
        if !list.iter().any(|c| c.state.is_running()) {
            break;
        }
        for (group, grace) in upgrade_first(name, list) {
            let running: Vec<_> = group.iter().filter(|c| c.state.is_running()).collect();
            try_join_all(running.iter().map(|c| async move {
                engine.stop(&c.id, &c.name, grace).await?;
                reporter.step(&format!("stopped {}", c.name));
                Ok::<(), Error>(())
            }))
            .await?;
            count += running.len();
        }
    }
    Ok(count)
}

/// How many times `down` and `stop` list the project's containers again: a create or start
/// the upgrade service's compose sent just before it was stopped can land after a listing.
const DOWN_ROUNDS: usize = 5;

/// How many more times `down` tries to remove a network that still has endpoints (a busy
/// engine can take seconds to let go of a removed container's endpoint).
const NETWORK_TRIES: usize = 20;

/// After how many tries `down` drops endpoints that no attached container explains.
const STALE_AFTER: usize = 2;

/// How long `down` waits before it tries a network again.
const NETWORK_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Removes every container and network of the project; volumes, data and files stay.
/// The upgrade service keeps no data and its container goes, so it is killed (node as
/// PID 1 ignores SIGTERM, so a grace would only wait), which ends its compose at once,
/// and removed, alongside CHT's containers, which are stopped
/// gracefully (SIGTERM, then SIGKILL after 10 s), as compose does. Containers are found by
/// label, so one that compose left renamed halfway through a recreate
/// (`<id>_<project>-<service>-1`) goes too; the project is listed again until none is left
/// (a create in flight when the upgrade service was killed lands later). Returns the
/// network the engine would not remove although nothing is attached to it (it counts an
/// endpoint it no longer has, which only its restart clears), if any: the containers are
/// gone all the same, and the next `up` uses that network again.
pub async fn down(
    engine: &Engine,
    project: &Target,
    reporter: &dyn Reporter,
) -> Result<Option<String>> {
    let stacks = load(project).ok();
    let mut networks = engine
        .networks(labels::CHT_DEV_PROJECT, &project.name)
        .await?;
    if let Some(stacks) = &stacks {
        for stack in [&stacks.main, &stacks.companion] {
            networks.extend(
                stack
                    .networks
                    .values()
                    .filter(|n| !n.external)
                    .map(|n| n.name.clone()),
            );
        }
    }
    networks.sort();
    networks.dedup();
    // A network still has endpoints while a container created after the last listing (or
    // one the engine is still letting go of) is on it: the containers are listed again,
    // and the networks tried again, a few times.
    let mut tries = 0;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        for _ in 0..DOWN_ROUNDS {
            let list = containers(engine, &project.name).await?;
            if list.is_empty() {
                break;
            }
            seen.extend(list.iter().map(|c| c.name.clone()));
            remove_containers(engine, &project.name, list, stacks.as_ref(), reporter).await?;
        }
        let mut failed = None;
        for net in &networks {
            if let Err(e) = engine.remove_network(net).await {
                failed = Some((net, e));
            }
        }
        match failed {
            None => return Ok(None),
            Some((network, e)) if tries >= NETWORK_TRIES => {
                // Named: what holds it is not the project's (by label), or will not go.
                let containers = engine.network_containers(network).await.unwrap_or_default();
                if containers.is_empty() {
                    // Endpoints the engine counts without any container on them, else the
                    // engine's own error.
                    if e.engine_kind() != Some(EngineFailure::InUse) {
                        return Err(e);
                    }
                    return Ok(Some(network.clone()));
                }
                return Err(Error::NetworkInUse {
                    project: project.name.clone(),
                    network: network.clone(),
                    containers,
                });
            }
            Some((network, _)) => {
                tries += 1;
                // From the second try on, endpoints the project's removed containers left
                // (an engine can keep one after a container it was removing is gone) are
                // dropped by name; a container still there is left to its removal.
                if tries >= STALE_AFTER
                    && engine
                        .network_containers(network)
                        .await
                        .is_ok_and(|c| c.is_empty())
                {
                    for name in &seen {
                        engine.force_disconnect(network, name).await.ok();
                    }
                }
                tokio::time::sleep(NETWORK_RETRY).await;
            }
        }
    }
}

/// One round of [`down`]: the upgrade service's containers killed and removed while CHT's
/// are stopped and removed, those in another container's network namespace first (Podman
/// refuses to remove a container others joined). Which those are is read from the files
/// where they say (a service the files define without `network_mode` joins none), else
/// asked of the engine.
async fn remove_containers(
    engine: &Engine,
    name: &str,
    list: Vec<ContainerInfo>,
    stacks: Option<&Stacks>,
    reporter: &dyn Reporter,
) -> Result<()> {
    let [(upgrade, _), (cht, grace)] = upgrade_first(name, list);
    let remove = |c: &ContainerInfo, stop: Option<i32>| {
        let (id, name) = (c.id.clone(), c.name.clone());
        let running = c.state.is_running();
        async move {
            if let (true, Some(grace)) = (running, stop) {
                engine.stop(&id, &name, grace).await?;
            }
            engine.remove(&id, &name).await?;
            reporter.step(&format!("removed {name}"));
            Ok::<(), Error>(())
        }
    };
    // The upgrade service is killed and removed beside CHT's own stops: whatever its
    // compose still created meanwhile, the next round of `down` finds.
    let upgrade_part = async {
        try_join_all(
            upgrade
                .iter()
                .filter(|c| c.state.is_running())
                .map(|c| engine.kill(&c.id, &c.name)),
        )
        .await?;
        try_join_all(upgrade.iter().map(|c| remove(c, None))).await
    };
    let cht_part = async {
        let joined = try_join_all(cht.iter().map(|c| {
            let plain = stacks
                .and_then(|s| s.main.services.get(&c.service))
                .is_some_and(|spec| spec.network_mode.is_none());
            async move {
                if plain {
                    return Ok(false);
                }
                let mode = engine.network_mode(&c.id, &c.name).await?;
                Ok::<bool, Error>(mode.is_some_and(|m| m.starts_with("container:")))
            }
        }))
        .await?;
        let (joiners, owners): (Vec<_>, Vec<_>) = cht.iter().zip(joined).partition(|(_, j)| *j);
        try_join_all(joiners.iter().map(|(c, _)| remove(c, Some(grace)))).await?;
        try_join_all(owners.iter().map(|(c, _)| remove(c, Some(grace)))).await
    };
    tokio::try_join!(upgrade_part, cht_part)?;
    Ok(())
}

/// Removes the project's volumes (found by label); used by `destroy` after `down`.
pub async fn remove_volumes(engine: &Engine, name: &str, reporter: &dyn Reporter) -> Result<()> {
    let mut volumes = engine.volumes(labels::CHT_DEV_PROJECT, name).await?;
    volumes.extend(engine.volumes(labels::PROJECT, name).await?);
    volumes.extend(
        engine
            .volumes(labels::PROJECT, &companion_project(name))
            .await?,
    );
    volumes.sort();
    volumes.dedup();
    for v in volumes {
        engine.remove_volume(&v).await?;
        reporter.step(&format!("removed volume {v}"));
    }
    Ok(())
}
