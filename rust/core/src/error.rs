//! Error types of the core.

use thiserror::Error;

/// A definitions document that does not compile: every problem found, as (path, message).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}", render(.errors))]
pub struct DefinitionError {
    pub errors: Vec<(String, String)>,
}

fn render(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(p, m)| if p.is_empty() { m.clone() } else { format!("{p}: {m}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A frame or batch that cannot be processed as a whole.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct FrameError {
    /// Protocol error code: `bad_frame` or `invalid`.
    pub code: &'static str,
    pub message: String,
    /// The frame's `seq` when it could be read.
    pub seq: Option<u64>,
}

impl FrameError {
    pub fn bad_frame(message: impl Into<String>) -> Self {
        FrameError { code: "bad_frame", message: message.into(), seq: None }
    }
    pub fn invalid(message: impl Into<String>, seq: Option<u64>) -> Self {
        FrameError { code: "invalid", message: message.into(), seq }
    }
}

/// Stored state that cannot be decoded (corruption or an unknown version).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("state of contact {contact:?}: {message}")]
pub struct StateError {
    pub contact: String,
    pub message: String,
}

/// Errors of `apply`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApplyError {
    #[error(transparent)]
    State(#[from] StateError),
}
