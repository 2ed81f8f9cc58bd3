//! Waiting until a project serves: the conditions, the poll, and the explanation when
//! it does not get there in time.

pub mod probe;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use self::probe::{Seen, Tls, WaitFor};
use super::load::Stacks;
use super::model::Stack;
use super::profile::{LogGate, ProbeTls, Readiness};
use super::status::containers;
use crate::docker::timeline::Span;
use crate::docker::{ContainerInfo, ContainerState, Engine, labels};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::stack::Target;

/// The wait before the second round of readiness probes; each later wait is half as
/// long again, up to [`MAX_POLL`]: a service that is nearly ready is seen at once, and
/// one that takes a minute to boot is not sent dozens of probes a second meanwhile.
const FIRST_POLL: Duration = Duration::from_millis(10);

/// The longest wait between two rounds of readiness probes.
const MAX_POLL: Duration = Duration::from_millis(200);

/// The wait after `poll`.
fn next_poll(poll: Duration) -> Duration {
    (poll * 3 / 2).min(MAX_POLL)
}

/// The most probes of one condition in flight at once.
const PROBES_IN_FLIGHT: usize = 4;

/// How often container states are refreshed while waiting.
const STATE_POLL: Duration = Duration::from_millis(250);

/// Log lines shown per failing service on timeout.
const LOG_LINES: u64 = 12;

/// Waits (until `deadline`) for `gate`'s line in the logs of its service's container.
/// Gives up quietly at the deadline: the conditions then explain what is not ready.
async fn wait_for_line(
    engine: &Engine,
    project: &Target,
    gate: &LogGate,
    deadline: Instant,
) -> Result<()> {
    let _waiting = Span::open(engine.timeline(), || {
        format!("wait for {}: {}", gate.service, gate.text)
    });
    let mut poll = FIRST_POLL;
    while Instant::now() < deadline {
        let list = engine
            .containers(&[
                (labels::PROJECT, project.name.as_str()),
                (labels::SERVICE, gate.service.as_str()),
            ])
            .await?;
        if let Some(c) = list.first()
            && engine
                .last_logs(&c.id, LOG_LINES)
                .await
                .unwrap_or_default()
                .contains(gate.text.as_str())
        {
            return Ok(());
        }
        tokio::time::sleep(poll).await;
        poll = next_poll(poll);
    }
    Ok(())
}

