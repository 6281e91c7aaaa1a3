//! Statically quantized layers: u8 activations in, u8 activations out, with scales and zero
//! points fixed by a calibration pass (PyTorch's eager-mode post-training quantization and the
//! models that quantization-aware training converts to).
//!
//! - [`quantize_per_tensor`] / [`dequantize_per_tensor`]: f32 ↔ u8 with one scale and zero
//!   point (`torch.quantize_per_tensor(x, scale, zp, torch.quint8)` and `.dequantize()`).
//! - [`QuantizedLinear`]: `torch.ao.nn.quantized.Linear` (and `LinearReLU` with `relu`).
//! - [`QuantizedConv2d`]: `torch.ao.nn.quantized.Conv2d` (and `ConvReLU2d`), stride, padding,
//!   dilation and groups, padded with the input's zero point.
//!
//! Weights are symmetric int8, per tensor or per output channel (zero point 0); the product is
//! the exact u8 × i8 → i32 [`gemm_u8i8`] (VNNI where the CPU has it); the f32 bias is added
//! and the sum requantized to the output's scale and zero point as fbgemm does:
//! `y = clamp(round_half_even((acc − zp_x·Σw + b / (s_x·s_w)) · s_x·s_w / s_y) + zp_y)`, the
//! lower clamp at `zp_y` when a ReLU is fused.

use super::gemm::{gemm_u8i8, Isa, PackedI8};
use super::qparams::{
    finite_min_max, quantize_u8, quantize_weight_i8, quantize_weight_with_scales, QParams,
};
use crate::backend::cpu::threads;
use crate::{DType, Error, Result, Tensor};

fn f32_values(t: &Tensor, op: &str, what: &str) -> Result<Vec<f32>> {
    if !t.dtype().is_float() {
        return Err(Error::dtype(
            op,
            format!("{what} must be a floating-point tensor, got {}", t.dtype()),
        ));
    }
    t.detach().to_dtype(DType::F32)?.to_vec::<f32>()
}

fn u8_values(t: &Tensor, op: &str) -> Result<Vec<u8>> {
    if t.dtype() != DType::U8 {
        return Err(Error::dtype(
            op,
            format!(
                "expects a quantized (uint8) input, got {}; quantize it first (QuantStub)",
                t.dtype()
            ),
        ));
    }
    t.to_vec::<u8>()
}

/// Checks that `qp` is a usable u8 quantization (positive finite scale, zero point in
/// [0, 255]).
pub fn check_qparams(qp: QParams, op: &str, what: &str) -> Result<()> {
    if !(qp.scale.is_finite() && qp.scale > 0.0 && (0..=255).contains(&qp.zero_point)) {
        return Err(Error::value(
            op,
            format!(
                "{what}: scale must be positive and finite and zero_point in [0, 255], got \
                 scale {} zero_point {}",
                qp.scale, qp.zero_point
            ),
        ));
    }
    Ok(())
}

/// `x` quantized to u8 with `qp` (`round_half_even(x / scale) + zero_point`, clamped to
/// [0, 255]); a u8 tensor of `x`'s shape. Errors on NaN/infinite values.
pub fn quantize_per_tensor(x: &Tensor, qp: QParams) -> Result<Tensor> {
    const OP: &str = "quantize_per_tensor";
    check_qparams(qp, OP, "qparams")?;
    let v = f32_values(x, OP, "input")?;
    finite_min_max(&v, OP, "the input")?;
    let mut q = vec![0u8; v.len()];
    quantize_u8(&v, qp, &mut q);
    Tensor::from_vec(q, x.shape())
}

/// `scale · (q − zero_point)` as f32, for a u8 tensor `q`.
pub fn dequantize_per_tensor(q: &Tensor, qp: QParams) -> Result<Tensor> {
    const OP: &str = "dequantize";
    check_qparams(qp, OP, "qparams")?;
    let v = u8_values(q, OP)?;
    let zp = qp.zero_point;
    let out: Vec<f32> = v
        .iter()
        .map(|&b| (b as i32 - zp) as f32 * qp.scale)
        .collect();
    Tensor::from_vec(out, q.shape())
}

