//! The STARTTLS dialogues of `--starttls`, as `openssl s_client -starttls` runs them, but
//! checking every reply code and refusing injected plaintext.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tcpclient_core::Event;

use super::Failure;
use super::args::StartTlsProtocol;
use super::inbound::Inbound;

/// Most lines one reply may have. An EHLO reply lists a few dozen extensions at most.
const MAX_REPLY_LINES: usize = 512;

/// Runs `protocol`'s dialogue up to its go-ahead, switches to TLS and waits for the
/// handshake to finish, all before `deadline`. Returns how many bytes the dialogue sent.
///
/// Bytes the server sends after its go-ahead and before the handshake are refused: a
/// man-in-the-middle can inject plaintext there that a careless client would take as part
/// of the encrypted session (CVE-2011-0411 and its class).
pub fn negotiate(
    inbound: &mut Inbound<'_>,
    protocol: StartTlsProtocol,
    names: &Names<'_>,
    deadline: Instant,
) -> Result<u64, Failure> {
    let sent = dialogue(inbound, protocol, names, deadline).map_err(|failure| match failure {
        Failure::TimedOut => {
            Failure::Late("STARTTLS: the dialogue did not finish within --connect-timeout".into())
        }
        other => other,
    })?;
    refuse_injection(inbound.leftover())?;
    inbound.trace.request("StartTls", json!({}));
    inbound.conn.start_tls();
    await_tls(inbound, deadline, refuse_injection)?;
    Ok(sent)
}

/// Waits for the TLS handshake to finish by `deadline`, handing any data that comes first
/// to `early`.
pub fn await_tls(
    inbound: &mut Inbound<'_>,
    deadline: Instant,
    mut early: impl FnMut(usize) -> Result<(), Failure>,
) -> Result<(), Failure> {
    loop {
        match inbound.next(Some(deadline)) {
            Ok(Event::TlsEstablished(_)) => return Ok(()),
            Ok(Event::Data(data)) => early(data.len())?,
            Ok(Event::Closed(report)) => return Err(Failure::Unclean(report)),
            Ok(_) => {}
            Err(Failure::TimedOut) => {
                return Err(Failure::Late(
                    "no TLS session within --connect-timeout: the handshake did not finish".into(),
                ));
            }
            Err(other) => return Err(other),
        }
    }
}

/// The names a dialogue announces.
pub struct Names<'a> {
    /// SMTP's EHLO and LMTP's LHLO.
    pub ehlo: &'a str,
    /// The domain an XMPP stream is opened to.
    pub xmpp: &'a str,
}

/// The exchange before the go-ahead; returns the bytes it sent.
fn dialogue(
    inbound: &mut Inbound<'_>,
    protocol: StartTlsProtocol,
    names: &Names<'_>,
    deadline: Instant,
) -> Result<u64, Failure> {
    let ehlo_name = names.ehlo;
    let mut sent = 0;
    let mut say = |inbound: &mut Inbound<'_>, line: &str| {
        sent += line.len() as u64;
        command(inbound, line)
    };
    match protocol {
        StartTlsProtocol::Smtp => {
            expect(&reply(inbound, deadline, "")?, "220")?;
            say(inbound, &format!("EHLO {ehlo_name}\r\n"))?;
            expect(&reply(inbound, deadline, "")?, "250")?;
            say(inbound, "STARTTLS\r\n")?;
            expect(&reply(inbound, deadline, "")?, "220")?;
        }
        StartTlsProtocol::Imap => {
            expect(&inbound.line(deadline)?, "* OK")?;
            say(inbound, ". CAPABILITY\r\n")?;
            expect(&reply(inbound, deadline, ". ")?, ". OK")?;
            say(inbound, ". STARTTLS\r\n")?;
            expect(&reply(inbound, deadline, ". ")?, ". OK")?;
        }
        StartTlsProtocol::Pop3 => {
            expect(&inbound.line(deadline)?, "+OK")?;
            say(inbound, "STLS\r\n")?;
            expect(&inbound.line(deadline)?, "+OK")?;
        }
        StartTlsProtocol::Ftp => {
            expect(&reply(inbound, deadline, "")?, "220")?;
            say(inbound, "AUTH TLS\r\n")?;
            expect(&reply(inbound, deadline, "")?, "234")?;
        }
        StartTlsProtocol::Lmtp => {
            expect(&reply(inbound, deadline, "")?, "220")?;
            say(inbound, &format!("LHLO {ehlo_name}\r\n"))?;
            expect(&reply(inbound, deadline, "")?, "250")?;
            say(inbound, "STARTTLS\r\n")?;
            expect(&reply(inbound, deadline, "")?, "220")?;
        }
        StartTlsProtocol::Nntp => {
            // 200: posting allowed; 201: not. Either may start TLS.
            let greeting = reply(inbound, deadline, "")?;
            if !greeting.starts_with("201") {
                expect(&greeting, "200")?;
            }
            say(inbound, "STARTTLS\r\n")?;
            expect(&reply(inbound, deadline, "")?, "382")?;
        }
        StartTlsProtocol::Xmpp => {
            say(
                inbound,
                &format!(
                    "<?xml version='1.0'?><stream:stream to='{}' version='1.0' \
                     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
                    names.xmpp
                ),
            )?;
            let features = inbound.until("</stream:features>", deadline)?;
            if !features.contains("<starttls") {
                return Err(Failure::StartTls(
                    "the XMPP server does not offer starttls in its stream features".into(),
                ));
            }
            say(
                inbound,
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            )?;
            let answer = inbound.until("/>", deadline)?;
            if !answer.trim_start().starts_with("<proceed") {
                return Err(Failure::StartTls(format!(
                    "expected `<proceed/>`, the server said `{}`",
                    answer.trim()
                )));
            }
        }
        StartTlsProtocol::Sieve => {
            // The greeting is the capability list, ended by an OK line.
            expect(&sieve_reply(inbound, deadline)?, "OK")?;
            say(inbound, "STARTTLS\r\n")?;
            expect(&sieve_reply(inbound, deadline)?, "OK")?;
        }
    }
    Ok(sent)
}