/// Each service of `stack` with its container's state among `list` (`missing` when it
/// has none), for the waiting line.
fn states_line(list: &[ContainerInfo], stack: &Stack) -> String {
    stack
        .services
        .keys()
        .map(|s| {
            let state = list
                .iter()
                .find(|c| &c.service == s && c.project == stack.project)
                .map_or("missing", |c| c.state.as_str());
            format!("{s} {state}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Polls every condition of `readiness` until all hold or `timeout` passes, after its
/// gates of services the stacks run; on timeout, explains which services are not running
/// with their last log lines.
pub(crate) async fn wait_ready(
    engine: &Engine,
    project: &Target,
    readiness: &Readiness,
    stacks: &Stacks,
    timeout: Duration,
    reporter: &dyn Reporter,
) -> Result<()> {
    let tls = match &readiness.tls {
        ProbeTls::Pinned(pem) => Tls::pinned(pem)?,
        ProbeTls::Trusting(pem) => Tls::trusting(pem)?,
        ProbeTls::None => Tls::trusting("")?,
    };
    let conditions = &readiness.conditions;
    let started = Instant::now();
    for gate in readiness
        .gates
        .iter()
        .filter(|g| stacks.main.services.contains_key(&g.service))
    {
        wait_for_line(engine, project, gate, started + timeout).await?;
    }
    // Per condition: whether it held, why not yet, and its probes in flight. A probe can
    // hang (a port published before the server behind it listens), so a new one starts
    // every tick while up to PROBES_IN_FLIGHT are pending: one slow probe never holds
    // readiness back.
    let mut ready = vec![false; conditions.len()];
    let mut why = vec![String::new(); conditions.len()];
    let mut in_flight = vec![0usize; conditions.len()];
    let mut probes = FuturesUnordered::new();
    let mut states = String::new();
    let mut seen_down: BTreeMap<String, ContainerState> = BTreeMap::new();
    // The first listing comes one STATE_POLL in: a stack that is ready at once is not
    // kept waiting for it.
    let mut last_states = Instant::now();
    let mut poll = FIRST_POLL;
    loop {
        for (i, condition) in conditions.iter().enumerate() {
            if ready[i] || in_flight[i] >= PROBES_IN_FLIGHT {
                continue;
            }
            in_flight[i] += 1;
            let tls = &tls;
            probes.push(async move {
                let _probing = Span::open(engine.timeline(), || format!("probe {condition}"));
                (i, condition.check(tls).await)
            });
        }
        let tick = tokio::time::sleep(poll);
        poll = next_poll(poll);
        tokio::pin!(tick);
        loop {
            tokio::select! {
                Some((i, seen)) = probes.next() => {
                    in_flight[i] -= 1;
                    match seen {
                        Seen::Ready => ready[i] = true,
                        Seen::NotYet(reason) => why[i] = reason,
                    }
                }
                () = &mut tick => break,
            }
            if ready.iter().all(|r| *r) {
                reporter.finish();
                return Ok(());
            }
        }
        if last_states.elapsed() >= STATE_POLL {
            last_states = Instant::now();
            let list = containers(engine, &project.name).await?;
            // A service seen down once during the wait counts as troubled on timeout,
            // even when a restart policy has it running at that very moment.
            for c in list.iter().filter(|c| c.project == project.name) {
                if !matches!(c.state, ContainerState::Running | ContainerState::Created) {
                    seen_down.insert(c.service.clone(), c.state);
                }
            }
            states = states_line(&list, &stacks.main);
        }
        let first_pending = (0..conditions.len()).find(|i| !ready[*i]).unwrap_or(0);
        reporter.status(&format!("waiting: {states} | {}", why[first_pending]));
        if started.elapsed() >= timeout {
            reporter.finish();
            let pending: Vec<(WaitFor, String)> = conditions
                .iter()
                .zip(&why)
                .zip(&ready)
                .filter(|(_, r)| !**r)
                .map(|((c, w), _)| (c.clone(), w.clone()))
                .collect();
            return Err(not_ready(engine, project, stacks, timeout, &pending, &seen_down).await);
        }
    }
}

/// Builds the timeout error: what is not ready, each troubled service's last log lines,
/// and the command to see more.
async fn not_ready(
    engine: &Engine,
    project: &Target,
    stacks: &Stacks,
    timeout: Duration,
    pending: &[(WaitFor, String)],
    seen_down: &BTreeMap<String, ContainerState>,
) -> Error {
    let list = containers(engine, &project.name).await.unwrap_or_default();
    let mut details = Vec::new();
    let mut troubled = Vec::new();
    for service in stacks.main.services.keys() {
        let found = list
            .iter()
            .find(|c| &c.service == service && c.project == project.name);
        let state = match found.map(|c| c.state) {
            None => "missing",
            Some(ContainerState::Running) => seen_down
                .get(service)
                .map_or(ContainerState::Running.as_str(), |s| s.as_str()),
            Some(s) => s.as_str(),
        };
        if state != ContainerState::Running.as_str() {
            troubled.push(format!("{service} ({state})"));
            details.push(format!(
                "  {service}: {state} {}",
                found.map(|c| c.status.as_str()).unwrap_or("")
            ));
            if let Some(c) = found {
                let logs = engine.last_logs(&c.id, LOG_LINES).await.unwrap_or_default();
                for line in logs.lines().filter(|l| !l.trim().is_empty()) {
                    details.push(format!("    | {line}"));
                }
                details.push(format!("    more: cht-dev logs {} {service}", project.name));
            }
        }
    }
    for (_, why) in pending {
        details.push(format!("  {why}"));
    }
    let summary = if troubled.is_empty() {
        format!(
            "{} did not become ready within {} s",
            project.name,
            timeout.as_secs()
        )
    } else {
        format!(
            "{} did not become ready within {} s: not running: {}",
            project.name,
            timeout.as_secs(),
            troubled.join(", ")
        )
    };
    Error::NotReady {
        summary,
        details: details.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::testing::{container, load_text};

    #[test]
    fn probes_come_quickly_at_first_and_slow_down_to_the_longest_wait() {
        let mut poll = FIRST_POLL;
        let mut waits = Vec::new();
        for _ in 0..10 {
            waits.push(poll.as_millis());
            poll = next_poll(poll);
        }
        assert_eq!(waits, [10, 15, 22, 33, 50, 75, 113, 170, 200, 200]);
    }

    #[test]
    fn the_waiting_line_names_each_service_with_its_state() {
        let stack = load_text(
            "services:\n  web:\n    image: w\n    networks: [net]\n  db:\n    image: d\n    networks: [net]\nnetworks:\n  net: {}\n",
            &[],
        )
        .expect("stack");
        let web = container("p", "web", ContainerState::Restarting);
        let other = container("elsewhere", "db", ContainerState::Running);
        assert_eq!(
            states_line(&[web, other], &stack),
            "db missing, web restarting"
        );
    }
}
