//! Certificates for tests: a CA and a server certificate made with rcgen, and the rustls
//! configurations on both sides.
//!
//! Keys are Ed25519 and serial numbers fixed, so every handshake has the same message sizes:
//! runs stay deterministic even though keys are fresh each time.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ED25519, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{RootCertStore, ServerConfig};
use tcpclient_core::{Destination, TlsConfig, tls};

/// What is wrong with the server certificate, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Valid for `localhost`, 127.0.0.1 and ::1, signed by the CA, valid 1975–4096.
    Good,
    /// Valid in form, but expired in 2001.
    Expired,
    /// Signed by the CA, but for `other.invalid` only.
    WrongName,
}

/// A test CA and one server certificate it signed.
pub struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    /// A CA and a good certificate for `localhost`.
    pub fn new() -> Self {
        Self::with_leaf(Leaf::Good)
    }

    /// A CA and a server certificate of the given kind.
    pub fn with_leaf(leaf: Leaf) -> Self {
        Self::with_leaf_as(leaf, false)
    }

    /// A CA and a server certificate of the given kind that is itself marked as a CA
    /// (`basicConstraints: CA:TRUE`), which webpki refuses as a server certificate.
    pub fn with_ca_leaf(leaf: Leaf) -> Self {
        Self::with_leaf_as(leaf, true)
    }

    fn with_leaf_as(leaf: Leaf, leaf_is_ca: bool) -> Self {
        let ca_key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tcpclient test CA");
        ca_params.serial_number = Some(SerialNumber::from(1u64));
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let names = match leaf {
            Leaf::Good | Leaf::Expired => vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ],
            Leaf::WrongName => vec!["other.invalid".to_string()],
        };
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "tcpclient test server");
        params.serial_number = Some(SerialNumber::from(2u64));
        if leaf_is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        if leaf == Leaf::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let cert = params.signed_by(&key, &issuer).expect("leaf cert");

        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "tcpclient test client");
        client.serial_number = Some(SerialNumber::from(4u64));
        let client_key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let client_cert = client.signed_by(&client_key, &issuer).expect("client cert");

        Self {
            ca: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    /// The server certificate (DER) the server configurations present.
    pub fn server_cert_der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A client certificate the CA signed, in PEM, as `--cert` would read it.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The client certificate's private key (PKCS#8 PEM), as `--key` would read it.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// A server configuration that requires a client certificate signed by the CA.
    pub fn server_config_requiring_client_cert(&self) -> Arc<ServerConfig> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(self.roots()),
            tls::default_provider(),
        )
        .build()
        .expect("client verifier");
        let config = ServerConfig::builder_with_provider(tls::default_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("server certificate");
        Arc::new(config)
    }

    /// The CA certificate in PEM, as `--cafile` would read it.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A root store holding only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("CA certificate");
        roots
    }

    /// A server configuration presenting the certificate, with the ring provider.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_with_alpn(&[])
    }

    /// Like [`Self::server_config`], offering these ALPN protocols.
    pub fn server_config_with_alpn(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        self.server_config_with(tls::default_provider(), alpn)
    }

    /// A server configuration with only these cipher suites (say, only AES-128-GCM).
    pub fn server_config_with_suites(
        &self,
        suites: Vec<rustls::SupportedCipherSuite>,
    ) -> Arc<ServerConfig> {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            ..(*tls::default_provider()).clone()
        };
        self.server_config_with(Arc::new(provider), &[])
    }

    /// A server configuration offering only these key exchange groups (say, only the
    /// post-quantum hybrid), from the core's default provider.
    pub fn server_config_with_groups(&self, groups: &[rustls::NamedGroup]) -> Arc<ServerConfig> {
        let mut provider = (*tls::default_provider()).clone();
        provider
            .kx_groups
            .retain(|group| groups.contains(&group.name()));
        self.server_config_with(Arc::new(provider), &[])
    }

    /// A server configuration with this provider (a test's own suites or randomness).
    pub fn server_config_with_provider(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Arc<ServerConfig> {
        self.server_config_with(provider, &[])
    }

    fn server_config_with(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
        alpn: &[&[u8]],
    ) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("server certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Tickets are random-length-free but add a message; none keeps traces short.
        config.send_tls13_tickets = 0;
        Arc::new(config)
    }

    /// A client configuration that trusts this CA. (The server name is the destination's:
    /// see [`local`](crate::local).)
    pub fn client_tls(&self) -> TlsConfig {
        let config = tls::client_config(self.roots(), &[]).expect("client config");
        TlsConfig::new(config)
    }
}

/// A self-signed server certificate made the way `openssl req -x509 -newkey ... -subj
/// /CN=localhost -addext subjectAltName=DNS:localhost` makes one: its own issuer, and marked
/// as a CA (`basicConstraints: CA:TRUE`), valid 1975–4096.
pub struct SelfSigned {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl SelfSigned {
    /// A self-signed CA:TRUE certificate for these names (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Self {
        let key = KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.serial_number = Some(SerialNumber::from(3u64));
        let cert = params.self_signed(&key).expect("self-signed cert");
        Self {
            pem: cert.pem(),
            der: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// The certificate in PEM, as `--cafile` would read it.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server configuration presenting the certificate (and nothing else).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let config = ServerConfig::builder_with_provider(tls::default_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.der.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("server certificate");
        Arc::new(config)
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the tests' clients connect when nothing else is said: 127.0.0.1:7, an address (no
/// lookup), its certificate checked for `localhost`, the name on [`Pki`]'s certificates.
pub fn local() -> Destination {
    Destination::new("127.0.0.1", 7).with_server_name(server_name("localhost"))
}

/// Parses a server name, panicking on a bad one (tests only).
pub fn server_name(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).expect("server name")
}
