//! The STARTTLS dialogues of SMTP, LMTP, IMAP, POP3, FTP, NNTP, XMPP and ManageSieve, sans-IO,
//! up to the server's go-ahead, as `openssl s_client -starttls` runs them, but checking every
//! reply and refusing injected plaintext.
//!
//! Like a proxy dialogue, it is a step the application drives over an established
//! connection before the session, with the same verbs: send what
//! [`StartTlsDialogue::poll_transmit`] hands out, feed what arrives to
//! [`StartTlsDialogue::handle_data`], and at [`DialogueStatus::GoAhead`] call
//! [`Client::start_tls`](crate::Client::start_tls). Keep feeding it the `Data` that comes
//! before [`Event::TlsEstablished`](crate::Event::TlsEstablished): anything the server sends
//! after its go-ahead and before the handshake is refused as an injection
//! ([`StartTlsError::Injection`], CVE-2011-0411), which a careless client would take as part
//! of the encrypted session. Every reply is bounded (a line of [`MAX_LINE`], a reply of
//! [`MAX_REPLY_LINES`]); the application bounds the dialogue in time, as it bounds a
//! handshake.
//!
//! ```
//! use tcpclient_core::starttls::{DialogueStatus, StartTlsDialogue, StartTlsProtocol};
//!
//! let mut smtp = StartTlsDialogue::new(StartTlsProtocol::Smtp, "client.example", "")?;
//! assert_eq!(smtp.poll_transmit(), None, "SMTP waits for the server's greeting");
//! assert_eq!(smtp.handle_data(b"220 mail.example ESMTP\r\n")?, DialogueStatus::InProgress);
//! assert_eq!(&smtp.poll_transmit().unwrap()[..], b"EHLO client.example\r\n");
//! smtp.handle_data(b"250-mail.example\r\n250 STARTTLS\r\n")?;
//! assert_eq!(&smtp.poll_transmit().unwrap()[..], b"STARTTLS\r\n");
//! assert_eq!(smtp.handle_data(b"220 go ahead\r\n")?, DialogueStatus::GoAhead);
//! // Now `client.start_tls(now)`; plaintext from the server before the handshake is refused:
//! assert!(smtp.handle_data(b"250 injected\r\n").is_err());
//! # Ok::<(), tcpclient_core::starttls::StartTlsError>(())
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::lines;
pub use crate::lines::MAX_LINE;

/// Most lines one reply may have. An EHLO reply lists a few dozen extensions at most.
pub const MAX_REPLY_LINES: usize = 512;

/// Which protocol's STARTTLS dialogue to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// XMPP (RFC 6120): a stream offering starttls, then proceed.
    Xmpp,
    /// ManageSieve (RFC 5804): STARTTLS, expecting OK.
    Sieve,
}

/// How far a [`StartTlsDialogue`] has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogueStatus {
    /// The server has not given its go-ahead yet: feed it more.
    InProgress,
    /// The server said go ahead, and nothing followed: start TLS now.
    GoAhead,
}

/// Why a STARTTLS dialogue failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The server's reply is not the one the dialogue needs.
    #[error("expected `{expected}`, the server said `{said}`")]
    Unexpected {
        /// What the reply had to begin with.
        expected: &'static str,
        /// The reply's last line.
        said: String,
    },
    /// The XMPP server's stream features do not offer starttls.
    #[error("the XMPP server does not offer starttls in its stream features")]
    NotOffered,
    /// A reply line longer than [`MAX_LINE`].
    #[error("the server sent a reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A reply of more than [`MAX_REPLY_LINES`] lines.
    #[error("the server's reply went on for more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// Plaintext the server sent after its go-ahead, before the TLS handshake: refused,
    /// since a man-in-the-middle can inject it there (CVE-2011-0411 and its class).
    #[error(
        "the server sent {bytes} bytes after its go-ahead and before the TLS handshake; \
         refusing them (STARTTLS injection, CVE-2011-0411)"
    )]
    Injection {
        /// How many bytes.
        bytes: usize,
    },
    /// A name the dialogue announces holds a line break or a control character: it would
    /// smuggle a command of its own into the dialogue.
    #[error("`{0}` cannot be announced in a STARTTLS dialogue")]
    InvalidName(String),
    /// Data was fed after the dialogue failed.
    #[error("the STARTTLS dialogue is over")]
    Over,
}

