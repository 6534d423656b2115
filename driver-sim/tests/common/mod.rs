//! What the dialogue tests' application does once its dialogue has ended.

use bytes::Bytes;
use tcpclient_core::Event;
use tcpclient_sim::SimConnection;

/// After a dialogue that `opened` the way: sends `message`, reads its echo and finishes;
/// after one that failed: aborts. Then takes every event to the end. Returns the echo.
pub async fn echo_then_end(
    conn: &mut SimConnection,
    opened: bool,
    message: &'static [u8],
) -> Vec<u8> {
    let mut echoed = Vec::new();
    if opened {
        let _ = conn.send(Bytes::from_static(message));
        while echoed.len() < message.len() {
            match conn.recv().await {
                Some(Event::Data(data)) => echoed.extend_from_slice(&data),
                Some(Event::Closed(_)) | None => break,
                Some(_) => {}
            }
        }
        let _ = conn.finish();
    } else {
        let _ = conn.abort();
    }
    while conn.recv().await.is_some() {}
    echoed
}
