//! TLS record headers: their size, and the checks rustls's deframer makes.

/// A record header: content type, version, length.
pub(crate) const HEADER: usize = 5;

/// Longest record payload rustls accepts (2^14 plus the expansion TLS 1.2 allows).
const MAX_PAYLOAD: usize = 16_384 + 2_048;

/// The checks of rustls's `read_opaque_message_header`.
pub(crate) fn validate(header: &[u8; HEADER]) -> Result<(), &'static str> {
    let [content_type, major, _minor, len_hi, len_lo] = *header;
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    const APPLICATION_DATA: u8 = 23;
    if !(20..=24).contains(&content_type) {
        return Err("a record of an unknown content type");
    }
    if major != 3 {
        return Err("a record of an unknown protocol version");
    }
    if len == 0 && content_type != APPLICATION_DATA {
        return Err("an empty record");
    }
    if len >= MAX_PAYLOAD {
        return Err("a record longer than TLS allows");
    }
    Ok(())
}

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
}
