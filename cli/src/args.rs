//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Connect to HOST PORT: standard input goes to the server, what the server sends goes to
/// standard output, like `nc`. With --tls or --starttls the session is encrypted and the
/// server's certificate verified, like `openssl s_client`.
///
/// End of input shuts the connection down gracefully: everything is delivered, then the
/// client half-closes and prints what arrives until the server closes (or --drain-timeout).
/// Ctrl-C does the same; a second Ctrl-C aborts. The exit status is 0 for a clean close and
/// 1 otherwise (an error, undelivered bytes, a TLS session cut short), with a one-line
/// reason on standard error.
#[derive(Debug, Parser)]
#[command(
    name = "tcpclient",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
#[command(
    after_help = "Examples:\n  tcpclient demo\n  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | tcpclient --tls example.org 443\n  tcpclient --starttls smtp --cafile ca.pem mail.example.org 25\n  tcpclient --send-file big.iso --rate 1000000 127.0.0.1 9000\n  tcpclient -4 -s 192.0.2.10 --keepalive 30s example.org 80\n  tcpclient -z -v -w 2 example.org 443\n  tcpclient -X connect -x proxy.internal:3128 --tls example.org 443\n  tcpclient --tls --cert me.pem --key me.key --keylogfile keys.log internal.example 8443\n  tcpclient --tls --resume-test 3 example.org 443"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Host name or IP address to connect to.
    #[arg(required = true)]
    pub host: Option<String>,

    /// TCP port.
    #[arg(required = true)]
    pub port: Option<u16>,

    /// Speak TLS from the first byte.
    #[arg(help_heading = "TLS", long, conflicts_with = "starttls")]
    pub tls: bool,

    /// Run this protocol's STARTTLS dialogue, then switch to TLS.
    #[arg(help_heading = "STARTTLS and proxies", long, value_name = "PROTOCOL")]
    pub starttls: Option<StartTlsProtocol>,

    /// Trust the CA certificates in this PEM file instead of the system's roots.
    #[arg(help_heading = "TLS", long, value_name = "PATH")]
    pub cafile: Option<PathBuf>,

    /// The name to send in SNI and to verify the certificate against [default: HOST].
    #[arg(help_heading = "TLS", long, value_name = "NAME")]
    pub servername: Option<String>,

    /// Offer these ALPN protocols, most preferred first (comma-separated).
    #[arg(help_heading = "TLS", long, value_name = "PROTOCOLS", value_delimiter = ',', value_parser = parse_alpn)]
    pub alpn: Vec<String>,

    /// Do not verify the server's certificate. The session is encrypted but anyone on the
    /// path can read and change it.
    #[arg(help_heading = "TLS", long)]
    pub insecure: bool,

    /// Like nc -x: connect through the proxy at ADDR:PORT (the proxy reaches HOST PORT).
    #[arg(help_heading = "STARTTLS and proxies", short = 'x', long = "proxy", value_name = "ADDR:PORT", value_parser = parse_proxy,
          conflicts_with = "reconnect")]
    pub proxy: Option<(String, u16)>,

    /// Like nc -X: the proxy's protocol, `connect` (HTTP CONNECT) or `5` (SOCKS5, the
    /// proxy resolving HOST).
    #[arg(
        help_heading = "STARTTLS and proxies",
        short = 'X',
        long = "proxy-type",
        value_name = "PROTOCOL",
        default_value = "5",
        requires = "proxy"
    )]
    pub proxy_type: ProxyProtocol,

    /// The XMPP domain to open the stream to [default: HOST].
    #[arg(help_heading = "STARTTLS and proxies", long, value_name = "DOMAIN")]
    pub xmpphost: Option<String>,

    /// The host name to announce in the SMTP EHLO (and the LMTP LHLO).
    #[arg(
        help_heading = "STARTTLS and proxies",
        long,
        value_name = "NAME",
        default_value = "mail.example.com"
    )]
    pub name: String,

    /// Use IPv4 only.
    #[arg(help_heading = "Connection", short = '4', conflicts_with = "ipv6_only")]
    pub ipv4_only: bool,

    /// Use IPv6 only.
    #[arg(help_heading = "Connection", short = '6')]
    pub ipv6_only: bool,

    /// Connect from this local address (its family only).
    #[arg(
        help_heading = "Connection",
        short = 's',
        long = "source",
        value_name = "ADDR"
    )]
    pub source: Option<std::net::IpAddr>,

    /// Start the next address (the other family first) this long after the last attempt
    /// started, the earlier one staying alive (RFC 8305; 10ms to 2s).
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration, default_value = "250ms")]
    pub happy_eyeballs_delay: Duration,

    /// TCP keepalive: probe a silent connection after this long without traffic, then every
    /// as long; `off` turns it off. While --user-timeout is set (30s on Linux unless given),
    /// the kernel drops a peer whose probes go unanswered once that long has passed since
    /// its last acknowledgement, after at least one probe: about 30s with the defaults,
    /// whatever this says. Without it, after 9 unanswered probes.
    #[arg(help_heading = "Connection", long, value_name = "DURATION|off", value_parser = parse_keepalive, default_value = "15s")]
    pub keepalive: KeepaliveArg,

    /// Drop the connection when written data, or keepalive probes, stay unacknowledged this
    /// long (TCP_USER_TIMEOUT, Linux). Default: 30s.
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration)]
    pub user_timeout: Option<Duration>,

    /// Give up when bytes waiting to be written make no progress for this long: the server
    /// vanished or stopped reading; `off` waits for ever.
    #[arg(help_heading = "Connection", long, value_name = "DURATION|off", value_parser = parse_optional_duration, default_value = "30s")]
    pub stall_timeout: OptionalDuration,

    /// Wait this long before connecting (e.g. 500ms, 2s).
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub delay: Duration,

    /// Give up establishing the session after this long: every address, the STARTTLS
    /// dialogue and the TLS handshake included.
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub connect_timeout: Duration,

    /// Bound the graceful shutdown (flush, close_notify, FIN, wait for the server) by this.
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,

    /// Close when nothing is sent or received for this long.
    #[arg(help_heading = "Connection", long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Send this file instead of standard input, then shut down gracefully.
    #[arg(help_heading = "Input and output", long, value_name = "PATH")]
    pub send_file: Option<PathBuf>,

    /// Connect again whenever the connection is lost (waiting 1 s, then 1.6 times longer
    /// each time up to 2 min, jittered; reset once a connection stays up 30 s). What a lost
    /// connection did not send goes first on the next; the input keeps flowing. Not with
    /// --starttls (its dialogue would have to be redone).
    #[arg(help_heading = "Connection", long, conflicts_with = "starttls")]
    pub reconnect: bool,

    /// With --reconnect: give up after this many reconnects in a row without a connection
    /// that stayed up.
    #[arg(
        help_heading = "Connection",
        long,
        value_name = "N",
        requires = "reconnect"
    )]
    pub reconnect_max: Option<u32>,

    /// With --reconnect: send this file first on every connection, before the input and
    /// before what a lost connection did not send (a login every connection needs: Redis
    /// AUTH, a HELLO). Not counted as input.
    #[arg(
        help_heading = "Connection",
        long,
        value_name = "PATH",
        requires = "reconnect"
    )]
    pub preamble: Option<PathBuf>,

    /// Pace --send-file to this many bytes per second.
    #[arg(help_heading = "Input and output", long, value_name = "BYTES_PER_SEC", requires = "send_file", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,

    /// Present this client certificate (PEM, the chain from the leaf up) when the server
    /// asks for one (mutual TLS). Needs --key.
    #[arg(help_heading = "TLS", long, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(help_heading = "TLS", long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Append the session's TLS secrets to this file in the NSS key log format, so that
    /// Wireshark can decrypt a capture (the SSLKEYLOGFILE environment variable does the
    /// same). Anyone with the file can read the session.
    #[arg(help_heading = "TLS", long, value_name = "PATH")]
    pub keylogfile: Option<PathBuf>,

    /// Show the server's certificate chain once the handshake is done: for each
    /// certificate its subject, issuer, validity and alternative names, then the PEM (on
    /// standard error, like -v; as openssl s_client -showcerts).
    #[arg(help_heading = "TLS", long)]
    pub showcerts: bool,

    /// Show what the handshake negotiated: version, cipher suite, ALPN, whether the
    /// session was resumed, the server certificate's subject (on standard error; as
    /// openssl s_client -brief).
    #[arg(help_heading = "TLS", long)]
    pub brief: bool,

    /// Check that the server resumes TLS sessions: connect, make a full handshake and wait
    /// (up to 1 s) for the server's session ticket, close; then connect N more times, each
    /// resuming the session, and say of each whether it was resumed (on standard error, as
    /// openssl s_client -reconnect). Sends nothing, reads no input. Exit status 0 if all N
    /// were resumed.
    #[arg(help_heading = "TLS", long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..100),
          conflicts_with_all = ["send_file", "reconnect", "zero_io"])]
    pub resume_test: Option<u32>,

    /// Like nc -w: give up connecting after SECS, and close when nothing is sent or
    /// received for SECS (--connect-timeout and --idle-timeout at once).
    #[arg(help_heading = "Connection", short = 'w', value_name = "SECS", value_parser = parse_duration,
          conflicts_with_all = ["connect_timeout", "idle_timeout"])]
    pub wait: Option<Duration>,

    /// Like nc -z: only check that the port answers (and, with --tls, that the handshake
    /// succeeds), then close; send nothing, read no input. Exit status 0 if it answered.
    #[arg(help_heading = "Input and output", short = 'z', conflicts_with_all = ["send_file", "starttls", "reconnect"])]
    pub zero_io: bool,

    /// Like nc -q: after the end of the input, wait at most SECS for the server to close,
    /// then quit (--drain-timeout under nc's name). Quitting this way is not an error once
    /// the server's TCP has acknowledged every byte sent and the end of the stream (without
    /// -q, only the server's own close confirms that it read them).
    #[arg(help_heading = "Input and output", short = 'q', value_name = "SECS", value_parser = parse_duration,
          conflicts_with = "drain_timeout")]
    pub quit_after: Option<Duration>,

    /// Like nc -N: shut the sending side down at the end of the input. Always done; the
    /// flag is accepted so that nc command lines work unchanged.
    #[arg(help_heading = "Input and output", short = 'N')]
    pub shutdown_at_eof: bool,

    /// Write every lifecycle event to standard error as one JSON line.
    #[arg(help_heading = "Diagnostics", long)]
    pub trace: bool,

    /// Say what happens on standard error: connected, TLS parameters, the core's phase
    /// changes and refusals, the close report.
    #[arg(help_heading = "Diagnostics", short, long)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scripted session against an embedded server on 127.0.0.1: connect, plaintext
    /// exchange, STARTTLS, encrypted exchange, graceful shutdown. Needs no network or files.
    Demo,
    /// Print a completion script for this shell to standard output (for example
    /// `tcpclient completions bash > /etc/bash_completion.d/tcpclient`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output (`tcpclient man | man -l -`).
    Man,
}

