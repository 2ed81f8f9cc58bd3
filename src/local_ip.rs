//! The publicly trusted `*.local-ip.medicmobile.org` certificate, for phones.
//!
//! The CHT Android app trusts only the system's CAs, so a local CA never works there. Medic
//! publishes a certificate and its key for `*.local-ip.medicmobile.org`, whose names
//! `A-B-C-D.local-ip.medicmobile.org` resolve to the address `A.B.C.D` through public DNS,
//! as the Docker Helper uses it. The key is public, so the pair serves testing on a trusted
//! network only.
//!
//! Rules: one pair per home, shared by every project in this mode. A download is used only
//! once whole and checked (key matches, covers the wildcard, valid now, chains to a root
//! the system trusts); it replaces the kept pair in one rename, so a failure or a kill
//! leaves the previous pair. HTTPS to the source is verified against the system's roots,
//! which honour `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL tools do.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::home::Home;
use crate::tls::{self, CertInfo};

/// The domain whose every one-label name the certificate covers.
pub const DOMAIN: &str = "local-ip.medicmobile.org";
/// The one name the certificate must carry.
pub const WILDCARD: &str = "*.local-ip.medicmobile.org";
/// Where the Docker Helper downloads the pair from.
pub const DEFAULT_SOURCE: &str = "https://local-ip.medicmobile.org";
/// The environment variable naming another source (a mirror, or a test server).
pub const SOURCE_VAR: &str = "CHT_DEV_LOCAL_IP_URL";
/// A kept pair expiring sooner than this is downloaded again on `up`.
pub const REFRESH_DAYS: i64 = 7;
/// The largest file the source may send: a chain and a key take a few kilobytes.
const MAX_BYTES: u64 = 1 << 20;
/// How long one download may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The kept pair, in the home: JSON, mode 0600 (it holds a key, public as it is).
const STORE_FILE: &str = "local-ip.json";

/// Where the pair comes from: an `https://` URL without a trailing slash; the files are
/// `<source>/fullchain` and `<source>/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(String);

impl Source {
    /// Parses a source URL: `https://host[:port][/path]`, no query or fragment.
    pub fn parse(raw: &str) -> Result<Source> {
        let bad = |why: &str| Error::BadVariable {
            var: SOURCE_VAR,
            value: raw.to_string(),
            reason: format!(
                "{why}; give an https:// URL such as {DEFAULT_SOURCE}, under which /fullchain and /key are served"
            ),
        };
        let trimmed = raw.trim().trim_end_matches('/');
        let Some(rest) = trimmed.strip_prefix("https://") else {
            return Err(bad("is not an https:// URL"));
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#', ' ', '@']) {
            return Err(bad("has no host, or has a login, query or fragment"));
        }
        Ok(Source(trimmed.to_string()))
    }

    /// The source `SOURCE_VAR` names, else the Docker Helper's.
    pub fn from_env() -> Result<Source> {
        match std::env::var(SOURCE_VAR) {
            Ok(raw) if !raw.trim().is_empty() => Source::parse(&raw),
            _ => Source::parse(DEFAULT_SOURCE),
        }
    }

    /// The URL of one of the source's files (`fullchain` or `key`).
    pub fn file(&self, name: &str) -> String {
        format!("{}/{name}", self.0)
    }
}

/// A checked pair, as kept in the home.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pair {
    /// The URL the certificate came from.
    pub source: String,
    /// When it was downloaded.
    #[serde(with = "time::serde::rfc3339")]
    pub fetched: OffsetDateTime,
    /// The certificate and its chain, PEM, as served (nginx serves exactly this).
    pub fullchain: String,
    /// The key, PEM.
    pub key: String,
}

/// What [`obtain`] did to get a usable pair.
#[derive(Debug, Clone)]
pub enum Obtained {
    /// The kept pair, valid for more than [`REFRESH_DAYS`] days.
    Kept(Pair),
    /// A pair downloaded now (and kept).
    Downloaded(Pair),
    /// The kept pair, still valid, because a due refresh failed for the reason given.
    Stale(Pair, String),
}

impl Obtained {
    /// The pair to use.
    pub fn pair(&self) -> &Pair {
        match self {
            Obtained::Kept(p) | Obtained::Downloaded(p) | Obtained::Stale(p, _) => p,
        }
    }
}

/// The name under [`DOMAIN`] that public DNS resolves to `ip`: `A-B-C-D.local-ip.medicmobile.org`.
pub fn host(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}.{DOMAIN}")
}

/// Where a home keeps its pair.
fn store_path(home: &Home) -> PathBuf {
    home.root().join(STORE_FILE)
}

