//! The TLS handshake, driven with rustls's unbuffered API.
//!
//! The unbuffered connection reads records from a buffer the core owns and encodes its
//! messages into another, so when the handshake is over nothing the peer sent is left inside
//! rustls: the bytes of a record that has only begun to arrive are still ours, and go on to
//! the [`Records`](super::records::Records) layer with the session's keys.
//!
//! A failed handshake sends the fatal alert rustls queues for the peer, as the session's
//! last bytes.

use rustls::client::ClientConnectionData;
use rustls::client::UnbufferedClientConnection;
use rustls::kernel::KernelConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus};
use rustls::{AlertDescription, ClientConfig, ExtractedSecrets};

use super::framing::{HEADER, validate};
use super::{Failed, alert_for, classify, connection_info};
use crate::{AlertSent, TlsError, TlsInfo};

/// What a handshake finished with: everything the record layer needs.
pub(crate) struct Finished {
    pub(crate) info: TlsInfo,
    pub(crate) secrets: ExtractedSecrets,
    pub(crate) kernel: KernelConnection<ClientConnectionData>,
    /// Received bytes after the handshake's last record: the start of the traffic.
    pub(crate) rest: Vec<u8>,
}

/// A handshake under way.
pub(crate) struct Handshake {
    conn: UnbufferedClientConnection,
    /// Received bytes rustls has not consumed yet.
    incoming: Vec<u8>,
    /// How many bytes at the start of `incoming` rustls may see: whole records.
    fed: usize,
}

/// What one batch of received bytes did to the handshake.
pub(crate) enum Progress {
    /// More is needed from the peer.
    Continues(Box<Handshake>),
    /// The handshake is over.
    Done(Box<Finished>),
}

impl Handshake {
    /// Starts a handshake; its ClientHello goes to `out`.
    pub(crate) fn start(
        config: std::sync::Arc<ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        out: &mut Vec<u8>,
    ) -> Result<Box<Self>, TlsError> {
        let conn = UnbufferedClientConnection::new(config, name).map_err(classify)?;
        let mut handshake = Box::new(Self {
            conn,
            incoming: Vec::new(),
            fed: 0,
        });
        // The ClientHello: nothing has been received, so nothing can have finished.
        handshake.advance(out).map_err(|(error, _)| error)?;
        Ok(handshake)
    }

    /// Feeds bytes read from the socket; messages to send go to `out`. Application data
    /// can only come after the record that finishes the handshake, so it is left for the
    /// record layer in [`Finished::rest`].
    pub(crate) fn receive(
        mut self: Box<Self>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Progress, Failed> {
        self.incoming.extend_from_slice(data);
        match self.advance(out)? {
            false => Ok(Progress::Continues(self)),
            // rustls has consumed every record it was fed (the last one finished the
            // handshake): what is left is ciphertext it never saw.
            true => {
                let info = connection_info(&self.conn);
                let rest = std::mem::take(&mut self.incoming);
                let (secrets, kernel) = self
                    .conn
                    .dangerous_into_kernel_connection()
                    .map_err(|e| (classify(e), None))?;
                Ok(Progress::Done(Box::new(Finished {
                    info,
                    secrets,
                    kernel,
                    rest,
                })))
            }
        }
    }

    /// Runs rustls over what was received until it waits for the peer; returns true once
    /// the handshake is over.
    ///
    /// rustls is given one whole record at a time, and no more once the handshake is over:
    /// whatever follows the record that finished it (data, a ticket, a key update, the peer's
    /// `close_notify`) stays ciphertext for the record layer, instead of being acted on by
    /// rustls's own state machine just before it is turned into a kernel connection.
    fn advance(&mut self, out: &mut Vec<u8>) -> Result<bool, Failed> {
        loop {
            // The same buffer each time (rustls keeps positions in it), cut after the
            // records it may see.
            let fed = self.fed.min(self.incoming.len());
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.incoming[..fed]);
            let step = match state {
                Ok(state) => Self::act(state, out).map_err(|error| (error, None)),
                Err(error) => Err((classify(error.clone()), Some(error))),
            };
            let discard = discard.min(fed);
            self.incoming.drain(..discard);
            self.fed = fed - discard;
            match step {
                Ok(Step::Again) => {}
                Ok(Step::Wait) if self.feed_next_record() => {}
                Ok(Step::Wait) => return Ok(false),
                Ok(Step::Done) => return Ok(true),
                Err((error, None)) => return Err((error, None)),
                Err((error, Some(cause))) => {
                    let alert = self.take_alert(&cause, out);
                    return Err((error, alert));
                }
            }
        }
    }