/// The per-output-channel constants of a requantization.
#[derive(Clone, Debug)]
struct Requant {
    /// `s_x · s_w[j] / s_y`.
    mult: Vec<f32>,
    /// `b[j] / (s_x · s_w[j])` (0 without a bias).
    bias_q: Vec<f32>,
    /// `zp_x · Σ_k W[j, k]`.
    corr: Vec<i32>,
    zp_y: f32,
    lo: f32,
}

impl Requant {
    fn new(
        x_qp: QParams,
        w_scales: &[f32],
        per_channel: bool,
        bias: Option<&[f32]>,
        col_sums: &[i32],
        out: QParams,
        relu: bool,
    ) -> Requant {
        let n = col_sums.len();
        let sw = |j: usize| w_scales[if per_channel { j } else { 0 }];
        Requant {
            mult: (0..n).map(|j| x_qp.scale * sw(j) / out.scale).collect(),
            bias_q: (0..n)
                .map(|j| bias.map_or(0.0, |b| b[j] / (x_qp.scale * sw(j))))
                .collect(),
            corr: col_sums.iter().map(|&s| x_qp.zero_point * s).collect(),
            zp_y: out.zero_point as f32,
            lo: if relu { out.zero_point as f32 } else { 0.0 },
        }
    }

    #[inline(always)]
    fn apply(&self, j: usize, acc: i32) -> u8 {
        let v = ((acc - self.corr[j]) as f32 + self.bias_q[j]) * self.mult[j];
        (v.round_ties_even() + self.zp_y).clamp(self.lo, 255.0) as u8
    }
}

/// Shared weight handling: symmetric int8 weights with their scales and an f32 bias.
#[derive(Clone, Debug)]
struct QWeight {
    q: Vec<i8>,
    scales: Vec<f32>,
    per_channel: bool,
    bias: Option<Vec<f32>>,
}

impl QWeight {
    fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        n: usize,
        k: usize,
        per_channel: bool,
        scales: Option<&[f32]>,
        op: &str,
    ) -> Result<QWeight> {
        let w = f32_values(weight, op, "weight")?;
        let (q, scales) = match scales {
            None => quantize_weight_i8(&w, n, k, per_channel, op)?,
            Some(s) => quantize_weight_with_scales(&w, n, k, s, per_channel, op)?,
        };
        let bias = match bias {
            None => None,
            Some(b) => {
                if b.shape() != [n] {
                    return Err(Error::shape(
                        op,
                        format!("bias must have shape [{n}], got {:?}", b.shape()),
                    ));
                }
                let v = f32_values(b, op, "bias")?;
                finite_min_max(&v, op, "the bias")?;
                Some(v)
            }
        };
        Ok(QWeight {
            q,
            scales,
            per_channel,
            bias,
        })
    }
}

/// `torch.ao.nn.quantized.Linear`: `y_q = requant(x_q Wᵀ + b)` on u8 activations with fixed
/// output quantization (and a fused ReLU with `relu`, `torch.ao.nn.intrinsic.quantized.LinearReLU`).
#[derive(Clone, Debug)]
pub struct QuantizedLinear {
    in_features: usize,
    out_features: usize,
    w: QWeight,
    packed: PackedI8,
    out_qp: QParams,
    relu: bool,
    isa: Isa,
}

