//! `cht-dev ca`: the home's local CA, its fingerprint, and how to trust it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::printer::{Printer, Report, Tone, shell_word};
use crate::settings::Settings;
use crate::tls;

/// How to trust the CA on each platform; `{ca}` and `{der}` stand for the file paths.
const TRUST_STEPS: &[(&str, &str)] = &[
    (
        "Debian/Ubuntu",
        "sudo cp {ca} /usr/local/share/ca-certificates/cht-dev-ca.crt && sudo update-ca-certificates",
    ),
    (
        "Fedora/RHEL",
        "sudo cp {ca} /etc/pki/ca-trust/source/anchors/cht-dev-ca.pem && sudo update-ca-trust",
    ),
    (
        "Chrome, Firefox (Linux)",
        "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n cht-dev -i {ca}   (certutil: libnss3-tools; for Firefox use -d sql:<profile folder>)",
    ),
    (
        "macOS",
        "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}",
    ),
    (
        "Windows",
        "certutil -addstore -f ROOT {ca}   (in an administrator prompt)",
    ),
    (
        "Android",
        "cht-dev ca --der {der}, copy it to the phone, then Settings > Security > Encryption & credentials > Install a certificate > CA certificate. Chrome on Android then trusts it; the CHT Android app never trusts a CA a user installed (it trusts only the system's), so for the app use the public local-ip certificate: cht-dev tls NAME local-ip (or --tls local-ip at init)",
    ),
];

/// The home's local CA: its files, facts, and how to trust it on each platform.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaReport {
    /// Its certificate.
    pub cert: String,
    /// Its key (private).
    pub key: String,
    /// Whether this call made it.
    pub created: bool,
    /// Where its DER form was written, when asked.
    pub der: Option<String>,
    /// Its SHA-256 fingerprint.
    pub sha256: String,
    /// Its subject.
    pub subject: String,
    /// The day it expires.
    pub not_after: String,
    /// Per platform, how to trust it.
    pub trust: indexmap::IndexMap<String, String>,
}

/// Makes the CA if needed, reads its facts and trust steps, and writes DER when asked.
pub fn run(settings: &Settings, der: Option<&Path>) -> Result<CaReport> {
    let home = settings.home()?;
    if let Some(path) = der {
        // Before the CA is made: a device, FIFO, folder or link there is refused.
        fsutil::check_output(path)?;
    }
    let (files, created) = tls::ensure_ca(&home)?;
    let pem = std::fs::read_to_string(&files.cert).map_err(Error::io("read", &files.cert))?;
    let info = tls::inspect(&pem)?;
    if let Some(path) = der {
        fsutil::write_output(path, &tls::pem_to_der(&pem)?, fsutil::PUBLIC)?;
    }
    let ca = files.cert.display().to_string();
    let der_name = der.map_or_else(|| "cht-dev-ca.crt".to_string(), |d| d.display().to_string());
    Ok(CaReport {
        trust: TRUST_STEPS
            .iter()
            .map(|(platform, step)| {
                (
                    platform.to_string(),
                    step.replace("{ca}", &shell_word(&ca))
                        .replace("{der}", &shell_word(&der_name)),
                )
            })
            .collect(),
        cert: ca,
        key: files.key.display().to_string(),
        created,
        der: der.map(|d| d.display().to_string()),
        sha256: info.sha256,
        subject: info.subject,
        not_after: info.not_after.date().to_string(),
    })
}

impl Report for CaReport {
    fn human(&self, p: &Printer) -> Result<()> {
        if self.created {
            p.info(format!("{} a new local CA", p.paint(Tone::Good, "made")))?;
        }
        p.data(format!("certificate: {}", self.cert))?;
        p.data(format!(
            "key:         {} (private: never copy it anywhere)",
            self.key
        ))?;
        p.data(format!("subject:     {}", self.subject))?;
        p.data(format!("sha256:      {}", self.sha256))?;
        p.data(format!("expires:     {}", self.not_after))?;
        if let Some(path) = &self.der {
            p.data(format!("der:         {path}"))?;
        }
        p.info("")?;
        p.info(p.paint(
            Tone::Strong,
            "Trust it once per device, so browsers accept every project's HTTPS:",
        ))?;
        let width = self.trust.keys().map(String::len).max().unwrap_or(0);
        for (platform, step) in &self.trust {
            p.info(format!("  {platform:<width$}  {step}"))?;
        }
        Ok(())
    }
}
