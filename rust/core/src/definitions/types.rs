//! Attribute types, built-in event types, channels.

use std::fmt;

/// Declared type of an event attribute or a profile field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    Text,
    Number,
    Bool,
    Date,
    List,
    Map,
}

impl AttrType {
    pub const ALL: [AttrType; 6] =
        [AttrType::Text, AttrType::Number, AttrType::Bool, AttrType::Date, AttrType::List, AttrType::Map];

    pub fn parse(s: &str) -> Option<AttrType> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            AttrType::Text => "text",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::Date => "date",
            AttrType::List => "list",
            AttrType::Map => "map",
        }
    }

    /// Operator names offered for this type (aliases excluded), in documentation order.
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            AttrType::Text => &["equals", "not_equals", "contains", "starts_with", "in", "exists", "not_exists"],
            AttrType::Number => {
                &["equals", "not_equals", "lt", "lte", "gt", "gte", "between", "exists", "not_exists"]
            }
            AttrType::Date => &["before", "after", "within_last", "exists", "not_exists"],
            AttrType::Bool => &["is_true", "is_false", "exists", "not_exists"],
            AttrType::List => &["contains", "exists", "not_exists"],
            AttrType::Map => &["exists", "not_exists"],
        }
    }

    /// The type a value seen in an event suggests (J-6): ISO date strings are dates.
    pub fn infer(v: &crate::value::Value) -> Option<AttrType> {
        use crate::value::Value as V;
        Some(match v {
            V::Str(s) if crate::dates::parse_iso(s).is_some() => AttrType::Date,
            V::Str(_) => AttrType::Text,
            V::Int(_) | V::UInt(_) | V::F64(_) => AttrType::Number,
            V::Bool(_) => AttrType::Bool,
            V::Array(_) => AttrType::List,
            V::Map(_) => AttrType::Map,
            _ => return None,
        })
    }

    /// Does a runtime value have this type? (number = int or float; date = ISO string or int)
    pub fn accepts(self, v: &crate::value::Value) -> bool {
        use crate::value::Value as V;
        match self {
            AttrType::Text => matches!(v, V::Str(_)),
            AttrType::Number => v.is_number(),
            AttrType::Bool => matches!(v, V::Bool(_)),
            AttrType::Date => crate::dates::date_ms(v).is_some(),
            AttrType::List => matches!(v, V::Array(_)),
            AttrType::Map => matches!(v, V::Map(_)),
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Event types every catalog knows, declared or not.
pub const BUILTIN_TYPES: [&str; 13] = [
    "$profile",
    "view",
    "category_view",
    "cart_update",
    "purchase",
    "purchase_return",
    "reward_redeem",
    "loyalty_subscribe",
    "email_open",
    "email_click",
    "app_open",
    "app_install",
    "push_open",
];

pub fn is_builtin(t: &str) -> bool {
    BUILTIN_TYPES.contains(&t)
}

/// Interaction source types (I-1).
pub const SOURCES: [&str; 5] = ["api", "import", "web_tracker", "mobile_sdk", "other"];

/// Where an action may send (J-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    Push,
    InApp,
    Inbox,
    Web,
    WebPush,
    Ads,
}

impl Channel {
    pub const ALL: [Channel; 8] = [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::InApp,
        Channel::Inbox,
        Channel::Web,
        Channel::WebPush,
        Channel::Ads,
    ];

    pub fn parse(s: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::InApp => "in_app",
            Channel::Inbox => "inbox",
            Channel::Web => "web",
            Channel::WebPush => "web_push",
            Channel::Ads => "ads",
        }
    }

    /// Message keys allowed besides `text`.
    pub fn extra_keys(self) -> &'static [&'static str] {
        match self {
            Channel::Email => &["subject", "html"],
            Channel::Push | Channel::InApp => &["title"],
            _ => &[],
        }
    }
}

pub fn channel_names() -> String {
    Channel::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}
