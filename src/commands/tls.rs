//! `cht-dev tls NAME MODE`: switch a project's certificate (local CA, local-ip, own) and
//! give nginx the new one if it runs.

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::local_ip::{self, Obtained, Pair};
use crate::printer::{Printer, Report, Tone};
use crate::project::certs::{self, Chosen};
use crate::project::{Project, TlsMode, journal};
use crate::settings::Settings;
use crate::stack::readiness::probe::wait_serving;
use crate::stack::up::reload_files;
use crate::tls;

/// How long nginx may take to serve a new certificate after its reload.
const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What `tls` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsRequest {
    /// The project.
    pub name: String,
    /// The certificate's source to switch to.
    pub mode: TlsMode,
    /// Download the local-ip pair now, fresh or not.
    pub refresh: bool,
    /// The user's own certificate, with [`TlsMode::Own`].
    pub cert_file: Option<PathBuf>,
    /// Its key.
    pub key_file: Option<PathBuf>,
}

/// A project's certificate after `tls`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Switched {
    /// The project.
    pub project: String,
    /// Where its certificate comes from now.
    pub mode: TlsMode,
    /// Whether its certificate files changed.
    pub changed: bool,
    /// The nginx container given the certificate and reloaded, if one runs.
    pub reloaded: Option<String>,
    /// The names the certificate covers.
    pub names: Vec<String>,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Its URLs, first the one to use.
    pub urls: Vec<String>,
    /// The URL a phone on this network opens (local-ip only).
    pub phone: Option<String>,
    /// One-line notes (a download, a refresh that failed, the public key).
    pub notes: Vec<String>,
}

impl Report for Switched {
    fn human(&self, p: &Printer) -> Result<()> {
        for note in &self.notes {
            p.warn(&format!("note: {note}"));
        }
        let what = match (&self.reloaded, self.changed) {
            (Some(c), true) => format!("; reloaded nginx ({c})"),
            (None, true) => "; nginx gets it when the project starts".to_string(),
            (_, false) => " (unchanged)".to_string(),
        };
        p.info(format!(
            "{} {} serves the {} certificate ({}, until {}){what}",
            p.paint(Tone::Good, "✔"),
            p.paint(Tone::Strong, &self.project),
            self.mode,
            self.names.join(", "),
            self.expires.date()
        ))?;
        for url in &self.urls {
            p.info(format!("  {url}"))?;
        }
        if let Some(phone) = &self.phone {
            print_phone(p, phone)?;
        }
        Ok(())
    }
}

/// The phone's URL, and on a terminal its QR code, for the phone's camera.
pub(crate) fn print_phone(p: &Printer, url: &str) -> Result<()> {
    p.info(format!(
        "  phone:    {url} (the CHT app or Chrome, on this network)"
    ))?;
    if p.is_terminal() && !p.is_quiet() {
        for line in crate::printer::qr_lines(url)? {
            p.info(format!("  {line}"))?;
        }
    }
    Ok(())
}

/// The one line said whenever a project serves the local-ip certificate.
pub(crate) const PUBLIC_KEY_NOTE: &str = "the local-ip certificate's key is public (anyone can download it), so this mode is for testing on a trusted network, never for production";

/// The local-ip pair for `home` (see [`local_ip::obtain`]), downloaded on a blocking
/// thread, with a note when it was downloaded or could not be refreshed.
pub(crate) async fn local_ip_pair(
    settings: &Settings,
    home: &Home,
    refresh: bool,
) -> Result<(Pair, Option<String>)> {
    let source = settings.local_ip_source()?;
    let home = home.clone();
    let obtained = tokio::task::spawn_blocking(move || local_ip::obtain(&home, &source, refresh))
        .await
        .map_err(|e| Error::engine("download the local-ip certificate", e.to_string()))??;
    let note = obtained_note(&obtained);
    Ok((obtained.pair().clone(), note))
}

/// What to say of how the local-ip pair was had: a download, or a refresh that failed.
pub(crate) fn obtained_note(obtained: &Obtained) -> Option<String> {
    let until = |pair: &Pair| {
        tls::inspect(&pair.fullchain)
            .map(|i| i.not_after.date().to_string())
            .unwrap_or_default()
    };
    match obtained {
        Obtained::Kept(_) => None,
        Obtained::Downloaded(pair) => Some(format!(
            "downloaded the local-ip certificate from {} (valid until {})",
            pair.source,
            until(pair)
        )),
        Obtained::Stale(pair, why) => Some(format!(
            "kept the local-ip certificate, valid until {}, as refreshing it failed: {why}",
            until(pair)
        )),
    }
}

