//! The payload convention that makes deliveries identifiable.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identity of one published message: the publisher's test-chosen tag and its
/// counter. Unique within a [`Run`](crate::Run).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgId {
    /// The publisher tag (chosen by the test; not necessarily a private name).
    pub sender: String,
    /// The publisher's counter for this message.
    pub counter: u64,
}

impl MsgId {
    /// Builds a message id.
    pub fn new(sender: impl Into<String>, counter: u64) -> Self {
        Self {
            sender: sender.into(),
            counter,
        }
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.sender, self.counter)
    }
}

/// Encodes a payload identifying `(sender, counter)`: the header
/// `"{sender}\0{counter}\0"` padded with filler bytes up to `size` (never
/// shorter than the header). `sender` must not contain a NUL byte.
pub fn encode_payload(sender: &str, counter: u64, size: usize) -> Bytes {
    debug_assert!(!sender.contains('\0'), "publisher tag contains NUL");
    let header = format!("{sender}\0{counter}\0");
    let mut buf = Vec::with_capacity(size.max(header.len()));
    buf.extend_from_slice(header.as_bytes());
    let mut filler = b'a';
    while buf.len() < size {
        buf.push(filler);
        filler = if filler == b'z' { b'a' } else { filler + 1 };
    }
    Bytes::from(buf)
}

/// Decodes a payload made by [`encode_payload`]; `None` if it does not follow
/// the convention (no header, non-UTF-8 tag, empty tag, bad counter).
pub fn decode_payload(payload: &[u8]) -> Option<MsgId> {
    let mut parts = payload.splitn(3, |b| *b == 0);
    let sender = parts.next()?;
    let counter = parts.next()?;
    // The third part (the padding) must exist: the counter is NUL-terminated.
    parts.next()?;
    if sender.is_empty() || counter.is_empty() || !counter.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sender = std::str::from_utf8(sender).ok()?;
    let counter = std::str::from_utf8(counter).ok()?.parse().ok()?;
    Some(MsgId::new(sender, counter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let p = encode_payload("pub-1", 42, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(decode_payload(&p), Some(MsgId::new("pub-1", 42)));
        let short = encode_payload("pub-1", 42, 0);
        assert_eq!(&short[..], b"pub-1\x0042\x00");
        assert_eq!(decode_payload(&short), Some(MsgId::new("pub-1", 42)));
    }

    #[test]
    fn rejects_foreign_payloads() {
        assert_eq!(decode_payload(b""), None);
        assert_eq!(decode_payload(b"hello"), None);
        assert_eq!(decode_payload(b"a\x0012"), None);
        assert_eq!(decode_payload(b"\x0012\x00"), None);
        assert_eq!(decode_payload(b"a\x00x1\x00"), None);
        assert_eq!(decode_payload(b"a\x00\x00"), None);
        assert_eq!(decode_payload(b"\xff\x001\x00"), None);
        assert_eq!(decode_payload(b"a\x0099999999999999999999999\x00"), None);
    }
}
