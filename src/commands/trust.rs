//! `cht-dev ca install` and `ca uninstall`: put the home CA into (or take it out of) this
//! user's browser trust stores, and optionally the system's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::printer::{Printer, Report, shell_word};
use crate::settings::Settings;
use crate::tls::{self, CaFiles};

/// Where Debian-family systems take extra CA certificates from.
#[cfg(not(target_os = "macos"))]
const SYSTEM_DIR: &str = "/usr/local/share/ca-certificates";

/// How to install certutil, NSS's command-line tool, on macOS.
#[cfg(target_os = "macos")]
const CERTUTIL_INSTALL: &str = "brew install nss";
/// How to install certutil, NSS's command-line tool, on Linux.
#[cfg(not(target_os = "macos"))]
const CERTUTIL_INSTALL: &str =
    "apt-get install libnss3-tools (Debian/Ubuntu) or dnf install nss-tools (Fedora)";

/// The NSS databases of this user. On Linux: Chromium/Chrome's shared one (made if
/// missing) and every Firefox profile's. On macOS Chrome trusts the keychain, so only
/// Firefox's profiles.
fn nss_databases(user_home: &Path) -> Vec<PathBuf> {
    #[cfg(target_os = "macos")]
    let (mut dbs, firefox) = (
        Vec::new(),
        ["Library/Application Support/Firefox/Profiles"].as_slice(),
    );
    #[cfg(not(target_os = "macos"))]
    let (mut dbs, firefox) = (
        vec![user_home.join(".pki/nssdb")],
        [".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"].as_slice(),
    );
    for base in firefox {
        if let Ok(entries) = std::fs::read_dir(user_home.join(base)) {
            let mut profiles: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("cert9.db").is_file() || p.join("cert8.db").is_file())
                .collect();
            profiles.sort();
            dbs.extend(profiles);
        }
    }
    dbs
}

/// Runs a helper program; a missing one is an error saying how to install it.
fn tool(program: &str, args: &[&str], install: &str) -> Result<std::process::Output> {
    Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Tool {
            program: program.into(),
            problem: if e.kind() == std::io::ErrorKind::NotFound {
                format!("is not installed: {install}")
            } else {
                format!("could not run: {e}")
            },
        })
}

/// Runs certutil; a failure is an error naming what was being done and certutil's words.
fn certutil(args: &[&str], doing: &str) -> Result<()> {
    let out = tool("certutil", args, CERTUTIL_INSTALL)?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Tool {
        program: "certutil".into(),
        problem: format!(
            "could not {doing}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// The CA's nickname in trust stores: unique per CA, so several homes can coexist.
fn nickname(sha256: &str) -> String {
    format!(
        "cht-dev local CA {}",
        sha256.replace(':', "").get(..12).unwrap_or_default()
    )
}

/// The user's home folder.
fn user_home() -> Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().to_path_buf())
        .ok_or(Error::NoUserHome)
}

/// The command that adds the CA to this platform's system store, as text to run by hand.
fn system_hint(ca: &Path, name: &str) -> String {
    let ca = shell_word(&ca.display().to_string());
    #[cfg(target_os = "macos")]
    let hint = {
        let _ = name;
        format!(
            "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}"
        )
    };
    #[cfg(not(target_os = "macos"))]
    let hint = format!("sudo cp {ca} {SYSTEM_DIR}/{name}.crt && sudo update-ca-certificates");
    hint
}

/// The command that takes the CA out of this platform's system store, as text.
fn system_removal_hint(name: &str, sha256: &str) -> String {
    #[cfg(target_os = "macos")]
    let hint = {
        let _ = name;
        format!("sudo security delete-certificate -Z {sha256}")
    };
    #[cfg(not(target_os = "macos"))]
    let hint = {
        let _ = sha256;
        format!("sudo rm {SYSTEM_DIR}/{name}.crt && sudo update-ca-certificates --fresh")
    };
    hint
}

/// The CA certificate, its store nickname and its SHA-256 in hex, making the CA if needed.
fn ca(home: &Home) -> Result<(CaFiles, String, String)> {
    let (files, _) = tls::ensure_ca(home)?;
    let pem = std::fs::read_to_string(&files.cert).map_err(Error::io("read", &files.cert))?;
    let info = tls::inspect(&pem)?;
    Ok((files, nickname(&info.sha256), info.sha256.replace(':', "")))
}

/// File name (without extension) for the system store.
fn system_name(nick: &str) -> String {
    nick.replace(' ', "-")
}

/// Installs the CA into every NSS database of this user (creating Chromium's if missing),
/// and into the system store with `--system`.
pub fn install(settings: &Settings, system: bool) -> Result<Trusted> {
    let home = settings.home()?;
    let (files, nick, _) = ca(&home)?;
    let ca_path = files.cert.to_string_lossy().into_owned();
    let mut done = Vec::new();
    for db in nss_databases(&user_home()?) {
        let spec = format!("sql:{}", db.display());
        if !db.join("cert9.db").is_file() {
            std::fs::create_dir_all(&db).map_err(Error::io("create", &db))?;
            certutil(
                &["-N", "-d", &spec, "--empty-password"],
                &format!("create {}", db.display()),
            )?;
        }
        certutil(
            &["-A", "-d", &spec, "-t", "C,,", "-n", &nick, "-i", &ca_path],
            &format!("add the CA to {}", db.display()),
        )?;
        done.push(db.display().to_string());
    }
    let name = system_name(&nick);
    let system_done = if system {
        Some(system_install(&files.cert, &name)?)
    } else {
        None
    };
    report(
        INSTALLED,
        &nick,
        &done,
        system_done,
        &system_hint(&files.cert, &name),
    )
}

/// Adds the CA to the Debian-family system store.
#[cfg(not(target_os = "macos"))]
fn system_install(ca: &Path, name: &str) -> Result<String> {
    let target = Path::new(SYSTEM_DIR).join(format!("{name}.crt"));
    std::fs::create_dir_all(SYSTEM_DIR).map_err(Error::io("create", SYSTEM_DIR))?;
    std::fs::copy(ca, &target).map_err(|e| Error::Io {
        action: "copy the CA to",
        path: target.clone(),
        source: std::io::Error::new(
            e.kind(),
            format!("{e} (the system store needs root: sudo cht-dev ca install --system)"),
        ),
    })?;
    update_system_store()?;
    Ok(target.display().to_string())
}

/// The macOS system store is the System keychain, changed by hand with `security`.
#[cfg(target_os = "macos")]
fn system_install(ca: &Path, name: &str) -> Result<String> {
    Err(Error::SystemStoreUnsupported {
        hint: system_hint(ca, name),
    })
}

/// Takes the CA out of the Debian-family system store (gone already counts as done).
#[cfg(not(target_os = "macos"))]
fn system_uninstall(name: &str, _sha256: &str) -> Result<String> {
    let target = Path::new(SYSTEM_DIR).join(format!("{name}.crt"));
    if target.exists() {
        std::fs::remove_file(&target).map_err(Error::io("remove", &target))?;
    }
    update_system_store()?;
    Ok(target.display().to_string())
}

/// The macOS system store is the System keychain, changed by hand with `security`.
#[cfg(target_os = "macos")]
fn system_uninstall(name: &str, sha256: &str) -> Result<String> {
    Err(Error::SystemStoreUnsupported {
        hint: system_removal_hint(name, sha256),
    })
}

/// Runs update-ca-certificates.
#[cfg(not(target_os = "macos"))]
fn update_system_store() -> Result<()> {
    let out = tool(
        "update-ca-certificates",
        &["--fresh"],
        "apt-get install ca-certificates",
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            program: "update-ca-certificates".into(),
            problem: format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        })
    }
}

