//! A member's loyalty state and the balance operations on it.
//!
//! Balances are kept per kind (qualifying, non-qualifying) in two buckets: available
//! and pending. Points are tracked in lots (what one event earned of one kind, with
//! when it becomes available and when it expires) only where the program needs them:
//! pending points always, available points when they can expire. Spending and
//! expiry take the oldest lots first. Every operation here changes state only;
//! `book::Book` writes the ledger row that explains it.

use serde::{Deserialize, Serialize};

use crate::definitions::PointKind;
use crate::vecmap::VecMap;

/// Points one event earned of one kind, not yet spent or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// `PointKind::idx`.
    pub kind: u8,
    pub points: i64,
    pub earned_ms: i64,
    /// Pending until then (0: available).
    pub available_ms: i64,
    /// Expires then (0: never).
    pub expires_ms: i64,
    /// The receipt that earned it ("" for other events).
    pub receipt: String,
}

/// How many of its latest receipts a member can return against their points:
/// older ones leave the state (with those past `returns_within`), so the state
/// stays small however much a member buys.
pub const MAX_RECEIPTS: usize = 32;

/// A purchase that earned points: what a return reverses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// `receipt_key` of its id: an integer reads faster than a string.
    pub key: u64,
    pub ts: i64,
    /// Receipt total, cents.
    pub cents: i64,
    pub refunded_cents: i64,
    /// Points earned per kind (multipliers included) and reversed so far.
    pub earned: [i64; 2],
    pub reversed: [i64; 2],
}

/// A reward granted to the member, with its attribution code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub code: String,
    pub reward: String,
    pub rule: String,
    pub granted_ms: i64,
    /// 0: never expires.
    pub expires_ms: i64,
    /// 0: not redeemed.
    pub redeemed_ms: i64,
    /// Where it was redeemed: "online", "store MI", ...
    pub redeemed_at: String,
}

impl Grant {
    pub fn status(&self, now_ms: i64) -> &'static str {
        if self.redeemed_ms > 0 {
            "redeemed"
        } else if self.expires_ms > 0 && now_ms >= self.expires_ms {
            "expired"
        } else {
            "active"
        }
    }
}

/// What a rule remembers of one member: running totals (since the rule started),
/// the carry of "every X" measures, counted occasions, and uses per period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Cents and items of matching receipts, and their number.
    pub spent: i64,
    pub quantity: i64,
    pub transactions: i64,
    /// Amount (cents), items or transactions carried towards the next "every X".
    pub carry: i64,
    /// (ts, cents, items) of matching receipts inside the rule's `within` period.
    pub window: Vec<(i64, i64, i64)>,
    /// Times of occasions counted towards `count.times` (within its period).
    pub counted: Vec<i64>,
    /// Start of the current restriction period and the uses in it.
    pub period: i64,
    pub uses: u32,
    /// Inactivity: the last activity it fired for; birthday: the year it fired.
    pub fired: i64,
}

/// One member of one loyalty program. Stored positionally in the contact's state:
/// new fields go at the end, with a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub joined_ms: i64,
    /// Available balances.
    pub qualifying: i64,
    pub non_qualifying: i64,
    /// Pending balances, by `PointKind::idx`.
    #[serde(default)]
    pub pending: [i64; 2],
    /// Ordered tier ("": below the first threshold).
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub vip: bool,
    /// "YYYY-MM-DD" or "MM-DD".
    #[serde(default)]
    pub birthday: String,
    #[serde(default)]
    pub lots: Vec<Lot>,
    #[serde(default)]
    pub receipts: Vec<Receipt>,
    #[serde(default)]
    pub progress: VecMap<String, Progress>,
    #[serde(default)]
    pub rewards: Vec<Grant>,
    /// When the member's timer is due (0: none set).
    #[serde(default)]
    pub wake_ms: i64,
    /// Last event of each type an inactivity rule watches.
    #[serde(default)]
    pub active_ms: VecMap<String, i64>,
    /// The promotion to VIP has been recorded (a tier change happens once).
    #[serde(default)]
    pub vip_noted: bool,
}

