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
    /// Memory for a tensor could not be allocated: the system refused it, or the size does
    /// not even fit in the address space. `bytes` is what was asked for (wider than `usize`
    /// so that an overflowing request is still reported exactly).
    #[error("{op}: out of memory: DefaultCPUAllocator: not enough memory: you tried to allocate {bytes} bytes ({})", human_bytes(*.bytes))]
    OutOfMemory { op: String, bytes: u128 },
    /// Anything else.
    #[error("{0}")]
    Msg(String),
}

/// `1.5 GiB`-style rendering of a byte count.
fn human_bytes(b: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
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
    /// Out of memory in `op` for a request of `bytes` bytes.
    pub fn out_of_memory(op: impl Into<String>, bytes: u128) -> Self {
        Error::OutOfMemory {
            op: op.into(),
            bytes,
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
