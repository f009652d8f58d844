//! Damaged copies of valid bytes, for tests that compare two decoders on them.

/// `n` copies of `bytes`, each with 1 to 3 bytes overwritten at random positions;
/// the same copies on every run (xorshift64: reproducible without a dependency).
pub(crate) fn mutants(bytes: &[u8], n: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n).map(move |_| {
        let mut m = bytes.to_vec();
        for _ in 0..=next() % 3 {
            let at = (next() % m.len() as u64) as usize;
            m[at] = next() as u8;
        }
        m
    })
}
