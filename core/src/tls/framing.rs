//! TLS record boundaries: where records start in the bytes received, and the header checks
//! rustls's deframer makes.

/// A record header: content type, version, length.
pub(crate) const HEADER: usize = 5;

/// Longest record payload rustls accepts (2^14 plus the expansion TLS 1.2 allows).
const MAX_PAYLOAD: usize = 16_384 + 2_048;

/// Follows record boundaries across reads: how much of the current record is still to come.
#[derive(Debug, Default)]
pub(crate) struct RecordBoundaries {
    header: [u8; HEADER],
    header_len: usize,
    /// Payload bytes of the current record still to come.
    payload_left: usize,
}

impl RecordBoundaries {
    /// Returns true between records: every byte seen so far belongs to a whole record.
    pub(crate) fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    /// Takes `data` into account; returns the offset in `data` of the last record boundary
    /// it crosses (`None` if it ends inside the record it started in).
    pub(crate) fn advance(&mut self, data: &[u8]) -> Option<usize> {
        let mut at = 0;
        let mut last_boundary = None;
        while at < data.len() {
            at += self.step(&data[at..]);
            if self.at_boundary() {
                last_boundary = Some(at);
            }
        }
        last_boundary
    }

    /// Consumes the start of `data` up to the end of the current header or payload; returns
    /// how many bytes that was.
    fn step(&mut self, data: &[u8]) -> usize {
        if self.payload_left > 0 {
            let n = self.payload_left.min(data.len());
            self.payload_left -= n;
            return n;
        }
        let n = (HEADER - self.header_len).min(data.len());
        self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
        self.header_len += n;
        if self.header_len == HEADER {
            self.header_len = 0;
            self.payload_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
        }
        n
    }
}

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

    fn record(content_type: u8, len: u16) -> Vec<u8> {
        let mut bytes = vec![content_type, 3, 3];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend(std::iter::repeat_n(0xaa, usize::from(len)));
        bytes
    }

    #[test]
    fn boundaries_are_found_however_the_reads_cut_the_records() {
        let stream = [record(23, 300), record(21, 2), record(23, 0)].concat();
        let ends = [305, 312, 317];
        for cut in 1..stream.len() {
            let mut boundaries = RecordBoundaries::default();
            let last = boundaries.advance(&stream[..cut]);
            let next_end = ends.iter().find(|&&e| e >= cut).copied().unwrap_or(cut);
            assert_eq!(boundaries.at_boundary(), next_end == cut, "cut at {cut}");
            let expected = ends.iter().rev().find(|&&e| e <= cut).copied();
            assert_eq!(last, expected, "cut at {cut}");
            boundaries.advance(&stream[cut..]);
            assert!(boundaries.at_boundary());
        }
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
