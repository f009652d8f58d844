//! A purchase event read as a receipt (L-3): header `total_amount`, `store_code`,
//! `currency`, `receipt_id`, and `lines` of {product, category, brand, quantity,
//! total_line_amount}. Amounts are kept in cents so totals and carries are exact.

use crate::definitions::loyalty::LineFilter;
use crate::value::{map_get, Text, Value};

/// A receipt line, read once per event.
struct Line<'a> {
    product: Option<&'a str>,
    category: Option<&'a str>,
    brand: Option<&'a str>,
    items: i64,
    cents: i64,
}

/// A purchase's receipt, read once per event and measured per rule filter.
pub struct ReceiptView<'a> {
    attrs: &'a [(Text, Value)],
    lines: Vec<Line<'a>>,
    store: Option<&'a str>,
    /// Header `total_amount` in cents, when given.
    total: Option<i64>,
    /// Header `quantity`, when given (receipts without lines).
    quantity: Option<i64>,
}

/// An amount in cents (numbers only; anything else is 0).
pub fn to_cents(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_f64).map_or(0, |x| (x * 100.0).round() as i64)
}

fn text<'a>(attrs: &'a [(Text, Value)], key: &str) -> Option<&'a str> {
    map_get(attrs, key).and_then(Value::as_str)
}

fn listed(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
}

impl<'a> ReceiptView<'a> {
    pub fn new(attrs: &'a [(Text, Value)]) -> ReceiptView<'a> {
        let mut view = ReceiptView { attrs, lines: Vec::new(), store: None, total: None, quantity: None };
        for (k, v) in attrs {
            match (k.as_str(), v) {
                ("lines", Value::Array(items)) => view.lines = items.iter().filter_map(line).collect(),
                ("store_code", Value::Str(s)) => view.store = Some(s),
                ("total_amount", v) if v.is_number() => view.total = Some(to_cents(Some(v))),
                ("quantity", v) => view.quantity = v.as_f64().map(|q| q as i64),
                _ => {}
            }
        }
        view
    }

    /// The receipt's id: `receipt_id`, else the event id.
    pub fn id<'e>(&self, event_id: &'e str) -> &'e str
    where
        'a: 'e,
    {
        text(self.attrs, "receipt_id").unwrap_or(event_id)
    }

    pub fn store(&self) -> Option<&'a str> {
        self.store
    }

    pub fn in_stores(&self, stores: &[String]) -> bool {
        listed(stores, self.store)
    }

    /// (cents, items, matching lines) for `filter`: with a filter, the matching lines'
    /// `total_line_amount` and `quantity`; without, the header `total_amount` (the
    /// lines' sum when absent) and every line's quantity (`quantity` when no lines).
    pub fn measure(&self, filter: Option<&LineFilter>) -> (i64, i64, usize) {
        let mut cents = 0;
        let mut items = 0;
        let mut matched = 0;
        for l in &self.lines {
            if let Some(f) = filter {
                if !(listed(&f.product, l.product) && listed(&f.category, l.category) && listed(&f.brand, l.brand)) {
                    continue;
                }
            }
            matched += 1;
            cents += l.cents;
            items += l.items;
        }
        if filter.is_none() {
            cents = self.total.unwrap_or(cents);
            if self.lines.is_empty() {
                items = self.quantity.unwrap_or(0);
            }
        }
        (cents, items, matched)
    }
}

fn line(v: &Value) -> Option<Line<'_>> {
    let Value::Map(l) = v else { return None };
    let mut out = Line { product: None, category: None, brand: None, items: 1, cents: 0 };
    for (k, v) in l {
        match k.as_str() {
            "product" => out.product = v.as_str(),
            "category" => out.category = v.as_str(),
            "brand" => out.brand = v.as_str(),
            "quantity" => out.items = v.as_f64().map_or(1, |q| q as i64),
            "total_line_amount" => out.cents = to_cents(Some(v)),
            _ => {}
        }
    }
    Some(out)
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
