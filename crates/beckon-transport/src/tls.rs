//! Certificates for the secure schemes (TLS, QUIC, WSS).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::endpoint::TransportError;

/// The ALPN protocol id of Beckon's session protocol over TLS and QUIC.
pub(crate) const ALPN: &[u8] = b"beckon/1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's certificate chain and key. Its `Debug` shows how many certificates the chain
/// has and never the key (nor kilobytes of DER).
pub struct ServerTls {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificates", &self.cert_chain.len())
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

impl Clone for ServerTls {
    fn clone(&self) -> Self {
        Self {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ServerTls {
    /// A self-signed certificate for `names` (host names or IP addresses), made now.
    pub fn self_signed(names: &[String]) -> Result<Self, TransportError> {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TransportError::Tls(format!("cannot make a certificate: {e}")))?;
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        Ok(Self {
            cert_chain: vec![ck.cert.der().clone()],
            key,
        })
    }

    /// A certificate chain and key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TransportError> {
        let cert_chain = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TransportError::Tls(format!("{}: {e}", cert.display())))?;
        if cert_chain.is_empty() {
            return Err(TransportError::Tls(format!(
                "{}: no certificate",
                cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| TransportError::Tls(format!("{}: {e}", key.display())))?;
        Ok(Self { cert_chain, key })
    }

    pub(crate) fn rustls_config(&self) -> Result<rustls::ServerConfig, TransportError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// How a client checks the server's certificate.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// Certificates to trust (a CA, or the server's own self-signed certificate).
    pub roots: Vec<CertificateDer<'static>>,
    /// Accept any certificate at all. Only for development against a server with a generated
    /// self-signed certificate: it gives up all protection against impostors.
    pub dangerous_accept_any_cert: bool,
}

impl ClientTls {
    pub(crate) fn rustls_config(&self, alpn: bool) -> Result<rustls::ClientConfig, TransportError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        let mut config = if self.dangerous_accept_any_cert {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for c in &self.roots {
                roots
                    .add(c.clone())
                    .map_err(|e| TransportError::Tls(format!("bad root certificate: {e}")))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        if alpn {
            config.alpn_protocols = vec![ALPN.to_vec()];
        }
        Ok(config)
    }
}

/// Accepts every certificate; signatures are still checked so the handshake is well-formed.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
