//! Read-only questions over stored states: who is in a segment.

use crate::definitions::{Catalog, Ctx};
use crate::error::StateError;
use crate::state::State;

/// The contacts (state keys) among `states` that are in segment `segment` (an index
/// in `cat.segments`) at `now_ms`. Segments read profiles and counted histories only.
pub fn segment_members<'s, K, V>(cat: &Catalog, segment: usize, states: &'s [(K, V)], now_ms: i64) -> Result<Vec<&'s [u8]>, StateError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let when = &cat.segments[segment].when;
    let mut members = Vec::new();
    for (k, v) in states {
        let contact = String::from_utf8_lossy(k.as_ref());
        let state = State::decode(&contact, v.as_ref())?;
        let ctx = Ctx { attrs: &[], profile: &state.profile, ts: now_ms, facts: &state.facts };
        if when.eval(&ctx, None) {
            members.push(k.as_ref());
        }
    }
    Ok(members)
}
