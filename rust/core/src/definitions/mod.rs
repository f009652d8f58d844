//! Definitions: the user's document (model), its compilation into an indexed catalog.

pub mod arbitration;
pub mod compile;
pub mod condition;
pub mod facts;
pub mod loyalty;
pub mod model;
pub mod needs;
pub mod programs;
pub mod triggers;
pub mod types;
pub mod when;

use std::collections::{BTreeMap, HashMap};

pub use compile::{compile, compile_next};
pub use condition::{Cond, Ctx};
pub use facts::FactDef;
pub use loyalty::{Join, LoyaltyProgram, PointKind, Rule};
pub use needs::{reads_loyalty, ProfileNeeds};
pub use types::{AttrType, Channel};
pub use when::{Until, Wake};

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
    /// Can a template read the loyalty balances (`needs::reads_loyalty`)? Else the
    /// effect's context carries none.
    pub reads_loyalty: bool,
}

/// What an Action node does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a message on a channel (J-7).
    Send(Send),
    /// Add the contact to (or remove it from) a digital-ads audience; the ads channel
    /// syncs audiences in batches.
    Audience { name: String, add: bool },
    /// Change profile fields in the contact's state, at once.
    UpdateProfile { set: Vec<(String, crate::value::Value)>, unset: Vec<String> },
    /// Call a webhook with a rendered body (JSON of the context when no template:
    /// then the context carries the whole profile and the loyalty balances).
    Webhook { url: String, body: Option<String>, profile_needs: ProfileNeeds, reads_loyalty: bool },
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Decision { when: Cond, yes: usize, no: usize },
    /// Ordered branches: the first whose condition holds, else `otherwise`.
    Splitter { branches: Vec<(Cond, usize)>, otherwise: usize },
    /// `said`: how explain words the wait ("wait 3d"), worded once at compile.
    Wait { wake: Wake, said: String, next: usize },
    /// Wait up to `timeout_ms` for an event of type `event` matching `filter` (and
    /// sharing the trigger's `same` attribute): `occurred` at once, else `not_occurred`.
    WaitFor { event: String, filter: Option<Cond>, same: Option<String>, timeout_ms: i64, occurred: usize, not_occurred: usize },
    /// Weighted, sticky per contact; `control` percent leave as a control group.
    Random { branches: Vec<(f64, usize)>, control: f64 },
    Action { action: Action, next: usize },
    End,
}

impl NodeKind {
    /// The nodes this one may lead to.
    pub fn successors(&self) -> Vec<usize> {
        match self {
            NodeKind::Decision { yes, no, .. } => vec![*yes, *no],
            NodeKind::Splitter { branches, otherwise } => branches.iter().map(|b| b.1).chain([*otherwise]).collect(),
            NodeKind::Wait { next, .. } | NodeKind::Action { next, .. } => vec![*next],
            NodeKind::WaitFor { occurred, not_occurred, .. } => vec![*occurred, *not_occurred],
            NodeKind::Random { branches, .. } => branches.iter().map(|b| b.1).collect(),
            NodeKind::End => vec![],
        }
    }

    /// Does a run stop here until a timer or an event?
    pub fn waits(&self) -> bool {
        matches!(self, NodeKind::Wait { .. } | NodeKind::WaitFor { .. })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Decision { .. } => "decision",
            NodeKind::Splitter { .. } => "splitter",
            NodeKind::Wait { .. } => "wait",
            NodeKind::WaitFor { .. } => "wait_for",
            NodeKind::Random { .. } => "random",
            NodeKind::Action { .. } => "action",
            NodeKind::End => "end",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
}

/// Entry rules of a program.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub reentry: bool,
    pub concurrent: bool,
    pub cooloff_ms: i64,
}

impl Default for Entry {
    fn default() -> Self {
        Entry { reentry: true, concurrent: false, cooloff_ms: 0 }
    }
}

impl Entry {
    /// Must the contact's entries into this program be remembered?
    pub fn needs_log(&self) -> bool {
        !self.reentry || self.cooloff_ms > 0
    }
}