impl QuantizedLinear {
    /// Quantizes `weight` `[out, in]` (symmetric int8, per tensor or per output channel,
    /// with the scales from its range, or `w_scales` when given: those a quantization-aware
    /// training run's weight observer chose); the output is quantized with `out_qp`. Errors on
    /// NaN/all-zero weights, bad shapes or scales and unusable output parameters.
    pub fn from_float(
        weight: &Tensor,
        bias: Option<&Tensor>,
        per_channel: bool,
        w_scales: Option<&[f32]>,
        out_qp: QParams,
        relu: bool,
    ) -> Result<Self> {
        const OP: &str = "quantized Linear";
        if weight.rank() != 2 {
            return Err(Error::shape(
                OP,
                format!("weight must be 2-d [out, in], got {:?}", weight.shape()),
            ));
        }
        check_qparams(out_qp, OP, "output qparams")?;
        let (n, k) = (weight.shape()[0], weight.shape()[1]);
        let w = QWeight::new(weight, bias, n, k, per_channel, w_scales, OP)?;
        let packed = PackedI8::pack(&w.q, n, k)?;
        Ok(QuantizedLinear {
            in_features: k,
            out_features: n,
            w,
            packed,
            out_qp,
            relu,
            isa: Isa::best(),
        })
    }

    pub fn in_features(&self) -> usize {
        self.in_features
    }
    pub fn out_features(&self) -> usize {
        self.out_features
    }
    /// The output's scale and zero point.
    pub fn out_qparams(&self) -> QParams {
        self.out_qp
    }
    /// Whether a ReLU is fused.
    pub fn relu(&self) -> bool {
        self.relu
    }
    /// Whether the weight has one scale per output channel.
    pub fn per_channel(&self) -> bool {
        self.w.per_channel
    }
    /// The int8 weight `[out, in]`, row-major.
    pub fn weight_int8(&self) -> &[i8] {
        &self.w.q
    }
    /// The weight scales (1 or `out_features`).
    pub fn weight_scales(&self) -> &[f32] {
        &self.w.scales
    }
    /// The f32 bias.
    pub fn bias(&self) -> Option<&[f32]> {
        self.w.bias.as_deref()
    }

    /// `x_q` (u8, `[..., in_features]`, quantized with `x_qp`) → u8 `[..., out_features]`
    /// quantized with [`out_qparams`](Self::out_qparams).
    pub fn forward(&self, x: &Tensor, x_qp: QParams) -> Result<Tensor> {
        const OP: &str = "quantized Linear";
        check_qparams(x_qp, OP, "input qparams")?;
        let (k, n) = (self.in_features, self.out_features);
        if x.rank() == 0 || x.shape()[x.rank() - 1] != k {
            return Err(Error::shape(
                OP,
                format!(
                    "input of shape {:?} does not end in in_features = {k}",
                    x.shape()
                ),
            ));
        }
        let xq = u8_values(x, OP)?;
        let m = xq.len() / k.max(1);
        let mut acc = vec![0i32; m * n];
        gemm_u8i8(self.isa, m, &xq, k, &self.packed, &mut acc, n)?;
        let rq = Requant::new(
            x_qp,
            &self.w.scales,
            self.w.per_channel,
            self.bias(),
            self.packed.col_sums(),
            self.out_qp,
            self.relu,
        );
        let out: Vec<u8> = acc
            .iter()
            .enumerate()
            .map(|(i, &a)| rq.apply(i % n.max(1), a))
            .collect();
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank checked") = n;
        Tensor::from_vec(out, &shape)
    }
}

/// The geometry of a 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// `torch.ao.nn.quantized.Conv2d` (NCHW, u8 activations, int8 weights `[O, C/groups, kh, kw]`),
/// with a fused ReLU under `relu` (`torch.ao.nn.intrinsic.quantized.ConvReLU2d`).
#[derive(Clone, Debug)]
pub struct QuantizedConv2d {
    out_channels: usize,
    in_per_group: usize,
    kh: usize,
    kw: usize,
    p: Conv2dParams,
    w: QWeight,
    /// One packed weight per group, `[O/groups, C/groups·kh·kw]`.
    packed: Vec<PackedI8>,
    out_qp: QParams,
    relu: bool,
    isa: Isa,
}

