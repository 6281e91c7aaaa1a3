//! The scalar element math lives in [`crate::scalar`] (shared by every kernel and by the op
//! declarations); re-exported here for the CPU kernels.

pub use crate::scalar::*;