    /// Appends the fatal alert rustls queued on failing with `cause` to `out`, and says
    /// which alert it is: read from the record while it is plaintext, or, once rustls seals
    /// it under the handshake's keys (TLS 1.3, after the server's hello), named after
    /// `cause` where rustls's choice follows from it.
    fn take_alert(&mut self, cause: &rustls::Error, out: &mut Vec<u8>) -> Option<AlertSent> {
        let start = out.len();
        // The same buffer as before: rustls keeps positions in it. A queued alert comes
        // out before any record in it is looked at.
        let fed = self.fed.min(self.incoming.len());
        let UnbufferedStatus { state, .. } =
            self.conn.process_tls_records(&mut self.incoming[..fed]);
        let Ok(ConnectionState::EncodeTlsData(mut encode)) = state else {
            return None;
        };
        encode_into(&mut encode, out).ok()?;
        Some(match out[start..] {
            [ALERT, _, _, 0, 2, 2, description] => {
                AlertSent::Named(AlertDescription::from(description))
            }
            _ => alert_for(cause).map_or(AlertSent::Unnamed, AlertSent::Named),
        })
    }

    /// Lets rustls see the next record once all of it has arrived; returns whether it did.
    /// A header rustls would refuse is let through at once, for rustls to refuse.
    fn feed_next_record(&mut self) -> bool {
        let unfed = &self.incoming[self.fed..];
        let Some(header) = unfed.first_chunk::<HEADER>() else {
            return false;
        };
        let record = if validate(header).is_ok() {
            HEADER + usize::from(u16::from_be_bytes([header[3], header[4]]))
        } else {
            unfed.len()
        };
        if unfed.len() < record {
            return false;
        }
        self.fed += record;
        true
    }

    fn act(
        state: ConnectionState<'_, '_, ClientConnectionData>,
        out: &mut Vec<u8>,
    ) -> Result<Step, TlsError> {
        match state {
            ConnectionState::EncodeTlsData(mut encode) => {
                encode_into(&mut encode, out)?;
                Ok(Step::Again)
            }
            // What was encoded is in `out`, which the core hands out in order.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                Ok(Step::Again)
            }
            ConnectionState::WriteTraffic(_) => Ok(Step::Done),
            ConnectionState::BlockedHandshake => Ok(Step::Wait),
            // Data and the peer's close_notify come after the record that finishes the
            // handshake, which rustls never sees; a client never sees early data.
            other => Err(TlsError::Other {
                reason: format!("the handshake met an unexpected state: {other:?}"),
            }),
        }
    }

    /// What the handshake has negotiated so far.
    pub(crate) fn info(&self) -> TlsInfo {
        connection_info(&self.conn)
    }
}

/// Appends one encoded flight to `out`, making room as rustls asks.
fn encode_into(
    encode: &mut EncodeTlsData<'_, ClientConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let start = out.len();
    let mut room = ENCODE_ROOM;
    for _ in 0..2 {
        out.resize(start + room, 0);
        match encode.encode(&mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(size)) => room = size.required_size,
            Err(error) => {
                out.truncate(start);
                return Err(TlsError::Other {
                    reason: error.to_string(),
                });
            }
        }
    }
    out.truncate(start);
    Err(TlsError::Other {
        reason: "rustls asked for more room than it said it needed".into(),
    })
}

/// What to do after one state.
enum Step {
    Again,
    Wait,
    Done,
}

/// A record's content type when it holds an alert.
const ALERT: u8 = 21;

/// Room made for one encoded handshake flight; a larger one is retried at its size.
const ENCODE_ROOM: usize = 4096;
