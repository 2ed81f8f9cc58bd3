//! Settings every command shares, resolved from the global arguments and environment,
//! and the engine they connect to, once, when a command first needs it.

use std::path::PathBuf;

use std::sync::Arc;

use crate::docker::Engine;
use crate::docker::endpoint::{self, Endpoint};
use crate::docker::timeline::Timeline;
use crate::error::Result;
use crate::home::Home;
use crate::printer::Printer;

/// What commands use instead of raw arguments: where the home is and how to print.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--home`, if given; resolved on demand so commands without a home never fail on it.
    home_flag: Option<PathBuf>,
    /// The output printer: it owns the output mode (human, quiet, JSON).
    pub printer: Printer,
    /// Where engine calls are recorded with their start and end (`--timings`), if anywhere.
    pub timeline: Option<Timeline>,
    /// The docker context named by `--context`, if any.
    context: Option<String>,
    /// The engine, once connected: every step of a command shares one connection.
    engine: Arc<tokio::sync::OnceCell<Engine>>,
    /// Whether the command needs to know at once which engine answers (see
    /// `Engine::connect_to`).
    product_early: bool,
    /// A connection begun ahead of the first need ([`Settings::connect_ahead`]); the first
    /// call to [`Settings::engine`] takes it over, its failure included.
    ahead: Arc<std::sync::Mutex<Option<Ahead>>>,
}

impl Settings {
    /// Settings from the global `--home` flag and a printer.
    pub fn new(home_flag: Option<PathBuf>, printer: Printer) -> Self {
        Settings {
            home_flag,
            printer,
            timeline: None,
            context: None,
            engine: Arc::default(),
            product_early: false,
            ahead: Arc::default(),
        }
    }

    /// These settings, using the docker context `name` (`--context`) when given.
    pub fn with_context(mut self, name: Option<String>) -> Self {
        self.context = name;
        self
    }

    /// The engine to use, found as the docker CLI finds it (see [`endpoint::resolve`]).
    pub fn endpoint(&self) -> Result<Endpoint> {
        let surroundings = endpoint::Surroundings::of_process(self.context.as_deref());
        endpoint::resolve(&surroundings, &|p| p.exists())
    }

    /// These settings, recording engine calls when `on` (`--timings`).
    pub fn with_timings(mut self, on: bool) -> Self {
        self.timeline = on.then(Timeline::new);
        self
    }

    /// These settings, asking which engine answers beside the API negotiation when `on`
    /// (`up` and `upgrade`, which fit the project to the engine first thing).
    pub fn with_product_early(mut self, on: bool) -> Self {
        self.product_early = on;
        self
    }

    /// Where the local-ip certificate is downloaded from (`CHT_DEV_LOCAL_IP_URL`, else
    /// the Docker Helper's source).
    pub fn local_ip_source(&self) -> Result<crate::local_ip::Source> {
        crate::local_ip::Source::from_env()
    }

    /// Begins connecting to the engine (and negotiating its API version) on another worker,
    /// for a command that will need it: the engine answers while the command reads its
    /// files. Must run inside the runtime. An endpoint that cannot be resolved begins
    /// nothing; [`Settings::engine`] reports it when asked.
    pub fn connect_ahead(&self) {
        let Ok(endpoint) = self.endpoint() else {
            return;
        };
        let (timeline, early) = (self.timeline.clone(), self.product_early);
        let host = endpoint.host.clone();
        let task = tokio::spawn(async move { connect(&endpoint, early, timeline).await });
        if let Ok(mut ahead) = self.ahead.lock() {
            *ahead = Some(Ahead { host, task });
        }
    }

    /// The engine, connected (and its API version negotiated) on the first call, or by the
    /// connection begun ahead; later calls share that connection. A failed connection is
    /// tried again on the next call.
    pub async fn engine(&self) -> Result<Engine> {
        self.engine
            .get_or_try_init(|| async {
                let ahead = self.ahead.lock().ok().and_then(|mut a| a.take());
                match ahead {
                    Some(Ahead { host, task }) => {
                        task.await
                            .map_err(|e| crate::error::Error::EngineUnreachable {
                                host,
                                reason: format!("the connection was cut short: {e}"),
                                source: None,
                            })?
                    }
                    None => {
                        connect(&self.endpoint()?, self.product_early, self.timeline.clone()).await
                    }
                }
            })
            .await
            .cloned()
    }

    /// The resolved home (`--home`, `CHT_DEV_HOME`, or the platform data dir).
    pub fn home(&self) -> Result<Home> {
        Home::resolve(self.home_flag.as_deref())
    }
}

/// A connection begun ahead: the address it goes to, and the task making it.
#[derive(Debug)]
struct Ahead {
    host: String,
    task: tokio::task::JoinHandle<Result<Engine>>,
}

/// Connects to the engine at `endpoint`, recording the connection and every later call into
/// `timeline` when given.
async fn connect(
    endpoint: &Endpoint,
    product_early: bool,
    timeline: Option<Timeline>,
) -> Result<Engine> {
    let span =
        crate::docker::timeline::Span::open(timeline.as_ref(), || "connect and negotiate".into());
    let engine = Engine::connect_to(endpoint, product_early).await?;
    drop(span);
    Ok(match timeline {
        Some(t) => engine.with_timeline(t),
        None => engine,
    })
}
