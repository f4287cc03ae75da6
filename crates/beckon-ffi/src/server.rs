//! Where an instance connects: the server URL(s) and how secure schemes check certificates.
//!
//! The seeds' `login` has no server parameter, so a [`Target`] is resolved at each login, from
//! the first of: the instance's own URL (`beckon_sig_set_server_url`), the process's
//! (`beckon_set_server_url`), the environment variable `BECKON_URL`, and [`DEFAULT_URL`]. A
//! URL list is comma-separated: the first URL and its alternates, tried in turn by the SDK.
//! Secure schemes (tls, quic, wss) trust the PEM certificates of `BECKON_TLS_CA`, else the
//! system's CA bundle; `BECKON_TLS_DANGEROUS_ACCEPT_ANY_CERT=1` trusts any certificate.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use beckon_sdk::{ClientTls, Config, Instance};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Where instances connect when nothing else says.
pub(crate) const DEFAULT_URL: &str = "tcp://127.0.0.1:7400";
/// The environment variable naming the server.
pub(crate) const ENV_URL: &str = "BECKON_URL";
/// A PEM file of certificates the secure schemes trust.
pub(crate) const ENV_TLS_CA: &str = "BECKON_TLS_CA";
/// `1`: secure schemes accept any certificate (development only).
pub(crate) const ENV_TLS_ANY: &str = "BECKON_TLS_DANGEROUS_ACCEPT_ANY_CERT";
/// Where Linux distributions keep the system's CA bundle.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The process-wide URL set with `beckon_set_server_url`.
static PROCESS_URL: Mutex<Option<String>> = Mutex::new(None);

/// A resolved server: what an instance is made for. Two logins to equal targets share the
/// instance; a different target makes a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URLs, first to last alternate.
    urls: Vec<String>,
    /// The certificate file secure schemes trust (`None`: the system bundle).
    ca: Option<PathBuf>,
    /// Whether secure schemes accept any certificate.
    any_cert: bool,
}

impl Target {
    /// The target for a login now, `own` being the instance's URL if it set one.
    pub(crate) fn resolve(own: Option<&str>) -> Result<Self, String> {
        let process = PROCESS_URL
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let env = std::env::var(ENV_URL).ok().filter(|s| !s.trim().is_empty());
        let (list, from) = match (own, process, env) {
            (Some(u), _, _) => (u.to_owned(), "beckon_sig_set_server_url"),
            (None, Some(u), _) => (u, "beckon_set_server_url"),
            (None, None, Some(u)) => (u, ENV_URL),
            (None, None, None) => (DEFAULT_URL.to_owned(), "the default"),
        };
        let urls = split(&list);
        if urls.is_empty() {
            return Err(format!("no server URL in {list:?} (from {from})"));
        }
        Ok(Self {
            urls,
            ca: std::env::var_os(ENV_TLS_CA)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            any_cert: std::env::var(ENV_TLS_ANY).is_ok_and(|v| v.trim() == "1"),
        })
    }

    /// The default target, for an instance made before any login.
    pub(crate) fn fallback() -> Self {
        Self {
            urls: vec![DEFAULT_URL.to_owned()],
            ca: None,
            any_cert: false,
        }
    }

    /// A new SDK instance for this target, on the current tokio runtime.
    pub(crate) fn instance(&self) -> Result<Instance, String> {
        let (first, rest) = self.urls.split_first().ok_or("no server URL")?;
        let mut config = Config::new(first.clone());
        config.alternates = rest.to_vec();
        config.tls = self.tls()?;
        Instance::new(config).map_err(|e| e.to_string())
    }

    /// Certificates are read only when a secure scheme is in the list.
    fn tls(&self) -> Result<ClientTls, String> {
        let secure = self.urls.iter().any(|u| {
            let scheme = u.split_once("://").map_or("", |(s, _)| s);
            ["tls", "quic", "wss"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !secure || self.any_cert {
            return Ok(ClientTls {
                dangerous_accept_any_cert: self.any_cert,
                ..ClientTls::default()
            });
        }
        let path = match &self.ca {
            Some(p) => p.clone(),
            None => SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!(
                        "a secure scheme needs certificates to trust: set {ENV_TLS_CA} to a PEM \
                         file (no system CA bundle found)"
                    )
                })?,
        };
        Ok(ClientTls {
            roots: read_pem(&path)?,
            ..ClientTls::default()
        })
    }
}

/// Sets the process-wide URL list (`None` returns to `BECKON_URL` / the default), after
/// checking that the SDK can use it.
pub(crate) fn set_process_url(url: Option<&str>) -> Result<(), String> {
    if let Some(u) = url {
        check(u)?;
    }
    *PROCESS_URL.lock().unwrap_or_else(PoisonError::into_inner) = url.map(str::to_owned);
    Ok(())
}

/// Checks a URL list the way a login will use it (needs a tokio runtime context).
pub(crate) fn check(list: &str) -> Result<(), String> {
    let target = Target {
        urls: split(list),
        ca: None,
        any_cert: true,
    };
    target.instance().map(drop)
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_ignore_blanks() {
        assert_eq!(
            split(" tcp://a:1 , ws://b:2/ws,,"),
            ["tcp://a:1", "ws://b:2/ws"]
        );
        assert!(split(" , ").is_empty());
    }

    #[test]
    fn the_instance_url_wins_and_bad_urls_are_refused() {
        let t = Target::resolve(Some("tcp://h:1,quic://h:2")).unwrap();
        assert_eq!(t.urls, ["tcp://h:1", "quic://h:2"]);
        assert!(Target::resolve(Some(" ")).is_err());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(check("tcp://127.0.0.1:7400").is_ok());
        assert!(check("ws://127.0.0.1:7401/ws,quic://127.0.0.1:7400").is_ok());
        let e = check("http://127.0.0.1:80").unwrap_err();
        assert!(e.contains("http"), "{e}");
        assert!(check("tcp://127.0.0.1").is_err());
        assert!(check("").is_err());
    }

    #[test]
    fn secure_schemes_need_readable_certificates() {
        let t = Target {
            urls: vec!["tls://h:1".into()],
            ca: Some("/nonexistent/ca.pem".into()),
            any_cert: false,
        };
        let e = t.tls().unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let plain = Target {
            urls: vec!["tcp://h:1".into()],
            ..t.clone()
        };
        assert!(plain.tls().is_ok(), "tcp reads no certificate");
        let any = Target {
            any_cert: true,
            ..t
        };
        assert!(any.tls().unwrap().dangerous_accept_any_cert);
    }
}
