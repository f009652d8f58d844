//! A purchase event read as a receipt (L-3): header `total_amount`, `store_code`,
//! `currency`, `receipt_id`, and `lines` of {product, category, brand, quantity,
//! total_line_amount}. Amounts are kept in cents so totals and carries are exact.

use crate::definitions::loyalty::LineFilter;
use crate::value::{map_get, Value};

pub struct ReceiptView<'a> {
    attrs: &'a [(String, Value)],
    lines: &'a [Value],
}

/// An amount in cents (numbers only; anything else is 0).
pub fn to_cents(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_f64).map_or(0, |x| (x * 100.0).round() as i64)
}

fn text<'a>(attrs: &'a [(String, Value)], key: &str) -> Option<&'a str> {
    map_get(attrs, key).and_then(Value::as_str)
}

fn listed(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
}

impl<'a> ReceiptView<'a> {
    pub fn new(attrs: &'a [(String, Value)]) -> ReceiptView<'a> {
        let lines = match map_get(attrs, "lines") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        ReceiptView { attrs, lines }
    }

    /// The receipt's id: `receipt_id`, else the event id.
    pub fn id<'e>(&self, event_id: &'e str) -> &'e str
    where
        'a: 'e,
    {
        text(self.attrs, "receipt_id").unwrap_or(event_id)
    }

    pub fn store(&self) -> Option<&'a str> {
        text(self.attrs, "store_code")
    }

    pub fn in_stores(&self, stores: &[String]) -> bool {
        listed(stores, self.store())
    }

    /// (cents, items, matching lines) for `filter`: with a filter, the matching lines'
    /// `total_line_amount` and `quantity`; without, the header `total_amount` (the
    /// lines' sum when absent) and every line's quantity (`quantity` when no lines).
    pub fn measure(&self, filter: Option<&LineFilter>) -> (i64, i64, usize) {
        let mut cents = 0;
        let mut items = 0;
        let mut matched = 0;
        for line in self.lines {
            let Value::Map(l) = line else { continue };
            if let Some(f) = filter {
                let ok = listed(&f.product, text(l, "product"))
                    && listed(&f.category, text(l, "category"))
                    && listed(&f.brand, text(l, "brand"));
                if !ok {
                    continue;
                }
            }
            matched += 1;
            cents += to_cents(map_get(l, "total_line_amount"));
            items += map_get(l, "quantity").and_then(Value::as_f64).map_or(1, |q| q as i64);
        }
        if filter.is_none() {
            if let Some(t) = map_get(self.attrs, "total_amount") {
                cents = to_cents(Some(t));
            }
            if self.lines.is_empty() {
                items = map_get(self.attrs, "quantity").and_then(Value::as_f64).map_or(0, |q| q as i64);
            }
        }
        (cents, items, matched)
    }
}

/// "12.50" for 1250 cents.
pub fn push_cents(out: &mut String, cents: i64) {
    if cents < 0 {
        out.push('-');
    }
    let c = cents.unsigned_abs();
    out.push_str(itoa::Buffer::new().format(c / 100));
    out.push('.');
    let frac = c % 100;
    if frac < 10 {
        out.push('0');
    }
    out.push_str(itoa::Buffer::new().format(frac));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str, cat: &str, qty: i64, amount: f64) -> Value {
        Value::Map(vec![
            ("product".into(), Value::Str(p.into())),
            ("category".into(), Value::Str(cat.into())),
            ("quantity".into(), Value::Int(qty)),
            ("total_line_amount".into(), Value::F64(amount)),
        ])
    }

    #[test]
    fn header_and_filtered_lines() {
        let attrs = vec![
            ("total_amount".into(), Value::F64(150.5)),
            ("store_code".into(), Value::Str("MI".into())),
            ("lines".into(), Value::Array(vec![line("pull", "Winter", 1, 120.0), line("sock", "basics", 3, 30.5)])),
        ];
        let r = ReceiptView::new(&attrs);
        assert_eq!(r.measure(None), (15050, 4, 2));
        let winter = LineFilter { category: vec!["winter".into()], ..LineFilter::default() };
        assert_eq!(r.measure(Some(&winter)), (12000, 1, 1));
        assert!(r.in_stores(&["mi".into()]) && !r.in_stores(&["RM".into()]) && r.in_stores(&[]));
        assert_eq!(r.id("e9"), "e9");
        let mut s = String::new();
        push_cents(&mut s, 1205);
        assert_eq!(s, "12.05");
    }
}
