//! Building the [`rustls::ClientConfig`] a [`TlsConfig`](crate::TlsConfig) needs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::TlsError;

/// Returns the ring crypto provider, the one this crate is built with.
///
/// Configs are always built from an explicit provider: if another crate in the build turns
/// on rustls's aws-lc-rs feature too, `ClientConfig::builder()` would panic.
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a verifying client configuration that trusts `roots`, with TLS 1.2 and 1.3 and
/// the given ALPN protocols (most preferred first).
///
/// ```
/// use tcpclient_core::{tls, TlsConfig};
/// use rustls::pki_types::ServerName;
///
/// let roots = rustls::RootCertStore::empty(); // add your CA, or use the platform's roots
/// let config = tls::client_config(roots, &[b"imap"]).unwrap();
/// let tls = TlsConfig::new(config, ServerName::try_from("mail.example.org").unwrap());
/// ```
pub fn client_config(roots: RootCertStore, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Builds a client configuration that accepts **any** certificate for any name.
///
/// The session is encrypted but not authenticated: anyone on the path can read and change
/// it. Signatures are still checked, so the handshake itself is sound. Only for testing
/// against servers with throwaway certificates; the `tcpclient` CLI prints a warning when
/// `--insecure` selects it.
pub fn danger_client_config_accepting_any_certificate(
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = ring_provider();
    let verifier = Arc::new(AcceptAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Reads every PEM certificate in `pem` into a root store.
///
/// Fails if the text holds no certificate, or one that cannot be parsed.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError::CertificateInvalid {
            reason: format!("bad PEM: {e}"),
        })?;
        roots.add(cert).map_err(config_error)?;
    }
    if roots.is_empty() {
        return Err(TlsError::CertificateInvalid {
            reason: "no certificate found in the PEM data".into(),
        });
    }
    Ok(roots)
}

fn config_error(error: rustls::Error) -> TlsError {
    TlsError::Other {
        reason: error.to_string(),
    }
}

/// The verifier behind [`danger_client_config_accepting_any_certificate`].
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