/// The user's own pair named by `req`, read and checked against the project's domain.
fn own_pair(home: &Home, project: &Project, req: &TlsRequest) -> Result<(String, String)> {
    let (Some(cert), Some(key)) = (&req.cert_file, &req.key_file) else {
        return Err(Error::BadOption(
            "`tls NAME own` needs --cert-file and --key-file".into(),
        ));
    };
    let (cert_pem, key_pem) = tls::read_own_pair(cert, key, project.domain())?;
    tls::refuse_ca_key(&key_pem, &tls::CaFiles::of(home))?;
    Ok((cert_pem, key_pem))
}

/// Checks that the options fit together before anything is read or changed.
fn check_request(req: &TlsRequest) -> Result<()> {
    if req.refresh && req.mode != TlsMode::LocalIp {
        return Err(Error::BadOption(format!(
            "--refresh downloads the local-ip certificate again; it goes with `local-ip`, not `{}`",
            req.mode
        )));
    }
    if req.cert_file.is_some() && req.mode != TlsMode::Own {
        return Err(Error::BadOption(format!(
            "--cert-file and --key-file go with `own`, not `{}`",
            req.mode
        )));
    }
    Ok(())
}

/// Runs `tls`: checks, obtains the certificate, switches the files, reloads nginx.
pub async fn run(settings: &Settings, req: &TlsRequest) -> Result<Switched> {
    check_request(req)?;
    let home = settings.home()?;
    let project = Project::load(&home, &req.name)?;
    certs::refuse(&project, req.mode)?;
    let own = match req.mode {
        TlsMode::Own => Some(own_pair(&home, &project, req)?),
        _ => None,
    };
    let _lock = crate::project::lock(&home, &req.name)?;
    super::runtime::interruptible(async {
        // The engine first: a switch it could not hand to a running nginx would leave
        // nginx serving the old certificate while the files say otherwise.
        let engine = settings.engine().await?;
        let mut project = Project::load(&home, &req.name)?;
        let mut notes = Vec::new();
        let pair = match req.mode {
            TlsMode::LocalIp => {
                let (pair, note) = local_ip_pair(settings, &home, req.refresh).await?;
                notes.extend(note);
                Some(pair)
            }
            _ => None,
        };
        let chosen = match (&pair, &own) {
            (Some(pair), _) => Chosen::LocalIp(pair),
            (None, Some((cert, key))) => Chosen::Own { cert, key },
            (None, None) => Chosen::LocalCa,
        };
        let journal = journal::Open::begin(&project, "tls")?;
        let changed = certs::switch(&home, &mut project, chosen, &journal)?;
        // Handed over again even when unchanged: a switch cut short before the reload
        // is finished by running it again.
        let profile =
            crate::project::profile::profile(&project, &tls::CaFiles::of(&home).cert, true)?;
        let reloaded = reload_files(&engine, &project.target(), &profile).await?;
        let path = project.path("certs/cert.pem");
        let cert = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        if reloaded.is_some() {
            wait_serving(project.https_port(), &cert, RELOAD_TIMEOUT).await?;
        }
        journal.update(|j| j.certificates = None)?;
        if req.mode == TlsMode::LocalIp {
            notes.push(PUBLIC_KEY_NOTE.to_string());
        }
        let info = tls::inspect(&cert)?;
        Ok(Switched {
            project: project.name.clone(),
            mode: project.tls_mode(),
            changed,
            reloaded,
            names: info.names,
            expires: info.not_after,
            urls: project.urls(),
            phone: project.phone_url(),
            notes,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_and_own_files_go_with_their_modes_only() {
        let req = |mode, refresh, file: bool| TlsRequest {
            name: "p".into(),
            mode,
            refresh,
            cert_file: file.then(|| PathBuf::from("c.pem")),
            key_file: file.then(|| PathBuf::from("k.pem")),
        };
        assert!(check_request(&req(TlsMode::LocalIp, true, false)).is_ok());
        assert!(check_request(&req(TlsMode::Own, false, true)).is_ok());
        let err = check_request(&req(TlsMode::LocalCa, true, false)).expect_err("refresh");
        assert!(err.to_string().contains("goes with `local-ip`"), "{err}");
        let err = check_request(&req(TlsMode::LocalIp, false, true)).expect_err("files");
        assert!(err.to_string().contains("go with `own`"), "{err}");
    }
}
