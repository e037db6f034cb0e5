//! The one error type of the core. The bindings map each variant to one Python
//! exception class (`analogkernels.exceptions`), so every message here is written
//! for the end user: it names the offending field, shape or value.

use thiserror::Error;

/// Every failure the numerical engines can report.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// An array has the wrong shape or length (the message names both).
    #[error("{0}")]
    Shape(String),
    /// A configuration field or argument holds an invalid value.
    #[error("invalid value for `{field}`: {message}")]
    Value {
        /// The name of the field or argument, as the user spells it.
        field: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// Input data contain values the engine cannot take (NaN, inf, out of range).
    #[error("{0}")]
    Data(String),
    /// The computation was stopped by [`crate::parallel::run_interruptible`]'s
    /// poll (Ctrl-C) before it finished; nothing was committed.
    #[error("interrupted")]
    Interrupted,
}

/// Result alias used across the core.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::Value`].
    pub fn value(field: &'static str, message: impl Into<String>) -> Self {
        Error::Value {
            field,
            message: message.into(),
        }
    }
}
