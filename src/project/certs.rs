//! The project certificate on the move: reissued from the home CA when it nears expiry
//! or misses a LAN address, and packed for nginx's volume.

use time::OffsetDateTime;

use super::journal::{self, Certificates};
use super::{HOSTS_VAR, Project, TlsMode};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::tls::{self, SanName};

/// A certificate expiring sooner than this is reissued on `up`.
const RENEW_BEFORE_DAYS: i64 = 30;

/// A tar archive holding the project's `cert.pem` and `key.pem`.
pub(crate) fn cert_tar(project: &Project) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (file, mode) in [("cert.pem", 0o644), ("key.pem", 0o600)] {
        let path = project.path(&format!("certs/{file}"));
        let data = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(OffsetDateTime::now_utc().unix_timestamp().max(0) as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, file, data.as_slice())
            .map_err(Error::io("pack", &path))?;
    }
    builder
        .into_inner()
        .map_err(Error::io("pack", project.path("certs")))
}

/// The certificate a project is switched to, already obtained and checked.
#[derive(Debug, Clone, Copy)]
pub enum Chosen<'a> {
    /// One issued now by the home CA (kept if the project has one already).
    LocalCa,
    /// The local-ip pair kept in the home.
    LocalIp(&'a crate::local_ip::Pair),
    /// The user's own certificate and key, PEM.
    Own {
        /// The certificate with its chain.
        cert: &'a str,
        /// Its key.
        key: &'a str,
    },
}

impl Chosen<'_> {
    /// The mode this certificate puts the project in.
    pub fn mode(&self) -> TlsMode {
        match self {
            Chosen::LocalCa => TlsMode::LocalCa,
            Chosen::LocalIp(_) => TlsMode::LocalIp,
            Chosen::Own { .. } => TlsMode::Own,
        }
    }
}

/// Puts `chosen` in the project's certificate files and `.env`; returns whether the files
/// changed (nginx must then be given them). Rules: the local-ip certificate does not
/// cover a project's domain, so such a project is refused it; a project already on the
/// local CA keeps its certificate (`up` renews it); the same local-ip pair is not
/// written twice; the user's own is always written.
///
/// The pair goes into `journal` first: a kill between the key and the certificate leaves a
/// pair the next command puts in place whole.
pub fn switch(
    home: &Home,
    project: &mut Project,
    chosen: Chosen<'_>,
    journal: &journal::Open,
) -> Result<bool> {
    let (cert, key) = match chosen {
        Chosen::LocalCa if project.tls_mode() == TlsMode::LocalCa => return Ok(false),
        Chosen::LocalCa => {
            let leaf = issue(home, project)?;
            (leaf.cert_pem, leaf.key_pem)
        }
        Chosen::LocalIp(pair) => {
            refuse(project, TlsMode::LocalIp)?;
            if project.tls_mode() == TlsMode::LocalIp
                && project.serves_pair(&pair.fullchain, &pair.key)
            {
                return Ok(false);
            }
            (pair.fullchain.clone(), pair.key.clone())
        }
        Chosen::Own { cert, key } => (cert.to_string(), key.to_string()),
    };
    let mode = chosen.mode();
    journal.update(|j| {
        j.certificates = Some(Certificates {
            mode: mode.as_str().to_string(),
            cert: cert.clone(),
            key: key.clone(),
        });
    })?;
    project.install_certificate(mode, &cert, &key)?;
    crate::faults::point("certificate-written");
    Ok(true)
}

/// Puts a pair the journal holds in place (again), as [`switch`] began to.
pub fn put_in_place(project: &mut Project, pair: &Certificates) -> Result<()> {
    let mode = TlsMode::parse(&pair.mode).ok_or_else(|| Error::BrokenProject {
        name: project.name.clone(),
        reason: format!(
            "its journal names an unknown certificate mode {:?}",
            pair.mode
        ),
    })?;
    project.install_certificate(mode, &pair.cert, &pair.key)
}

/// Refuses a switch of `project` to `mode` that cannot serve it: the local-ip certificate
/// does not cover a project's domain.
pub fn refuse(project: &Project, mode: TlsMode) -> Result<()> {
    match project.domain() {
        Some(domain) if mode == TlsMode::LocalIp => Err(Error::BadOption(format!(
            "project {} serves the domain {domain}, which the local-ip certificate (*.{}) does not cover; keep its certificate, or make a project without --domain for phones",
            project.name,
            crate::local_ip::DOMAIN
        ))),
        _ => Ok(()),
    }
}

/// A new certificate from the home CA for the project's names and `--host`s.
fn issue(home: &Home, project: &Project) -> Result<tls::Leaf> {
    let hosts = project
        .env
        .get(HOSTS_VAR)
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(SanName::parse)
        .collect::<Result<Vec<_>>>()?;
    let (files, _) = tls::ensure_ca(home)?;
    tls::Ca::load(&files)?.issue_leaf(&project.name, &tls::project_names(&project.name, &hosts))
}

