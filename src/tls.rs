//! The local certificate authority and the per-project leaf certificates it signs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;

/// How long the local CA is valid.
const CA_DAYS: i64 = 3650;
/// How long a leaf certificate is valid: within the 398-day limit browsers enforce.
pub const LEAF_DAYS: i64 = 397;
/// Backdating of `notBefore`, so a slightly slow clock elsewhere still accepts the certificate.
const BACKDATE: Duration = Duration::minutes(5);

/// Where a home's CA certificate and key live.
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// The CA certificate, PEM (`<home>/ca/ca.pem`).
    pub cert: PathBuf,
    /// The CA private key, PEM, mode 0600 (`<home>/ca/ca-key.pem`).
    pub key: PathBuf,
}

impl CaFiles {
    /// The CA file paths of `home`.
    pub fn of(home: &Home) -> CaFiles {
        let dir = home.ca_dir();
        CaFiles {
            cert: dir.join("ca.pem"),
            key: dir.join("ca-key.pem"),
        }
    }
}

/// A loaded CA, ready to sign leaf certificates.
pub struct Ca {
    /// The signer built from the CA certificate and key.
    issuer: Issuer<'static, KeyPair>,
}

/// One subject alternative name of a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SanName {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl std::fmt::Display for SanName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SanName::Dns(name) => f.write_str(name),
            SanName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl SanName {
    /// Parses a `--host` value: an IP address or a DNS name.
    pub fn parse(host: &str) -> Result<SanName> {
        let trimmed = host.trim();
        let unbracketed = trimmed.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(SanName::Ip(ip));
        }
        let lower = trimmed.trim_end_matches('.').to_ascii_lowercase();
        if crate::net::is_dns_name(&lower) {
            Ok(SanName::Dns(lower))
        } else {
            Err(Error::InvalidHost {
                host: host.to_string(),
            })
        }
    }
}

/// A freshly issued leaf certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

/// Facts about a certificate, for display.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertInfo {
    /// SHA-256 of the DER form, as colon-separated uppercase hex.
    pub sha256: String,
    /// The subject, as openssl prints it.
    pub subject: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// DNS names and IP addresses the certificate covers.
    pub names: Vec<String>,
}

/// Maps an rcgen failure to a cht-dev error naming what was being done.
fn cert_err(action: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Certificate {
        action: action.to_string(),
        reason: e.to_string(),
    }
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// `user@host` for the CA's name, so several people's CAs can be told apart.
fn user_at_host() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "user".to_string());
    let host = crate::net::hostname().unwrap_or_else(|| "localhost".to_string());
    format!("{user}@{host}")
}