/// The exit rule: this event ends the run at once, as a conversion.
#[derive(Debug, Clone)]
pub struct Goal {
    pub event: String,
    pub filter: Option<Cond>,
    pub same: Option<String>,
}

/// A journey; `nodes[0]` is the entry node. Every node is reachable and every cycle
/// passes through a Wait or Wait-and-check node.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    /// The catalog version in which this program last changed: contacts inside keep
    /// the version they entered with.
    pub version: u64,
    /// Lowercased trigger event type.
    pub event: String,
    pub filter: Option<Cond>,
    pub entry: Entry,
    pub goal: Option<Goal>,
    pub priority: i64,
    /// Exempt from caps and quiet hours, and email needs no marketing opt-in.
    pub transactional: bool,
    /// Drop (rather than defer) a message held by a cap or quiet hours.
    pub drop_on_limit: bool,
    pub time_zone: when::Zone,
    pub nodes: Vec<Node>,
    /// The program's definition as written (msgpack): unchanged source = same version.
    pub source: Vec<u8>,
}

impl Program {
    /// Index of the node with id `id`.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }
}

/// A named set of contacts (I-4), evaluated live.
#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    pub description: Option<String>,
    pub when: Cond,
}

/// What one event type triggers: program indexes, and (loyalty, rule) indexes in order.
#[derive(Debug, Clone, Default)]
pub struct EventIndex {
    /// Programs triggered by this type, highest priority first.
    pub programs: Vec<usize>,
    /// `programs` by their trigger filter's equality (positions in `programs`).
    pub triggers: triggers::TriggerIndex,
    /// Loyalty programs with rules on this type (or whose inactivity it resets).
    pub loyalty: Vec<usize>,
    /// Facts (indexes in `Catalog::facts`) that count events of this type.
    pub facts: Vec<usize>,
}

/// Compiled, immutable definitions. Cheap to share between threads.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub version: u64,
    /// The shard's secret for reward codes (`loyalty::codes`): not part of the
    /// definitions; the store sets it after compiling.
    pub secret: [u8; 32],
    pub strict_types: bool,
    pub profile_fields: HashMap<String, AttrType>,
    /// In declaration order.
    pub interaction_types: Vec<InteractionType>,
    /// Lowercased name -> index in `interaction_types`.
    pub type_index: HashMap<String, usize>,
    pub programs: Vec<Program>,
    /// Earlier versions of programs, kept for the contacts still inside them.
    pub retired: Vec<Program>,
    pub segments: Vec<Segment>,
    pub loyalty: Vec<LoyaltyProgram>,
    /// Event histories the definitions' conditions count (see `facts`).
    pub facts: Vec<FactDef>,
    pub arbitration: arbitration::Arbitration,
    /// Lowercased event type -> what it triggers.
    pub by_event: rustc_hash::FxHashMap<String, EventIndex>,
    /// name -> (version, index in `programs` followed by `retired`): waiting runs
    /// find their program on every event of their contact.
    pub program_index: rustc_hash::FxHashMap<String, Vec<(u64, usize)>>,
    /// Store decision reasons as text, as builds before decision traces did
    /// (`trace`): for tests that compare the text rendered from traces with it.
    #[doc(hidden)]
    pub text_reasons: bool,
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

    /// The program `name` at `version`: current or retired.
    pub fn program(&self, name: &str, version: u64) -> Option<&Program> {
        let &(_, i) = self.program_index.get(name)?.iter().find(|(v, _)| *v == version)?;
        self.programs.get(i).or_else(|| self.retired.get(i - self.programs.len()))
    }

    /// Rebuild `program_index` after `programs` or `retired` changed.
    pub fn index_programs(&mut self) {
        self.program_index.clear();
        for (i, p) in self.programs.iter().chain(&self.retired).enumerate() {
            self.program_index.entry(p.name.clone()).or_default().push((p.version, i));
        }
    }

    /// Index of the segment named `name` (case-insensitive).
    pub fn segment_index(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// Is the (lowercased) type declared or built in?
    pub fn knows_type(&self, event: &str) -> bool {
        types::is_builtin(event) || self.type_index.contains_key(event)
    }
}
