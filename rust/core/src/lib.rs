//! Cairn's pure core: definitions, wire validation, batch apply.
//! No I/O, no clock, no randomness: the same inputs always give the same bytes.

pub mod apply;
pub mod batch;
pub mod dates;
pub mod definitions;
pub mod effect;
pub mod error;
pub mod event;
pub mod facts;
pub mod held;
pub mod inspect;
pub mod journey;
pub mod keys;
pub mod msgpack;
pub mod msgpack_read;
#[cfg(test)]
mod mutants;
pub mod loyalty;
pub mod rows;
pub mod simulate;
pub mod state;
pub mod trace;
mod state_reader;
mod state_writer;
pub mod value;
pub mod vecmap;
pub mod wire;

pub use apply::{apply, BatchResult};
pub use batch::Batch;
pub use definitions::{compile, Catalog};
pub use error::{ApplyError, DefinitionError, FrameError, StateError};
pub use event::Event;
pub use held::HeldStates;
pub use keys::shard_of;
pub use rows::Rows;
pub use value::Value;
pub use wire::{split_frame, FrameSplit};
