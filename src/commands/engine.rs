//! Shared plumbing of the engine commands: the async runtime, Ctrl-C, and choosing a project.

use std::future::Future;

use crate::error::{Error, Result};
use crate::home::Home;

/// Runs `work` on a fresh Tokio runtime, abandoning it promptly on Ctrl-C.
pub fn block_on<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            action: "start the async runtime for",
            path: "cht-dev".into(),
            source: e,
        })?;
    runtime.block_on(async {
        tokio::select! {
            result = work => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    })
}

/// Resolves an optional project name: the named one, else the only project in the
/// home; `None` when the home has no project at all.
pub fn pick(home: &Home, name: Option<&str>, command: &'static str) -> Result<Option<String>> {
    if let Some(name) = name {
        return Ok(Some(name.to_string()));
    }
    let known = crate::project::names(home)?;
    match known.len() {
        0 => Ok(None),
        1 => Ok(known.into_iter().next()),
        _ => Err(Error::AmbiguousProject { command, known }),
    }
}

/// Like [`pick`], but a home without projects is an error naming how to make one.
pub fn pick_existing(home: &Home, name: Option<&str>, command: &'static str) -> Result<String> {
    pick(home, name, command)?.ok_or_else(|| Error::NoProjects {
        home: home.root().to_path_buf(),
    })
}
