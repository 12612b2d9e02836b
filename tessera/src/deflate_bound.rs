//! Whether zlib could possibly make a short payload smaller, answered without
//! running it.
//!
//! Flask compresses a session only when zlib saves at least two bytes, and to
//! stay byte-identical tessera makes the same decision. For a tiny session
//! (a counter, a flag) the answer is always "no", but asking zlib costs a few
//! microseconds of stream setup and Huffman tree building — most of the cost
//! of writing such a cookie. This module proves the "no" from the format
//! alone: it computes a lower bound on the length of *any* single-block
//! deflate encoding of the data, so the decision it skips is exactly the one
//! zlib would have made.
//!
//! The bound, for data of `n` bytes (one block: zlib emits a single block for
//! inputs this small):
//!
//! - A byte can be inside a back-reference only if one of the three-byte
//!   strings that contain it occurred earlier (every match is at least three
//!   bytes, and each of its three-byte substrings repeats an earlier one).
//!   The other bytes are *forced literals*.
//! - Stored block: more than `n` bytes.
//! - Fixed Huffman: 3 header bits, 7 for end-of-block, at least 8 per forced
//!   literal (9 above 143), and for each run of bytes that could be covered,
//!   the cheaper of 8 bits a byte or 12 bits per match (a length code of 7
//!   bits and a distance code of 5, at most 258 bytes each).
//! - Dynamic Huffman: 3 + 5 + 5 + 4 header bits, at least four 3-bit
//!   code-length-code lengths, at least two code-length symbols (257 lengths
//!   cannot fit one run), and for the data, the entropy of the forced
//!   literals and end-of-block: no prefix code spends fewer bits on them
//!   (Gibbs' inequality, whatever else the code holds).
//!
//! Tiny sessions usually repeat no three-byte string, and then a cheaper
//! form of the same bound settles it first: every byte is a forced literal,
//! so a fixed block needs at least `10 + 8n` bits, always beyond the budget
//! below, and the entropy of `T` symbols none of which occurs more than
//! `c` times is at least `T * log2(T / c)`.
//!
//! zlib's framing adds 6 bytes (header and Adler-32), so zlib cannot save two
//! bytes when the smallest bound exceeds `8 * (n - 8)` bits.

/// The bound rules zlib out for typical sessions of up to about 24 bytes of
/// JSON and practically never beyond 32, so longer data goes straight to zlib
/// (the check itself is quadratic in the length).
const MAX_CHECKED: usize = 32;

/// True when no zlib stream of `data` is at least two bytes shorter than it,
/// so that trying zlib is pointless. False means "maybe": ask zlib.
pub(crate) fn zlib_cannot_save_two_bytes(data: &[u8]) -> bool {
    let n = data.len();
    if n > MAX_CHECKED {
        return false;
    }
    // Compressed output must fit in n - 2 bytes, 6 of which are framing.
    let Some(budget_bytes) = n.checked_sub(8) else {
        return true;
    };
    let budget_bits = 8 * budget_bytes as u64;
    let coverable = coverable_positions(data);
    (coverable == 0 && all_literals_exceed(data, budget_bits))
        || bound_exceeds(data, coverable, budget_bits)
}

/// Header bits of a dynamic block before its data: `BFINAL` and `BTYPE`,
/// `HLIT`, `HDIST`, `HCLEN`, four code-length-code lengths and two
/// code-length symbols at least.
const DYNAMIC_HEADER_BITS: u64 = 3 + 5 + 5 + 4 + 4 * 3 + 2;

/// For data in which no three-byte string repeats (so every byte is a
/// forced literal): true when the bound with the entropy taken at its least
/// for the most frequent byte's count already exceeds the budget. The fixed
/// block's `10 + 8n` bits always do, and so do a stored block's.
fn all_literals_exceed(data: &[u8], budget_bits: u64) -> bool {
    let mut counts = [0u8; 256];
    // End-of-block occurs once.
    let mut most = 1u8;
    for &byte in data {
        let count = &mut counts[usize::from(byte)];
        *count += 1;
        most = most.max(*count);
    }
    let total = data.len() + 1;
    let log2 = &*LOG2;
    let bits = total as f64 * (log2[total] - log2[usize::from(most)]);
    DYNAMIC_HEADER_BITS + whole_bits_below(bits) > budget_bits
}

