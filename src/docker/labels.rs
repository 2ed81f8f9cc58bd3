//! Label keys cht-dev and compose put on containers, networks and volumes.

/// Compose's project label: how compose and cht-dev find a project's resources.
pub const PROJECT: &str = "com.docker.compose.project";
/// Compose's service label.
pub const SERVICE: &str = "com.docker.compose.service";
/// Compose's replica number label.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Compose's one-off (`run`) marker.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// Hash of the service's configuration; a change means "recreate".
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// Compose's image label: the id of the image a container was made from. Compose 2.x
/// recreates a container whose label differs from the local image's id.
pub const IMAGE: &str = "com.docker.compose.image";
/// The compose files the container was made from.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The compose project's working directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// Compose version label (compose reads it; cht-dev writes the compose format it follows).
pub const VERSION: &str = "com.docker.compose.version";
/// Compose's network key label.
pub const NETWORK: &str = "com.docker.compose.network";
/// Compose's volume key label.
pub const VOLUME: &str = "com.docker.compose.volume";
/// cht-dev's own label: the cht-dev project a resource belongs to.
pub const CHT_DEV_PROJECT: &str = "org.cht-dev.project";
/// cht-dev's own label: which part of the project (`cht` or `upgrade`).
pub const CHT_DEV_ROLE: &str = "org.cht-dev.role";
/// The compose version cht-dev's labels imitate.
pub const COMPOSE_VERSION: &str = "2.20.0";
