//! The certificates the built-in scenarios' TLS servers present: a CA made on the spot, and a
//! server certificate for `localhost` it signed.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ED25519, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{RootCertStore, ServerConfig};
use tcpclient_core::{TlsConfig, tls};

/// A server configuration presenting a fresh certificate for `localhost`, and a client's
/// that trusts its CA alone. Resumption is off and the server sends no tickets, so that no
/// run depends on an earlier one and traces stay short.
pub(crate) fn make() -> Result<(Arc<ServerConfig>, TlsConfig), String> {
    let (ca_cert, cert, key) = certificates()?;
    let mut server = ServerConfig::builder_with_provider(tls::default_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| failed(&e))?;
    server.send_tls13_tickets = 0;

    let mut roots = RootCertStore::empty();
    roots.add(ca_cert).map_err(|e| failed(&e))?;
    let mut client = (*tls::client_config(roots, &[]).map_err(|e| failed(&e))?).clone();
    client.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(server), TlsConfig::new(Arc::new(client))))
}

/// Why the certificates could not be made, as a run's violation.
fn failed(e: &dyn std::fmt::Display) -> String {
    format!("making the simulator's certificates: {e}")
}

/// The CA's certificate, and the server's with its key.
///
/// The keys are random, but every length on the wire is not: a seed replayed in another
/// process (or on another thread of a sweep) must see the same byte counts. Ed25519 keys and
/// signatures have one length; the serial numbers are fixed because rcgen's default, a hash
/// of the key with its leading zero bytes left out, is a byte shorter one time in 128. They
/// are 20 bytes, as the default is the other 127 times.
fn certificates() -> Result<
    (
        CertificateDer<'static>,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
    ),
    String,
> {
    let ca_key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| failed(&e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(&e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.serial_number = Some(SerialNumber::from_slice(&[0x11; 20]));
    ca.distinguished_name
        .push(DnType::CommonName, "tcpclient-sim CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| failed(&e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| failed(&e))?;
    leaf.serial_number = Some(SerialNumber::from_slice(&[0x22; 20]));
    leaf.distinguished_name
        .push(DnType::CommonName, "tcpclient-sim server");
    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| failed(&e))?;
    let cert = leaf.signed_by(&key, &issuer).map_err(|e| failed(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((ca_cert.der().clone(), cert.der().clone(), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_of_certificates_has_the_same_lengths() {
        // With rcgen's default serial numbers, one set in 128 was a byte shorter: 600 sets
        // all alike would then happen less than one time in 100.
        let lengths = |(ca, leaf, key): (CertificateDer, CertificateDer, PrivateKeyDer)| {
            [ca.len(), leaf.len(), key.secret_der().len()]
        };
        let first = lengths(certificates().expect("certificates"));
        for _ in 0..600 {
            assert_eq!(lengths(certificates().expect("certificates")), first);
        }
    }
}
