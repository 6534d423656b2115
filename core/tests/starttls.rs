//! The STARTTLS dialogues, byte for byte: what each sends, what it needs to hear, and what it
//! refuses.

use tcpclient_core::starttls::{
    DialogueStatus, MAX_LINE, MAX_REPLY_LINES, StartTlsDialogue, StartTlsError, StartTlsProtocol,
};

/// Runs a dialogue against a server script of (what it must receive, what it answers),
/// feeding each answer `chunk` bytes at a time; returns the last status.
fn run(
    protocol: StartTlsProtocol,
    server: &[(&str, &str)],
    chunk: usize,
) -> Result<DialogueStatus, StartTlsError> {
    let mut dialogue = StartTlsDialogue::new(protocol, "client.example", "chat.example")?;
    let mut status = DialogueStatus::InProgress;
    let mut sent = 0;
    for (expected, answer) in server {
        let mut got = Vec::new();
        while let Some(bytes) = dialogue.poll_transmit() {
            got.extend_from_slice(&bytes);
        }
        sent += got.len() as u64;
        assert_eq!(String::from_utf8_lossy(&got), *expected, "{protocol:?}");
        for piece in answer.as_bytes().chunks(chunk.max(1)) {
            status = dialogue.handle_data(piece)?;
        }
    }
    assert_eq!(
        dialogue.poll_transmit(),
        None,
        "{protocol:?}: nothing more to say"
    );
    assert_eq!(dialogue.bytes_sent(), sent);
    Ok(status)
}

fn scripts() -> Vec<(StartTlsProtocol, Vec<(&'static str, &'static str)>)> {
    use StartTlsProtocol::*;
    vec![
        (
            Smtp,
            vec![
                ("", "220 mail ESMTP\r\n"),
                (
                    "EHLO client.example\r\n",
                    "250-mail\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
                ),
                ("STARTTLS\r\n", "220 go ahead\r\n"),
            ],
        ),
        (
            Lmtp,
            vec![
                ("", "220 lmtp\r\n"),
                ("LHLO client.example\r\n", "250 STARTTLS\r\n"),
                ("STARTTLS\r\n", "220 go\r\n"),
            ],
        ),
        (
            Imap,
            vec![
                ("", "* OK ready\r\n"),
                (
                    ". CAPABILITY\r\n",
                    "* CAPABILITY IMAP4rev1 STARTTLS\r\n. OK done\r\n",
                ),
                (". STARTTLS\r\n", ". OK begin TLS\r\n"),
            ],
        ),
        (
            Pop3,
            vec![("", "+OK pop\r\n"), ("STLS\r\n", "+OK begin\r\n")],
        ),
        (
            Ftp,
            vec![
                ("", "220-welcome\r\n220 ftp\r\n"),
                ("AUTH TLS\r\n", "234 go\r\n"),
            ],
        ),
        (
            Nntp,
            vec![("", "201 no posting\r\n"), ("STARTTLS\r\n", "382 go\r\n")],
        ),
        (
            Xmpp,
            vec![
                (
                    "<?xml version='1.0'?><stream:stream to='chat.example' version='1.0' \
                     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
                    "<stream:stream><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
                ),
                (
                    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                ),
            ],
        ),
        (
            Sieve,
            vec![
                ("", "\"IMPLEMENTATION\" \"x\"\r\n\"STARTTLS\"\r\nOK\r\n"),
                ("STARTTLS\r\n", "OK begin\r\n"),
            ],
        ),
    ]
}

#[test]
fn every_dialogue_reaches_its_go_ahead_whole_or_a_byte_at_a_time() {
    for (protocol, script) in scripts() {
        for chunk in [usize::MAX, 1, 3] {
            assert_eq!(
                run(protocol, &script, chunk),
                Ok(DialogueStatus::GoAhead),
                "{protocol:?}, {chunk} bytes at a time"
            );
        }
    }
}

