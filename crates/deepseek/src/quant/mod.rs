//! INT8 quantization: kernels and dynamically quantized layers.
//!
//! - [`gemm`]: the u8 × i8 → i32 matrix product with AVX-512 VNNI, AVX-VNNI and AVX2 kernels
//!   picked at run time ([`Isa::best`]) and a portable scalar fallback, all exact (equal to
//!   [`gemm_u8i8_reference`] bit for bit).
//! - [`block`]: GGUF's block-quantised weights (Q8_0, Q4_0, Q4_1) and the small-batch product
//!   that reads them directly (token-by-token decoding of GGUF models).
//! - [`qparams`]: scales and zero points computed as PyTorch's x86/fbgemm engine computes them.
//! - [`static_q`]: statically quantized Linear and Conv2d (u8 in, u8 out, fixed scales from
//!   calibration), behind `deepseek.quantization.prepare` / `convert`.
//! - [`DynamicQuantLinear`]: PyTorch's `quantize_dynamic` Linear (int8 weights per tensor or
//!   per channel, u8 activations quantized per call). The Python front
//!   `deepseek.quantization.quantize_dynamic(model, {nn.Linear}, dtype=deepseek.qint8)` swaps
//!   these in for `nn.Linear` layers.
//!
//! ```
//! use deepseek::quant::DynamicQuantLinear;
//! use deepseek::Tensor;
//! let w = Tensor::from_vec(vec![0.5f32, -1.0, 0.25, 2.0], &[2, 2])?;
//! let q = DynamicQuantLinear::from_float(&w, None, true)?;
//! let x = Tensor::from_vec(vec![1.0f32, 2.0], &[1, 2])?;
//! let y = q.forward(&x)?.to_vec::<f32>()?;
//! assert!((y[0] - (-1.5)).abs() < 0.05 && (y[1] - 4.25).abs() < 0.05);
//! # Ok::<(), deepseek::Error>(())
//! ```

pub mod block;
pub mod gemm;
mod linear;
pub mod qparams;
pub mod static_q;

pub use block::BlockQuantWeight;
pub use gemm::{gemm_u8i8, gemm_u8i8_dequant, gemm_u8i8_reference, Dequant, Isa, PackedI8};
pub use linear::DynamicQuantLinear;
pub use qparams::{choose_qparams, quantize_u8, quantize_weight_i8, QParams};
pub use static_q::{
    dequantize_per_tensor, quantize_per_tensor, Conv2dParams, QuantizedConv2d, QuantizedLinear,
};
