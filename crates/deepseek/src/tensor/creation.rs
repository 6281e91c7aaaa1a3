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
        let n: usize = shape.iter().product();
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
        Self::from_vec(data.to_vec(), shape)
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
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(Error::shape(
                "tensor",
                format!("{} elements given for shape {shape:?}", data.len()),
            ));
        }
        let s = crate::with_dtype!(o.dtype, |T| T::into_storage(
            data.iter().map(|&v| T::from_f64(v)).collect()
        ));
        finish(s, shape, o)
    }
    /// Every element `value`.
    pub fn full(shape: &[usize], value: f64, opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let o = opts.into();
        finish(
            CpuStorage::full(o.dtype, shape.iter().product(), value),
            shape,
            o,
        )
    }
    /// Zeros.
    pub fn zeros(shape: &[usize], opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let o = opts.into();
        finish(CpuStorage::zeros(o.dtype, shape.iter().product()), shape, o)
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
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Self::from_f64s(&v, &[n], opts)
    }
    /// `steps` points evenly from `start` to `end` inclusive.
    pub fn linspace(
        start: f64,
        end: f64,
        steps: usize,
        opts: impl Into<TensorOptions>,
    ) -> Result<Tensor> {
        let v: Vec<f64> = match steps {
            0 => vec![],
            1 => vec![start],
            _ => {
                let st = (end - start) / (steps - 1) as f64;
                // PyTorch fills the second half from the end for symmetry.
                (0..steps)
                    .map(|i| {
                        if i < steps / 2 {
                            start + st * i as f64
                        } else {
                            end - st * (steps - 1 - i) as f64
                        }
                    })
                    .collect()
            }
        };
        Self::from_f64s(&v, &[steps], opts)
    }
    /// The identity matrix `n x m`.
    pub fn eye(n: usize, m: usize, opts: impl Into<TensorOptions>) -> Result<Tensor> {
        let mut v = vec![0.0; n * m];
        for i in 0..n.min(m) {
            v[i * m + i] = 1.0;
        }
        Self::from_f64s(&v, &[n, m], opts)
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
        let n: usize = shape.iter().product();
        let v: Vec<f64> = with_rng(|g| (0..n).map(|_| lo + (hi - lo) * g.uniform()).collect());
        Self::from_f64s(&v, shape, o)
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
        let n: usize = shape.iter().product();
        let v: Vec<f64> = with_rng(|g| (0..n).map(|_| mean + std * g.normal()).collect());
        Self::from_f64s(&v, shape, o)
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
        let n: usize = shape.iter().product();
        let span = (high - low) as u64;
        let v: Vec<f64> = with_rng(|g| {
            (0..n)
                .map(|_| (low + g.below(span) as i64) as f64)
                .collect()
        });
        Self::from_f64s(&v, shape, o)
    }
    /// A random permutation of `0..n` (i64).
    pub fn randperm(n: usize) -> Tensor {
        let mut p: Vec<i64> = (0..n as i64).collect();
        with_rng(|g| {
            for i in (1..n).rev() {
                let j = g.below(i as u64 + 1) as usize;
                p.swap(i, j);
            }
        });
        Tensor::from_cpu(CpuStorage::I64(p.into()), &[n])
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
