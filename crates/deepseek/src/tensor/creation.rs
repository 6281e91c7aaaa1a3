//! Creating tensors: from data, constants, ranges, and random draws from the one generator.

use super::rng::with_rng;
use super::{CpuStorage, DType, Device, Element, Tensor};
use crate::error::bail_value;
use crate::{Error, Result};

/// dtype, device and `requires_grad` for a new tensor. `From<DType>` and `From<Device>` let
/// either stand in for the whole.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorOptions {
    pub dtype: DType,
    pub device: Device,
    pub requires_grad: bool,
}

impl Default for TensorOptions {
    fn default() -> Self {
        TensorOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            requires_grad: false,
        }
    }
}

impl TensorOptions {
    pub fn dtype(mut self, d: DType) -> Self {
        self.dtype = d;
        self
    }
    pub fn device(mut self, d: Device) -> Self {
        self.device = d;
        self
    }
    pub fn requires_grad(mut self, r: bool) -> Self {
        self.requires_grad = r;
        self
    }
}

impl From<DType> for TensorOptions {
    fn from(d: DType) -> Self {
        TensorOptions {
            dtype: d,
            ..Default::default()
        }
    }
}
impl From<Device> for TensorOptions {
    fn from(d: Device) -> Self {
        TensorOptions {
            device: d,
            ..Default::default()
        }
    }
}
impl From<()> for TensorOptions {
    fn from(_: ()) -> Self {
        TensorOptions::default()
    }
}

/// `n` elements of `dtype`, the i-th being `f(i)` converted, in one fallible allocation
/// (no intermediate f64 buffer).
fn generate(
    op: &str,
    dtype: DType,
    n: usize,
    mut f: impl FnMut(usize) -> f64,
) -> Result<CpuStorage> {
    Ok(crate::with_dtype!(dtype, |T| {
        let mut v = crate::memory::try_alloc::<T>(op, n)?;
        v.extend((0..n).map(|i| T::from_f64(f(i))));
        T::into_storage(v)
    }))
}

/// `n` values from a source of pairs (the last pair's second value is dropped when `n` is odd).
fn fill_pairs<T>(op: &str, n: usize, mut pair: impl FnMut() -> [T; 2]) -> Result<Vec<T>> {
    let mut v = crate::memory::try_alloc::<T>(op, n)?;
    for _ in 0..n / 2 {
        let [a, b] = pair();
        v.push(a);
        v.push(b);
    }
    if n % 2 == 1 {
        let [a, _] = pair();
        v.push(a);
    }
    Ok(v)
}

/// Significand bits of a float dtype (53 for f64 and non-floats).
fn float_bits(d: DType) -> u32 {
    match d {
        DType::F32 => 24,
        DType::F16 => 11,
        DType::BF16 => 8,
        _ => 53,
    }
}

fn finish(s: CpuStorage, shape: &[usize], o: TensorOptions) -> Result<Tensor> {
    let t = Tensor::from_cpu(s, shape);
    let t = if o.device != Device::Cpu {
        t.to_device(o.device)?
    } else {
        t
    };
    if o.requires_grad {
        t.requires_grad_(true)?;
    }
    Ok(t)
}

