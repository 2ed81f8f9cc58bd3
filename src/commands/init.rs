//! `cht-dev init`: create a project.

use crate::error::Result;
use crate::printer::Tone;
use crate::project::{self, InitOptions, render};
use crate::settings::Settings;

/// Creates the project and prints where everything is.
pub fn run(settings: &Settings, opts: &InitOptions) -> Result<()> {
    let home = settings.home()?;
    project::validate(&home, opts)?;
    let _lock = project::lock(&home, &opts.name)?;
    let created = project::create(&home, opts)?;
    report(settings, &created)
}

/// Prints the summary of a newly created project.
pub fn report(settings: &Settings, created: &project::Created) -> Result<()> {
    let p = &settings.printer;
    let project = &created.project;
    let http = project.http_port().unwrap_or_default();
    let https = project.https_port().unwrap_or_default();
    if settings.json {
        return p.json(&serde_json::json!({
            "project": project.name,
            "version": created.version.version,
            "dir": project.dir.display().to_string(),
            "http_port": http,
            "https_port": https,
            "url": project.url(),
            "user": project.env.get("COUCHDB_USER"),
            "env_file": project.path(".env").display().to_string(),
            "certificate_names": created.names.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "ca": created.ca.cert.display().to_string(),
            "ca_created": created.ca_created,
        }));
    }
    p.info(format!(
        "{} project {} (CHT {}) in {}",
        p.paint(Tone::Good, "created"),
        p.paint(Tone::Strong, &project.name),
        created.version.version,
        project.dir.display()
    ))?;
    p.info(format!("  https:       https://localhost:{https}/"))?;
    p.info(format!(
        "  http:        http://localhost:{http}/ (redirects to https)"
    ))?;
    p.info(format!(
        "  login:       {} (password in {})",
        project
            .env
            .get("COUCHDB_USER")
            .unwrap_or(project::DEFAULT_USER),
        project.path(".env").display()
    ))?;
    p.info(format!(
        "  certificate: {}",
        created
            .names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    p.info(format!(
        "  compose:     {}, {}, {}",
        project.path(render::CORE_FILE).display(),
        project.path(render::COUCHDB_FILE).display(),
        project.path(render::UPGRADE_FILE).display()
    ))?;
    let ca_note = if created.ca_created {
        "new: trust it once, see `cht-dev ca`"
    } else {
        "see `cht-dev ca` to trust it"
    };
    p.info(format!(
        "  local CA:    {} ({ca_note})",
        created.ca.cert.display()
    ))
}
