//! Readiness as data: what `up` waits for, and one HTTP(S) check of each, over loopback.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// How long one probe may take before it counts as "not yet".
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One condition of readiness.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// Plain HTTP on `port` answers `301` (the proxy's redirect to HTTPS).
    HttpRedirect {
        /// Host port of the proxy's HTTP listener.
        port: u16,
    },
    /// HTTPS on `port`, verified as the profile says, reaches the service behind the proxy
    /// `via`: `GET path` answers anything but 502, 503 or 504.
    HttpsApi {
        /// Host port of the proxy's HTTPS listener.
        port: u16,
        /// The request path.
        path: &'static str,
        /// The proxy's name, for the progress line.
        via: &'static str,
        /// A path answering, while the service starts, a JSON map of steps (each with
        /// `completed` and `text`), shown while waiting.
        progress: Option<&'static str>,
    },
}

impl std::fmt::Display for WaitFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitFor::HttpRedirect { port } => write!(f, "http://localhost:{port}/ -> 301"),
            WaitFor::HttpsApi { port, path, .. } => write!(f, "https://localhost:{port}{path}"),
        }
    }
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The condition holds.
    Ready,
    /// Not yet, and why (shown while waiting and on timeout).
    NotYet(String),
}

/// A TLS client trusting only the home CA.
#[derive(Clone)]
pub struct Tls {
    /// The rustls connector.
    connector: tokio_rustls::TlsConnector,
}