impl QuantizedConv2d {
    /// Quantizes a float conv weight `[O, C/groups, kh, kw]` (symmetric int8, per tensor or
    /// per output channel; `w_scales` as in [`QuantizedLinear::from_float`]). Errors on bad
    /// shapes/parameters/scales and NaN or all-zero weights.
    pub fn from_float(
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
        per_channel: bool,
        w_scales: Option<&[f32]>,
        out_qp: QParams,
        relu: bool,
    ) -> Result<Self> {
        const OP: &str = "quantized Conv2d";
        if weight.rank() != 4 {
            return Err(Error::shape(
                OP,
                format!(
                    "weight must be 4-d [O, C/groups, kh, kw], got {:?}",
                    weight.shape()
                ),
            ));
        }
        check_qparams(out_qp, OP, "output qparams")?;
        let s = weight.shape();
        let (o, cg, kh, kw) = (s[0], s[1], s[2], s[3]);
        if p.groups == 0 || o % p.groups != 0 {
            return Err(Error::value(
                OP,
                format!("groups={} must divide out_channels={o}", p.groups),
            ));
        }
        if p.stride.contains(&0) || p.dilation.contains(&0) || kh == 0 || kw == 0 || cg == 0 {
            return Err(Error::value(
                OP,
                format!(
                    "stride {:?}, dilation {:?} and kernel {:?} must be positive",
                    p.stride,
                    p.dilation,
                    [kh, kw]
                ),
            ));
        }
        let k = cg * kh * kw;
        let w = QWeight::new(weight, bias, o, k, per_channel, w_scales, OP)?;
        let og = o / p.groups;
        let packed = (0..p.groups)
            .map(|g| PackedI8::pack(&w.q[g * og * k..(g + 1) * og * k], og, k))
            .collect::<Result<Vec<_>>>()?;
        Ok(QuantizedConv2d {
            out_channels: o,
            in_per_group: cg,
            kh,
            kw,
            p,
            w,
            packed,
            out_qp,
            relu,
            isa: Isa::best(),
        })
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    pub fn in_channels(&self) -> usize {
        self.in_per_group * self.p.groups
    }
    /// `[kh, kw]`.
    pub fn kernel_size(&self) -> [usize; 2] {
        [self.kh, self.kw]
    }
    /// Stride, padding, dilation and groups.
    pub fn params(&self) -> Conv2dParams {
        self.p
    }
    /// The output's scale and zero point.
    pub fn out_qparams(&self) -> QParams {
        self.out_qp
    }
    /// Whether a ReLU is fused.
    pub fn relu(&self) -> bool {
        self.relu
    }
    /// Whether the weight has one scale per output channel.
    pub fn per_channel(&self) -> bool {
        self.w.per_channel
    }
    /// The int8 weight `[O, C/groups, kh, kw]`, row-major.
    pub fn weight_int8(&self) -> &[i8] {
        &self.w.q
    }
    /// The weight scales (1 or `out_channels`).
    pub fn weight_scales(&self) -> &[f32] {
        &self.w.scales
    }
    /// The f32 bias.
    pub fn bias(&self) -> Option<&[f32]> {
        self.w.bias.as_deref()
    }

    /// `x_q` (u8 `[N, C, H, W]` quantized with `x_qp`) → u8 `[N, O, Ho, Wo]` quantized with
    /// [`out_qparams`](Self::out_qparams).
    pub fn forward(&self, x: &Tensor, x_qp: QParams) -> Result<Tensor> {
        const OP: &str = "quantized Conv2d";
        check_qparams(x_qp, OP, "input qparams")?;
        let c = self.in_channels();
        if x.rank() != 4 || x.shape()[1] != c {
            return Err(Error::shape(
                OP,
                format!("expected input [N, {c}, H, W], got shape {:?}", x.shape()),
            ));
        }
        let (nb, h, wd) = (x.shape()[0], x.shape()[2], x.shape()[3]);
        let p = self.p;
        let eh = p.dilation[0] * (self.kh - 1) + 1;
        let ew = p.dilation[1] * (self.kw - 1) + 1;
        if h + 2 * p.padding[0] < eh || wd + 2 * p.padding[1] < ew {
            return Err(Error::shape(
                OP,
                format!(
                    "kernel {:?} (dilated {eh}x{ew}) is larger than the padded input {:?}",
                    [self.kh, self.kw],
                    [h + 2 * p.padding[0], wd + 2 * p.padding[1]]
                ),
            ));
        }
        let ho = (h + 2 * p.padding[0] - eh) / p.stride[0] + 1;
        let wo = (wd + 2 * p.padding[1] - ew) / p.stride[1] + 1;
        let xq = u8_values(x, OP)?;
        let o = self.out_channels;
        let rq = Requant::new(
            x_qp,
            &self.w.scales,
            self.w.per_channel,
            self.bias(),
            &self
                .packed
                .iter()
                .flat_map(|pk| pk.col_sums().iter().copied())
                .collect::<Vec<_>>(),
            self.out_qp,
            self.relu,
        );
        let plane_out = ho * wo;
        let mut out = vec![0u8; nb * o * plane_out];
        if out.is_empty() {
            return Tensor::from_vec(out, &[nb, o, ho, wo]);
        }
        let err = std::sync::Mutex::new(None);
        let per_image = o * plane_out;
        threads::par_chunks(&mut out, per_image, |img, dst| {
            let src = &xq[img * c * h * wd..(img + 1) * c * h * wd];
            if let Err(e) = self.image(src, h, wd, ho, wo, x_qp.zero_point as u8, &rq, dst) {
                *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        });
        if let Some(e) = err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Tensor::from_vec(out, &[nb, o, ho, wo])
    }

    /// One image: per group, patches `[Ho·Wo, C/g·kh·kw]` (padding = the input zero point),
    /// the int8 product, requantized into `dst` `[O, Ho, Wo]`.
    #[allow(clippy::too_many_arguments)]
    fn image(
        &self,
        src: &[u8],
        h: usize,
        wd: usize,
        ho: usize,
        wo: usize,
        pad: u8,
        rq: &Requant,
        dst: &mut [u8],
    ) -> Result<()> {
        let p = self.p;
        let (cg, kh, kw) = (self.in_per_group, self.kh, self.kw);
        let k = cg * kh * kw;
        let l = ho * wo;
        let og = self.out_channels / p.groups;
        let mut rows = vec![pad; l * k];
        let mut acc = vec![0i32; l * og];
        for (g, packed) in self.packed.iter().enumerate() {
            for oh in 0..ho {
                for ow in 0..wo {
                    let row = &mut rows[(oh * wo + ow) * k..(oh * wo + ow + 1) * k];
                    let mut r = 0;
                    for ci in g * cg..(g + 1) * cg {
                        let plane = &src[ci * h * wd..(ci + 1) * h * wd];
                        for ki in 0..kh {
                            let ih = (oh * p.stride[0] + ki * p.dilation[0]) as isize
                                - p.padding[0] as isize;
                            for kj in 0..kw {
                                let iw = (ow * p.stride[1] + kj * p.dilation[1]) as isize
                                    - p.padding[1] as isize;
                                row[r] =
                                    if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                                        pad
                                    } else {
                                        plane[ih as usize * wd + iw as usize]
                                    };
                                r += 1;
                            }
                        }
                    }
                }
            }
            gemm_u8i8(self.isa, l, &rows, k, packed, &mut acc, og)?;
            for jj in 0..og {
                let j = g * og + jj;
                let d = &mut dst[j * l..(j + 1) * l];
                for (i, v) in d.iter_mut().enumerate() {
                    *v = rq.apply(j, acc[i * og + jj]);
                }
            }
        }
        Ok(())
    }
}
