//! A timeline of engine calls, for `--timings` and the benchmark: where `up` and `down`
//! spend their time. Recording is off unless a [`Timeline`] is attached to the engine.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One engine call (or a step made of several), with its start and end in milliseconds
/// since the timeline began.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Call {
    /// What was done, e.g. "start container demo-api-1".
    pub what: String,
    /// Milliseconds from the timeline's start to the call's start.
    pub start_ms: f64,
    /// Milliseconds from the timeline's start to the call's end.
    pub end_ms: f64,
}

/// Calls recorded so far; clones share one record, so every clone of an engine client
/// writes into the same timeline.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// When the timeline began: the origin of every offset.
    origin: Instant,
    /// The calls, in the order they ended.
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    /// An empty timeline starting now.
    pub fn new() -> Timeline {
        Timeline {
            origin: Instant::now(),
            calls: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Records `what`, which ran from `start` to `end`.
    pub fn record(&self, what: String, start: Instant, end: Instant) {
        let ms = |t: Instant| t.saturating_duration_since(self.origin).as_secs_f64() * 1000.0;
        let call = Call {
            what,
            start_ms: ms(start),
            end_ms: ms(end),
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    /// The calls recorded, ordered by start (ties: the longer first, so a step comes
    /// before the calls it is made of).
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = self.calls.lock().map(|c| c.clone()).unwrap_or_default();
        calls.sort_by(|a, b| {
            a.start_ms
                .total_cmp(&b.start_ms)
                .then(b.end_ms.total_cmp(&a.end_ms))
        });
        calls
    }
}

/// An open call: recorded, with the time it ends, when dropped (so early returns and
/// errors are timed too). Does nothing without a timeline.
#[derive(Debug)]
pub struct Span<'a> {
    /// Where to record, and what; `None` when not recording.
    to: Option<(&'a Timeline, String)>,
    /// When the call began.
    start: Instant,
}

impl<'a> Span<'a> {
    /// Opens a span on `timeline` (if any); `what` is only built when recording.
    pub fn open(timeline: Option<&'a Timeline>, what: impl FnOnce() -> String) -> Span<'a> {
        Span {
            to: timeline.map(|t| (t, what())),
            start: Instant::now(),
        }
    }
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        if let Some((timeline, what)) = self.to.take() {
            timeline.record(what, self.start, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_record_when_dropped_and_only_with_a_timeline() {
        let timeline = Timeline::new();
        {
            let _outer = Span::open(Some(&timeline), || "outer".into());
            let _inner = Span::open(Some(&timeline), || "inner".into());
            let _off = Span::open(None, || unreachable!("not built without a timeline"));
        }
        let calls = timeline.calls();
        assert_eq!(
            calls.iter().map(|c| c.what.as_str()).collect::<Vec<_>>(),
            ["outer", "inner"]
        );
        assert!(calls.iter().all(|c| c.end_ms >= c.start_ms));
    }
}
