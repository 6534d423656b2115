//! Reaching a host through a proxy: the HTTP CONNECT (RFC 9110 section 9.3.6) and SOCKS5
//! (RFC 1928) dialogues, sans-IO.
//!
//! Like a STARTTLS dialogue, a proxy dialogue runs over an established connection before
//! anything else is sent, so it is a separate step the application drives between the
//! connection's [`Event::Connected`](crate::Event::Connected) and its first send (or
//! [`Client::start_tls`](crate::Client::start_tls)): send what [`ProxyTunnel::poll_transmit`]
//! hands out, feed what arrives to [`ProxyTunnel::handle_data`], and stop when it says the
//! tunnel is open. Every reply is bounded (a line, the header count, SOCKS5's fixed sizes), so
//! a hostile proxy gets a typed [`ProxyError`], never unbounded memory. The application bounds
//! the dialogue in time, as it bounds a handshake.
//!
//! ```
//! use tcpclient_core::proxy::{ProxyProtocol, ProxyTunnel, TunnelStatus};
//!
//! let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "example.org", 443)?;
//! let request = tunnel.poll_transmit().expect("the CONNECT request");
//! assert_eq!(&request[..], b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n");
//! assert_eq!(tunnel.handle_data(b"HTTP/1.1 200 Connection established\r\n")?, TunnelStatus::InProgress);
//! let TunnelStatus::Open { leftover } = tunnel.handle_data(b"\r\nfirst bytes")? else {
//!     panic!("the empty line ends the response");
//! };
//! assert_eq!(&leftover[..], b"first bytes", "what follows is the server's");
//! # Ok::<(), tcpclient_core::proxy::ProxyError>(())
//! ```

use std::net::IpAddr;

use bytes::{Buf, Bytes, BytesMut};

use crate::lines;

pub use crate::lines::MAX_LINE;

/// Most header lines a CONNECT response may have.
pub const MAX_HEADER_LINES: usize = 128;

/// Which proxy dialogue to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// HTTP `CONNECT host:port`; any 2xx opens the tunnel.
    HttpConnect,
    /// SOCKS5 without authentication; a host name is sent for the proxy to resolve.
    Socks5,
}

/// How far a [`ProxyTunnel`] has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelStatus {
    /// The proxy has not finished answering: feed it more.
    InProgress,
    /// The tunnel is open. `leftover` came after the proxy's answer: the first bytes of the
    /// server behind it. Before a TLS handshake they can only be an injection.
    Open {
        /// Bytes received after the proxy's go-ahead.
        leftover: Bytes,
    },
}

/// Why a proxy dialogue failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The HTTP proxy answered with a status other than 2xx.
    #[error("the proxy refused: `{status}`")]
    Refused {
        /// The proxy's status line.
        status: String,
    },
    /// The proxy's first line is not an HTTP status line.
    #[error("not an HTTP response from the proxy: `{line}`")]
    NotHttp {
        /// The line received.
        line: String,
    },
    /// A response line longer than [`MAX_LINE`].
    #[error("the proxy sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// More than [`MAX_HEADER_LINES`] header lines.
    #[error("the proxy's response had more than {MAX_HEADER_LINES} header lines")]
    TooManyHeaderLines,
    /// The SOCKS5 proxy accepts none of the offered authentication methods.
    #[error("the SOCKS5 proxy wants authentication, which is not supported")]
    AuthenticationRequired,
    /// The proxy's bytes are not a SOCKS5 answer.
    #[error("not a SOCKS5 answer from the proxy: {bytes:02x?}")]
    NotSocks5 {
        /// The bytes received.
        bytes: Vec<u8>,
    },
    /// The SOCKS5 proxy refused the connection.
    #[error("the SOCKS5 proxy refused: {} ({code})", socks5_reply(*.code))]
    Socks5Refused {
        /// The reply code (RFC 1928 section 6).
        code: u8,
    },
    /// The SOCKS5 reply names an address type RFC 1928 does not define.
    #[error("the SOCKS5 proxy answered with an unknown address type {0}")]
    UnknownAddressType(u8),
    /// The host to reach is empty or has spaces or control characters in it, which no
    /// request may carry.
    #[error("`{0}` cannot be a host to reach through a proxy")]
    InvalidHost(String),
    /// The host name does not fit SOCKS5's one-byte length.
    #[error("`{0}` is longer than SOCKS5's 255 bytes")]
    NameTooLong(String),
    /// Data was fed after the tunnel opened or the dialogue failed.
    #[error("the proxy dialogue is over")]
    Over,
}

