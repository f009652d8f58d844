//! LMDB key layouts shared by the core and the Python side.

/// `contact \0 id`: the seen-event key.
pub fn seen_key(contact: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(contact.len() + 1 + id.len());
    k.extend_from_slice(contact.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
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
    }

    #[test]
    fn shard_is_crc32_ieee() {
        // crc32("123456789") = 0xCBF43926
        assert_eq!(shard_of("123456789", u32::MAX), 0xCBF4_3926);
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("x", 0), 0);
    }
}
