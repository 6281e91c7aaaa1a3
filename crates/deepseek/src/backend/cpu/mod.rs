//! The CPU backend: kernels over [`crate::tensor::CpuStorage`].

pub mod cache;
pub mod conv;
pub mod copy;
pub mod elementwise;
pub mod index;
pub mod math;
pub mod matmul;
pub mod norm;
pub mod op_table;
pub mod reduce;
pub mod rnn;
pub mod smallmm;
pub mod strided;
pub mod team;
pub mod threads;