/// The whole bound for `data` with its `coverable` positions.
fn bound_exceeds(data: &[u8], coverable: u64, budget_bits: u64) -> bool {
    let n = data.len();

    let mut fixed_bits: u64 = 3 + 7;
    // How often each byte is a forced literal, and the distinct ones in order.
    let mut counts = [0u8; 256];
    let mut distinct = [0u8; MAX_CHECKED];
    let mut distinct_len = 0;
    let mut run = 0u64;
    for (position, &byte) in data.iter().enumerate() {
        if coverable & (1 << position) != 0 {
            run += 1;
            continue;
        }
        fixed_bits += run_cost(run);
        run = 0;
        fixed_bits += if byte < 144 { 8 } else { 9 };
        let count = &mut counts[usize::from(byte)];
        if *count == 0 {
            distinct[distinct_len] = byte;
            distinct_len += 1;
        }
        *count += 1;
    }
    fixed_bits += run_cost(run);
    if fixed_bits <= budget_bits {
        return false;
    }

    // End-of-block occurs once.
    let literal_counts = distinct[..distinct_len]
        .iter()
        .map(|&byte| u32::from(counts[usize::from(byte)]));
    let dynamic_bits = DYNAMIC_HEADER_BITS + entropy_bits(literal_counts.chain([1]));
    let stored_bits = 8 * (n as u64 + 5);
    dynamic_bits.min(stored_bits) > budget_bits
}

/// Bit `i` is set when byte `i` could lie inside a back-reference: some
/// three-byte string containing it occurred earlier in `data` (at most 64
/// bytes long).
fn coverable_positions(data: &[u8]) -> u64 {
    debug_assert!(data.len() <= 64);
    let mut grams = [0u32; 64];
    // A 256-bit filter of the strings seen so far: most strings are new, and
    // the filter says so without a search.
    let mut seen = [0u64; 4];
    let mut repeats: u64 = 0;
    for (start, window) in data.windows(3).enumerate() {
        let gram = u32::from_le_bytes([window[0], window[1], window[2], 0]);
        let slot = (gram.wrapping_mul(0x9e37_79b1) >> 24) as usize;
        let (word, bit) = (slot >> 6, 1u64 << (slot & 63));
        if seen[word] & bit != 0 && grams[..start].contains(&gram) {
            repeats |= 1 << start;
        }
        seen[word] |= bit;
        grams[start] = gram;
    }
    // A repeated three-byte string at `start` covers bytes start..start+3.
    repeats | (repeats << 1) | (repeats << 2)
}

/// The least a run of `length` coverable bytes can cost in a fixed block:
/// all literals, or matches of at most 258 bytes at 12 bits or more each.
fn run_cost(length: u64) -> u64 {
    (8 * length).min(12 * length.div_ceil(258))
}

/// A lower bound, in whole bits, on what any prefix code spends on symbols
/// occurring `counts` times (in all at most `MAX_CHECKED + 1`): their entropy.
fn entropy_bits(counts: impl Iterator<Item = u32> + Clone) -> u64 {
    let log2 = &*LOG2;
    let total = counts.clone().sum::<u32>() as usize;
    let bits: f64 = counts
        .map(|count| f64::from(count) * (log2[total] - log2[count as usize]))
        .sum();
    whole_bits_below(bits)
}

/// A lower bound in bits, computed in floating point, as whole bits:
/// rounding errors must not push it up, so it is rounded down with a margin.
fn whole_bits_below(bits: f64) -> u64 {
    (bits - 1e-6).max(0.0).floor() as u64
}

