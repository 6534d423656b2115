//! Turning `--tls`, `--cafile`, `--servername`, `--alpn`, `--insecure`, `--cert`/`--key`,
//! `--keylogfile` and `--resume-test` into a TLS config.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::{ResolvesClientCert, Resumption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, KeyLog, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt;
use tcpclient_core::{TlsConfig, tls};

use super::Failure;
use super::args::Args;
use super::output::warn;
use super::resumption::Tickets;

/// The TLS configuration the arguments ask for, if they ask for TLS at all, and the name to
/// verify the server against (`--servername`, or `host`). Verification is on unless
/// `--insecure`: against `--cafile`, or else the platform's roots.
pub fn config(
    args: &Args,
    host: &str,
    tickets: Option<Arc<Tickets>>,
) -> Result<Option<(TlsConfig, ServerName<'static>)>, Failure> {
    if !args.tls && args.starttls.is_none() {
        if args.cert.is_some() || args.keylogfile.is_some() || args.resume_test.is_some() {
            return Err(Failure::Setup(
                "--cert, --keylogfile and --resume-test need TLS: add --tls or --starttls".into(),
            ));
        }
        return Ok(None);
    }
    let alpn: Vec<&[u8]> = args.alpn.iter().map(|p| p.as_bytes()).collect();
    let setup = |e: &dyn std::fmt::Display| Failure::Setup(format!("TLS setup: {e}"));
    let client_config = if args.insecure {
        warn(format_args!(
            "warning: --insecure: the server's certificate is not verified; \
             anyone on the path can read and change this session"
        ));
        tls::danger_client_config_accepting_any_certificate(&alpn).map_err(|e| setup(&e))?
    } else if let Some(path) = &args.cafile {
        let pem = std::fs::read(path)
            .map_err(|e| Failure::Setup(format!("cannot read --cafile {}: {e}", path.display())))?;
        tls::client_config_from_pem(&pem, &alpn)
            .map_err(|e| Failure::Setup(format!("--cafile {}: {e}", path.display())))?
    } else {
        let mut config = ClientConfig::builder_with_provider(tls::default_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(&e))?
            .with_platform_verifier()
            .map_err(|e| setup(&e))?
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    };
    let client_config = with_identity_key_log_and_store(client_config, args, tickets)?;
    // `[::1]`: the brackets delimit the address; the name to verify is the address itself.
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let name = args.servername.as_deref().or(literal).unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|e| Failure::Setup(format!("`{name}` cannot be a TLS server name: {e}")))?;
    Ok(Some((TlsConfig::new(client_config), server_name)))
}

/// Adds the client certificate of `--cert`/`--key` (mutual TLS), the key log of
/// `--keylogfile` (or `SSLKEYLOGFILE`) and the session store of `--resume-test` to `config`.
fn with_identity_key_log_and_store(
    config: Arc<ClientConfig>,
    args: &Args,
    tickets: Option<Arc<Tickets>>,
) -> Result<Arc<ClientConfig>, Failure> {
    let key_log_path = args
        .keylogfile
        .clone()
        .or_else(|| std::env::var_os("SSLKEYLOGFILE").map(PathBuf::from));
    if args.cert.is_none() && key_log_path.is_none() && tickets.is_none() {
        return Ok(config);
    }
    let mut config = (*config).clone();
    if let Some(tickets) = tickets {
        config.resumption = Resumption::store(tickets);
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        config.client_auth_cert_resolver = Arc::new(ClientCert(load_identity(cert, key)?));
    }
    if let Some(path) = key_log_path {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                Failure::Setup(format!("cannot open --keylogfile {}: {e}", path.display()))
            })?;
        config.key_log = Arc::new(KeyLogTo(Mutex::new(file)));
    }
    Ok(Arc::new(config))
}

/// The certificate chain of `--cert` and the key of `--key`, checked to belong together.
fn load_identity(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, Failure> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Failure::Setup(format!("--cert {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(Failure::Setup(format!(
            "--cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Failure::Setup(format!("--key {}: {e}", key.display())))?;
    let signing_key = tls::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| Failure::Setup(format!("--key {}: {e}", key.display())))?;
    let identity = CertifiedKey::new(chain, signing_key);
    // Only a definite mismatch is refused here: a certificate webpki cannot read (an X.509
    // v1 one, say) may still be one the server accepts, and it is the server's to judge.
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        identity.keys_match()
    {
        return Err(Failure::Setup(format!(
            "--key {} is not the key of --cert {}",
            key.display(),
            cert.display()
        )));
    }
    Ok(Arc::new(identity))
}

/// Presents one certificate to every server that asks.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Writes each secret as an NSS key log line: `LABEL CLIENT_RANDOM SECRET`, both in hex.
#[derive(Debug)]
struct KeyLogTo(Mutex<std::fs::File>);

impl KeyLog for KeyLogTo {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            warn(format_args!("--keylogfile: {e}"));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
