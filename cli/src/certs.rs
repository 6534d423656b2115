//! `--showcerts` and `--brief`: what the TLS handshake negotiated and the certificates the
//! server presented, as `openssl s_client -showcerts` / `-brief` show them.

use std::fmt::Write;
use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use tcpclient_core::TlsInfo;
use x509_parser::extensions::GeneralName;

/// The negotiated protocol version and cipher suite, as rustls names them.
pub fn version_and_suite(info: &TlsInfo) -> (String, String) {
    let version = info
        .protocol_version
        .map_or("unknown".into(), |v| format!("{v:?}"));
    let suite = info
        .cipher_suite
        .map_or("unknown".into(), |s| format!("{s:?}"));
    (version, suite)
}

/// `--brief`: the negotiated parameters and the leaf's subject, one item per line.
pub fn brief(info: &TlsInfo) -> String {
    let mut out = String::new();
    let (version, suite) = version_and_suite(info);
    let _ = writeln!(out, "Protocol version: {version}");
    let _ = writeln!(out, "Ciphersuite: {suite}");
    if let Some(group) = info.key_exchange_group {
        let _ = writeln!(out, "Key exchange group: {group:?}");
    }
    if let Some(alpn) = &info.alpn_protocol {
        let _ = writeln!(out, "ALPN protocol: {}", String::from_utf8_lossy(alpn));
    }
    let _ = writeln!(
        out,
        "Session: {}",
        if info.resumed { "resumed" } else { "new" }
    );
    if let Some(leaf) = info.peer_certificates.0.first() {
        match describe(leaf) {
            Some(cert) => {
                let _ = writeln!(out, "Peer certificate: {}", cert.subject);
            }
            None => out.push_str("Peer certificate: (not readable as X.509)\n"),
        }
    }
    out.push_str("Verification: OK\n");
    out
}

/// `--showcerts`: every certificate of the chain, leaf first: subject, issuer, validity,
/// subject alternative names, and the certificate itself in PEM.
pub fn chain(info: &TlsInfo) -> String {
    let mut out = String::from("Certificate chain\n");
    for (depth, der) in info.peer_certificates.0.iter().enumerate() {
        match describe(der) {
            Some(cert) => {
                let _ = writeln!(out, " {depth} s:{}", cert.subject);
                let _ = writeln!(out, "   i:{}", cert.issuer);
                let _ = writeln!(
                    out,
                    "   v:NotBefore: {}; NotAfter: {}",
                    cert.not_before, cert.not_after
                );
                if !cert.names.is_empty() {
                    let _ = writeln!(out, "   san:{}", cert.names.join(", "));
                }
            }
            None => {
                let _ = writeln!(out, " {depth} (not readable as X.509)");
            }
        }
        out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())));
    }
    out
}

/// The fields of a certificate that the output shows.
pub struct Described {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    /// Subject alternative names as `DNS:name` and `IP:address`.
    pub names: Vec<String>,
}

/// Reads `der`; `None` if it is not a certificate x509-parser can read.
pub fn describe(der: &CertificateDer<'_>) -> Option<Described> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let validity = cert.validity();
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
                GeneralName::IPAddress(bytes) => ip(bytes).map(|ip| format!("IP:{ip}")),
                GeneralName::RFC822Name(mail) => Some(format!("email:{mail}")),
                GeneralName::URI(uri) => Some(format!("URI:{uri}")),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Described {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.to_string(),
        not_after: validity.not_after.to_string(),
        names,
    })
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
