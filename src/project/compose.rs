//! A typed reading of the parts of a compose file cht-dev relies on.

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A compose file: its services, networks and volumes (other keys are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ComposeFile {
    /// Services by name, in file order.
    #[serde(default)]
    pub services: IndexMap<String, Service>,
}

/// One service, as far as cht-dev reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Service {
    /// The image reference.
    pub image: Option<String>,
    /// Published ports, short syntax.
    #[serde(default)]
    pub ports: Vec<String>,
}

impl ComposeFile {
    /// Parses compose YAML; `file` names it in the error.
    pub fn parse(file: &str, text: &str) -> Result<ComposeFile> {
        serde_saphyr::from_str(text).map_err(|e| Error::Render {
            file: file.to_string(),
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        })
    }
}
