//! Messages on a byte stream (TCP, a QUIC stream): each is a 4-byte big-endian length, then
//! that many bytes. Every read names a limit, so a peer cannot make the reader allocate more
//! than the conversation needs. [`Decoder`] does the same for bytes that arrive in pieces
//! (sans-IO); [`read()`] and [`write()`] work on async streams.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of a frame's length header.
pub const HEADER: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
    /// The announced length is over the reader's limit.
    #[error("a {len}-byte frame is over the {limit}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload does not fit a 4-byte length.
    #[error("a {0}-byte payload cannot be framed")]
    Unframeable(usize),
}

/// A frame's header for a payload of `len` bytes.
pub fn header(len: usize) -> Result<[u8; HEADER], FrameError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| FrameError::Unframeable(len))
}

/// The frame of `payload`: its header, then the payload.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut f = Vec::with_capacity(HEADER + payload.len());
    f.extend_from_slice(&header(payload.len())?);
    f.extend_from_slice(payload);
    Ok(f)
}

/// Frames from bytes that arrive in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next whole frame's payload, if one is buffered; an error if its header announces
    /// more than `limit` bytes (the decoder is then of no further use).
    pub fn next(&mut self, limit: usize) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(h) = self.buf.first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*h) as usize;
        if len > limit {
            return Err(FrameError::TooLarge { len, limit });
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let frame = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some(frame))
    }
    /// Bytes buffered but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Reads a frame's length header: `Ok(None)` when the stream ends cleanly before one.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<u32>, FrameError> {
    let mut h = [0u8; HEADER];
    match r.read_exact(&mut h).await {
        Ok(_) => Ok(Some(u32::from_be_bytes(h))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the `len`-byte payload of a frame whose header was read, refusing more than `limit`.
pub async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
    limit: usize,
) -> Result<Vec<u8>, FrameError> {
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut buf = vec![0u8; len];
    match r.read_exact(&mut buf).await {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Reads one frame of at most `limit` bytes: `Ok(None)` when the stream ends cleanly
/// between frames.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    match read_len(r).await? {
        None => Ok(None),
        Some(len) => read_payload(r, len as usize, limit).await.map(Some),
    }
}

/// Writes one frame and flushes. A small frame goes out in one write (one packet on a
/// stream with no delay); a large one is not copied.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() <= 64 << 10 {
        w.write_all(&encode(payload)?).await?;
    } else {
        w.write_all(&header(payload.len())?).await?;
        w.write_all(payload).await?;
    }
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_limits_and_truncation() {
        let mut buf = Vec::new();
        write(&mut buf, b"hello").await.unwrap();
        write(&mut buf, b"").await.unwrap();
        assert_eq!(
            buf,
            [encode(b"hello").unwrap(), encode(b"").unwrap()].concat()
        );
        let mut r = buf.as_slice();
        assert_eq!(read(&mut r, 5).await.unwrap().unwrap(), b"hello");
        assert_eq!(read(&mut r, 5).await.unwrap().unwrap(), b"");
        assert!(read(&mut r, 5).await.unwrap().is_none());
        assert!(matches!(
            read(&mut buf.as_slice(), 4).await,
            Err(FrameError::TooLarge { len: 5, limit: 4 })
        ));
        for cut in 1..9 {
            let r = read(&mut &buf[..cut], 5).await;
            if cut < HEADER {
                // A partial header is an end of stream, as read_exact reports it.
                assert!(matches!(r, Ok(None)), "cut at {cut}");
            } else {
                assert!(matches!(r, Err(FrameError::Truncated)), "cut at {cut}");
            }
        }
    }

    #[test]
    fn the_decoder_takes_bytes_in_any_pieces() {
        let frames: Vec<Vec<u8>> = (0..20).map(|n| vec![n as u8; n * 7]).collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| encode(f).unwrap()).collect();
        for piece in [1, 3, 4, 5, 64, stream.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for c in stream.chunks(piece) {
                d.push(c);
                while let Some(f) = d.next(1 << 10).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "pieces of {piece}");
            assert_eq!(d.pending(), 0);
        }
        let mut d = Decoder::new();
        d.push(&encode(&[0; 100]).unwrap());
        assert!(matches!(
            d.next(99),
            Err(FrameError::TooLarge { len: 100, .. })
        ));
    }
}