#[test]
fn a_reply_the_dialogue_does_not_need_is_refused_with_what_was_said() {
    let refused = run(
        StartTlsProtocol::Smtp,
        &[
            ("", "220 hi\r\n"),
            ("EHLO client.example\r\n", "502 no EHLO\r\n"),
        ],
        usize::MAX,
    );
    assert_eq!(
        refused,
        Err(StartTlsError::Unexpected {
            expected: "250",
            said: "502 no EHLO".into()
        })
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        "expected `250`, the server said `502 no EHLO`"
    );
    let no_tls = run(
        StartTlsProtocol::Xmpp,
        &[(
            "<?xml version='1.0'?><stream:stream to='chat.example' version='1.0' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            "<stream:features><bind/></stream:features>",
        )],
        usize::MAX,
    );
    assert_eq!(no_tls, Err(StartTlsError::NotOffered));
}

#[test]
fn plaintext_after_the_go_ahead_is_an_injection_in_the_same_read_or_a_later_one() {
    let mut pop3 = StartTlsDialogue::new(StartTlsProtocol::Pop3, "c", "s").unwrap();
    pop3.handle_data(b"+OK\r\n").unwrap();
    assert_eq!(
        pop3.handle_data(b"+OK go\r\n+OK injected\r\n"),
        Err(StartTlsError::Injection { bytes: 14 })
    );
    assert_eq!(pop3.handle_data(b""), Err(StartTlsError::Over));

    let mut smtp = StartTlsDialogue::new(StartTlsProtocol::Smtp, "c", "s").unwrap();
    for reply in ["220 hi\r\n", "250 ok\r\n", "220 go\r\n"] {
        smtp.handle_data(reply.as_bytes()).unwrap();
    }
    assert!(smtp.is_done());
    assert_eq!(smtp.handle_data(b""), Ok(DialogueStatus::GoAhead));
    let injected = smtp.handle_data(b"250 fake\r\n").unwrap_err();
    assert_eq!(injected, StartTlsError::Injection { bytes: 10 });
    assert!(injected.to_string().contains("CVE-2011-0411"), "{injected}");
}

#[test]
fn replies_are_bounded_by_one_line_limit_and_a_line_count() {
    let mut smtp = StartTlsDialogue::new(StartTlsProtocol::Smtp, "c", "s").unwrap();
    let long = vec![b'2'; MAX_LINE];
    assert_eq!(smtp.handle_data(&long), Err(StartTlsError::LineTooLong));

    let mut smtp = StartTlsDialogue::new(StartTlsProtocol::Smtp, "c", "s").unwrap();
    let mut within = b"220 ".to_vec();
    within.resize(MAX_LINE - 2, b'x');
    within.extend_from_slice(b"\r\n");
    assert_eq!(
        smtp.handle_data(&within),
        Ok(DialogueStatus::InProgress),
        "exactly the limit"
    );

    let mut smtp = StartTlsDialogue::new(StartTlsProtocol::Smtp, "c", "s").unwrap();
    let endless = "220-more\r\n".repeat(MAX_REPLY_LINES);
    assert_eq!(
        smtp.handle_data(endless.as_bytes()),
        Err(StartTlsError::TooManyLines)
    );

    let mut xmpp = StartTlsDialogue::new(StartTlsProtocol::Xmpp, "c", "s").unwrap();
    assert_eq!(
        xmpp.handle_data(&vec![b'x'; MAX_LINE]),
        Err(StartTlsError::LineTooLong)
    );
    // An end that comes past the limit, in the same read, is too late all the same.
    let mut xmpp = StartTlsDialogue::new(StartTlsProtocol::Xmpp, "c", "s").unwrap();
    let mut features = b"<stream:features><starttls/>".to_vec();
    features.resize(MAX_LINE, b' ');
    features.extend_from_slice(b"</stream:features>");
    assert_eq!(xmpp.handle_data(&features), Err(StartTlsError::LineTooLong));
    // Within it, taken.
    let mut xmpp = StartTlsDialogue::new(StartTlsProtocol::Xmpp, "c", "s").unwrap();
    features.truncate(MAX_LINE - b"</stream:features>".len());
    features.extend_from_slice(b"</stream:features>");
    assert_eq!(xmpp.handle_data(&features), Ok(DialogueStatus::InProgress));
}

#[test]
fn a_name_that_would_smuggle_a_command_in_is_refused() {
    for (client, server) in [("evil\r\nRSET", "s"), ("c", "x'/><evil")] {
        assert!(matches!(
            StartTlsDialogue::new(StartTlsProtocol::Smtp, client, server),
            Err(StartTlsError::InvalidName(_))
        ));
    }
}