/// One proxy dialogue, from the request to the go-ahead.
#[derive(Debug)]
pub struct ProxyTunnel {
    protocol: ProxyProtocol,
    step: Step,
    /// What is to be sent next.
    outgoing: Option<Bytes>,
    /// The SOCKS5 connect request, sent once the proxy has accepted the method.
    request: Option<Bytes>,
    /// Received bytes not yet consumed.
    received: BytesMut,
    header_lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    StatusLine,
    /// The header lines of an interim (1xx) response.
    InterimHeaders,
    Headers,
    MethodChoice,
    ReplyHead,
    /// The bound address and port: this many bytes, or a name length first (`None`).
    ReplyAddress(Option<usize>),
    Open,
    Failed,
}

impl ProxyTunnel {
    /// Starts a dialogue asking the proxy for a tunnel to `host`:`port`. `host` may be a
    /// name or an IP address, an IPv6 one with or without brackets. Its first bytes are
    /// ready in [`Self::poll_transmit`].
    pub fn new(protocol: ProxyProtocol, host: &str, port: u16) -> Result<Self, ProxyError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty()
            || bare
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(ProxyError::InvalidHost(host.to_string()));
        }
        let (step, outgoing, request) = match protocol {
            ProxyProtocol::HttpConnect => {
                let authority = match bare.parse::<IpAddr>() {
                    Ok(IpAddr::V6(_)) => format!("[{bare}]:{port}"),
                    _ => format!("{bare}:{port}"),
                };
                let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
                (Step::StatusLine, Bytes::from(request), None)
            }
            // Version 5, one method: no authentication.
            ProxyProtocol::Socks5 => (
                Step::MethodChoice,
                Bytes::from_static(&[5, 1, 0]),
                Some(socks5_request(bare, port)?),
            ),
        };
        Ok(Self {
            protocol,
            step,
            outgoing: Some(outgoing),
            request,
            received: BytesMut::new(),
            header_lines: 0,
        })
    }

    /// Which dialogue this is.
    pub fn protocol(&self) -> ProxyProtocol {
        self.protocol
    }

    /// The bytes to send to the proxy now, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.outgoing.take()
    }

    /// Takes bytes received from the proxy. Fails on the first answer that is not a
    /// go-ahead; after [`TunnelStatus::Open`] or a failure, more data is [`ProxyError::Over`].
    pub fn handle_data(&mut self, data: &[u8]) -> Result<TunnelStatus, ProxyError> {
        if matches!(self.step, Step::Open | Step::Failed) {
            return Err(ProxyError::Over);
        }
        self.received.extend_from_slice(data);
        let result = self.advance();
        if result.is_err() {
            self.step = Step::Failed;
            self.received.clear();
        }
        result
    }

    /// Returns true once the proxy has given its go-ahead.
    pub fn is_open(&self) -> bool {
        self.step == Step::Open
    }

    /// Consumes whole answers from what was received, as far as they go.
    fn advance(&mut self) -> Result<TunnelStatus, ProxyError> {
        loop {
            let progressed = match self.step {
                Step::StatusLine | Step::InterimHeaders | Step::Headers => self.http_line()?,
                Step::MethodChoice => self.method_choice()?,
                Step::ReplyHead => self.reply_head()?,
                Step::ReplyAddress(len) => self.reply_address(len)?,
                Step::Open => {
                    return Ok(TunnelStatus::Open {
                        leftover: self.received.split().freeze(),
                    });
                }
                Step::Failed => return Err(ProxyError::Over),
            };
            if !progressed {
                return Ok(TunnelStatus::InProgress);
            }
        }
    }

    /// One line of the CONNECT response; returns false until a whole one is there.
    fn http_line(&mut self) -> Result<bool, ProxyError> {
        let Some(line) =
            lines::take_line(&mut self.received).map_err(|_| ProxyError::LineTooLong)?
        else {
            return Ok(false);
        };
        if self.step == Step::StatusLine {
            self.step = match status_code(&line) {
                Some(100..=199) => Step::InterimHeaders,
                Some(200..=299) => Step::Headers,
                Some(_) => return Err(ProxyError::Refused { status: line }),
                None => return Err(ProxyError::NotHttp { line }),
            };
        } else if line.is_empty() {
            // An interim (1xx) response is followed by the final one (RFC 9110 15.2).
            self.step = match self.step {
                Step::InterimHeaders => Step::StatusLine,
                _ => Step::Open,
            };
        } else {
            self.header_lines += 1;
            if self.header_lines > MAX_HEADER_LINES {
                return Err(ProxyError::TooManyHeaderLines);
            }
        }
        Ok(true)
    }

    fn method_choice(&mut self) -> Result<bool, ProxyError> {
        let Some(answer) = self.take(2) else {
            return Ok(false);
        };
        match answer[..] {
            // A reply before our request is sent cannot be an answer to it.
            [5, 0] if !self.received.is_empty() => Err(ProxyError::NotSocks5 {
                bytes: self.received.split().to_vec(),
            }),
            [5, 0] => {
                self.outgoing = self.request.take();
                self.step = Step::ReplyHead;
                Ok(true)
            }
            [5, 0xff] => Err(ProxyError::AuthenticationRequired),
            _ => Err(ProxyError::NotSocks5 {
                bytes: answer.to_vec(),
            }),
        }
    }

    fn reply_head(&mut self) -> Result<bool, ProxyError> {
        let Some(head) = self.take(4) else {
            return Ok(false);
        };
        let [5, reply, _, kind] = head[..] else {
            return Err(ProxyError::NotSocks5 {
                bytes: head.to_vec(),
            });
        };
        if reply != 0 {
            return Err(ProxyError::Socks5Refused { code: reply });
        }
        // The address the proxy bound, then its port: read and dropped.
        self.step = Step::ReplyAddress(match kind {
            1 => Some(4 + 2),
            4 => Some(16 + 2),
            3 => None,
            other => return Err(ProxyError::UnknownAddressType(other)),
        });
        Ok(true)
    }

    fn reply_address(&mut self, len: Option<usize>) -> Result<bool, ProxyError> {
        match len {
            None => {
                let Some(name_len) = self.take(1) else {
                    return Ok(false);
                };
                self.step = Step::ReplyAddress(Some(usize::from(name_len[0]) + 2));
            }
            Some(len) => {
                if self.take(len).is_none() {
                    return Ok(false);
                }
                self.step = Step::Open;
            }
        }
        Ok(true)
    }

    /// The next `n` received bytes, once there are that many.
    fn take(&mut self, n: usize) -> Option<Bytes> {
        (self.received.remaining() >= n).then(|| self.received.split_to(n).freeze())
    }
}

