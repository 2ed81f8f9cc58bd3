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

    /// The engine, connected (and its API version negotiated) on the first call; later
    /// calls share that connection. A failed connection is tried again on the next call.
    pub async fn engine(&self) -> Result<Engine> {
        self.engine
            .get_or_try_init(|| async {
                let span = crate::docker::timeline::Span::open(self.timeline.as_ref(), || {
                    "connect and negotiate".into()
                });
                let engine = Engine::connect_to(&self.endpoint()?, self.product_early).await?;
                drop(span);
                Ok(match &self.timeline {
                    Some(t) => engine.with_timeline(t.clone()),
                    None => engine,
                })
            })
            .await
            .cloned()
    }

    /// The resolved home (`--home`, `CHT_DEV_HOME`, or the platform data dir).
    pub fn home(&self) -> Result<Home> {
        Home::resolve(self.home_flag.as_deref())
    }
}
