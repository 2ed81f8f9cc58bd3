//! `cht-dev open`: the project (or its Fauxton) in the default browser.

use crate::error::Result;
use crate::printer::{Printer, Report};
use crate::project::Project;
use crate::settings::Settings;

/// The platform's program that opens a URL in the default browser.
#[cfg(target_os = "macos")]
const OPENER: &str = "open";
/// The platform's program that opens a URL in the default browser.
#[cfg(not(target_os = "macos"))]
const OPENER: &str = "xdg-open";

/// What `open` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Opened {
    /// The project.
    pub project: String,
    /// The URL.
    pub url: String,
    /// The opener that was handed the URL, or `None` when there is none here.
    pub opener: Option<String>,
}

impl Report for Opened {
    fn human(&self, p: &Printer) -> Result<()> {
        match &self.opener {
            Some(opener) => p.info(format!("opened {} ({opener})", self.url)),
            None => {
                p.warn(&format!(
                    "no {OPENER} here to open a browser with: open the URL yourself"
                ));
                p.data(&self.url)
            }
        }
    }
}

/// Opens project `name`'s URL (its Fauxton with `fauxton`) with the platform's opener;
/// without one, only says the URL. The opener is left running on its own: browsers often
/// stay in the foreground of the process that started them.
pub fn run(settings: &Settings, name: Option<&str>, fauxton: bool) -> Result<Opened> {
    let home = settings.home()?;
    let name = super::runtime::pick_existing(&home, name, "open")?;
    let project = Project::load(&home, &name)?;
    let url = if fauxton {
        project.fauxton_url()
    } else {
        project.url()
    };
    let opener = std::process::Command::new(OPENER)
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
        .map(|_| OPENER.to_string());
    Ok(Opened {
        project: name,
        url,
        opener,
    })
}
