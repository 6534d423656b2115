//! Building the [`rustls::ClientConfig`] a [`TlsConfig`](crate::TlsConfig) needs.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

use crate::TlsError;

/// Returns the crypto provider every configuration here is built with: aws-lc-rs (the
/// default `aws-lc-rs` feature), whose key exchange offers the X25519MLKEM768 post-quantum
/// hybrid first and X25519 next, or ring (the `ring` feature alone), without it.
///
/// Configs are always built from an explicit provider: with both of rustls's providers in
/// one build, as another crate may cause, `ClientConfig::builder()` would panic.
///
/// ```
/// let provider = tcpclient_core::tls::default_provider();
/// # #[cfg(feature = "aws-lc-rs")]
/// assert_eq!(
///     provider.kx_groups[0].name(),
///     rustls::NamedGroup::X25519MLKEM768,
///     "the post-quantum hybrid first"
/// );
/// ```
pub fn default_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = ring_default();
    Arc::new(provider)
}

/// Returns the ring crypto provider (the `ring` feature): no post-quantum key exchange.
#[cfg(feature = "ring")]
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(ring_default())
}

#[cfg(feature = "ring")]
// Newer rustls 0.23 releases deprecate it for lacking post-quantum key exchange, which is
// what choosing ring over the default means.
#[allow(deprecated)]
fn ring_default() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!(
    "tcpclient-core needs a TLS crypto provider: the `aws-lc-rs` feature (the default) or `ring`"
);

/// Builds a verifying client configuration that trusts `roots`, with TLS 1.2 and 1.3 and
/// the given ALPN protocols (most preferred first).
///
/// ```
/// use tcpclient_core::{tls, Config, TlsConfig};
///
/// let roots = rustls::RootCertStore::empty(); // add your CA, or use the platform's roots
/// let config = tls::client_config(roots, &[b"imap"])?;
/// // The server's name is checked as the destination gives it.
/// let policy = Config::new().with_tls(TlsConfig::new(config));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_config(roots: RootCertStore, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    check_alpn_protocols(alpn)?;
    let mut config = ClientConfig::builder_with_provider(default_provider())
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
    check_alpn_protocols(alpn)?;
    let provider = default_provider();
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

/// Builds a verifying client configuration that trusts the certificates in `pem`, the way
/// `openssl s_client -CAfile` and Go's `crypto/tls` trust a CA file: as roots, and also as
/// themselves.
///
/// A server that presents exactly one of these certificates is accepted even when it is
/// marked as a CA, as the self-signed certificate `openssl req -x509` makes is. Its
/// validity period and the server name are still checked. Every other certificate gets full
/// webpki verification against the roots.
///
/// ```
/// use tcpclient_core::tls;
///
/// let pem = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
/// assert!(tls::client_config_from_pem(pem, &[]).is_err(), "a file without a certificate");
/// ```
pub fn client_config_from_pem(pem: &[u8], alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
    check_alpn_protocols(alpn)?;
    let trusted = certificates_from_pem(pem)?;
    let mut roots = RootCertStore::empty();
    for cert in &trusted {
        roots.add(cert.clone()).map_err(config_error)?;
    }
    let provider = default_provider();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Other {
            reason: e.to_string(),
        })?;
    let verifier = Arc::new(PinnedOrChained { webpki, trusted });
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
    for cert in certificates_from_pem(pem)? {
        roots.add(cert).map_err(config_error)?;
    }
    Ok(roots)
}

/// Checks ALPN protocol names: each must be 1 to 255 bytes, which is all TLS can carry.
///
/// The configuration builders here call it; a configuration built by hand is checked when
/// its TLS session starts (the connection then ends with the same error).
pub fn check_alpn_protocols(alpn: &[&[u8]]) -> Result<(), TlsError> {
    match alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
        Some(bad) => Err(TlsError::InvalidAlpnProtocol {
            protocol: bad.to_vec(),
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_alpn(alpn: &[Vec<u8>]) -> Result<(), TlsError> {
    let names: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
    check_alpn_protocols(&names)
}

fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CertificateInvalid {
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::CertificateInvalid {
            reason: "no certificate found in the PEM data".into(),
        });
    }
    Ok(certs)
}

/// Returns true if rustls refused a certificate because it is a CA certificate presented by
/// the server as its own.
pub(crate) fn is_ca_used_as_end_entity(error: &CertificateError) -> bool {
    let CertificateError::Other(OtherError(inner)) = error else {
        return false;
    };
    matches!(
        inner.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

fn config_error(error: rustls::Error) -> TlsError {
    TlsError::Other {
        reason: error.to_string(),
    }
}

/// The verifier behind [`client_config_from_pem`]: webpki, plus the trusted certificates
/// themselves as acceptable server certificates.
#[derive(Debug)]
struct PinnedOrChained {
    webpki: Arc<WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrChained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            Err(rustls::Error::InvalidCertificate(error))
                if is_ca_used_as_end_entity(&error)
                    && self
                        .trusted
                        .iter()
                        .any(|t| t.as_ref() == end_entity.as_ref()) =>
            {
                // webpki checks the validity period before basicConstraints, so this
                // certificate is in date; only its name is left to check.
                let cert = webpki::EndEntityCert::try_from(end_entity)
                    .map_err(|_| CertificateError::BadEncoding)?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| CertificateError::NotValidForName)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
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
