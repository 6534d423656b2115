//! Record encrypters and decrypters from keys taken out of rustls, for the testkit's
//! servers, which seal and open records themselves.

use rustls::crypto::cipher::{MessageDecrypter, MessageEncrypter};
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion, SupportedCipherSuite};

/// Takes the first whole record out of `incoming`: its content type, version and payload.
pub(crate) fn take_record(
    incoming: &mut Vec<u8>,
) -> Option<(ContentType, ProtocolVersion, Vec<u8>)> {
    let [typ, major, minor, hi, lo, ..] = incoming[..] else {
        return None;
    };
    let end = 5 + usize::from(u16::from_be_bytes([hi, lo]));
    if incoming.len() < end {
        return None;
    }
    let payload = incoming[5..end].to_vec();
    incoming.drain(..end);
    let version = ProtocolVersion::from(u16::from_be_bytes([major, minor]));
    Some((ContentType::from(typ), version, payload))
}

/// The record encrypter for `suite`'s keys `secrets`.
pub(crate) fn encrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Option<Box<dyn MessageEncrypter>> {
    let (key, iv, gcm) = key_and_iv(secrets)?;
    Some(match suite {
        SupportedCipherSuite::Tls13(suite) => suite.aead_alg.encrypter(key, iv),
        SupportedCipherSuite::Tls12(suite) => {
            let (salt, explicit) = match gcm {
                true => iv.as_ref().split_at(4),
                false => (iv.as_ref(), &[][..]),
            };
            suite.aead_alg.encrypter(key, salt, explicit)
        }
    })
}

/// The record decrypter for `suite`'s keys `secrets`.
pub(crate) fn decrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Option<Box<dyn MessageDecrypter>> {
    let (key, iv, gcm) = key_and_iv(secrets)?;
    Some(match suite {
        SupportedCipherSuite::Tls13(suite) => suite.aead_alg.decrypter(key, iv),
        SupportedCipherSuite::Tls12(suite) => {
            let fixed = if gcm { &iv.as_ref()[..4] } else { iv.as_ref() };
            suite.aead_alg.decrypter(key, fixed)
        }
    })
}

fn key_and_iv(
    secrets: ConnectionTrafficSecrets,
) -> Option<(
    rustls::crypto::cipher::AeadKey,
    rustls::crypto::cipher::Iv,
    bool,
)> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv } => Some((key, iv, true)),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Some((key, iv, false)),
        _ => None,
    }
}