/// `log2(i)` for every count `entropy_bits` meets.
static LOG2: std::sync::LazyLock<[f64; MAX_CHECKED + 2]> = std::sync::LazyLock::new(|| {
    let mut table = [0.0; MAX_CHECKED + 2];
    for (i, entry) in table.iter_mut().enumerate().skip(1) {
        *entry = (i as f64).log2();
    }
    table
});

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    /// zlib's real answer, as Flask (itsdangerous) computes it.
    fn zlib_saves_two_bytes(data: &[u8]) -> bool {
        let mut compressor = Compress::new(Compression::default(), true);
        let mut out = Vec::with_capacity(data.len() + 64);
        compressor
            .compress_vec(data, &mut out, FlushCompress::Finish)
            .expect("zlib compresses");
        out.len() + 2 <= data.len()
    }

    fn check(data: &[u8]) -> bool {
        let skipped = zlib_cannot_save_two_bytes(data);
        if skipped {
            assert!(
                !zlib_saves_two_bytes(data),
                "the bound ruled out compression that zlib achieves: {:?}",
                String::from_utf8_lossy(data)
            );
        }
        skipped
    }

    #[test]
    fn tiny_sessions_skip_zlib() {
        for json in [
            &br#"{"counter":1}"#[..],
            br#"{"counter":123456}"#,
            br#"{"visits":7}"#,
            br#"{"_fresh":false}"#,
            br#"{"user":"alice"}"#,
            b"{}",
            b"",
        ] {
            assert!(check(json), "{:?}", String::from_utf8_lossy(json));
        }
    }

    /// The cheap form of the bound never rules out what the whole bound
    /// allows: it takes the same entropy at its least.
    #[test]
    fn the_cheap_bound_is_weaker_than_the_whole_one() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut decided = 0;
        for _ in 0..20_000 {
            let length = rng.gen_range(8..=MAX_CHECKED);
            let alphabet = rng.gen_range(1..=40u8);
            let data: Vec<u8> = (0..length)
                .map(|_| b' ' + rng.gen_range(0..alphabet))
                .collect();
            let coverable = coverable_positions(&data);
            let budget = 8 * (length as u64 - 8);
            if coverable == 0 && all_literals_exceed(&data, budget) {
                decided += 1;
                assert!(
                    bound_exceeds(&data, coverable, budget),
                    "{:?}",
                    String::from_utf8_lossy(&data)
                );
            }
        }
        assert!(
            decided > 1000,
            "the cheap bound decided only {decided} cases"
        );
        // The sessions it is for.
        for json in [&br#"{"counter":1}"#[..], br#"{"counter":123456}"#] {
            let budget = 8 * (json.len() as u64 - 8);
            assert_eq!(coverable_positions(json), 0);
            assert!(all_literals_exceed(json, budget));
        }
    }

    #[test]
    fn compressible_data_is_left_to_zlib() {
        for data in [
            &b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"[..],
            br#"{"a":"xyzxyzxyzxyzxyzxyzxyzxyzxyzxyz"}"#,
            br#"{"k":"abcdabcdabcdabcdabcdabcd"}"#,
        ] {
            assert!(zlib_saves_two_bytes(data));
            assert!(!zlib_cannot_save_two_bytes(data));
        }
    }

    /// The bound never rules out what zlib does, over random data from small
    /// alphabets (repetitive, the hard case), random bytes, and JSON-like
    /// sessions; and it does rule out most tiny sessions.
    #[test]
    fn the_bound_never_contradicts_zlib() {
        let mut rng = StdRng::seed_from_u64(0x7e55e7a);
        let mut tiny_sessions = 0;
        let mut tiny_skipped = 0;
        for round in 0..40_000 {
            let length = rng.gen_range(0..=MAX_CHECKED + 2);
            let data: Vec<u8> = match round % 4 {
                0 => {
                    let alphabet = rng.gen_range(1..=6u8);
                    (0..length)
                        .map(|_| b'a' + rng.gen_range(0..alphabet))
                        .collect()
                }
                1 => (0..length).map(|_| rng.gen()).collect(),
                2 => {
                    // A few bytes repeated with small variations.
                    let unit: Vec<u8> = (0..rng.gen_range(1..8)).map(|_| rng.gen()).collect();
                    (0..length)
                        .map(|i| {
                            if rng.gen_ratio(1, 6) {
                                rng.gen()
                            } else {
                                unit[i % unit.len()]
                            }
                        })
                        .collect()
                }
                _ => {
                    let keys = ["counter", "user", "_fresh", "theme", "n", "cart", "visits"];
                    let entries = rng.gen_range(0..3);
                    let body: Vec<String> = (0..entries)
                        .map(|_| {
                            let key = keys[rng.gen_range(0..keys.len())];
                            match rng.gen_range(0..3) {
                                0 => format!("\"{key}\":{}", rng.gen_range(0..100_000)),
                                1 => format!("\"{key}\":{}", rng.gen_bool(0.5)),
                                _ => format!("\"{key}\":\"{}\"", "xy".repeat(rng.gen_range(0..6))),
                            }
                        })
                        .collect();
                    let json = format!("{{{}}}", body.join(","));
                    tiny_sessions += 1;
                    if check(json.as_bytes()) {
                        tiny_skipped += 1;
                    }
                    continue;
                }
            };
            check(&data);
        }
        assert!(
            tiny_skipped * 2 > tiny_sessions,
            "the bound skipped zlib for only {tiny_skipped} of {tiny_sessions} tiny sessions"
        );
    }
}