impl Member {
    pub fn new(joined_ms: i64) -> Member {
        Member { joined_ms, ..Member::default() }
    }

    pub fn balance(&self, k: PointKind) -> i64 {
        match k {
            PointKind::Qualifying => self.qualifying,
            PointKind::NonQualifying => self.non_qualifying,
        }
    }

    fn balance_mut(&mut self, k: PointKind) -> &mut i64 {
        match k {
            PointKind::Qualifying => &mut self.qualifying,
            PointKind::NonQualifying => &mut self.non_qualifying,
        }
    }

    /// Earn `points`: pending until `available_ms` when given, else available now;
    /// kept as a lot when they can expire (`expires_ms` > 0) or are pending.
    pub fn earn(&mut self, k: PointKind, points: i64, now: i64, available_ms: Option<i64>, expires_ms: i64, receipt: &str) {
        let pending = available_ms.filter(|a| *a > now);
        if pending.is_some() {
            self.pending[k.idx()] += points;
        } else {
            *self.balance_mut(k) += points;
        }
        if pending.is_none() && expires_ms == 0 {
            return;
        }
        // Same kind, same day of earning and expiry, both available: one lot.
        if let Some(l) = self.lots.last_mut().filter(|l| {
            pending.is_none() && l.available_ms == 0 && l.kind == k as u8 && l.expires_ms == expires_ms && l.receipt == receipt
        }) {
            l.points += points;
            return;
        }
        self.lots.push(Lot {
            kind: k as u8,
            points,
            earned_ms: now,
            available_ms: pending.unwrap_or(0),
            expires_ms,
            receipt: receipt.to_owned(),
        });
    }

    /// Take up to `points` from the available balance, oldest lots first; returns
    /// what was taken (never more than the balance: a balance is never negative).
    pub fn take(&mut self, k: PointKind, points: i64) -> i64 {
        let taken = points.min(self.balance(k)).max(0);
        *self.balance_mut(k) -= taken;
        let mut left = taken;
        for l in self.lots.iter_mut().filter(|l| l.kind == k as u8 && l.available_ms == 0) {
            let t = left.min(l.points);
            l.points -= t;
            left -= t;
            if left == 0 {
                break;
            }
        }
        self.lots.retain(|l| l.points > 0);
        taken
    }

    /// Cancel up to `points` pending points of `receipt`; returns what was cancelled.
    pub fn cancel_pending(&mut self, k: PointKind, receipt: &str, points: i64) -> i64 {
        let mut left = points;
        for l in self.lots.iter_mut().filter(|l| l.kind == k as u8 && l.available_ms > 0 && l.receipt == receipt) {
            let t = left.min(l.points);
            l.points -= t;
            left -= t;
        }
        self.lots.retain(|l| l.points > 0);
        let cancelled = points - left;
        self.pending[k.idx()] -= cancelled;
        cancelled
    }

    /// Pending lots due at `now` become available: (kind, points, receipt) per lot.
    /// Lots that cannot expire merge into the balance.
    pub fn release_due(&mut self, now: i64) -> Vec<(PointKind, i64, String)> {
        let mut out = Vec::new();
        for l in self.lots.iter_mut().filter(|l| l.available_ms > 0 && l.available_ms <= now) {
            let k = kind_of(l.kind);
            self.pending[k.idx()] -= l.points;
            match k {
                PointKind::Qualifying => self.qualifying += l.points,
                PointKind::NonQualifying => self.non_qualifying += l.points,
            }
            out.push((k, l.points, l.receipt.clone()));
            l.available_ms = 0;
            if l.expires_ms == 0 {
                l.points = 0;
            }
        }
        self.lots.retain(|l| l.points > 0);
        out
    }

    /// Available lots whose expiry passed: their points leave the balance. Returns
    /// the points expired per kind.
    pub fn expire_due(&mut self, now: i64) -> [i64; 2] {
        let mut gone = [0i64; 2];
        for l in self.lots.iter_mut().filter(|l| l.available_ms == 0 && l.expires_ms > 0 && l.expires_ms <= now) {
            gone[l.kind as usize] += l.points;
            l.points = 0;
        }
        self.lots.retain(|l| l.points > 0);
        self.qualifying -= gone[0];
        self.non_qualifying -= gone[1];
        gone
    }

