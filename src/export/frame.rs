//! gRPC message framing, gzip included.
//!
//! The deflate state (a few hundred KiB of window and tables) is kept and reset between
//! requests: building it per request cost more in page faults and zeroing than compressing did.

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// gzip member header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Frames messages for one client; gzip level 1 when on.
#[derive(Debug)]
pub(crate) struct Framer {
    deflate: Option<Compress>,
}

impl Framer {
    pub(crate) fn new(gzip: bool) -> Self {
        Framer {
            // Raw deflate: the gzip header and trailer are written here.
            deflate: gzip.then(|| Compress::new(Compression::fast(), false)),
        }
    }

    /// One gRPC length-prefixed message: compressed flag, big-endian length, payload.
    pub(crate) fn frame(&mut self, message: &[u8]) -> Bytes {
        let mut out = Vec::new();
        if let Some(deflate) = &mut self.deflate {
            out.reserve(message.len() / 4 + 64);
            out.extend_from_slice(&[1, 0, 0, 0, 0]);
            out.extend_from_slice(&GZIP_HEADER);
            if gzip_into(deflate, message, &mut out) {
                return finish(out);
            }
            // Deflate failed (it does not on in-memory input): send the message uncompressed,
            // which the compressed flag allows whatever the stream's grpc-encoding says.
            out.clear();
        }
        out.reserve(message.len() + 5);
        out.extend_from_slice(&[0, 0, 0, 0, 0]);
        out.extend_from_slice(message);
        finish(out)
    }
}

/// Deflate `message` onto `out` with the gzip trailer; false if deflate reported an error.
fn gzip_into(deflate: &mut Compress, message: &[u8], out: &mut Vec<u8>) -> bool {
    deflate.reset();
    let mut input = message;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.len().max(4096));
        }
        let before = deflate.total_in();
        match deflate.compress_vec(input, out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            Ok(_) => {
                let consumed = usize::try_from(deflate.total_in() - before).unwrap_or(0);
                input = &input[consumed.min(input.len())..];
            }
            Err(_) => return false,
        }
    }
    let mut crc = Crc::new();
    crc.update(message);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input length modulo 2^32.
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    true
}

/// Write the payload length into the 5-byte prefix.
fn finish(mut out: Vec<u8>) -> Bytes {
    let len = u32::try_from(out.len() - 5).unwrap_or(u32::MAX);
    out[1..5].copy_from_slice(&len.to_be_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn unframe(framed: &[u8]) -> (bool, Vec<u8>) {
        let len = u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize;
        assert_eq!(framed.len(), len + 5);
        let payload = &framed[5..];
        if framed[0] == 1 {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(payload)
                .read_to_end(&mut out)
                .unwrap();
            (true, out)
        } else {
            (false, payload.to_vec())
        }
    }

    #[test]
    fn gzip_frames_round_trip_and_the_state_is_reused() {
        let mut framer = Framer::new(true);
        let large: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for message in [&b""[..], b"hello", &large, b"again"] {
            assert_eq!(unframe(&framer.frame(message)), (true, message.to_vec()));
        }
    }

    #[test]
    fn plain_frames_carry_the_message_as_is() {
        let mut framer = Framer::new(false);
        assert_eq!(unframe(&framer.frame(b"abc")), (false, b"abc".to_vec()));
    }
}
