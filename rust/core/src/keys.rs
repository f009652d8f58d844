//! LMDB key layouts shared by the core and the Python side.

/// `contact \0 id`: the seen-event key.
pub fn seen_key(contact: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(contact.len() + 1 + id.len());
    k.extend_from_slice(contact.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `wake ms (8 bytes BE) contact \0 run (8 bytes BE)`: a timer. Ordered by due time,
/// so the due ones are a prefix of the table; derived from the run alone, so the
/// core can delete it without reading it.
pub fn timer_key(wake_ms: i64, contact: &str, run: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + contact.len());
    k.extend_from_slice(&(wake_ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(contact.as_bytes());
    k.push(0);
    k.extend_from_slice(&run.to_be_bytes());
    k
}

/// (wake ms, contact, run) of a timer key; None when it is not one.
pub fn parse_timer_key(k: &[u8]) -> Option<(i64, &str, u64)> {
    if k.len() < 18 || k[k.len() - 9] != 0 {
        return None;
    }
    let wake = u64::from_be_bytes(k[..8].try_into().ok()?) as i64;
    let contact = std::str::from_utf8(&k[8..k.len() - 9]).ok()?;
    let run = u64::from_be_bytes(k[k.len() - 8..].try_into().ok()?);
    Some((wake, contact, run))
}

/// Shard of a contact: crc32 (IEEE) of its utf-8 bytes modulo `shards`.
pub fn shard_of(contact: &str, shards: u32) -> u32 {
    crc32fast::hash(contact.as_bytes()) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(seen_key("c", "e1"), b"c\0e1".to_vec());
        let k = timer_key(5, "c1", 7);
        assert_eq!(k, b"\0\0\0\0\0\0\0\x05c1\0\0\0\0\0\0\0\0\x07".to_vec());
        assert_eq!(parse_timer_key(&k), Some((5, "c1", 7)));
        assert_eq!(parse_timer_key(b"short"), None);
    }

    #[test]
    fn shard_is_crc32_ieee() {
        // crc32("123456789") = 0xCBF43926
        assert_eq!(shard_of("123456789", u32::MAX), 0xCBF4_3926);
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("x", 0), 0);
    }
}
