//! Dynamically quantized `Linear`: int8 weights quantized once, activations quantized per call.

use super::gemm::{gemm_u8i8_dequant, Dequant, Isa, PackedI8};
use super::qparams::{choose_qparams, finite_min_max, quantize_u8, quantize_weight_i8, QParams};
use crate::{DType, Error, Result, Tensor};

/// `y = x Wᵀ + b` with int8 weights and dynamically quantized u8 activations, PyTorch's
/// `torch.ao.nn.quantized.dynamic.Linear` (engine `x86`/`fbgemm`):
///
/// - the weight `[out, in]` is quantized once to symmetric int8, with one scale for the
///   tensor (PyTorch's `default_dynamic_qconfig`) or one per output channel
///   (`per_channel_dynamic_qconfig`);
/// - each call finds the input's range and quantizes it to u8 with one scale and zero point
///   for the whole batch (7-bit range with `reduce_range`, as PyTorch does on x86);
/// - the u8 × i8 product runs in exact int32 ([`gemm_u8i8_dequant`], VNNI when the CPU has it) and is
///   scaled back to f32 tile by tile as it leaves the kernel: `y[i, j] = (acc[i, j] − zp · Σₖ W[j, k]) · s_x · s_w[j] + b[j]`.
///
/// Inference only: the output carries no autograd history (as in PyTorch).
#[derive(Clone, Debug)]
pub struct DynamicQuantLinear {
    in_features: usize,
    out_features: usize,
    packed: PackedI8,
    w_scales: Vec<f32>,
    per_channel: bool,
    bias: Option<Vec<f32>>,
    reduce_range: bool,
    isa: Isa,
}

fn f32_values(t: &Tensor, op: &str, what: &str) -> Result<Vec<f32>> {
    if !t.dtype().is_float() {
        return Err(Error::dtype(
            op,
            format!("{what} must be a floating-point tensor, got {}", t.dtype()),
        ));
    }
    t.detach().to_dtype(DType::F32)?.to_vec::<f32>()
}

impl DynamicQuantLinear {
    /// Quantizes a float `weight` `[out_features, in_features]` and keeps `bias`
    /// `[out_features]` in f32. Errors on NaN/infinite or all-zero weights and on shape
    /// mismatches.
    pub fn from_float(weight: &Tensor, bias: Option<&Tensor>, per_channel: bool) -> Result<Self> {
        const OP: &str = "quantize_dynamic(Linear)";
        if weight.rank() != 2 {
            return Err(Error::shape(
                OP,
                format!(
                    "weight must be 2-d [out, in], got shape {:?}",
                    weight.shape()
                ),
            ));
        }
        let (n, k) = (weight.shape()[0], weight.shape()[1]);
        let w = f32_values(weight, OP, "weight")?;
        let (q, w_scales) = quantize_weight_i8(&w, n, k, per_channel, OP)?;
        let packed = PackedI8::pack(&q, n, k)?;
        let bias = match bias {
            None => None,
            Some(b) => {
                if b.shape() != [n] {
                    return Err(Error::shape(
                        OP,
                        format!("bias must have shape [{n}], got {:?}", b.shape()),
                    ));
                }
                let v = f32_values(b, OP, "bias")?;
                finite_min_max(&v, OP, "the bias")?;
                Some(v)
            }
        };
        Ok(DynamicQuantLinear {
            in_features: k,
            out_features: n,
            packed,
            w_scales,
            per_channel,
            bias,
            reduce_range: true,
            isa: Isa::best(),
        })
    }

