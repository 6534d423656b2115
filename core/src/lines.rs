//! Lines of a text dialogue before TLS (a proxy's answer, a STARTTLS exchange), every one
//! bounded by the same limit.

use bytes::BytesMut;

/// Longest line the other side of a dialogue may send, its line feed included.
pub const MAX_LINE: usize = 8 * 1024;

/// A line longer than [`MAX_LINE`] came, or is coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

/// Takes the first whole line out of `received`, without its CR LF; `Ok(None)` until a
/// whole one is there.
pub(crate) fn take_line(received: &mut BytesMut) -> Result<Option<String>, TooLong> {
    let Some(end) = received.iter().position(|&b| b == b'\n') else {
        if received.len() >= MAX_LINE {
            return Err(TooLong);
        }
        return Ok(None);
    };
    if end >= MAX_LINE {
        return Err(TooLong);
    }
    let raw = received.split_to(end + 1);
    Ok(Some(
        String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    ))
}

/// Takes everything up to and including the first `end` out of `received` (a dialogue
/// without lines: XMPP's); `Ok(None)` until it is there. At most [`MAX_LINE`] bytes.
pub(crate) fn take_until(received: &mut BytesMut, end: &[u8]) -> Result<Option<String>, TooLong> {
    match received.windows(end.len()).position(|w| w == end) {
        Some(at) if at + end.len() <= MAX_LINE => {
            let raw = received.split_to(at + end.len());
            Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
        }
        Some(_) => Err(TooLong),
        None if received.len() >= MAX_LINE => Err(TooLong),
        None => Ok(None),
    }
}
