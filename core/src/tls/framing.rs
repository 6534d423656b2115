//! TLS record headers, checked the way rustls's deframer checks them, for the bytes that
//! arrive after our `close_notify` (see [`TlsSession::receive`](super::TlsSession::receive)).

/// A record header: content type, version, length.
const HEADER: usize = 5;

/// Longest record payload rustls accepts (2^14 plus the expansion TLS 1.2 allows).
const MAX_PAYLOAD: usize = 16_384 + 2_048;

/// The first malformed record in a run of received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Bytes before the malformed record's header: whole or partial well-formed records.
    pub(crate) valid_prefix: usize,
    pub(crate) reason: &'static str,
}

/// Follows record boundaries across reads: where the next header starts, and the part of a
/// header a read cut off.
#[derive(Debug, Default)]
pub(crate) struct RecordFraming {
    header: [u8; HEADER],
    header_len: usize,
    /// Payload bytes of the current record still to come.
    payload_left: usize,
    /// A malformed header was seen: no later byte is a record boundary we can trust.
    malformed: bool,
}

impl RecordFraming {
    /// Checks every record header that starts in `data`. Once one is malformed, every later
    /// call finds the stream malformed from its first byte.
    pub(crate) fn check(&mut self, data: &[u8]) -> Result<(), Malformed> {
        if self.malformed {
            return Err(Malformed {
                valid_prefix: 0,
                reason: "bytes after a malformed record",
            });
        }
        let mut at = 0;
        while at < data.len() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len() - at);
                self.payload_left -= n;
                at += n;
                continue;
            }
            let header_start = at.saturating_sub(self.header_len);
            let n = (HEADER - self.header_len).min(data.len() - at);
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[at..at + n]);
            self.header_len += n;
            at += n;
            if self.header_len < HEADER {
                break;
            }
            if let Err(reason) = validate(&self.header) {
                self.malformed = true;
                return Err(Malformed {
                    valid_prefix: header_start,
                    reason,
                });
            }
            self.header_len = 0;
            self.payload_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
        }
        Ok(())
    }
}

/// The checks of rustls's `read_opaque_message_header`.
fn validate(header: &[u8; HEADER]) -> Result<(), &'static str> {
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

    fn record(content_type: u8, len: u16) -> Vec<u8> {
        let mut bytes = vec![content_type, 3, 3];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0xaa, usize::from(len)));
        bytes
    }

    #[test]
    fn well_formed_records_pass_however_the_reads_cut_them() {
        let stream = [record(23, 300), record(21, 2), record(23, 0)].concat();
        for cut in 1..stream.len() {
            let mut framing = RecordFraming::default();
            assert_eq!(framing.check(&stream[..cut]), Ok(()), "cut at {cut}");
            assert_eq!(framing.check(&stream[cut..]), Ok(()), "cut at {cut}");
        }
    }

    #[test]
    fn a_malformed_header_is_found_with_the_valid_bytes_before_it() {
        let mut stream = record(23, 10);
        stream.extend_from_slice(b"garbage");
        let mut framing = RecordFraming::default();

        let found = framing.check(&stream);

        assert_eq!(
            found,
            Err(Malformed {
                valid_prefix: 15,
                reason: "a record of an unknown content type"
            })
        );
        assert!(
            framing.check(&record(23, 1)).is_err(),
            "malformed stays malformed"
        );
    }

    #[test]
    fn a_header_split_across_reads_is_judged_whole() {
        let mut framing = RecordFraming::default();
        assert_eq!(framing.check(&[23, 3]), Ok(()));

        let found = framing.check(&[3, 0xff, 0xff]);

        assert_eq!(
            found,
            Err(Malformed {
                valid_prefix: 0,
                reason: "a record longer than TLS allows"
            })
        );
    }

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