impl Tls {
    /// A client trusting the CA certificate(s) in `ca_pem`.
    pub fn trusting(ca_pem: &str) -> Result<Tls> {
        let bad = |reason: String| Error::Certificate {
            action: "load the local CA for readiness checks".into(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

/// Accepts exactly one server certificate (a user's own, whose issuer cht-dev may not know).
#[derive(Debug)]
struct Pinned {
    /// The expected end-entity certificate, DER.
    cert: Vec<u8>,
    /// Signature checks for the handshake.
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server presents another certificate than the project's".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl Tls {
    /// A client accepting only the certificate in `cert_pem` (for projects with their own
    /// certificate): the handshake must present exactly that certificate.
    pub fn pinned(cert_pem: &str) -> Result<Tls> {
        let bad = |reason: String| Error::Certificate {
            action: "load the project certificate for readiness checks".into(),
            reason,
        };
        let cert = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .next()
            .ok_or_else(|| bad("no certificate in the file".into()))?
            .map_err(|e| bad(e.to_string()))?;
        let provider = rustls::crypto::ring::default_provider();
        let verifier = Pinned {
            cert: cert.as_ref().to_vec(),
            algorithms: provider.signature_verification_algorithms,
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

/// Bytes of an answer's body read at most: progress maps are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Sends `GET path` over `stream` with hyper (HTTP/1.1, one request) and returns the status
/// code and the body (at most [`MAX_BODY`] bytes, decoded as the answer's framing says:
/// length, chunks or close).
async fn get<S>(stream: S, path: &str) -> std::io::Result<(u16, String)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::USER_AGENT, "cht-dev")
        .header(hyper::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(std::io::Error::other)?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let body = http_body_util::Limited::new(answer.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    driver.abort();
    Ok((status, body))
}

/// Connects to `127.0.0.1:port` and runs `GET path`, over TLS when `tls` is given.
pub async fn request(port: u16, path: &str, tls: Option<&Tls>) -> std::io::Result<(u16, String)> {
    let attempt = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        match tls {
            None => get(tcp, path).await,
            Some(tls) => {
                let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
                let stream = tls.connector.connect(name, tcp).await?;
                get(stream, path).await
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no answer within 2 s")))
}

/// Handshakes in a row that must present the new certificate: after a reload, a proxy's
/// old workers accept a few more connections until they notice they are to stop.
const SERVING_IN_A_ROW: u32 = 5;

/// Waits until the TLS server on `127.0.0.1:port` presents exactly the first certificate
/// of `cert_pem` to [`SERVING_IN_A_ROW`] handshakes in a row, for at most `timeout`.
pub async fn wait_serving(port: u16, cert_pem: &str, timeout: Duration) -> Result<()> {
    let tls = Tls::pinned(cert_pem)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut in_a_row = 0;
    loop {
        let attempt = async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
            tls.connector.connect(name, tcp).await.map(|_| ())
        };
        let why = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(())) => {
                in_a_row += 1;
                if in_a_row >= SERVING_IN_A_ROW {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 2 s".to_string(),
        };
        in_a_row = 0;
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::engine(
                format!("see the new certificate served on port {port}"),
                why,
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl WaitFor {
    /// Checks the condition once.
    pub async fn check(&self, tls: &Tls) -> Seen {
        match self {
            WaitFor::HttpRedirect { port } => match request(*port, "/", None).await {
                Ok((301, _)) => Seen::Ready,
                Ok((status, _)) => Seen::NotYet(format!(
                    "http://localhost:{port}/ answered {status}, not 301"
                )),
                Err(e) => Seen::NotYet(format!("http://localhost:{port}/: {e}")),
            },
            WaitFor::HttpsApi {
                port,
                path,
                via,
                progress,
            } => match request(*port, path, Some(tls)).await {
                Ok((502..=504, _)) => {
                    let progress = match progress {
                        Some(at) => match request(*port, at, Some(tls)).await {
                            Ok((200, body)) => format!(" (startup: {})", summarize_progress(&body)),
                            _ => String::new(),
                        },
                        None => String::new(),
                    };
                    Seen::NotYet(format!(
                        "https://localhost:{port}{path} not reachable through {via} yet{progress}"
                    ))
                }
                Ok(_) => Seen::Ready,
                Err(e) => Seen::NotYet(format!("https://localhost:{port}{path}: {e}")),
            },
        }
    }
}

/// Condenses a start-up progress JSON map (steps with `completed` and `text`) to its
/// current step.
fn summarize_progress(body: &str) -> String {
    let json = body.trim_start_matches(|c: char| c != '{');
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(steps)) => {
            let pending: Vec<&str> = steps
                .iter()
                .filter(|(_, v)| v.get("completed").and_then(|c| c.as_bool()) == Some(false))
                .filter_map(|(_, v)| v.get("text").and_then(|t| t.as_str()))
                .collect();
            pending
                .first()
                .map_or_else(|| "finishing".to_string(), |t| (*t).to_string())
        }
        _ => "starting".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_progress_shows_the_first_pending_step() {
        let body = r#"{"checks":{"text":"Running installation checks","started":true,"completed":true},"install":{"text":"Installing","started":true,"completed":false}}"#;
        assert_eq!(summarize_progress(body), "Installing");
        assert_eq!(summarize_progress("not json"), "starting");
    }

    #[tokio::test]
    async fn closed_port_is_not_ready() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let tls = Tls::trusting("").expect("empty roots");
        assert!(matches!(
            WaitFor::HttpRedirect { port }.check(&tls).await,
            Seen::NotYet(_)
        ));
    }

    /// A one-request HTTP server on loopback sending `answer` (raw bytes) once it has read
    /// the request; returns its port.
    fn serving_once(answer: Vec<u8>) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(&answer);
            }
        });
        port
    }

    /// A one-request HTTP server on loopback answering `status`; returns its port.
    fn answering(status: u16) -> u16 {
        serving_once(
            format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .into_bytes(),
        )
    }

    #[tokio::test]
    async fn a_redirect_is_ready_and_any_other_answer_is_said() {
        let tls = Tls::trusting("").expect("empty roots");
        let ready = WaitFor::HttpRedirect {
            port: answering(301),
        };
        assert_eq!(ready.check(&tls).await, Seen::Ready);
        let port = answering(200);
        assert_eq!(
            WaitFor::HttpRedirect { port }.check(&tls).await,
            Seen::NotYet(format!("http://localhost:{port}/ answered 200, not 301"))
        );
    }

    #[tokio::test]
    async fn https_through_an_untrusted_or_plain_server_is_not_ready() {
        let tls = Tls::trusting("").expect("empty roots");
        let port = answering(200);
        let seen = WaitFor::HttpsApi {
            port,
            path: "/api/info",
            via: "the proxy",
            progress: None,
        }
        .check(&tls)
        .await;
        assert!(
            matches!(&seen, Seen::NotYet(why) if why.starts_with(&format!("https://localhost:{port}/api/info: "))),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_chunked_answer_longer_than_a_packet_is_read_whole() {
        let text = format!(
            r#"{{"pad":"{}","x":{{"completed":false,"text":"Indexing"}}}}"#,
            "p".repeat(9000)
        );
        let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in text.as_bytes().chunks(4000) {
            answer.extend(format!("{:x}\r\n", part.len()).into_bytes());
            answer.extend(part);
            answer.extend(b"\r\n");
        }
        answer.extend(b"0\r\n\r\n");
        let port = serving_once(answer);
        let (status, body) = request(port, "/setup/poll", None).await.expect("answer");
        assert_eq!((status, body.as_str()), (200, text.as_str()));
        assert_eq!(summarize_progress(&body), "Indexing");
    }

    #[test]
    fn conditions_name_what_they_wait_for() {
        assert_eq!(
            WaitFor::HttpRedirect { port: 80 }.to_string(),
            "http://localhost:80/ -> 301"
        );
        let api = WaitFor::HttpsApi {
            port: 443,
            path: "/api/info",
            via: "the proxy",
            progress: None,
        };
        assert_eq!(api.to_string(), "https://localhost:443/api/info");
    }
}