/// One STARTTLS dialogue, from the server's greeting to its go-ahead.
#[derive(Debug)]
pub struct StartTlsDialogue {
    protocol: StartTlsProtocol,
    /// The exchanges left, in order.
    script: VecDeque<Exchange>,
    /// What is to be sent next.
    outgoing: VecDeque<Bytes>,
    /// Received bytes not yet consumed.
    received: BytesMut,
    /// Lines of the reply being read so far.
    reply_lines: usize,
    sent: u64,
    failed: bool,
}

/// One exchange of a dialogue: what the client says (nothing, before a greeting), then what
/// it must hear.
#[derive(Debug)]
struct Exchange {
    /// Taken once handed out.
    say: Option<String>,
    hear: Hear,
}

/// What an exchange must hear.
#[derive(Debug, Clone, Copy)]
enum Hear {
    /// A reply whose last line begins with one of these.
    Reply(Reply, &'static [&'static str]),
    /// XMPP's stream features, which must offer starttls.
    XmppFeatures,
    /// XMPP's answer to starttls, which must be proceed.
    XmppProceed,
}

/// Where a reply ends.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// One line.
    Line,
    /// SMTP, FTP, NNTP: `NNN-` lines go on, an `NNN ` line ends it.
    Coded,
    /// IMAP: lines until one begins with the tag.
    Tagged(&'static str),
    /// ManageSieve: lines until one begins with OK, NO or BYE (RFC 5804 section 1.3).
    Sieve,
}

