//! Messages on QUIC streams: the shared framing ([`tessera_common::frame`]: a 4-byte
//! big-endian length, then the bytes) around each message's postcard encoding. Every read
//! names a limit, so a peer cannot make us allocate more than the conversation needs.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_common::frame;
use tokio::io::{AsyncRead, AsyncWrite};

/// The limit for control messages (commands, replies, hellos).
pub const SMALL: usize = 1 << 20;
/// The limit for messages that carry a membership log or a node list.
pub const LARGE: usize = 16 << 20;

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended before a whole message.
    #[error("the peer closed the stream")]
    Closed,
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(String),
    /// The length is over the limit.
    #[error("a {len}-byte message is over the {limit}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit.
        limit: usize,
    },
    /// The bytes do not decode as the expected message.
    #[error("undecodable message")]
    Decode,
    /// Encoding failed (a bug).
    #[error("cannot encode a message")]
    Encode,
}

/// Writes one message.
pub async fn send<W: AsyncWrite + Unpin, M: Serialize>(w: &mut W, m: &M) -> Result<(), FrameError> {
    let bytes = postcard::to_stdvec(m).map_err(|_| FrameError::Encode)?;
    frame::write(w, &bytes).await.map_err(FrameError::from)
}

/// Reads one message of at most `limit` bytes.
pub async fn recv<R: AsyncRead + Unpin, M: DeserializeOwned>(
    r: &mut R,
    limit: usize,
) -> Result<M, FrameError> {
    let bytes = frame::read(r, limit).await?.ok_or(FrameError::Closed)?;
    postcard::from_bytes(&bytes).map_err(|_| FrameError::Decode)
}

impl From<frame::FrameError> for FrameError {
    fn from(e: frame::FrameError) -> Self {
        match e {
            frame::FrameError::Truncated => FrameError::Closed,
            frame::FrameError::Io(e) => FrameError::Io(e.to_string()),
            frame::FrameError::TooLarge { len, limit } => FrameError::TooLarge { len, limit },
            frame::FrameError::Unframeable(_) => FrameError::Encode,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_limits_and_truncation() {
        let mut buf = Vec::new();
        send(&mut buf, &("hello".to_string(), 7u32)).await.unwrap();
        let got: (String, u32) = recv(&mut buf.as_slice(), SMALL).await.unwrap();
        assert_eq!(got, ("hello".to_string(), 7));
        let e = recv::<_, (String, u32)>(&mut buf.as_slice(), 3)
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { .. }));
        for cut in 0..buf.len() {
            let e = recv::<_, (String, u32)>(&mut &buf[..cut], SMALL)
                .await
                .unwrap_err();
            assert!(matches!(e, FrameError::Closed), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[4] = 200; // a string length past the end
        assert!(matches!(
            recv::<_, (String, u32)>(&mut bad.as_slice(), SMALL).await,
            Err(FrameError::Decode)
        ));
    }
}
