//! A decoded batch: the normalized events of one or more parts, in order.

use crate::error::FrameError;
use crate::event::Event;
use crate::value::{decode_exact, Value};

#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    /// End index (exclusive) in `events` of each part.
    pub part_ends: Vec<usize>,
}

impl Batch {
    /// Decode parts produced by `split_frame` (msgpack arrays of normalized events).
    pub fn decode<P: AsRef<[u8]>>(parts: &[P]) -> Result<Batch, FrameError> {
        let mut b = Batch::default();
        for (i, p) in parts.iter().enumerate() {
            let evs: Vec<Event> = decode_exact(p.as_ref())
                .map_err(|e| FrameError::invalid(format!("batch part {i} is not a list of normalized events: {e}"), None))?;
            if let Some(bad) = evs.iter().find(|e| !matches!(e.attrs, Value::Map(_))) {
                return Err(FrameError::invalid(format!("batch part {i}: event '{}' has attrs that are not a map", bad.id), None));
            }
            b.events.extend(evs);
            b.part_ends.push(b.events.len());
        }
        Ok(b)
    }

    /// A batch of the `$timer` events that due timer keys (`keys::timer_key`) come
    /// back as; keys that are not timer keys are an error.
    pub fn timers<K: AsRef<[u8]>>(keys: &[K]) -> Result<Batch, FrameError> {
        let mut events = Vec::with_capacity(keys.len());
        for k in keys {
            let (wake, contact, run) = crate::keys::parse_timer_key(k.as_ref())
                .ok_or_else(|| FrameError::invalid(format!("{:?} is not a timer key", k.as_ref()), None))?;
            events.push(crate::journey::timer_event(wake, contact, run));
        }
        let n = events.len();
        Ok(Batch { events, part_ends: vec![n] })
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Sorted unique contact ids (utf-8 bytes): the state keys to read.
    pub fn state_keys(&self) -> Vec<Vec<u8>> {
        let mut k: Vec<Vec<u8>> = self.events.iter().map(|e| e.contact.as_bytes().to_vec()).collect();
        k.sort_unstable();
        k.dedup();
        k
    }
}