impl StartTlsDialogue {
    /// Starts `protocol`'s dialogue. `client_name` is what SMTP's EHLO and LMTP's LHLO
    /// announce; `server_domain` is the domain an XMPP stream is opened to. The first bytes
    /// (XMPP speaks first) are ready in [`Self::poll_transmit`].
    pub fn new(
        protocol: StartTlsProtocol,
        client_name: &str,
        server_domain: &str,
    ) -> Result<Self, StartTlsError> {
        for name in [client_name, server_domain] {
            if name
                .bytes()
                .any(|b| b.is_ascii_control() || b == b'\'' || b == b'<')
            {
                return Err(StartTlsError::InvalidName(name.to_string()));
            }
        }
        let hear = |say: Option<&str>, reply, accept| Exchange {
            say: say.map(|text| format!("{text}\r\n")),
            hear: Hear::Reply(reply, accept),
        };
        let script = match protocol {
            StartTlsProtocol::Smtp | StartTlsProtocol::Lmtp => {
                let hello = match protocol {
                    StartTlsProtocol::Smtp => "EHLO",
                    _ => "LHLO",
                };
                vec![
                    hear(None, Reply::Coded, &["220"]),
                    hear(
                        Some(&format!("{hello} {client_name}")),
                        Reply::Coded,
                        &["250"],
                    ),
                    hear(Some("STARTTLS"), Reply::Coded, &["220"]),
                ]
            }
            StartTlsProtocol::Imap => vec![
                hear(None, Reply::Line, &["* OK"]),
                hear(Some(". CAPABILITY"), Reply::Tagged(". "), &[". OK"]),
                hear(Some(". STARTTLS"), Reply::Tagged(". "), &[". OK"]),
            ],
            StartTlsProtocol::Pop3 => vec![
                hear(None, Reply::Line, &["+OK"]),
                hear(Some("STLS"), Reply::Line, &["+OK"]),
            ],
            StartTlsProtocol::Ftp => vec![
                hear(None, Reply::Coded, &["220"]),
                hear(Some("AUTH TLS"), Reply::Coded, &["234"]),
            ],
            // 200: posting allowed; 201: not. Either may start TLS.
            StartTlsProtocol::Nntp => vec![
                hear(None, Reply::Coded, &["200", "201"]),
                hear(Some("STARTTLS"), Reply::Coded, &["382"]),
            ],
            StartTlsProtocol::Xmpp => vec![
                Exchange {
                    say: Some(format!(
                        "<?xml version='1.0'?><stream:stream to='{server_domain}' version='1.0' \
                         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                    )),
                    hear: Hear::XmppFeatures,
                },
                Exchange {
                    say: Some("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".into()),
                    hear: Hear::XmppProceed,
                },
            ],
            // The greeting is the capability list, ended by an OK line.
            StartTlsProtocol::Sieve => vec![
                hear(None, Reply::Sieve, &["OK"]),
                hear(Some("STARTTLS"), Reply::Sieve, &["OK"]),
            ],
        };
        let mut dialogue = Self {
            protocol,
            script: script.into(),
            outgoing: VecDeque::new(),
            received: BytesMut::new(),
            reply_lines: 0,
            sent: 0,
            failed: false,
        };
        dialogue.say();
        Ok(dialogue)
    }

    /// Which dialogue this is.
    pub fn protocol(&self) -> StartTlsProtocol {
        self.protocol
    }

    /// The bytes to send to the server now, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outgoing.pop_front()
    }

    /// Takes bytes received from the server. Fails on the first reply that is not the one
    /// the dialogue needs, and on any byte after the go-ahead; after a failure, more data is
    /// [`StartTlsError::Over`].
    pub fn handle_data(&mut self, data: &[u8]) -> Result<DialogueStatus, StartTlsError> {
        if self.failed {
            return Err(StartTlsError::Over);
        }
        self.received.extend_from_slice(data);
        let result = self.advance();
        if result.is_err() {
            self.failed = true;
            self.received.clear();
            self.outgoing.clear();
        }
        result
    }

    /// Returns true once the server has given its go-ahead.
    pub fn is_done(&self) -> bool {
        self.script.is_empty() && !self.failed
    }

    /// Returns the bytes the dialogue has handed out to send so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Consumes whole replies from what was received, as far as they go.
    fn advance(&mut self) -> Result<DialogueStatus, StartTlsError> {
        loop {
            let heard = match self.script.front().map(|exchange| exchange.hear) {
                None if self.received.is_empty() => return Ok(DialogueStatus::GoAhead),
                None => {
                    return Err(StartTlsError::Injection {
                        bytes: self.received.len(),
                    });
                }
                Some(Hear::Reply(reply, accept)) => self.read_reply(reply, accept)?,
                Some(Hear::XmppFeatures) => self.xmpp_features()?,
                Some(Hear::XmppProceed) => self.xmpp_proceed()?,
            };
            if !heard {
                return Ok(DialogueStatus::InProgress);
            }
            self.script.pop_front();
            self.say();
        }
    }

    /// Hands out what the next exchange says, if it says anything.
    fn say(&mut self) {
        if let Some(text) = self.script.front_mut().and_then(|e| e.say.take()) {
            self.sent += text.len() as u64;
            self.outgoing.push_back(Bytes::from(text));
        }
    }

    /// Reads the reply `reply`; returns false until it is all there.
    fn read_reply(
        &mut self,
        reply: Reply,
        accept: &'static [&'static str],
    ) -> Result<bool, StartTlsError> {
        loop {
            let Some(line) =
                lines::take_line(&mut self.received).map_err(|_| StartTlsError::LineTooLong)?
            else {
                return Ok(false);
            };
            self.reply_lines += 1;
            let last = match reply {
                Reply::Line => true,
                Reply::Coded => line.as_bytes().get(3) != Some(&b'-'),
                Reply::Tagged(tag) => line.starts_with(tag),
                Reply::Sieve => {
                    let upper = line.to_ascii_uppercase();
                    ["OK", "NO", "BYE"].iter().any(|w| upper.starts_with(w))
                }
            };
            if !last {
                if self.reply_lines >= MAX_REPLY_LINES {
                    return Err(StartTlsError::TooManyLines);
                }
                continue;
            }
            self.reply_lines = 0;
            return match accept.iter().any(|prefix| line.starts_with(prefix)) {
                true => Ok(true),
                false => Err(StartTlsError::Unexpected {
                    expected: accept.first().copied().unwrap_or_default(),
                    said: line,
                }),
            };
        }
    }

    fn xmpp_features(&mut self) -> Result<bool, StartTlsError> {
        let Some(features) = lines::take_until(&mut self.received, b"</stream:features>")
            .map_err(|_| StartTlsError::LineTooLong)?
        else {
            return Ok(false);
        };
        match features.contains("<starttls") {
            true => Ok(true),
            false => Err(StartTlsError::NotOffered),
        }
    }

    fn xmpp_proceed(&mut self) -> Result<bool, StartTlsError> {
        let Some(answer) =
            lines::take_until(&mut self.received, b"/>").map_err(|_| StartTlsError::LineTooLong)?
        else {
            return Ok(false);
        };
        match answer.trim_start().starts_with("<proceed") {
            true => Ok(true),
            false => Err(StartTlsError::Unexpected {
                expected: "<proceed/>",
                said: answer.trim().to_string(),
            }),
        }
    }
}