/// The STARTTLS dialogues, named as `openssl s_client -starttls` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartTlsProtocol {
    /// SMTP (RFC 3207): EHLO, then STARTTLS, expecting 220.
    Smtp,
    /// IMAP (RFC 3501): CAPABILITY, then STARTTLS, expecting OK.
    Imap,
    /// POP3 (RFC 2595): STLS, expecting +OK.
    Pop3,
    /// FTP (RFC 4217): AUTH TLS, expecting 234.
    Ftp,
    /// LMTP (RFC 2033): LHLO, then STARTTLS, expecting 220.
    Lmtp,
    /// NNTP (RFC 4642): STARTTLS, expecting 382.
    Nntp,
    /// ManageSieve (RFC 5804): STARTTLS, expecting OK.
    Sieve,
    /// XMPP client to server (RFC 6120): a stream header to HOST (or --xmpphost), the
    /// starttls element, expecting proceed.
    Xmpp,
}

/// `-X`: the proxy protocols, named as nc names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyProtocol {
    /// HTTP CONNECT.
    Connect,
    /// SOCKS version 5, no authentication.
    #[value(name = "5")]
    Socks5,
}

/// Takes `ADDR:PORT` (an IPv6 address in brackets).
fn parse_proxy(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not ADDR:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("`{port}` in `{text}` is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("`{text}` has no address"));
    }
    Ok((host.to_owned(), port))
}

