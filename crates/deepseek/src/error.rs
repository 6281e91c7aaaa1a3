//! The one error type of deepseek. Every fallible call returns [`Result`].
//!
//! Each variant names the operation that failed; the Python front maps the kinds onto
//! `ValueError` (shape, value), `TypeError` (dtype), `IndexError` (index) and
//! `RuntimeError` (everything else).

/// Everything that can go wrong in deepseek.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit together (broadcast, matmul, cat, ...).
    #[error("{op}: shape mismatch: {msg}")]
    Shape { op: String, msg: String },
    /// A dtype an op does not accept, or two that do not combine.
    #[error("{op}: dtype error: {msg}")]
    DType { op: String, msg: String },
    /// An index outside its range (gather, index_select, embedding, dims).
    #[error("{op}: index out of range: {msg}")]
    Index { op: String, msg: String },
    /// An argument with a value the op does not accept.
    #[error("{op}: invalid argument: {msg}")]
    Value { op: String, msg: String },
    /// Tensors on different devices, or a device that is not available.
    #[error("{op}: device error: {msg}")]
    Device { op: String, msg: String },
    /// Misuse of autograd (backward of a non-scalar without a gradient, a freed graph, ...).
    #[error("autograd: {0}")]
    Autograd(String),
    /// A file that cannot be read or written, or whose content is wrong.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// Anything else.
    #[error("{0}")]
    Msg(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn shape(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Shape {
            op: op.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn dtype(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::DType {
            op: op.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn index(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Index {
            op: op.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn value(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Value {
            op: op.into(),
            msg: msg.into(),
        }
    }
    pub(crate) fn device(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Device {
            op: op.into(),
            msg: msg.into(),
        }
    }
    /// An I/O or file-format error naming the file.
    pub fn io(path: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Io {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

macro_rules! bail_shape {
    ($op:expr, $($arg:tt)*) => { return Err($crate::Error::shape($op, format!($($arg)*))) };
}
macro_rules! bail_value {
    ($op:expr, $($arg:tt)*) => { return Err($crate::Error::value($op, format!($($arg)*))) };
}
pub(crate) use {bail_shape, bail_value};
