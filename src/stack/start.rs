//! Starting a stack's prepared containers in dependency order.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::model::Stack;
use super::reconcile::Preparing;
use crate::docker::Engine;
use crate::error::{EngineFailure, Error, Result};
use crate::progress::Reporter;

/// When a stack may start, and who to tell once its starts are (nearly) done: what
/// orders the upgrade service after CHT.
#[derive(Default)]
pub(crate) struct Sequence<'a> {
    /// Awaited before any start; `false` means "do not start" (the stack before failed).
    pub after: Option<Shared<BoxFuture<'a, bool>>>,
    /// Told once every service's start has been sent (or was not needed) and every start
    /// but the last one sent has finished: what waits is then sure to find every container
    /// running but, at most, the last one still starting.
    pub issued: Option<tokio::sync::oneshot::Sender<()>>,
    /// Awaited before any of the stack's containers is made: another stack's go first.
    pub make_after: Option<Shared<BoxFuture<'a, ()>>>,
    /// Told once every container of the stack is made (or one failed to be), for another
    /// stack's [`Sequence::make_after`].
    pub all_made: Option<tokio::sync::oneshot::Sender<()>>,
}

/// How far a stack's starts are, for [`Sequence::issued`].
struct StartProgress {
    /// Services whose start is not sent yet.
    unsent: usize,
    /// Services whose start has not finished yet.
    unfinished: usize,
    /// Who to tell, until told.
    tell: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StartProgress {
    /// Applies `change`, then tells once every start is sent and all but the last finished.
    fn note(progress: &std::sync::Mutex<StartProgress>, change: impl FnOnce(&mut StartProgress)) {
        let Ok(mut p) = progress.lock() else {
            return;
        };
        change(&mut p);
        if p.unsent == 0
            && p.unfinished <= 1
            && let Some(tell) = p.tell.take()
        {
            let _ = tell.send(());
        }
    }
}

/// Starts a stack's containers in `depends_on` order, each as soon as its own container is
/// prepared and the services it depends on have started; independent ones together.
///
/// Containers are made in dependency order too (a service's once its dependencies' are
/// made), and the heads of the longest `depends_on` chain before any other: that chain's
/// starts run one after another, so its first start is the one not to keep waiting, and
/// the engine makes one container faster with none beside it. The others are made while
/// it starts.
pub(crate) async fn start_in_order<'a>(
    engine: &'a Engine,
    stack: &'a Stack,
    prepared: BTreeMap<String, Preparing<'a>>,
    sequence: Sequence<'a>,
    reporter: &'a dyn Reporter,
) -> Result<()> {
    /// A service's start, awaited by every service that depends on it.
    type Started<'a> = Shared<BoxFuture<'a, std::result::Result<(), Arc<Error>>>>;
    let waves = stack.start_order().map_err(|reason| Error::Compose {
        file: stack.project.clone(),
        reason,
    })?;
    let heads = stack.longest_chain_heads(&waves);
    let progress = Arc::new(std::sync::Mutex::new(StartProgress {
        unsent: prepared.len(),
        unfinished: prepared.len(),
        tell: sequence.issued,
    }));
    let order: Vec<String> = waves.into_iter().flatten().collect();
    let mut made: BTreeMap<String, Preparing<'a>> = BTreeMap::new();
    for service in heads
        .iter()
        .chain(order.iter().filter(|s| !heads.contains(s)))
    {
        let Some(work) = prepared.get(service).cloned() else {
            continue;
        };
        let mut before: Vec<Preparing<'a>> = stack.services[service]
            .depends_on
            .iter()
            .filter_map(|d| made.get(d).cloned())
            .collect();
        if !heads.contains(service) {
            before.extend(heads.iter().filter_map(|h| made.get(h).cloned()));
        }
        let gate = sequence.make_after.clone();
        let in_order: BoxFuture<'a, _> = Box::pin(async move {
            if let Some(gate) = gate {
                gate.await;
            }
            futures_util::future::try_join_all(before).await?;
            work.await
        });
        made.insert(service.clone(), in_order.shared());
    }
    let makes: Vec<Preparing<'a>> = made.values().cloned().collect();
    let tell_made = sequence.all_made;
    let all_made: BoxFuture<'a, std::result::Result<(), Arc<Error>>> = Box::pin(async move {
        let outcome = futures_util::future::try_join_all(makes).await;
        if let Some(tell) = tell_made {
            let _ = tell.send(());
        }
        outcome.map(|_| ())
    });
    let mut started: BTreeMap<String, Started<'a>> = BTreeMap::new();
    for service in order {
        let deps: Vec<Started<'a>> = stack.services[&service]
            .depends_on
            .iter()
            .filter_map(|d| started.get(d).cloned())
            .collect();
        let own = made.get(&service).cloned();
        let after = sequence.after.clone();
        let progress = progress.clone();
        let future: BoxFuture<'a, _> = Box::pin(async move {
            let container = match own {
                Some(work) => Some(work.await?),
                None => None,
            };
            futures_util::future::try_join_all(deps).await?;
            if let Some(after) = after
                && !after.await
            {
                return Ok(());
            }
            StartProgress::note(&progress, |p| p.unsent -= 1);
            if let Some(c) = container.filter(|c| !c.running) {
                engine.start(&c.id, &c.name).await.map_err(Arc::new)?;
                reporter.step(&format!("started {}", c.name));
            }
            StartProgress::note(&progress, |p| p.unfinished -= 1);
            Ok(())
        });
        started.insert(service, future.shared());
    }
    let mut all: Vec<Started<'a>> = started.into_values().collect();
    all.push(all_made.shared());
    futures_util::future::try_join_all(all)
        .await
        .map(|_| ())
        // The first failure: its own error when no dependant holds it any more.
        .map_err(|shared| {
            Arc::try_unwrap(shared).unwrap_or_else(|e| Error::Engine {
                action: format!("start {}", stack.project),
                kind: e.engine_kind().unwrap_or(EngineFailure::Other),
                reason: e.to_string(),
                source: None,
            })
        })
}