    /// Rebuilds a layer from what [`weight_int8`](Self::weight_int8),
    /// [`weight_scales`](Self::weight_scales) and [`bias`](Self::bias) return (a saved state):
    /// the int8 weight `[out_features, in_features]` row-major, one scale (per tensor) or
    /// `out_features` scales (`per_channel`), and the f32 bias. The result computes exactly what
    /// the saved layer did. Errors on inconsistent sizes and on non-positive or non-finite
    /// scales or bias values.
    pub fn from_int8(
        q: &[i8],
        out_features: usize,
        in_features: usize,
        w_scales: Vec<f32>,
        per_channel: bool,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        const OP: &str = "DynamicQuantLinear::from_int8";
        if q.len() != out_features * in_features {
            return Err(Error::shape(
                OP,
                format!(
                    "{} int8 weights for a [{out_features}, {in_features}] layer",
                    q.len()
                ),
            ));
        }
        let want = if per_channel { out_features } else { 1 };
        if w_scales.len() != want {
            return Err(Error::shape(
                OP,
                format!("expected {want} weight scale(s), got {}", w_scales.len()),
            ));
        }
        if w_scales.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(Error::value(
                OP,
                "weight scales must be finite and positive".to_string(),
            ));
        }
        if let Some(b) = &bias {
            if b.len() != out_features {
                return Err(Error::shape(
                    OP,
                    format!("bias must have {out_features} values, got {}", b.len()),
                ));
            }
            finite_min_max(b, OP, "the bias")?;
        }
        Ok(DynamicQuantLinear {
            in_features,
            out_features,
            packed: PackedI8::pack(q, out_features, in_features)?,
            w_scales,
            per_channel,
            bias,
            reduce_range: true,
            isa: Isa::best(),
        })
    }

    /// Uses the full 8-bit activation range instead of PyTorch's 7-bit `reduce_range`
    /// (exact with VNNI; PyTorch keeps 7 bits so that its AVX2 kernel cannot saturate).
    pub fn with_reduce_range(mut self, reduce_range: bool) -> Self {
        self.reduce_range = reduce_range;
        self
    }

    /// Runs with a given kernel (errors if this CPU lacks it).
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        if !isa.available() {
            return Err(Error::value(
                "DynamicQuantLinear",
                format!("this CPU cannot run the {} kernel", isa.name()),
            ));
        }
        self.isa = isa;
        Ok(self)
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    /// Whether the weight has one scale per output channel.
    pub fn per_channel(&self) -> bool {
        self.per_channel
    }
    pub fn reduce_range(&self) -> bool {
        self.reduce_range
    }
    /// The kernel the forward pass uses.
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// The int8 weight, `[out, in]` row-major (PyTorch's `weight().int_repr()`).
    pub fn weight_int8(&self) -> Vec<i8> {
        self.packed.unpack()
    }
    /// The weight scales: one, or one per output channel.
    pub fn weight_scales(&self) -> &[f32] {
        &self.w_scales
    }
    /// The f32 bias, if any.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }
    /// The dequantized weight `scale · q` as an f32 tensor `[out, in]`.
    pub fn dequantized_weight(&self) -> Result<Tensor> {
        let (n, k) = (self.out_features, self.in_features);
        let q = self.weight_int8();
        let v: Vec<f32> = (0..n * k)
            .map(|i| q[i] as f32 * self.w_scales[if self.per_channel { i / k } else { 0 }])
            .collect();
        Tensor::from_vec(v, &[n, k])
    }

    /// The activation quantization parameters this layer would use for `x` (u8 range).
    pub fn input_qparams(&self, x: &[f32]) -> Result<QParams> {
        let (lo, hi) = finite_min_max(x, "quantized Linear", "the input")?;
        let (lo, hi) = if x.is_empty() { (0.0, 0.0) } else { (lo, hi) };
        choose_qparams(lo, hi, 0, 255, self.reduce_range)
    }

    /// `y = x Wᵀ + b` for `x` of shape `[..., in_features]` (any float dtype; computed in
    /// f32, returned as f32). Errors on a wrong last dimension and on NaN/infinite inputs.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        const OP: &str = "quantized Linear";
        let k = self.in_features;
        let n = self.out_features;
        if x.rank() == 0 || x.shape()[x.rank() - 1] != k {
            return Err(Error::shape(
                OP,
                format!(
                    "input of shape {:?} does not end in in_features = {k}",
                    x.shape()
                ),
            ));
        }
        let m = x.numel() / k.max(1);
        let mut out_shape = x.shape().to_vec();
        *out_shape.last_mut().expect("rank checked") = n;
        // Quantize the input straight from its storage when it is f32 (no copy).
        let quantize = |xv: &[f32]| -> Result<(QParams, Vec<u8>)> {
            let qp = self.input_qparams(xv)?;
            let mut xq = vec![0u8; xv.len()];
            quantize_u8(xv, qp, &mut xq);
            Ok((qp, xq))
        };
        let (qp, xq) = if x.dtype() == DType::F32 {
            x.detach().with_slice(quantize)??
        } else {
            quantize(&f32_values(x, OP, "input")?)?
        };
        let zp = qp.zero_point;
        let mult: Vec<f32> = (0..n)
            .map(|j| qp.scale * self.w_scales[if self.per_channel { j } else { 0 }])
            .collect();
        let corr: Vec<i32> = self.packed.col_sums().iter().map(|&s| zp * s).collect();
        let mut out = vec![0f32; m * n];
        let epi = Dequant {
            corr: &corr,
            mult: &mult,
            bias: self.bias.as_deref(),
        };
        gemm_u8i8_dequant(self.isa, m, &xq, k, &self.packed, epi, &mut out, n)?;
        Tensor::from_vec(out, &out_shape)
    }
}
