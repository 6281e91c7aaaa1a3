//! # deepseek
//!
//! A deep-learning framework: n-dimensional tensors with define-by-run autograd, fast CPU
//! kernels, and a PyTorch-style API.
//!
//! ```
//! use deepseek::prelude::*;
//! deepseek::manual_seed(0);
//! let x = Tensor::randn(&[4, 3], DType::F32)?.requires_grad_(true)?;
//! let w = Tensor::randn(&[2, 3], DType::F32)?.requires_grad_(true)?;
//! let loss = x.linear(&w, None)?.relu()?.sum_all()?;
//! loss.backward()?;
//! assert_eq!(w.grad().unwrap().shape(), &[2, 3]);
//! # Ok::<(), deepseek::Error>(())
//! ```

extern crate self as deepseek;

pub mod autograd;
pub mod backend;
pub mod data;
pub mod distributed;
mod error;
pub mod func;
pub mod lazy;
pub mod memory;
pub mod models;
pub mod monitor;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod optim;
pub mod privacy;
pub mod profiler;
pub mod quant;
pub mod scalar;
pub mod tensor;
pub mod tensorboard;
pub mod tokenizers;
pub mod train;
pub mod tune;
pub mod viz;

pub use autograd::{enable_grad, is_grad_enabled, no_grad, set_grad_enabled, with_no_grad};
pub use backend::cpu::threads::{get_num_threads, set_num_threads};
pub use error::{Error, Result};
pub use tensor::{
    get_printoptions, get_rng_state, manual_seed, set_printoptions, set_rng_state, DType, Device,
    Layout, PrintOptions, Tensor, TensorOptions,
};

/// The names most programs need.
pub mod prelude {
    pub use crate::{no_grad, DType, Device, Error, Result, Tensor, TensorOptions};
}