/// The pair kept in `home`, if there is one that can be read.
///
/// A file that cannot be read as a pair (edited by hand, say) counts as none: a new pair
/// replaces it.
pub fn kept(home: &Home) -> Option<Pair> {
    let text = fsutil::read_input_text(&store_path(home), "the kept pair", 2 * MAX_BYTES).ok()?;
    serde_json::from_str(&text).ok()
}

/// Keeps `pair` in `home`, replacing the previous one in one rename.
fn keep(home: &Home, pair: &Pair) -> Result<()> {
    let path = store_path(home);
    let text = serde_json::to_string_pretty(pair)
        .map_err(|e| Error::io("write", &path)(std::io::Error::other(e)))?;
    fsutil::replace(&path, text.as_bytes(), fsutil::PRIVATE)
}

/// The roots this system trusts: `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the
/// platform's store.
fn system_roots() -> Result<Vec<CertificateDer<'static>>> {
    let loaded = rustls_native_certs::load_native_certs();
    if loaded.certs.is_empty() {
        let why = loaded
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(Error::Certificate {
            action: "load this system's trusted roots".into(),
            reason: format!(
                "none found{why}; install ca-certificates, or set SSL_CERT_FILE to a PEM bundle"
            ),
        });
    }
    Ok(loaded.certs)
}

/// `roots` as rustls's store, for [`check`].
pub fn root_store(roots: &[CertificateDer<'static>]) -> Arc<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots.iter().cloned());
    Arc::new(store)
}

/// Whether a certificate that expires at `not_after` is due for a refresh at `now`.
pub fn due(not_after: OffsetDateTime, now: OffsetDateTime) -> bool {
    not_after - now < time::Duration::days(REFRESH_DAYS)
}

/// Checks a pair before use: the certificate and key parse, the key is the certificate's,
/// it covers [`WILDCARD`], it is valid at `now`, and its chain leads to one of `roots`.
/// Returns the certificate's facts, or why not, in words for the user.
pub fn check(
    fullchain: &str,
    key: &str,
    roots: Arc<rustls::RootCertStore>,
    now: OffsetDateTime,
) -> std::result::Result<CertInfo, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(fullchain.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            format!("the certificate is not whole PEM ({e}); was the download cut short?")
        })?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("it holds no certificate; was the download cut short?".into());
    };
    let info =
        tls::inspect(fullchain).map_err(|e| format!("the certificate cannot be read ({e})"))?;
    match tls::key_matches(fullchain, key) {
        Ok(true) => {}
        Ok(false) => return Err("the key does not match the certificate".into()),
        Err(e) => {
            return Err(format!(
                "the key cannot be read ({e}); was the download cut short?"
            ));
        }
    }
    if !info.names.iter().any(|n| n.eq_ignore_ascii_case(WILDCARD)) {
        return Err(format!(
            "it covers {}, not {WILDCARD}",
            if info.names.is_empty() {
                "no name".to_string()
            } else {
                info.names.join(", ")
            }
        ));
    }
    if info.not_after < now {
        return Err(format!("it expired on {}", info.not_after.date()));
    }
    if info.not_before > now {
        return Err(format!("it is not valid before {}", info.not_before.date()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| format!("cannot check its chain ({e})"))?;
    let name = ServerName::try_from(host(Ipv4Addr::LOCALHOST))
        .map_err(|e| format!("cannot check its chain ({e})"))?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now.unix_timestamp().max(0) as u64));
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], at)
        .map_err(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                "its chain does not lead to a root this system trusts (the system store, or SSL_CERT_FILE)".to_string()
            }
            other => format!("its chain does not verify ({other})"),
        })?;
    Ok(info)
}

/// Downloads one file of the source over HTTPS verified against `roots`, whole or not at all.
fn fetch(url: &str, roots: &[CertificateDer<'static>]) -> std::result::Result<String, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(
            roots
                .iter()
                .map(|d| Certificate::from_der(d.as_ref()).to_owned())
                .collect(),
        )))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .https_only(true)
        .timeout_global(Some(TIMEOUT))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_BYTES)
        .read_to_string()
        .map_err(|e| format!("the transfer failed ({e})"))
}

