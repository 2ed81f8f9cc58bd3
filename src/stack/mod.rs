//! A project's compose files as a stack of containers, and how cht-dev runs it.
//!
//! `load` reads the files; `up` brings them up through `images`, `compose_hash`,
//! `reconcile` and `readiness`; `status` reports; `teardown` takes them away.

pub mod compose_hash;
pub mod images;
pub mod interpolate;
pub mod load;
pub mod model;
pub mod owned;
pub mod readiness;
pub mod reconcile;
pub mod snapshot;
pub mod status;
pub mod teardown;
pub mod up;

/// Seconds a container gets to stop before it is killed (as compose).
pub(crate) const STOP_GRACE: i32 = 10;
/// Seconds the upgrade service gets: it keeps no data, and its process (node as PID 1 in
/// the real image) ignores SIGTERM, so a longer grace would only be a longer wait.
pub(crate) const UPGRADE_GRACE: i32 = 2;
