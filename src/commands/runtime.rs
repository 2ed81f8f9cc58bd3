//! Shared plumbing of the engine commands: the async runtime, Ctrl-C, and choosing a project.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::docker::timeline::Call;
use crate::error::{Error, Result};
use crate::home::Home;

/// The timeline as lines for stderr: each call's start and end in milliseconds and what
/// it was, in start order.
pub fn timeline_lines(calls: &[Call]) -> Vec<String> {
    let mut lines = vec![format!(
        "timings ({} engine calls and steps, ms from start):",
        calls.len()
    )];
    lines.extend(calls.iter().map(|c| {
        format!(
            "{:>8.1} {:>8.1} {:>7.1}  {}",
            c.start_ms,
            c.end_ms,
            c.end_ms - c.start_ms,
            c.what
        )
    }));
    lines
}

/// The process's one Tokio runtime, with two workers.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            action: "start the async runtime for",
            path: "cht-dev".into(),
            source: e,
        })
}

/// Runs a command to its end on the process's one runtime: the only place cht-dev
/// blocks on a future.
pub fn drive<T>(command: impl Future<Output = Result<T>>) -> Result<T> {
    runtime()?.block_on(command)
}

/// Set for good once a command listens for Ctrl-C itself ([`interruptible`]); until then
/// the handler [`exit_on_early_interrupt`] installs ends the process.
static LISTENING: AtomicBool = AtomicBool::new(false);

/// Makes a Ctrl-C that lands before the command listens for it (while settings resolve,
/// the repair runs, a prompt waits, or in a command that never listens) end the process
/// at once with [`Error::Interrupted`]'s exit code and one-line message on stderr, instead
/// of a death by signal. What it leaves half done is what a kill leaves, which the next
/// command carries on from. Called first thing, before anything else can be interrupted.
#[cfg(unix)]
pub fn exit_on_early_interrupt() {
    let code = i32::from(Error::Interrupted.exit_code());
    let line: &'static [u8] = Box::leak(
        format!("{} {}\n", crate::printer::error_label(), Error::Interrupted)
            .into_bytes()
            .into_boxed_slice(),
    );
    let action = move || {
        if !LISTENING.load(Ordering::SeqCst) {
            // SAFETY: write(2) and _exit(2) are async-signal-safe, reading a set OnceLock
            // takes no lock, and the texts live as long as the process.
            unsafe {
                if let Some(document) = EARLY_JSON.get() {
                    libc::write(1, document.as_ptr().cast(), document.len());
                }
                libc::write(2, line.as_ptr().cast(), line.len());
                libc::_exit(code);
            }
        }
    };
    // SAFETY: the action allocates nothing, takes no lock, and calls only
    // async-signal-safe functions. Without the handler Ctrl-C keeps its default action.
    let _ = unsafe { signal_hook_registry::register(libc::SIGINT, action) };
}

/// The JSON document an early Ctrl-C prints on stdout, once `--json` is known to be on.
static EARLY_JSON: OnceLock<&'static [u8]> = OnceLock::new();

/// Makes an early Ctrl-C (see [`exit_on_early_interrupt`]) also print `document` on stdout,
/// as `--json` prints every failure.
pub fn answer_early_interrupt_with(document: String) {
    let _ = EARLY_JSON.set(Box::leak(document.into_bytes().into_boxed_slice()));
}

/// Elsewhere Ctrl-C keeps its default action until a command listens for it.
#[cfg(not(unix))]
pub fn exit_on_early_interrupt() {}

/// Runs `work`, abandoning it promptly on Ctrl-C with [`Error::Interrupted`]. The listener
/// is in place before the early handler stands down, so no Ctrl-C falls between them. Once
/// a command has listened, a later Ctrl-C does not end the process: what a command runs
/// after this returns (putting things back) is not cut short.
pub async fn interruptible<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    #[cfg(unix)]
    let interrupted = {
        let mut listener =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(
                |e| Error::Io {
                    action: "listen for Ctrl-C in",
                    path: "cht-dev".into(),
                    source: e,
                },
            )?;
        LISTENING.store(true, Ordering::SeqCst);
        async move { listener.recv().await }
    };
    #[cfg(not(unix))]
    let interrupted = {
        LISTENING.store(true, Ordering::SeqCst);
        tokio::signal::ctrl_c()
    };
    tokio::select! {
        result = work => result,
        _ = interrupted => Err(Error::Interrupted),
    }
}

/// Runs blocking `work` (a long copy, an archive) on a thread of its own, so Ctrl-C still
/// ends the command at once with [`Error::Interrupted`]; the abandoned work ends with the
/// process, and what it left half-written is swept by the next command.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    interruptible(async {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::engine("run a background copy", e.to_string()))?
    })
    .await
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

/// The image of the project's CouchDB service, for one-offs that change what CouchDB
/// wrote as its own user: present wherever CouchDB has run. `None` when the files no
/// longer load.
pub fn data_image(project: &crate::project::Project) -> Option<String> {
    let stacks = crate::stack::load::load(&project.target()).ok()?;
    stacks
        .main
        .services
        .values()
        .find(|s| crate::project::layout::is_couchdb(&s.name))
        .map(|s| s.image.clone())
}