/// Downloads the pair from `source` and checks it (see [`check`]); nothing is kept.
pub fn download(source: &Source) -> Result<Pair> {
    let roots = system_roots()?;
    let chain_url = source.file("fullchain");
    let key_url = source.file("key");
    let failed = |url: &str, reason: String| Error::LocalIp {
        url: url.to_string(),
        reason,
    };
    let fullchain = fetch(&chain_url, &roots).map_err(|e| {
        failed(
            &chain_url,
            format!(
                "the download failed: {e}; check the network, or point {SOURCE_VAR} at a mirror"
            ),
        )
    })?;
    let key = fetch(&key_url, &roots).map_err(|e| {
        failed(
            &key_url,
            format!(
                "the download failed: {e}; check the network, or point {SOURCE_VAR} at a mirror"
            ),
        )
    })?;
    let now = OffsetDateTime::now_utc();
    check(&fullchain, &key, root_store(&roots), now).map_err(|why| failed(&chain_url, why))?;
    Ok(Pair {
        source: chain_url,
        fetched: now,
        fullchain,
        key,
    })
}

/// A usable pair for `home`: the kept one unless it is missing, due for a refresh (see
/// [`due`]) or `refresh` is asked; then a download from `source`, kept once checked.
///
/// A failed download leaves the kept pair. Asked to refresh, that failure is the error.
/// Otherwise a kept pair that is still valid is used with the reason it is stale; an
/// expired one, or none, is an error naming the URL.
pub fn obtain(home: &Home, source: &Source, refresh: bool) -> Result<Obtained> {
    let now = OffsetDateTime::now_utc();
    let current = kept(home).and_then(|pair| {
        let info = tls::inspect(&pair.fullchain).ok()?;
        Some((pair, info.not_after))
    });
    if let Some((pair, not_after)) = &current
        && !refresh
        && !due(*not_after, now)
    {
        return Ok(Obtained::Kept(pair.clone()));
    }
    match download(source) {
        Ok(pair) => {
            keep(home, &pair)?;
            Ok(Obtained::Downloaded(pair))
        }
        Err(e) if refresh => Err(e),
        Err(e) => match current {
            Some((pair, not_after)) if not_after > now => Ok(Obtained::Stale(pair, e.to_string())),
            Some((_, not_after)) => Err(Error::LocalIp {
                url: source.file("fullchain"),
                reason: format!(
                    "the kept certificate expired on {} and a new one cannot be had: {e}",
                    not_after.date()
                ),
            }),
            None => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    /// A test root, an intermediate it signed, and a leaf for `names` valid `days` days
    /// from `start_days_ago` days ago: (root PEM, full chain PEM, key PEM).
    fn chain(names: &[&str], start_days_ago: i64, days: i64) -> (String, String, String) {
        let root_key = KeyPair::generate().expect("key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Each root its own name, so a stranger is told apart by name, as in the field.
        let tag: u64 = rand::random();
        root.distinguished_name
            .push(rcgen::DnType::CommonName, format!("test root {tag}"));
        let root_cert = root.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::new(root, root_key);
        let mid_key = KeyPair::generate().expect("key");
        let mut mid = CertificateParams::new(Vec::<String>::new()).expect("params");
        mid.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        mid.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("test intermediate {tag}"),
        );
        let mid_cert = mid.signed_by(&mid_key, &root_issuer).expect("mid");
        let mid_issuer = Issuer::new(mid, mid_key);
        let leaf_key = KeyPair::generate().expect("key");
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let now = OffsetDateTime::now_utc();
        leaf.not_before = now - time::Duration::days(start_days_ago);
        leaf.not_after = leaf.not_before + time::Duration::days(days);
        let leaf_cert = leaf.signed_by(&leaf_key, &mid_issuer).expect("leaf");
        (
            root_cert.pem(),
            leaf_cert.pem() + &mid_cert.pem(),
            leaf_key.serialize_pem(),
        )
    }

    /// `root` as the only trusted root.
    fn trusting(root: &str) -> Arc<rustls::RootCertStore> {
        root_store(&[CertificateDer::from_pem_slice(root.as_bytes()).expect("root")])
    }

    #[test]
    fn a_whole_pair_for_the_wildcard_chaining_to_a_trusted_root_is_used() {
        let (root, fullchain, key) = chain(&[WILDCARD], 1, 90);
        let info =
            check(&fullchain, &key, trusting(&root), OffsetDateTime::now_utc()).expect("usable");
        assert_eq!(info.names, [WILDCARD]);
    }

    #[test]
    fn each_unfit_pair_is_refused_with_its_reason() {
        let now = OffsetDateTime::now_utc();
        let (root, fullchain, key) = chain(&[WILDCARD], 1, 90);
        let refused =
            |chain: &str, key: &str, roots| check(chain, key, roots, now).expect_err("refused");
        let (_, _, other_key) = chain_for_key();
        assert_eq!(
            refused(&fullchain, &other_key, trusting(&root)),
            "the key does not match the certificate"
        );
        let (root2, other, other_domain_key) = chain(&["cht.example.org"], 1, 90);
        assert_eq!(
            refused(&other, &other_domain_key, trusting(&root2)),
            format!("it covers cht.example.org, not {WILDCARD}")
        );
        let (root3, old, old_key) = chain(&[WILDCARD], 100, 90);
        assert!(refused(&old, &old_key, trusting(&root3)).starts_with("it expired on "));
        let (stranger, _, _) = chain(&[WILDCARD], 1, 90);
        assert!(refused(&fullchain, &key, trusting(&stranger)).contains("does not lead to a root"));
        // Cut short: in the middle of the first certificate, or of the key.
        let cut = &fullchain[..fullchain.len() / 3];
        assert!(
            refused(cut, &key, trusting(&root)).contains("cut short"),
            "{}",
            refused(cut, &key, trusting(&root))
        );
        let cut_key = &key[..key.len() / 2];
        assert!(refused(&fullchain, cut_key, trusting(&root)).contains("cut short"));
        assert!(refused("", &key, trusting(&root)).contains("no certificate"));
    }

    /// Another leaf's key, to mismatch.
    fn chain_for_key() -> (String, String, String) {
        chain(&[WILDCARD], 1, 90)
    }

    #[test]
    fn obtain_keeps_a_fresh_pair_and_falls_back_only_while_the_kept_one_is_valid() {
        let dir = tempfile::tempdir().expect("tmp");
        let home = Home::at(dir.path()).expect("home");
        // Nothing listens on port 1: every download is refused at once.
        let down = Source::parse("https://127.0.0.1:1").expect("source");
        let pair = |start_days_ago, days| {
            let (_, fullchain, key) = chain(&[WILDCARD], start_days_ago, days);
            Pair {
                source: down.file("fullchain"),
                fetched: OffsetDateTime::now_utc(),
                fullchain,
                key,
            }
        };
        let none = obtain(&home, &down, false).expect_err("nothing kept, no source");
        assert!(
            none.to_string().contains("https://127.0.0.1:1/fullchain"),
            "{none}"
        );

        let fresh = pair(1, 90);
        keep(&home, &fresh).expect("keep");
        assert!(matches!(obtain(&home, &down, false), Ok(Obtained::Kept(p)) if p == fresh));
        let asked = obtain(&home, &down, true).expect_err("a refresh asked for fails");
        assert!(asked.to_string().contains("the download failed"), "{asked}");
        assert_eq!(kept(&home), Some(fresh), "the kept pair stays");

        let due = pair(1, 3);
        keep(&home, &due).expect("keep");
        match obtain(&home, &down, false) {
            Ok(Obtained::Stale(p, why)) => {
                assert_eq!(p, due);
                assert!(why.contains("https://127.0.0.1:1/fullchain"), "{why}");
            }
            other => panic!("a due pair serves on offline: {other:?}"),
        }

        let expired = pair(10, 3);
        keep(&home, &expired).expect("keep");
        let err = obtain(&home, &down, false).expect_err("expired and offline");
        assert!(err.to_string().contains("expired on"), "{err}");
        // An unreadable kept file counts as none.
        std::fs::write(store_path(&home), "{").expect("write");
        assert_eq!(kept(&home), None);
    }

    #[test]
    fn a_pair_is_due_a_week_before_it_expires() {
        let now = OffsetDateTime::now_utc();
        assert!(due(now + time::Duration::days(6), now));
        assert!(!due(now + time::Duration::days(8), now));
        assert!(due(now - time::Duration::days(1), now));
    }

    #[test]
    fn hosts_and_sources() {
        assert_eq!(
            host(Ipv4Addr::new(192, 168, 1, 20)),
            "192-168-1-20.local-ip.medicmobile.org"
        );
        let source = Source::parse("https://127.0.0.1:8443/").expect("source");
        assert_eq!(source.file("key"), "https://127.0.0.1:8443/key");
        assert_eq!(
            Source::parse(DEFAULT_SOURCE)
                .expect("default")
                .file("fullchain"),
            "https://local-ip.medicmobile.org/fullchain"
        );
        for bad in [
            "http://local-ip.medicmobile.org",
            "https://",
            "https://a?b",
            "ftp://x",
            "https://u:p@h",
        ] {
            let err = Source::parse(bad).expect_err(bad).to_string();
            assert!(
                err.starts_with(&format!("{SOURCE_VAR}=")) && err.contains("https://"),
                "{err}"
            );
        }
    }
}
