//! Progress reporting behind a small trait, so core logic never prints.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::docker::PullEvent;

/// Receives what long-running operations are doing.
pub trait Reporter: Send + Sync {
    /// A step finished, e.g. "created network a-cht-net".
    fn step(&self, text: &str);
    /// An image pull made progress.
    fn pull(&self, image: &str, event: &PullEvent);
    /// An image pull finished.
    fn pulled(&self, image: &str);
    /// The live one-line status while waiting changed.
    fn status(&self, text: &str);
    /// The operation is over: clear anything live.
    fn finish(&self);
}

/// Reports nothing (`--quiet`, `--json`, library use).
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn step(&self, _: &str) {}
    fn pull(&self, _: &str, _: &PullEvent) {}
    fn pulled(&self, _: &str) {}
    fn status(&self, _: &str) {}
    fn finish(&self) {}
}

/// Plain lines on stderr, for logs and pipes: steps, and status only when it changes.
#[derive(Debug, Default)]
pub struct Lines {
    /// The last status printed, to skip repeats.
    last: Mutex<String>,
}

impl Reporter for Lines {
    fn step(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
    fn pull(&self, _: &str, _: &PullEvent) {}
    fn pulled(&self, image: &str) {
        self.step(&format!("pulled {image}"));
    }
    fn status(&self, text: &str) {
        if let Ok(mut last) = self.last.lock()
            && *last != text
        {
            *last = text.to_string();
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
    fn finish(&self) {}
}

/// A pull's bar and the bytes done/total of each of its layers.
type PullBar = (ProgressBar, BTreeMap<String, (u64, u64)>);

/// Live progress on a terminal: a bar per image pull and a spinner for the status.
pub struct Live {
    /// The bars' container.
    multi: MultiProgress,
    /// Bars by image, with per-layer byte counts.
    pulls: Mutex<BTreeMap<String, PullBar>>,
    /// The status spinner.
    spinner: ProgressBar,
}

impl Live {
    /// A live reporter drawing on stderr.
    pub fn new() -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let spinner = multi.add(ProgressBar::new_spinner());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(Duration::from_millis(100));
        Live {
            multi,
            pulls: Mutex::new(BTreeMap::new()),
            spinner,
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

impl Reporter for Live {
    fn step(&self, text: &str) {
        let _ = self.multi.println(text);
    }
    fn pull(&self, image: &str, event: &PullEvent) {
        let Ok(mut pulls) = self.pulls.lock() else {
            return;
        };
        let (bar, layers) = pulls.entry(image.to_string()).or_insert_with(|| {
            let bar = self.multi.insert_before(&self.spinner, ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{msg:40} {bar:30} {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(image.to_string());
            (bar, BTreeMap::new())
        });
        if let Some(layer) = &event.layer
            && event.total > 0
        {
            layers.insert(layer.clone(), (event.current, event.total));
        }
        let (done, total) = layers
            .values()
            .fold((0, 0), |(d, t), (c, s)| (d + c, t + s));
        bar.set_length(total);
        bar.set_position(done);
    }
    fn pulled(&self, image: &str) {
        if let Ok(mut pulls) = self.pulls.lock()
            && let Some((bar, _)) = pulls.remove(image)
        {
            bar.finish_and_clear();
        }
        self.step(&format!("pulled {image}"));
    }
    fn status(&self, text: &str) {
        self.spinner.set_message(text.to_string());
    }
    fn finish(&self) {
        self.spinner.finish_and_clear();
    }
}

/// The reporter for a command: silent when quiet, live on a terminal, lines otherwise.
pub fn for_terminal(quiet: bool) -> Box<dyn Reporter> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Live::new())
    } else {
        Box::new(Lines::default())
    }
}
