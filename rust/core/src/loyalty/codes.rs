//! Reward attribution codes: unguessable, never reused, derived deterministically.
//!
//! A code is a keyed BLAKE3 hash of (contact, event id, program, rule, index) under
//! the shard's secret (an input of the core, like the clock): without the secret a
//! code cannot be guessed; the same event replayed gives the same code (a resend
//! grants nothing new), and different grants differ in their inputs, so with 80
//! bits a collision is out of reach (2^-40 after a trillion codes).

/// Crockford base32: no I, L, O, U, so codes read back unambiguously.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// "XXXX-XXXX-XXXX-XXXX": 16 symbols of 5 bits.
pub fn reward_code(secret: &[u8; 32], contact: &str, event_id: &str, program: &str, rule: &str, index: usize) -> String {
    let mut h = blake3::Hasher::new_keyed(secret);
    for part in [contact, event_id, program, rule] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(&(index as u64).to_le_bytes());
    let digest = h.finalize();
    let bits = u128::from_le_bytes(digest.as_bytes()[..16].try_into().expect("16 bytes"));
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[((bits >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// Normalize a code as a member may type it: case, spaces and dashes ignored.
pub fn normalize(code: &str) -> String {
    let raw: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    raw.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_keyed_stable_and_distinct() {
        let k = [7u8; 32];
        let a = reward_code(&k, "c1", "e1", "club", "bday", 0);
        assert_eq!(a, reward_code(&k, "c1", "e1", "club", "bday", 0));
        assert_eq!(a.len(), 19);
        assert_ne!(a, reward_code(&k, "c1", "e1", "club", "bday", 1));
        assert_ne!(a, reward_code(&k, "c2", "e1", "club", "bday", 0));
        assert_ne!(a, reward_code(&[8u8; 32], "c1", "e1", "club", "bday", 0));
        // Length-prefixed parts: moving a character between parts changes the code.
        assert_ne!(reward_code(&k, "c1", "e", "x", "r", 0), reward_code(&k, "c1e", "", "x", "r", 0));
        assert_eq!(normalize(&a.to_lowercase().replace('-', " ")), a);
    }
}