    /// The earliest moment a lot becomes available or expires.
    pub fn next_lot_change(&self) -> Option<i64> {
        self.lots.iter().map(|l| if l.available_ms > 0 { l.available_ms } else { l.expires_ms }).filter(|t| *t > 0).min()
    }

    pub fn receipt_mut(&mut self, id: &str) -> Option<&mut Receipt> {
        let key = receipt_key(id);
        self.receipts.iter_mut().find(|r| r.key == key)
    }

    /// Forget receipts that can no longer be returned: past `keep_ms`, or beyond
    /// the latest `MAX_RECEIPTS - 1` (room for one more).
    pub fn prune_receipts(&mut self, now: i64, keep_ms: i64) {
        self.receipts.retain(|r| r.ts > now.saturating_sub(keep_ms));
        let over = self.receipts.len().saturating_sub(MAX_RECEIPTS - 1);
        self.receipts.drain(..over);
    }
}

/// The key a receipt id is kept under (64-bit xxh3: collisions between one
/// member's receipts are out of reach).
pub fn receipt_key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

pub fn kind_of(k: u8) -> PointKind {
    if k == 0 {
        PointKind::Qualifying
    } else {
        PointKind::NonQualifying
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PointKind::{NonQualifying as NQ, Qualifying as Q};

    fn lots_sum(m: &Member, k: PointKind, pending: bool) -> i64 {
        m.lots.iter().filter(|l| l.kind == k as u8 && (l.available_ms > 0) == pending).map(|l| l.points).sum()
    }

    #[test]
    fn spending_takes_oldest_lots_and_never_goes_negative() {
        let mut m = Member::new(0);
        m.earn(NQ, 10, 1, None, 100, "");
        m.earn(NQ, 5, 2, None, 200, "");
        assert_eq!(m.take(NQ, 12), 12);
        assert_eq!(m.lots.len(), 1);
        assert_eq!((m.lots[0].points, m.lots[0].expires_ms), (3, 200));
        assert_eq!(m.take(NQ, 50), 3);
        assert_eq!((m.non_qualifying, m.lots.len()), (0, 0));
    }

    #[test]
    fn pending_points_release_or_cancel() {
        let mut m = Member::new(0);
        m.earn(Q, 10, 1, Some(100), 0, "r1");
        m.earn(Q, 4, 1, Some(100), 0, "r2");
        assert_eq!((m.qualifying, m.pending[0]), (0, 14));
        assert_eq!(m.cancel_pending(Q, "r1", 6), 6);
        assert_eq!(m.pending[0], 8);
        let released = m.release_due(100);
        assert_eq!(released.len(), 2);
        assert_eq!((m.qualifying, m.pending[0]), (8, 0));
        // Points that cannot expire merge into the balance: no lot left.
        assert!(m.lots.is_empty());
    }

    #[test]
    fn receipts_are_bounded_by_age_and_count() {
        let mut m = Member::new(0);
        for i in 0..100i64 {
            m.prune_receipts(i, 1_000);
            m.receipts.push(Receipt { key: receipt_key(&format!("r{i}")), ts: i, cents: 1, refunded_cents: 0, earned: [1, 0], reversed: [0, 0] });
        }
        assert_eq!(m.receipts.len(), MAX_RECEIPTS);
        assert!(m.receipt_mut("r99").is_some() && m.receipt_mut("r10").is_none());
        m.prune_receipts(2_000, 1_000);
        assert!(m.receipts.is_empty());
    }

    #[test]
    fn expiry_takes_what_is_left_of_old_lots() {
        let mut m = Member::new(0);
        m.earn(NQ, 10, 1, None, 50, "");
        m.earn(NQ, 10, 2, None, 80, "");
        m.take(NQ, 4);
        assert_eq!(m.expire_due(50), [0, 6]);
        assert_eq!(m.non_qualifying, 10);
        assert_eq!(lots_sum(&m, NQ, false), 10);
        assert_eq!(m.next_lot_change(), Some(80));
    }
}