/// Reissues the project certificate when it expires within 30 days or lacks a
/// current LAN address or the project's own `NAME.localhost`; returns whether it did.
pub fn renew_certificate(home: &Home, project: &Project) -> Result<bool> {
    if project.tls_mode() != TlsMode::LocalCa {
        // The user's own certificate is theirs to renew (`up --cert-file ... --key-file
        // ...`); the local-ip pair is refreshed from its source (see `local_ip::obtain`).
        return Ok(false);
    }
    let cert_path = project.path("certs/cert.pem");
    let pem = std::fs::read_to_string(&cert_path).map_err(Error::io("read", &cert_path))?;
    let info = tls::inspect(&pem)?;
    let expiring =
        info.not_after - OffsetDateTime::now_utc() < time::Duration::days(RENEW_BEFORE_DAYS);
    let lan_missing = crate::net::lan_ipv4()
        .iter()
        .any(|ip| !info.names.contains(&ip.to_string()));
    let host_missing = !info.names.contains(&tls::project_host(&project.name));
    if !expiring && !lan_missing && !host_missing {
        return Ok(false);
    }
    let leaf = issue(home, project)?;
    for (file, contents, mode) in [
        ("certs/key.pem", &leaf.key_pem, fsutil::PRIVATE),
        ("certs/cert.pem", &leaf.cert_pem, fsutil::PUBLIC),
    ] {
        fsutil::replace(&project.path(file), contents.as_bytes(), mode)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{InitOptions, create};
    use crate::tls::CaFiles;

    #[test]
    fn switching_writes_each_certificate_once_and_refuses_a_domain_local_ip_cannot_serve() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let opts = InitOptions {
            name: "sw".into(),
            ..InitOptions::default()
        };
        let mut project = create(&home, &opts).expect("create").project;
        let read = |p: &Project| std::fs::read_to_string(p.path("certs/cert.pem")).expect("read");
        let issued = read(&project);
        let journal = journal::Open::begin(&project, "tls").expect("journal");
        assert!(!switch(&home, &mut project, Chosen::LocalCa, &journal).expect("same mode"));
        assert_eq!(
            read(&project),
            issued,
            "a local-CA project keeps its certificate"
        );

        // A stand-in pair: the switch writes what it is given, checked before.
        let ca = tls::Ca::load(&CaFiles::of(&home)).expect("ca");
        let leaf = ca
            .issue_leaf("x", &[SanName::Dns(crate::local_ip::WILDCARD.into())])
            .expect("leaf");
        let pair = crate::local_ip::Pair {
            source: "https://mirror.example/fullchain".into(),
            fetched: OffsetDateTime::now_utc(),
            fullchain: leaf.cert_pem.clone(),
            key: leaf.key_pem.clone(),
        };
        assert!(switch(&home, &mut project, Chosen::LocalIp(&pair), &journal).expect("switch"));
        assert_eq!(project.tls_mode(), TlsMode::LocalIp);
        let kept = journal::read("sw", &project.dir)
            .expect("read")
            .and_then(|j| j.certificates)
            .expect("the journal holds the pair until nginx serves it");
        assert_eq!(
            (kept.mode.as_str(), kept.cert.as_str()),
            ("local-ip", leaf.cert_pem.as_str())
        );

        // Killed between the key and the certificate: the journal's pair goes in whole.
        std::fs::write(project.path("certs/cert.pem"), &issued).expect("half");
        put_in_place(&mut project, &kept).expect("put in place");
        assert!(project.serves_pair(&leaf.cert_pem, &leaf.key_pem));
        assert_eq!(read(&project), leaf.cert_pem);
        assert_eq!(
            Project::load(&home, "sw").expect("load").tls_mode(),
            TlsMode::LocalIp,
            ".env says so"
        );
        assert!(!switch(&home, &mut project, Chosen::LocalIp(&pair), &journal).expect("again"));

        // Back to the local CA: a new certificate from the home CA, for NAME.localhost.
        assert!(switch(&home, &mut project, Chosen::LocalCa, &journal).expect("back"));
        let info = tls::inspect(&read(&project)).expect("inspect");
        assert!(
            info.names.contains(&"sw.localhost".to_string()),
            "{:?}",
            info.names
        );

        project
            .update_env(&[(crate::project::DOMAIN_VAR, "cht.example.org")])
            .expect("edit");
        let err =
            switch(&home, &mut project, Chosen::LocalIp(&pair), &journal).expect_err("domain");
        assert!(err.to_string().contains("does not cover"), "{err}");
        assert_eq!(project.tls_mode(), TlsMode::LocalCa);
    }

    #[test]
    fn a_certificate_close_to_expiry_is_reissued_and_a_fresh_one_is_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        let opts = InitOptions {
            name: "renew".into(),
            ..InitOptions::default()
        };
        let project = create(&home, &opts).expect("create").project;
        assert!(
            !renew_certificate(&home, &project).expect("check"),
            "a new certificate is kept"
        );
        let ca = tls::Ca::load(&CaFiles::of(&home)).expect("ca");
        let short = ca
            .issue_leaf_for_days("renew", &tls::project_names("renew", &[]), 10)
            .expect("leaf");
        std::fs::write(project.path("certs/cert.pem"), &short.cert_pem).expect("write");
        assert!(renew_certificate(&home, &project).expect("renew"));
        let pem = std::fs::read_to_string(project.path("certs/cert.pem")).expect("read");
        let info = tls::inspect(&pem).expect("inspect");
        assert!((info.not_after - OffsetDateTime::now_utc()).whole_days() > 390);
        let key_mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(project.path("certs/key.pem"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(key_mode, 0o600);
    }
}