/// A duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// Takes a duration, or `off`.
fn parse_optional_duration(text: &str) -> Result<OptionalDuration, String> {
    match text.trim() {
        "off" => Ok(OptionalDuration(None)),
        other => parse_duration(other).map(|d| OptionalDuration(Some(d))),
    }
}

/// `--keepalive`: off, or the idle time before the first probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveArg {
    /// No keepalive probes.
    Off,
    /// Probe after this long without traffic.
    After(Duration),
}

/// Takes a keepalive idle time, or `off`.
fn parse_keepalive(text: &str) -> Result<KeepaliveArg, String> {
    match text.trim() {
        "off" | "0" => Ok(KeepaliveArg::Off),
        other => parse_duration(other).map(KeepaliveArg::After),
    }
}

/// Takes one ALPN protocol name: 1 to 255 bytes, all that TLS can carry.
fn parse_alpn(name: &str) -> Result<String, String> {
    tcpclient_core::tls::check_alpn_protocols(&[name.as_bytes()])
        .map(|()| name.to_owned())
        .map_err(|e| e.to_string())
}

/// Parses `1.5`, `250ms`, `2s`, `1m` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 2s, 1m)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("`{text}` is not a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_units_people_type() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    /// Every default parses into its field's type (clap checks that only at parse time).
    #[test]
    fn the_defaults_parse() {
        let args = Args::try_parse_from(["tcpclient", "localhost", "7"]).unwrap();
        assert_eq!(args.keepalive, KeepaliveArg::After(Duration::from_secs(15)));
        assert_eq!(args.happy_eyeballs_delay, Duration::from_millis(250));
        let off = Args::try_parse_from(["tcpclient", "--keepalive", "off", "localhost", "7"]);
        assert_eq!(off.unwrap().keepalive, KeepaliveArg::Off);
    }
}
