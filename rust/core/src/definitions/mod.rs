//! Definitions: the user's document (model), its compilation into an indexed catalog.

pub mod compile;
pub mod condition;
pub mod model;
pub mod needs;
pub mod types;

use std::collections::{BTreeMap, HashMap};

pub use compile::compile;
pub use condition::{Cond, Ctx};
pub use needs::ProfileNeeds;
pub use types::{AttrType, Channel};

/// A declared interaction type (I-1).
#[derive(Debug, Clone)]
pub struct InteractionType {
    /// Lowercased name.
    pub name: String,
    pub channel: String,
    pub source: String,
    pub attributes: BTreeMap<String, AttrType>,
}

#[derive(Debug, Clone)]
pub struct Send {
    pub channel: Channel,
    pub text: String,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub title: Option<String>,
    /// Profile fields the templates read: what the effect's context carries.
    pub profile_needs: ProfileNeeds,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Decision { when: Cond, yes: usize, no: usize },
    Action { send: Send, next: usize },
    End,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
}

/// A journey; `nodes[0]` is the entry node; the graph is acyclic and fully reachable.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    /// Lowercased trigger event type.
    pub event: String,
    pub filter: Option<Cond>,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Auto,
    Subscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    Qualifying,
    NonQualifying,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            PointKind::Qualifying => "qualifying",
            PointKind::NonQualifying => "non_qualifying",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credit {
    pub points: i64,
    pub kind: PointKind,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Lowercased event type.
    pub event: String,
    pub when: Option<Cond>,
    pub effects: Vec<Credit>,
}

#[derive(Debug, Clone)]
pub struct LoyaltyProgram {
    pub name: String,
    pub currency: Option<String>,
    pub join: Join,
    pub rules: Vec<Rule>,
}

/// What one event type triggers: program indexes, and (loyalty, rule) indexes in order.
#[derive(Debug, Clone, Default)]
pub struct EventIndex {
    pub programs: Vec<usize>,
    pub rules: Vec<(usize, usize)>,
}

/// Compiled, immutable definitions. Cheap to share between threads.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub version: u64,
    pub strict_types: bool,
    pub profile_fields: HashMap<String, AttrType>,
    /// In declaration order.
    pub interaction_types: Vec<InteractionType>,
    /// Lowercased name -> index in `interaction_types`.
    pub type_index: HashMap<String, usize>,
    pub programs: Vec<Program>,
    pub loyalty: Vec<LoyaltyProgram>,
    /// Lowercased event type -> what it triggers.
    pub by_event: rustc_hash::FxHashMap<String, EventIndex>,
}

impl Catalog {
    /// A catalog without definitions, version 0.
    pub fn empty() -> Catalog {
        Catalog::default()
    }

    /// The declared interaction type of a (lowercased) event type.
    pub fn interaction_type(&self, event: &str) -> Option<&InteractionType> {
        self.type_index.get(event).map(|i| &self.interaction_types[*i])
    }

    /// Is the (lowercased) type declared or built in?
    pub fn knows_type(&self, event: &str) -> bool {
        types::is_builtin(event) || self.type_index.contains_key(event)
    }
}
