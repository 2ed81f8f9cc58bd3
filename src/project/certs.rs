//! The project certificate on the move: reissued from the home CA when it nears expiry
//! or misses a LAN address, and packed for nginx's volume.

use time::OffsetDateTime;

use super::{HOSTS_VAR, Project};
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

/// Reissues the project certificate when it expires within 30 days or lacks a
/// current LAN address or the project's own `NAME.localhost`; returns whether it did.
pub fn renew_certificate(home: &Home, project: &Project) -> Result<bool> {
    if project.own_cert() {
        // The user's own certificate: theirs to renew (`up --cert-file ... --key-file ...`).
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
    let hosts = project
        .env
        .get(HOSTS_VAR)
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(SanName::parse)
        .collect::<Result<Vec<_>>>()?;
    let (files, _) = tls::ensure_ca(home)?;
    let leaf = tls::Ca::load(&files)?
        .issue_leaf(&project.name, &tls::project_names(&project.name, &hosts))?;
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