/// The code of an HTTP/1.x status line (`HTTP/1.1 200 Connection established`): three
/// digits between a space and a space or the end of the line.
fn status_code(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP/1.")?;
    let (_minor, rest) = rest.split_at_checked(1)?;
    let rest = rest.strip_prefix(' ')?;
    let (code, after) = rest.split_at_checked(3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    code.parse().ok()
}

/// The SOCKS5 CONNECT request for `host` (without brackets) and `port`.
fn socks5_request(host: &str, port: u16) -> Result<Bytes, ProxyError> {
    let mut request = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        // The proxy resolves the name (nc -X 5 does the same).
        Err(_) => {
            let len =
                u8::try_from(host.len()).map_err(|_| ProxyError::NameTooLong(host.to_string()))?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    Ok(Bytes::from(request))
}

/// RFC 1928 section 6, in words.
fn socks5_reply(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the destination host",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unknown reply code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `answer` cut at every point, as an application would: once the tunnel is
    /// open, the rest is the server's. The result must not depend on where the cut falls.
    fn each_cut(
        protocol: ProxyProtocol,
        host: &str,
        before: &[u8],
        answer: &[u8],
    ) -> Vec<Result<Bytes, ProxyError>> {
        (0..=answer.len())
            .map(|cut| {
                let mut tunnel = ProxyTunnel::new(protocol, host, 443).unwrap();
                let mut server = Vec::new();
                let _ = tunnel.poll_transmit();
                if !before.is_empty() {
                    assert_eq!(tunnel.handle_data(before)?, TunnelStatus::InProgress);
                }
                for part in [&answer[..cut], &answer[cut..]] {
                    let _ = tunnel.poll_transmit();
                    if tunnel.is_open() {
                        server.extend_from_slice(part);
                        continue;
                    }
                    if let TunnelStatus::Open { leftover } = tunnel.handle_data(part)? {
                        server.extend_from_slice(&leftover);
                    }
                }
                assert!(tunnel.is_open(), "cut at {cut}");
                Ok(Bytes::from(server))
            })
            .collect()
    }

    #[test]
    fn http_connect_opens_on_2xx_however_the_answer_is_cut() {
        let answer = b"HTTP/1.1 200 OK\r\nVia: test\r\n\r\nhello";
        for result in each_cut(ProxyProtocol::HttpConnect, "example.org", b"", answer) {
            assert_eq!(result, Ok(Bytes::from_static(b"hello")));
        }
    }

    #[test]
    fn http_status_lines_are_read_strictly_and_interim_responses_skipped() {
        let open = |answer: &[u8]| {
            let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
            tunnel.handle_data(answer)
        };
        assert!(matches!(
            open(b"HTTP/1.0 200\r\n\r\n"),
            Ok(TunnelStatus::Open { .. })
        ));
        assert_eq!(
            open(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: p\r\n\r\n!"),
            Ok(TunnelStatus::Open {
                leftover: Bytes::from_static(b"!")
            }),
            "the final response after the interim one opens the tunnel"
        );
        for garbage in [
            &b"HTTP/1.1 2001 x\r\n"[..],
            b"HTTP/1.1x200\r\n",
            b"HTTP/1.1 20\r\n",
        ] {
            assert!(
                matches!(open(garbage), Err(ProxyError::NotHttp { .. })),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn a_host_no_request_may_carry_is_refused_before_anything_is_sent() {
        for protocol in [ProxyProtocol::HttpConnect, ProxyProtocol::Socks5] {
            for host in ["", "a b", "a\r\nHost: evil", "[]"] {
                assert_eq!(
                    ProxyTunnel::new(protocol, host, 1).err(),
                    Some(ProxyError::InvalidHost(host.to_string())),
                    "{host:?}"
                );
            }
        }
    }

    #[test]
    fn http_connect_brackets_an_ipv6_literal() {
        for host in ["::1", "[::1]"] {
            let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, host, 8443).unwrap();
            let request = tunnel.poll_transmit().unwrap();
            assert!(request.starts_with(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"));
            assert_eq!(tunnel.poll_transmit(), None, "sent once");
        }
    }

    #[test]
    fn http_refusals_and_garbage_are_typed() {
        let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
        assert_eq!(
            tunnel.handle_data(b"HTTP/1.1 403 Forbidden\r\n"),
            Err(ProxyError::Refused {
                status: "HTTP/1.1 403 Forbidden".into()
            })
        );
        assert_eq!(tunnel.handle_data(b"more"), Err(ProxyError::Over));
        let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
        assert_eq!(
            tunnel.handle_data(b"SSH-2.0-OpenSSH\r\n"),
            Err(ProxyError::NotHttp {
                line: "SSH-2.0-OpenSSH".into()
            })
        );
    }

    #[test]
    fn a_line_of_8_kib_is_taken_and_one_byte_longer_is_refused() {
        for (len, open) in [(8 * 1024, true), (8 * 1024 + 1, false)] {
            let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
            let mut answer = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            let header_start = answer.len() - 3;
            answer.resize(header_start + len - 2, b'y');
            answer.extend_from_slice(b"\r\n\r\n");
            let result = tunnel.handle_data(&answer);
            assert_eq!(
                result.is_ok(),
                open,
                "a header line of {len} bytes: {result:?}"
            );
            if !open {
                assert_eq!(result, Err(ProxyError::LineTooLong));
            }
        }
    }

    #[test]
    fn a_response_of_128_header_lines_is_taken_and_129_are_refused() {
        for (lines, open) in [(128, true), (129, false)] {
            let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
            let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
            for _ in 0..lines {
                answer.extend_from_slice(b"X: y\r\n");
            }
            answer.extend_from_slice(b"\r\n");
            let result = tunnel.handle_data(&answer);
            let expected = if open {
                Ok(TunnelStatus::Open {
                    leftover: Bytes::new(),
                })
            } else {
                Err(ProxyError::TooManyHeaderLines)
            };
            assert_eq!(result, expected, "{lines} header lines");
        }
    }

    #[test]
    fn every_socks5_reply_code_has_its_own_words() {
        let words: Vec<&str> = (1..=8).map(socks5_reply).collect();
        for (code, reason) in (1..=8).zip(&words) {
            assert_ne!(*reason, socks5_reply(0), "code {code}");
            assert_eq!(
                words.iter().filter(|w| *w == reason).count(),
                1,
                "code {code}: {reason}"
            );
        }
        assert_eq!(socks5_reply(1), "general SOCKS server failure");
        assert_eq!(socks5_reply(8), "address type not supported");
    }

    #[test]
    fn an_endless_line_or_endless_headers_are_refused_in_bounded_memory() {
        let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
        let chunk = [b'x'; 1024];
        let mut result = Ok(TunnelStatus::InProgress);
        for _ in 0..MAX_LINE / chunk.len() + 1 {
            result = tunnel.handle_data(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ProxyError::LineTooLong));

        let mut tunnel = ProxyTunnel::new(ProxyProtocol::HttpConnect, "h", 1).unwrap();
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_HEADER_LINES {
            answer.extend_from_slice(b"X: y\r\n");
        }
        assert_eq!(
            tunnel.handle_data(&answer),
            Err(ProxyError::TooManyHeaderLines)
        );
    }

    #[test]
    fn socks5_sends_the_request_after_the_method_choice_and_opens_on_success() {
        let mut tunnel = ProxyTunnel::new(ProxyProtocol::Socks5, "example.org", 443).unwrap();
        assert_eq!(&tunnel.poll_transmit().unwrap()[..], [5, 1, 0]);
        assert_eq!(tunnel.poll_transmit(), None);
        assert_eq!(tunnel.handle_data(&[5, 0]), Ok(TunnelStatus::InProgress));
        let mut request = vec![5, 1, 0, 3, 11];
        request.extend_from_slice(b"example.org");
        request.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(&tunnel.poll_transmit().unwrap()[..], request);
    }

    #[test]
    fn socks5_replies_with_every_address_type_open_however_they_are_cut() {
        let replies: [&[u8]; 3] = [
            &[5, 0, 0, 1, 127, 0, 0, 1, 0, 80, b'!'],
            &[5, 0, 0, 3, 3, b'h', b'o', b'p', 0, 80, b'!'],
            &[
                5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80, b'!',
            ],
        ];
        for reply in replies {
            for result in each_cut(ProxyProtocol::Socks5, "10.0.0.1", &[5, 0], reply) {
                assert_eq!(result, Ok(Bytes::from_static(b"!")), "{reply:?}");
            }
        }
    }

    #[test]
    fn socks5_refusals_are_typed_and_worded() {
        // The method choice, then (once our request is out) the reply.
        let cases: [(&[u8], &[u8], ProxyError); 5] = [
            (&[5, 0xff], &[], ProxyError::AuthenticationRequired),
            (&[4, 0], &[], ProxyError::NotSocks5 { bytes: vec![4, 0] }),
            (
                &[5, 0],
                &[5, 5, 0, 1],
                ProxyError::Socks5Refused { code: 5 },
            ),
            (&[5, 0], &[5, 0, 0, 9], ProxyError::UnknownAddressType(9)),
            (
                &[5, 0, 5, 0, 0, 1],
                &[],
                ProxyError::NotSocks5 {
                    bytes: vec![5, 0, 0, 1],
                },
            ),
        ];
        for (choice, reply, error) in cases {
            let mut tunnel = ProxyTunnel::new(ProxyProtocol::Socks5, "h", 1).unwrap();
            let _ = tunnel.poll_transmit();
            let result = match tunnel.handle_data(choice) {
                Ok(TunnelStatus::InProgress) if !reply.is_empty() => {
                    assert!(tunnel.poll_transmit().is_some(), "the request goes out");
                    tunnel.handle_data(reply)
                }
                other => other,
            };
            assert_eq!(result, Err(error.clone()));
        }
        assert_eq!(
            ProxyError::Socks5Refused { code: 5 }.to_string(),
            "the SOCKS5 proxy refused: connection refused by the destination host (5)"
        );
        let long = "a".repeat(256);
        assert_eq!(
            ProxyTunnel::new(ProxyProtocol::Socks5, &long, 1).err(),
            Some(ProxyError::NameTooLong(long))
        );
    }
}
