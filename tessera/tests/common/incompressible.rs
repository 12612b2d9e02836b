//! Text for cookies too large to fit, whatever zlib does.

/// `len` random-looking printable characters (xorshift), which zlib cannot
/// shrink much.
pub(crate) fn incompressible(len: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'#' + (state % 90) as u8)
        })
        .collect()
}