#[test]
fn coded_replies_end_at_a_line_without_a_dash_however_short() {
    // "220" alone ends a reply; "250-" alone goes on.
    let status = run(
        StartTlsProtocol::Smtp,
        &[
            ("", "220\r\n"),
            ("EHLO client.example\r\n", "250-\r\n250 STARTTLS\r\n"),
            ("STARTTLS\r\n", "220\r\n"),
        ],
        usize::MAX,
    );
    assert_eq!(status, Ok(DialogueStatus::GoAhead));
}

#[test]
fn a_dialogue_is_done_only_at_its_go_ahead_and_not_after_a_failure() {
    let mut pop3 = StartTlsDialogue::new(StartTlsProtocol::Pop3, "c", "s").unwrap();
    assert!(!pop3.is_done(), "before the greeting");
    pop3.handle_data(b"+OK\r\n").unwrap();
    assert!(!pop3.is_done(), "before the go-ahead");
    assert_eq!(
        pop3.handle_data(b"-ERR no\r\n").map(|_| ()),
        Err(StartTlsError::Unexpected {
            expected: "+OK",
            said: "-ERR no".into(),
        })
    );
    assert!(!pop3.is_done(), "after a refusal");
    assert_eq!(
        pop3.poll_transmit(),
        None,
        "nothing more is said after a refusal"
    );
}

/// Replies a server might send, right or wrong for the dialogue at hand, and noise.
fn reply() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let lines = [
        "220 ready\r\n",
        "220-more\r\n",
        "250-x\r\n",
        "250 STARTTLS\r\n",
        "* OK\r\n",
        ". OK\r\n",
        "+OK\r\n",
        "-ERR\r\n",
        "OK\r\n",
        "234 go\r\n",
        "382 go\r\n",
        "200 hi\r\n",
        "201\r\n",
        "500 no\r\n",
        "\"X\"\r\n",
        "\r\n",
        "<stream:features><starttls/></stream:features>",
        "<proceed/>",
        "<failure/>",
    ];
    prop_oneof![
        3 => proptest::sample::select(lines.to_vec()).prop_map(|l| l.as_bytes().to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

proptest::proptest! {
    /// Whatever a server sends, in whatever pieces, a dialogue answers with a status or a
    /// typed error, never a panic; after an error it takes nothing more and says nothing
    /// more; once done it refuses every byte; and what it hands out to send is its own
    /// script's lines, never the server's bytes.
    #[test]
    fn any_replies_in_any_pieces_get_a_status_or_a_typed_error(
        protocol in 0usize..8,
        replies in proptest::collection::vec(reply(), 0..16),
        cuts in proptest::collection::vec(1usize..64, 1..16),
    ) {
        use StartTlsProtocol::*;
        let protocol = [Smtp, Imap, Pop3, Ftp, Lmtp, Nntp, Xmpp, Sieve][protocol];
        let mut dialogue = StartTlsDialogue::new(protocol, "client.example", "chat.example").unwrap();
        let stream = replies.concat();
        let (mut at, mut failed, mut done) = (0, false, false);
        for cut in cuts.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let piece = &stream[at..(at + cut).min(stream.len())];
            at += piece.len();
            match dialogue.handle_data(piece) {
                Ok(DialogueStatus::GoAhead) => {
                    proptest::prop_assert!(!failed);
                    done = true;
                }
                Ok(DialogueStatus::InProgress) => proptest::prop_assert!(!failed && !done),
                Err(StartTlsError::Over) => proptest::prop_assert!(failed),
                Err(StartTlsError::Injection { bytes }) => {
                    proptest::prop_assert!(!failed && bytes > 0);
                    failed = true;
                }
                Err(_) => {
                    proptest::prop_assert!(!failed && !done);
                    failed = true;
                }
            }
            while let Some(bytes) = dialogue.poll_transmit() {
                proptest::prop_assert!(!failed, "nothing is said after a failure");
                proptest::prop_assert!(bytes.len() < 256, "a command of the script");
            }
        }
        proptest::prop_assert_eq!(dialogue.is_done(), done && !failed);
    }
}
