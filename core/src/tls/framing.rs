//! TLS record headers: their size, and the checks rustls's deframer makes.

/// A record header: content type, version, length.
pub(crate) const HEADER: usize = 5;

/// Longest record payload rustls accepts (2^14 plus the expansion TLS 1.2 allows).
const MAX_PAYLOAD: usize = 16_384 + 2_048;

/// The checks of rustls's `read_opaque_message_header`, on as much of a header as has
/// arrived: like rustls, a content type or version no TLS record has is refused as soon as
/// its bytes are in, without waiting for the rest.
pub(crate) fn validate(header: &[u8]) -> Result<(), &'static str> {
    const APPLICATION_DATA: u8 = 23;
    if let Some(content_type) = header.first()
        && !(20..=24).contains(content_type)
    {
        return Err("a record of an unknown content type");
    }
    if let [_, major, minor, ..] = *header
        && major != 3
        && !KNOWN_OTHER_VERSIONS.contains(&u16::from_be_bytes([major, minor]))
    {
        return Err("a record of an unknown protocol version");
    }
    let [content_type, _, _, len_hi, len_lo] = *header else {
        return Ok(());
    };
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if len == 0 && content_type != APPLICATION_DATA {
        return Err("an empty record");
    }
    if len >= MAX_PAYLOAD {
        return Err("a record longer than TLS allows");
    }
    Ok(())
}

/// Versions rustls knows by name outside 3.x, which its header check lets through (for the
/// record to fail later): SSL 2 and DTLS 1.0, 1.2 and 1.3.
const KNOWN_OTHER_VERSIONS: [u16; 4] = [0x0002, 0xfeff, 0xfefd, 0xfefc];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_header_rules() {
        assert!(validate(&[22, 3, 1, 0, 5]).is_ok());
        assert!(
            validate(&[23, 3, 3, 0, 0]).is_ok(),
            "empty application data is allowed"
        );
        assert!(validate(&[21, 3, 3, 0, 0]).is_err());
        assert!(validate(&[23, 2, 0, 0, 5]).is_err());
        assert!(validate(&[19, 3, 3, 0, 5]).is_err());
        assert!(validate(&[23, 3, 3, 0x48, 0x00]).is_err());
    }

    #[test]
    fn a_partial_header_is_refused_as_soon_as_its_type_or_version_is_wrong() {
        assert!(validate(&[]).is_ok());
        assert!(validate(&[10]).is_err());
        assert!(validate(&[23, 3]).is_ok());
        assert!(validate(&[23, 4, 0]).is_err());
        assert!(
            validate(&[23, 0xfe, 0xff]).is_ok(),
            "DTLS 1.0 is a version rustls knows"
        );
        assert!(validate(&[23, 3, 3, 0x48]).is_ok());
    }
}
