//! Bytes searched eight at a time, as one word: for the short runs of a
//! cookie (a header value, the tail before a signature), where setting up a
//! vectorised search costs more than the search and a byte at a time costs
//! a branch per byte.

/// The eight bytes of `bytes` from `start`, as a little-endian word (byte
/// `start` lowest); `None` if fewer than eight are left.
pub(crate) fn word_at(bytes: &[u8], start: usize) -> Option<u64> {
    let chunk = bytes.get(start..start.checked_add(8)?)?;
    <[u8; 8]>::try_from(chunk).ok().map(u64::from_le_bytes)
}

/// The top bit of each byte of `word` equal to `byte`, and of no other:
/// adding to a byte's low seven bits never carries into the next byte.
pub(crate) fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW_SEVEN_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let differences = word ^ u64::from_le_bytes([byte; 8]);
    !(((differences & LOW_SEVEN_BITS) + LOW_SEVEN_BITS) | differences | LOW_SEVEN_BITS)
}