fn refuse_injection(bytes: usize) -> Result<(), Failure> {
    if bytes == 0 {
        return Ok(());
    }
    Err(Failure::StartTls(format!(
        "the server sent {bytes} bytes after its go-ahead and before the TLS handshake; \
         refusing them (STARTTLS injection, CVE-2011-0411)"
    )))
}

/// Sends one command line.
fn command(inbound: &mut Inbound<'_>, line: &str) -> Result<(), Failure> {
    inbound.trace.request(
        "Send",
        json!({ "bytes": line.len(), "line": line.trim_end() }),
    );
    inbound
        .conn
        .send(Bytes::from(line.to_owned()))
        .map_err(|e| Failure::StartTls(e.to_string()))
}

/// Reads a reply and returns its last line. With an empty `tag`, an SMTP/FTP style reply:
/// lines `NNN-...` continue and `NNN ...` ends it. With a tag (IMAP), lines until one
/// starts with the tag. At most [`MAX_REPLY_LINES`] lines of at most
/// [`MAX_LINE`](super::inbound::MAX_LINE) bytes.
fn reply(inbound: &mut Inbound<'_>, deadline: Instant, tag: &str) -> Result<String, Failure> {
    for _ in 0..MAX_REPLY_LINES {
        let line = inbound.line(deadline)?;
        let last = if tag.is_empty() {
            line.len() < 4 || line.as_bytes()[3] != b'-'
        } else {
            line.starts_with(tag)
        };
        if last {
            return Ok(line);
        }
    }
    Err(Failure::StartTls(format!(
        "the server's reply went on for more than {MAX_REPLY_LINES} lines"
    )))
}

/// Reads a ManageSieve response and returns its last line: lines until one that starts
/// with `OK`, `NO` or `BYE` (RFC 5804 section 1.3), at most [`MAX_REPLY_LINES`].
fn sieve_reply(inbound: &mut Inbound<'_>, deadline: Instant) -> Result<String, Failure> {
    for _ in 0..MAX_REPLY_LINES {
        let line = inbound.line(deadline)?;
        let upper = line.to_ascii_uppercase();
        if ["OK", "NO", "BYE"].iter().any(|w| upper.starts_with(w)) {
            return Ok(line);
        }
    }
    Err(Failure::StartTls(format!(
        "the server's reply went on for more than {MAX_REPLY_LINES} lines"
    )))
}

fn expect(line: &str, prefix: &str) -> Result<(), Failure> {
    if line.starts_with(prefix) {
        Ok(())
    } else {
        Err(Failure::StartTls(format!(
            "expected `{prefix}`, the server said `{line}`"
        )))
    }
}
