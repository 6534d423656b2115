//! The certificates the built-in scenarios' TLS servers present: a CA made on the spot, and a
//! server certificate for `localhost` it signed.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ED25519};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{RootCertStore, ServerConfig};
use tcpclient_core::{TlsConfig, tls};

/// A server configuration presenting a fresh certificate for `localhost`, and a client's
/// that trusts its CA alone. Resumption is off and the server sends no tickets, so that no
/// run depends on an earlier one and traces stay short.
pub(crate) fn make() -> Result<(Arc<ServerConfig>, TlsConfig), String> {
    let failed = |e: &dyn std::fmt::Display| format!("making the simulator's certificates: {e}");
    let ca_key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| failed(&e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(&e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tcpclient-sim CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| failed(&e))?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| failed(&e))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "tcpclient-sim server");
    let key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| failed(&e))?;
    let cert = leaf.signed_by(&key, &issuer).map_err(|e| failed(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));

    let mut server = ServerConfig::builder_with_provider(tls::default_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(|e| failed(&e))?;
    server.send_tls13_tickets = 0;

    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.der().clone()).map_err(|e| failed(&e))?;
    let mut client = (*tls::client_config(roots, &[]).map_err(|e| failed(&e))?).clone();
    client.resumption = rustls::client::Resumption::disabled();
    Ok((Arc::new(server), TlsConfig::new(Arc::new(client))))
}
