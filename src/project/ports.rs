//! Choosing nginx's host ports so projects never collide with each other or the machine.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The first project's HTTP port, as in the bash helper.
pub const FIRST_HTTP: u16 = 10080;
/// The first project's HTTPS port, as in the bash helper.
pub const FIRST_HTTPS: u16 = 10443;
/// How many ports upwards to search before giving up.
const SEARCH_SPAN: u16 = 2000;

/// Ports already promised to projects in the home, with the project holding each.
pub type Taken = BTreeMap<u16, String>;

/// Why a port cannot be used now, or `None` when it is free.
pub fn busy_reason(port: u16, taken: &Taken) -> Option<String> {
    if let Some(project) = taken.get(&port) {
        return Some(format!("project {project:?} uses it"));
    }
    crate::net::host_port_busy(port)
}

/// Checks a requested port number is in range and returns it as `u16`.
fn in_range(which: &'static str, port: u32) -> Result<u16> {
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Error::InvalidPort {
            which,
            port,
            reason: "ports run from 1 to 65535".into(),
        }),
    }
}

/// Reads a port number from a settings file: a number from 1 to 65535, or why not.
pub fn parse_setting(raw: &str) -> std::result::Result<u16, String> {
    match raw.trim().parse::<u32>() {
        Ok(n) => in_range("setting", n).map_err(|_| "ports run from 1 to 65535".to_string()),
        Err(_) => Err("it is not a port number".into()),
    }
}

/// Checks requested port numbers are in range and distinct (not whether they are free).
pub fn check_range(http: Option<u32>, https: Option<u32>) -> Result<()> {
    let http = http.map(|p| in_range("http", p)).transpose()?;
    let https = https.map(|p| in_range("https", p)).transpose()?;
    if let (Some(h), Some(s)) = (http, https)
        && h == s
    {
        return Err(Error::InvalidPort {
            which: "https",
            port: u32::from(s),
            reason: "it is the same as the http port; give each its own".into(),
        });
    }
    Ok(())
}

/// Picks the HTTP and HTTPS ports: requested ones are checked, missing ones are
/// the first free ports from [`FIRST_HTTP`] / [`FIRST_HTTPS`] upwards.
pub fn allocate(http: Option<u32>, https: Option<u32>, taken: &Taken) -> Result<(u16, u16)> {
    check_range(http, https)?;
    let http = http.map(|p| in_range("http", p)).transpose()?;
    let https = https.map(|p| in_range("https", p)).transpose()?;
    for (which, port) in [("http", http), ("https", https)] {
        if let Some(port) = port
            && let Some(reason) = busy_reason(port, taken)
        {
            return Err(Error::PortBusy {
                which,
                port,
                reason,
            });
        }
    }
    let pick = |first: u16, other: Option<u16>| -> Result<u16> {
        (first..=first.saturating_add(SEARCH_SPAN))
            .find(|&p| Some(p) != other && busy_reason(p, taken).is_none())
            .ok_or(Error::NoFreePorts {
                http: FIRST_HTTP,
                https: FIRST_HTTPS,
            })
    };
    let http = match http {
        Some(p) => p,
        None => pick(FIRST_HTTP, https)?,
    };
    let https = match https {
        Some(p) => p,
        None => pick(FIRST_HTTPS, Some(http))?,
    };
    Ok((http, https))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_project_gets_the_helpers_ports_when_free() {
        let (h, s) = allocate(None, None, &Taken::new()).expect("ports");
        let free = |p| busy_reason(p, &Taken::new()).is_none();
        if free(FIRST_HTTP) && free(FIRST_HTTPS) {
            assert_eq!((h, s), (FIRST_HTTP, FIRST_HTTPS));
        } else {
            // Something on this machine holds one of them: the next free ones, never those.
            assert!(h > FIRST_HTTP || s > FIRST_HTTPS, "{h}/{s}");
            assert!(free(h) && free(s) && h != s, "{h}/{s}");
        }
    }

    #[test]
    fn skips_ports_other_projects_use() {
        let mut taken = Taken::new();
        taken.insert(FIRST_HTTP, "a".into());
        taken.insert(FIRST_HTTPS, "a".into());
        let (h, s) = allocate(None, None, &taken).expect("ports");
        assert!(h > FIRST_HTTP && s > FIRST_HTTPS);
        let err = allocate(Some(u32::from(FIRST_HTTP)), None, &taken).expect_err("taken");
        assert!(err.to_string().contains("project \"a\" uses it"), "{err}");
    }

    #[test]
    fn skips_and_refuses_ports_bound_on_this_machine() {
        let held = std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        let port = held.local_addr().expect("addr").port();
        let err = allocate(Some(u32::from(port)), None, &Taken::new()).expect_err("busy");
        assert!(err.to_string().contains("listening"), "{err}");
        assert!(err.to_string().contains("--http-port"), "{err}");
    }

    #[test]
    fn port_settings_read_back_are_checked_like_flags() {
        assert_eq!(parse_setting(" 10443 "), Ok(10443));
        for (raw, why) in [
            ("0", "1 to 65535"),
            ("65536", "1 to 65535"),
            ("-1", "not a port"),
            ("4x", "not a port"),
            ("", "not a port"),
        ] {
            let err = parse_setting(raw).expect_err(raw);
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn refuses_out_of_range_and_equal_ports() {
        for (h, s) in [(Some(0), None), (None, Some(65536)), (Some(70000), Some(1))] {
            let err = allocate(h, s, &Taken::new()).expect_err("range");
            assert!(err.to_string().contains("1 to 65535"), "{err}");
        }
        let err = allocate(Some(18080), Some(18080), &Taken::new()).expect_err("equal");
        assert!(err.to_string().contains("same as the http port"), "{err}");
    }
}