/// Removes the CA from this user's NSS databases, and the system store with `--system`.
pub fn uninstall(settings: &Settings, system: bool) -> Result<Trusted> {
    let home = settings.home()?;
    let (_, nick, sha256) = ca(&home)?;
    let mut done = Vec::new();
    for db in nss_databases(&user_home()?) {
        if !db.join("cert9.db").is_file() {
            continue;
        }
        let spec = format!("sql:{}", db.display());
        // certutil -D fails when the nickname is absent: that is the goal anyway.
        if certutil(&["-D", "-d", &spec, "-n", &nick], "remove the CA").is_ok() {
            done.push(db.display().to_string());
        }
    }
    let name = system_name(&nick);
    let system_done = if system {
        Some(system_uninstall(&name, &sha256)?)
    } else {
        None
    };
    report(
        "removed",
        &nick,
        &done,
        system_done,
        &system_removal_hint(&name, &sha256),
    )
}

/// The action word of an install.
const INSTALLED: &str = "installed";

/// What a phone does with the CA, said after an install.
const PHONES: &str = "phones: Chrome on Android trusts this CA once installed there (cht-dev ca --der); the CHT Android app never trusts a CA a user installed, only the system's, so for the app use the public local-ip certificate: cht-dev tls NAME local-ip";

/// What `ca install` or `ca uninstall` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Trusted {
    /// `installed` or `removed`.
    pub action: &'static str,
    /// The CA's nickname in the stores.
    pub nickname: String,
    /// The NSS databases changed.
    pub nss_databases: Vec<String>,
    /// The system store file, when it was changed.
    pub system_store: Option<String>,
    /// The command to change the system store by hand, when it was not.
    pub system_command: Option<String>,
}

/// What install/uninstall did, as a report.
fn report(
    verb: &'static str,
    nick: &str,
    dbs: &[String],
    system: Option<String>,
    hint: &str,
) -> Result<Trusted> {
    Ok(Trusted {
        action: verb,
        nickname: nick.to_string(),
        nss_databases: dbs.to_vec(),
        system_command: system.is_none().then(|| hint.to_string()),
        system_store: system,
    })
}

impl Report for Trusted {
    fn human(&self, p: &Printer) -> Result<()> {
        let (verb, nick) = (self.action, &self.nickname);
        for db in &self.nss_databases {
            p.info(format!("{verb} {nick:?} in {db}"))?;
        }
        match (&self.system_store, &self.system_command) {
            (Some(path), _) => p.info(format!("{verb} in the system store ({path})"))?,
            (None, hint) => p.info(format!(
                "system store (browsers that use it, curl, phones' tooling): {}",
                hint.as_deref().unwrap_or_default()
            ))?,
        }
        if self.action == INSTALLED {
            p.info(PHONES)?;
        }
        Ok(())
    }
}