/// Makes the home's CA if it does not exist yet; returns its files and whether it was made now.
pub fn ensure_ca(home: &Home) -> Result<(CaFiles, bool)> {
    let files = CaFiles::of(home);
    if files.cert.is_file() && files.key.is_file() {
        return Ok((files, false));
    }
    let dir = home.ca_dir();
    if dir.exists() {
        return Err(Error::Certificate {
            action: "use the local CA".into(),
            reason: format!(
                "{} exists but lacks ca.pem or ca-key.pem; remove that folder to make a new CA (projects must then be re-issued)",
                dir.display()
            ),
        });
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(cert_err("generate the CA key"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let who = user_at_host();
    dn.push(DnType::OrganizationName, "cht-dev local CA");
    dn.push(DnType::OrganizationalUnitName, who.clone());
    dn.push(DnType::CommonName, format!("cht-dev local CA {who}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(CA_DAYS);
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&key)
        .map_err(cert_err("sign the CA certificate"))?;

    let staging = fsutil::Staging::new(home.root(), "ca")?;
    fsutil::write_new(
        &staging.path().join("ca-key.pem"),
        key.serialize_pem().as_bytes(),
        fsutil::PRIVATE,
    )?;
    fsutil::write_new(
        &staging.path().join("ca.pem"),
        cert.pem().as_bytes(),
        fsutil::PUBLIC,
    )?;
    match staging.commit(&dir) {
        Ok(()) => Ok((files, true)),
        // Another cht-dev made the CA at the same moment: use that one.
        Err(_) if files.cert.is_file() && files.key.is_file() => Ok((files, false)),
        Err(e) => Err(e),
    }
}

/// Reads a file, mapping errors to cht-dev's.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::io("read", path))
}

impl Ca {
    /// Loads the home's CA (run [`ensure_ca`] first).
    ///
    /// The pair is checked first (see [`check_ca_pair`]): a CA that cannot sign, or a key
    /// that is not its own, would issue certificates nothing trusts.
    pub fn load(files: &CaFiles) -> Result<Ca> {
        let key_pem = read(&files.key)?;
        let cert_pem = read(&files.cert)?;
        check_ca_pair(&cert_pem, &key_pem)?;
        let key = KeyPair::from_pem(&key_pem).map_err(cert_err("read the CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(cert_err("read the CA certificate"))?;
        Ok(Ca { issuer })
    }

    /// Issues a serverAuth certificate for `names`, valid [`LEAF_DAYS`] days from now.
    pub fn issue_leaf(&self, project: &str, names: &[SanName]) -> Result<Leaf> {
        self.issue_leaf_for_days(project, names, LEAF_DAYS)
    }

    /// Issues a serverAuth certificate for `names`, valid `days` days (at most [`LEAF_DAYS`]).
    pub fn issue_leaf_for_days(&self, project: &str, names: &[SanName], days: i64) -> Result<Leaf> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(cert_err("generate the project key"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "cht-dev");
        dn.push(DnType::CommonName, format!("cht-dev project {project}"));
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|name| match name {
                SanName::Ip(ip) => Ok(SanType::IpAddress(*ip)),
                SanName::Dns(dns) => dns
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(cert_err("use a host name in the certificate")),
            })
            .collect::<Result<_>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = params.not_before + Duration::days(days.clamp(1, LEAF_DAYS));
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(cert_err("sign the project certificate"))?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The project's own loopback host name, `NAME.localhost` (`_` becomes `-`, which host
/// names allow): browsers and curl send every `*.localhost` to the loopback address, and
/// scope cookies by host, so projects side by side keep their logins apart.
pub fn project_host(project: &str) -> String {
    format!("{}.localhost", project.replace('_', "-"))
}

/// The names a project certificate covers: loopback (`localhost` and the project's own
/// `NAME.localhost`), this machine's name and LAN addresses, then every `--host`, without
/// repeats.
pub fn project_names(project: &str, hosts: &[SanName]) -> Vec<SanName> {
    let mut names = vec![
        SanName::Dns("localhost".into()),
        SanName::Dns(project_host(project)),
        SanName::Ip(IpAddr::from([127, 0, 0, 1])),
        SanName::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    names.extend(crate::net::hostname().map(SanName::Dns));
    names.extend(
        crate::net::lan_ipv4()
            .into_iter()
            .map(|ip| SanName::Ip(ip.into())),
    );
    names.extend(hosts.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Whether a certificate name (possibly `*.example.org`) covers `host`.
pub fn name_covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => name == host,
    }
}

/// Checks a certificate and key brought by the user: the first certificate parses, is valid
/// now, covers `domain` (when given), and belongs to the key. Returns its facts.
pub fn check_own_pair(cert_pem: &str, key_pem: &str, domain: Option<&str>) -> Result<CertInfo> {
    let bad = |reason: String| Error::Certificate {
        action: "use the given certificate".into(),
        reason,
    };
    let info = inspect(cert_pem).map_err(|e| {
        bad(format!(
            "{e} (give a PEM certificate, e.g. certbot's fullchain.pem)"
        ))
    })?;
    let now = OffsetDateTime::now_utc();
    if info.not_after < now {
        return Err(bad(format!(
            "it expired on {}; renew it first",
            info.not_after.date()
        )));
    }
    if info.not_before > now {
        return Err(bad(format!(
            "it is not valid before {}",
            info.not_before.date()
        )));
    }
    if let Some(domain) = domain
        && !info.names.iter().any(|n| name_covers(n, domain))
    {
        return Err(bad(format!(
            "it does not cover {domain} (it covers: {}); use a certificate for that name",
            info.names.join(", ")
        )));
    }
    let matches = key_matches(cert_pem, key_pem).map_err(|e| {
        bad(format!(
            "the key cannot be read ({e}); give an unencrypted PKCS#8 PEM key (openssl pkcs8 -topk8 -nocrypt -in key.pem)"
        ))
    })?;
    if !matches {
        return Err(bad(
            "the key does not match the certificate; give the key it was issued for".into(),
        ));
    }
    let der = pem_to_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    // nginx would serve it and its key would sit in nginx's volume: a CA's key must never.
    if cert.is_ca() {
        return Err(bad(
            "it is a CA certificate (CA:TRUE), not a server certificate; give the certificate issued for your domain (OpenSSL 3's `req -x509` makes CA:TRUE unless given -addext basicConstraints=critical,CA:FALSE), or leave out --cert-file to use the local CA".into(),
        ));
    }
    Ok(info)
}

/// Reads the user's own certificate (`cert`, PEM with its chain) and key (`key`), each a
/// regular file of at most [`fsutil::MAX_PEM_BYTES`], and checks them (see
/// [`check_own_pair`]); returns both PEM texts.
pub fn read_own_pair(cert: &Path, key: &Path, domain: Option<&str>) -> Result<(String, String)> {
    let (cert_pem, key_pem) = (
        fsutil::read_input_text(cert, "the certificate", fsutil::MAX_PEM_BYTES)?,
        fsutil::read_input_text(key, "the key", fsutil::MAX_PEM_BYTES)?,
    );
    check_own_pair(&cert_pem, &key_pem, domain)?;
    Ok((cert_pem, key_pem))
}

/// Whether `key_pem` is the key of the first certificate in `cert_pem`; an error when
/// either cannot be read.
/// Keys in PKCS#8, PKCS#1 (RSA) and SEC1 (EC) form are read, as nginx reads them.
pub fn key_matches(cert_pem: &str, key_pem: &str) -> std::result::Result<bool, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
    match rustls::sign::CertifiedKey::new(vec![cert], signing).keys_match() {
        Ok(()) => Ok(true),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses a key that is the home CA's own (whatever certificate it came with): it must
/// never be copied into a project, let alone into nginx's volume.
pub fn refuse_ca_key(key_pem: &str, ca: &CaFiles) -> Result<()> {
    let Ok(ca_pem) = std::fs::read_to_string(&ca.cert) else {
        return Ok(());
    };
    let (Ok(key), Ok(der)) = (KeyPair::from_pem(key_pem), pem_to_der(&ca_pem)) else {
        return Ok(());
    };
    use rcgen::PublicKeyData as _;
    match x509_parser::parse_x509_certificate(&der) {
        Ok((_, cert))
            if cert.tbs_certificate.subject_pki.raw == key.subject_public_key_info().as_slice() =>
        {
            Err(Error::Certificate {
                action: "use the given certificate".into(),
                reason: format!(
                    "its key is the local CA's own ({}); give the key of your server certificate",
                    ca.key.display()
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Checks the home CA's pair: the key matches the certificate, which is a CA (CA:TRUE)
/// allowed to sign certificates (keyCertSign).
pub fn check_ca_pair(cert_pem: &str, key_pem: &str) -> Result<()> {
    let bad = |reason: &str| Error::Certificate {
        action: "use the local CA".into(),
        reason: format!(
            "{reason}; remove the ca folder to make a new CA (projects must then be re-issued)"
        ),
    };
    let key = KeyPair::from_pem(key_pem).map_err(|_| bad("its key cannot be read"))?;
    let der = pem_to_der(cert_pem).map_err(|_| bad("its certificate cannot be read"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| bad("its certificate cannot be read"))?;
    use rcgen::PublicKeyData as _;
    if cert.tbs_certificate.subject_pki.raw != key.subject_public_key_info().as_slice() {
        return Err(bad("its key does not match its certificate"));
    }
    if !cert.is_ca() {
        return Err(bad("its certificate is not a CA (no CA:TRUE)"));
    }
    let signs = cert
        .key_usage()
        .ok()
        .flatten()
        .is_none_or(|ku| ku.value.key_cert_sign());
    if !signs {
        return Err(bad(
            "its certificate may not sign certificates (no keyCertSign)",
        ));
    }
    Ok(())
}

/// The DER bytes of the first certificate in `pem`.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| Error::Certificate {
            action: "read a PEM certificate".into(),
            reason: e.to_string(),
        })?;
    Ok(parsed.contents)
}

/// Reads the facts cht-dev shows about a PEM certificate.
pub fn inspect(pem: &str) -> Result<CertInfo> {
    let der = pem_to_der(pem)?;
    let bad = |reason: String| Error::Certificate {
        action: "parse a certificate".into(),
        reason,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    let digest = Sha256::digest(&der);
    let sha256 = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(raw) => {
                    let ip = match raw.len() {
                        4 => <[u8; 4]>::try_from(*raw).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*raw).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        sha256,
        subject: cert.subject().to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::parse_x509_certificate;

    /// A CA in a fresh temporary home.
    fn temp_ca() -> (tempfile::TempDir, CaFiles) {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::at(dir.path()).expect("home");
        let (files, created) = ensure_ca(&home).expect("ca");
        assert!(created);
        (dir, files)
    }

    #[test]
    fn ca_is_p256_path_len_zero_ten_years_and_key_is_private() {
        let (_dir, files) = temp_ca();
        let der = pem_to_der(&read(&files.cert).expect("read")).expect("der");
        let (_, cert) = parse_x509_certificate(&der).expect("parse");
        let bc = cert
            .basic_constraints()
            .expect("ext")
            .expect("present")
            .value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().expect("ext").expect("present").value;
        assert!(ku.key_cert_sign());
        assert_eq!(
            cert.public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok()),
            Some(x509_parser::oid_registry::OID_EC_P256)
        );
        let days = (cert.validity().not_after.to_datetime()
            - cert.validity().not_before.to_datetime())
        .whole_days();
        assert!((3649..=3651).contains(&days), "{days}");
        assert!(cert.subject().to_string().contains("cht-dev local CA"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn leaf_covers_names_serves_tls_and_is_short_lived() {
        let (_dir, files) = temp_ca();
        let ca = Ca::load(&files).expect("load");
        let names = project_names(
            "my_app",
            &[SanName::parse("cht.example.org").expect("host")],
        );
        let leaf = ca.issue_leaf("demo", &names).expect("leaf");
        let info = inspect(&leaf.cert_pem).expect("inspect");
        for want in [
            "localhost",
            "my-app.localhost",
            "127.0.0.1",
            "::1",
            "cht.example.org",
        ] {
            assert!(
                info.names.iter().any(|n| n == want),
                "{want} in {:?}",
                info.names
            );
        }
        assert!((info.not_after - info.not_before).whole_days() <= LEAF_DAYS);
        let der = pem_to_der(&leaf.cert_pem).expect("der");
        let (_, cert) = parse_x509_certificate(&der).expect("parse");
        let eku = cert
            .extended_key_usage()
            .expect("ext")
            .expect("present")
            .value;
        assert!(eku.server_auth);
        assert!(!cert.is_ca());
        let ca_der = pem_to_der(&read(&files.cert).expect("read")).expect("der");
        let (_, ca_cert) = parse_x509_certificate(&ca_der).expect("parse");
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
    }

    #[test]
    fn second_ensure_reuses_the_ca() {
        let (dir, files) = temp_ca();
        let before = read(&files.cert).expect("read");
        let (_, created) = ensure_ca(&Home::at(dir.path()).expect("home")).expect("ca");
        assert!(!created);
        assert_eq!(before, read(&files.cert).expect("read"));
    }

    #[test]
    fn own_pairs_are_checked_for_match_names_and_dates() {
        let (_dir, files) = temp_ca();
        let ca = Ca::load(&files).expect("load");
        let names = [SanName::Dns("cht.example.org".into())];
        let leaf = ca.issue_leaf("own", &names).expect("leaf");
        assert!(check_own_pair(&leaf.cert_pem, &leaf.key_pem, Some("cht.example.org")).is_ok());
        let other = ca.issue_leaf("other", &names).expect("leaf");
        let err = check_own_pair(&leaf.cert_pem, &other.key_pem, None).expect_err("mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
        let err =
            check_own_pair(&leaf.cert_pem, &leaf.key_pem, Some("other.org")).expect_err("name");
        assert!(
            err.to_string().contains("does not cover other.org"),
            "{err}"
        );
        assert!(check_own_pair("junk", &leaf.key_pem, None).is_err());
        assert!(check_own_pair(&leaf.cert_pem, "junk", None).is_err());
        assert!(name_covers("*.example.org", "cht.example.org"));
        assert!(!name_covers("*.example.org", "a.b.example.org"));
        assert!(!name_covers("*.example.org", "example.org"));
    }

    #[test]
    fn hosts_parse_as_ip_or_dns() {
        assert_eq!(
            SanName::parse("[::1]").ok(),
            Some(SanName::Ip("::1".parse().expect("ip")))
        );
        assert_eq!(
            SanName::parse("CHT.Example.org.").ok(),
            Some(SanName::Dns("cht.example.org".into()))
        );
        assert!(SanName::parse("bad host").is_err());
        assert!(SanName::parse("").is_err());
    }
}
