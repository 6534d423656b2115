//! Turning `--tls`, `--cafile`, `--servername`, `--alpn` and `--insecure` into a TLS config.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use rustls_platform_verifier::BuilderVerifierExt;
use tcpclient_core::{TlsConfig, tls};

use super::Failure;
use super::args::Args;
use super::output::warn;

/// The TLS configuration the arguments ask for, if they ask for TLS at all. Verification is
/// on unless `--insecure`: against `--cafile`, or else the platform's roots.
pub fn config(args: &Args, host: &str) -> Result<Option<TlsConfig>, Failure> {
    if !args.tls && args.starttls.is_none() {
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
        let mut config = ClientConfig::builder_with_provider(tls::ring_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(&e))?
            .with_platform_verifier()
            .map_err(|e| setup(&e))?
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    };
    // `[::1]`: the brackets delimit the address; the name to verify is the address itself.
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let name = args.servername.as_deref().or(literal).unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|e| Failure::Setup(format!("`{name}` cannot be a TLS server name: {e}")))?;
    Ok(Some(TlsConfig::new(client_config, server_name)))
}
