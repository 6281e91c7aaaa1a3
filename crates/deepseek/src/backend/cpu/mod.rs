//! The CPU backend: kernels over [`crate::tensor::CpuStorage`].

mod backend;
pub mod cache;
pub mod conv;
pub mod copy;
pub mod elementwise;
pub(crate) mod fused;
pub mod gemm_nt;
pub mod index;
pub mod math;
pub mod matmul;
pub mod norm;
pub(crate) mod optim;
pub(crate) use backend::CpuBackend;
pub mod reduce;
pub mod rnn;
pub mod smallmm;
pub mod strided;
pub mod team;
pub mod threads;