impl Tensor {
    /// A tensor owning `data` with `shape`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n = crate::memory::checked_numel("from_vec", shape)?;
        if data.len() != n {
            return Err(Error::shape(
                "from_vec",
                format!(
                    "{} elements given for shape {shape:?} ({n} elements)",
                    data.len()
                ),
            ));
        }
        Ok(Tensor::from_cpu(T::into_storage(data), shape))
    }
    /// A tensor copying `data` with `shape`.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        let mut v = crate::memory::try_alloc("from_slice", data.len())?;
        v.extend_from_slice(data);
        Self::from_vec(v, shape)
    }
    /// A 0-d tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::from_cpu(T::into_storage(vec![v]), &[])
    }
    /// A tensor from f64 values converted to `dtype`.
    pub fn from_f64s(
        data: &[f64],
        shape: &[usize],
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let o = opts.into();
        let n = crate::memory::checked_numel("tensor", shape)?;
        if data.len() != n {
            return Err(Error::shape(
                "tensor",
                format!("{} elements given for shape {shape:?}", data.len()),
            ));
        }
        finish(generate("tensor", o.dtype, n, |i| data[i])?, shape, o)
    }
    /// Every element `value`.
    pub fn full(shape: &[usize], value: f64, opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let o = opts.into();
        let n = crate::memory::checked_numel("full", shape)?;
        finish(CpuStorage::try_full("full", o.dtype, n, value)?, shape, o)
    }
    /// Zeros.
    pub fn zeros(shape: &[usize], opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let o = opts.into();
        let n = crate::memory::checked_numel("zeros", shape)?;
        finish(CpuStorage::try_zeros("zeros", o.dtype, n)?, shape, o)
    }
    /// Ones.
    pub fn ones(shape: &[usize], opts: impl Into<TensorOptions>) -> Result<Tensor> {
        Self::full(shape, 1.0, opts)
    }
    /// `start, start+step, ...` below `end` (like `torch.arange`).
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() {
            bail_value!("arange", "step must be nonzero and finite, got {step}");
        }
        if !start.is_finite() || !end.is_finite() {
            bail_value!(
                "arange",
                "start and end must be finite, got {start} and {end}"
            );
        }
        let nf = ((end - start) / step).ceil().max(0.0);
        if nf > (1u64 << 40) as f64 {
            bail_value!(
                "arange",
                "arange({start}, {end}, {step}) would have {nf} elements"
            );
        }
        let n = nf as usize;
        let o = opts.into();
        finish(
            generate("arange", o.dtype, n, |i| start + i as f64 * step)?,
            &[n],
            o,
        )
    }
    /// `steps` points evenly from `start` to `end` inclusive.
    pub fn linspace(
        start: f64,
        end: f64,
        steps: usize,
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let o = opts.into();
        let st = (end - start) / steps.saturating_sub(1).max(1) as f64;
        // PyTorch fills the second half from the end for symmetry.
        let s = generate("linspace", o.dtype, steps, |i| {
            if steps == 1 {
                start
            } else if i < steps / 2 {
                start + st * i as f64
            } else {
                end - st * (steps - 1 - i) as f64
            }
        })?;
        finish(s, &[steps], o)
    }
    /// The identity matrix `n x m`.
    pub fn eye(n: usize, m: usize, opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let o = opts.into();
        let len = crate::memory::checked_numel("eye", &[n, m])?;
        let s = generate("eye", o.dtype, len, |k| {
            if m > 0 && k / m == k % m {
                1.0
            } else {
                0.0
            }
        })?;
        finish(s, &[n, m], o)
    }
    /// Uniform in [0, 1).
    pub fn rand(shape: &[usize], opts: impl Into<TensorOptions>) -> Result<Tensor> {
        Self::uniform(shape, 0.0, 1.0, opts)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(
        shape: &[usize],
        lo: f64,
        hi: f64,
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let o = opts.into();
        if !o.dtype.is_float() {
            bail_value!(
                "rand",
                "random floats need a floating-point dtype, got {}",
                o.dtype
            );
        }
        let n = crate::memory::checked_numel("rand", shape)?;
        let s = with_rng(|g| -> Result<CpuStorage> {
            if o.dtype == DType::F32 {
                let v = fill_pairs("rand", n, || {
                    g.uniform_f32x2()
                        .map(|u| (lo + (hi - lo) * u as f64) as f32)
                })?;
                return Ok(CpuStorage::F32(v.into()));
            }
            // as many random bits as the dtype's mantissa holds, so [0, 1) stays below 1
            let bits = float_bits(o.dtype);
            generate("rand", o.dtype, n, |_| {
                lo + (hi - lo) * g.uniform_bits(bits)
            })
        })?;
        finish(s, shape, o)
    }
    /// Dropout's mask in one pass: `1 / (1 - p)` where a uniform draw is `>= p` (kept),
    /// 0 elsewhere, with `dtype` (a float) — the values `rand(shape).ge(p) / (1 - p)` has.
    pub fn dropout_mask(shape: &[usize], p: f64, dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() {
            bail_value!(
                "dropout",
                "dropout needs a floating-point dtype, got {}",
                dtype
            );
        }
        let n = crate::memory::checked_numel("dropout", shape)?;
        let scale = 1.0 / (1.0 - p);
        let s = with_rng(|g| -> Result<CpuStorage> {
            if dtype == DType::F32 {
                let s32 = scale as f32;
                let v = fill_pairs("dropout", n, || {
                    g.uniform_f32x2()
                        .map(|u| if u as f64 >= p { s32 } else { 0.0 })
                })?;
                return Ok(CpuStorage::F32(v.into()));
            }
            let bits = float_bits(dtype);
            generate("dropout", dtype, n, |_| {
                if g.uniform_bits(bits) >= p {
                    scale
                } else {
                    0.0
                }
            })
        })?;
        Ok(Tensor::from_cpu(s, shape))
    }
    /// Standard normal.
    pub fn randn(shape: &[usize], opts: impl Into<TensorOptions>) -> Result<Tensor> {
        Self::normal(shape, 0.0, 1.0, opts)
    }
    /// Normal with `mean` and `std`.
    pub fn normal(
        shape: &[usize],
        mean: f64,
        std: f64,
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let o = opts.into();
        if !o.dtype.is_float() {
            bail_value!(
                "randn",
                "random floats need a floating-point dtype, got {}",
                o.dtype
            );
        }
        let n = crate::memory::checked_numel("randn", shape)?;
        let s = with_rng(|g| -> Result<CpuStorage> {
            let mut pair = || g.normal_pair().map(|z| mean + std * z);
            Ok(crate::with_dtype!(o.dtype, |T| {
                let v = fill_pairs("randn", n, || pair().map(T::from_f64))?;
                T::into_storage(v)
            }))
        })?;
        finish(s, shape, o)
    }
    /// Integers uniform in [low, high) (default dtype i64 when `opts` says f32).
    pub fn randint(
        low: i64,
        high: i64,
        shape: &[usize],
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let mut o = opts.into();
        if high <= low {
            bail_value!("randint", "high ({high}) must be greater than low ({low})");
        }
        if o.dtype == DType::F32 {
            o.dtype = DType::I64;
        }
        let n = crate::memory::checked_numel("randint", shape)?;
        let span = high.wrapping_sub(low) as u64;
        let s = with_rng(|g| {
            generate("randint", o.dtype, n, |_| {
                low.wrapping_add(g.below(span) as i64) as f64
            })
        })?;
        finish(s, shape, o)
    }
    /// A random permutation of `0..n` (i64).
    pub fn randperm(n: usize) -> Result<Tensor> {
        let mut p: Vec<i64> = crate::memory::try_collect("randperm", (0..n).map(|i| i as i64))?;
        with_rng(|g| {
            for i in (1..n).rev() {
                let j = g.below(i as u64 + 1) as usize;
                p.swap(i, j);
            }
        });
        Ok(Tensor::from_cpu(CpuStorage::I64(p.into()), &[n]))
    }
    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape(), self.opts())
    }
    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape(), self.opts())
    }
    /// `value` everywhere, like this tensor.
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::full(self.shape(), value, self.opts())
    }
    /// Uniform [0, 1) like this tensor.
    pub fn rand_like(&self) -> Result<Tensor> {
        Tensor::rand(self.shape(), self.opts())
    }
    /// Standard normal like this tensor.
    pub fn randn_like(&self) -> Result<Tensor> {
        Tensor::randn(self.shape(), self.opts())
    }
    /// This tensor's dtype and device as options.
    pub fn opts(&self) -> TensorOptions {
        TensorOptions {
            dtype: self.dtype(),
            device: self.device(),
            requires_grad: false,
        }
    }
}
