//! Reductions (sum, mean, max, min, prod, argmax), and composites built on them: logsumexp,
//! var/std with `correction`, vector norms, cumsum.

use super::Op;
use crate::autograd::{needs_record, record1, Ctx};
use crate::tensor::layout::norm_dims;
use crate::{backend, DType, Error, Result, Tensor};

/// The primitive reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    ArgMax,
    ArgMin,
}

impl ReduceOp {
    pub fn name(&self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "amax",
            ReduceOp::Min => "amin",
            ReduceOp::Prod => "prod",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }
}

/// Shape of `shape` with `dims` reduced (kept as 1 when `keepdim`).
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, &s) in shape.iter().enumerate() {
        if dims.contains(&i) {
            if keepdim {
                out.push(1);
            }
        } else {
            out.push(s);
        }
    }
    out
}

pub(crate) fn apply(
    x: &Tensor,
    op: ReduceOp,
    dims: Option<&[isize]>,
    keepdim: bool,
) -> Result<Tensor> {
    if x.rank() == 0 {
        if let Some(d) = dims {
            norm_dims(op.name(), d, 0)?;
        }
        if op == ReduceOp::Mean && !x.dtype().is_float() {
            return Err(Error::dtype(
                "mean",
                format!("input dtype must be floating point, got {}", x.dtype()),
            ));
        }
        return match op {
            ReduceOp::ArgMax | ReduceOp::ArgMin => Tensor::zeros(&[], DType::I64),
            ReduceOp::Sum | ReduceOp::Prod if !x.dtype().is_float() => x.to_dtype(DType::I64),
            _ => Ok(x.clone()),
        };
    }
    let mut dims = match dims {
        None => (0..x.rank()).collect(),
        Some(d) => norm_dims(op.name(), d, x.rank())?,
    };
    dims.sort();
    let x = if op == ReduceOp::Mean && !x.dtype().is_float() {
        return Err(Error::dtype(
            "mean",
            format!(
                "mean(): could not infer output dtype; input dtype must be floating point, got {}",
                x.dtype()
            ),
        ));
    } else {
        x.clone()
    };
    let shape = reduced_shape(x.shape(), &dims, keepdim);
    let out = backend::reduce(op, &x, &dims)?.reshape(&shape)?;
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) || !needs_record(&[&x]) {
        return Ok(out);
    }
    let saves = matches!(op, ReduceOp::Max | ReduceOp::Min | ReduceOp::Prod);
    let saved = if saves { vec![x.clone()] } else { vec![] };
    Ok(record1(
        Op::Reduce { op, dims, keepdim },
        &[&x],
        out,
        saved,
        saves,
    ))
}

/// `g` (of the reduced shape) reshaped to keepdim form and expanded to `shape`.
fn expand_back(g: &Tensor, shape: &[usize], dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let k = reduced_shape(shape, dims, true);
    let g = if keepdim { g.clone() } else { g.reshape(&k)? };
    g.expand(shape)
}

pub(crate) fn backward(
    op: ReduceOp,
    dims: &[usize],
    keepdim: bool,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let shape = ctx.input_shape(0).to_vec();
    let gi = match op {
        ReduceOp::Sum => expand_back(g, &shape, dims, keepdim)?,
        ReduceOp::Mean => {
            let r: usize = dims.iter().map(|&d| shape[d]).product();
            expand_back(&g.mul_scalar(1.0 / r as f64)?, &shape, dims, keepdim)?
        }
        ReduceOp::Max | ReduceOp::Min => {
            let x = ctx.saved(0);
            let y = expand_back(&ctx.output(0), &shape, dims, keepdim)?;
            let mask = x.eq(&y)?.to_dtype(g.dtype())?;
            let count =
                mask.sum_dim(&dims.iter().map(|&d| d as isize).collect::<Vec<_>>(), true)?;
            let gk = expand_back(g, &shape, dims, keepdim)?;
            gk.mul(&mask)?.div(&count.expand(&shape)?)?
        }
        ReduceOp::Prod => {
            let x = ctx.saved(0);
            let idims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            let y = expand_back(&ctx.output(0), &shape, dims, keepdim)?;
            let is_zero = x.eq_scalar(0.0)?;
            let zeros = is_zero
                .to_dtype(DType::F32)?
                .sum_dim(&idims, true)?
                .expand(&shape)?;
            let prod_nz = x
                .masked_fill(&is_zero, 1.0)?
                .prod_dims(&idims, true)?
                .expand(&shape)?;
            let at_nonzero = y.div(x)?.masked_fill(&zeros.ne_scalar(0.0)?, 0.0)?;
            let at_zero = prod_nz.masked_fill(&zeros.ne_scalar(1.0)?, 0.0)?;
            let d = Tensor::where_cond(&is_zero, &at_zero, &at_nonzero)?;
            expand_back(g, &shape, dims, keepdim)?.mul(&d)?
        }
        ReduceOp::ArgMax | ReduceOp::ArgMin => return Ok(vec![None]),
    };
    Ok(vec![Some(gi)])
}

pub(crate) fn cumsum_backward(
    dim: usize,
    _ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let d = dim as isize;
    Ok(vec![Some(g.flip(d)?.cumsum(d)?.flip(d)?)])
}

impl Tensor {
    /// Sum over `dims` (negative dims allowed).
    pub fn sum_dim(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Sum, Some(dims), keepdim)
    }
    /// Alias of [`Tensor::sum_dim`].
    pub fn sum_dims(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.sum_dim(dims, keepdim)
    }
    /// Sum of all elements (0-d).
    pub fn sum_all(&self) -> Result<Tensor> {
        apply(self, ReduceOp::Sum, None, false)
    }
    /// Mean over `dims`.
    pub fn mean_dim(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Mean, Some(dims), keepdim)
    }
    /// Mean of all elements.
    pub fn mean_all(&self) -> Result<Tensor> {
        apply(self, ReduceOp::Mean, None, false)
    }
    /// Maximum over `dims` (PyTorch's `amax`; ties share the gradient).
    pub fn amax(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Max, Some(dims), keepdim)
    }
    /// Minimum over `dims`.
    pub fn amin(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Min, Some(dims), keepdim)
    }
    /// Largest element (0-d).
    pub fn max_all(&self) -> Result<Tensor> {
        apply(self, ReduceOp::Max, None, false)
    }
    /// Smallest element (0-d).
    pub fn min_all(&self) -> Result<Tensor> {
        apply(self, ReduceOp::Min, None, false)
    }
    /// Product over `dims`.
    pub fn prod_dims(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Prod, Some(dims), keepdim)
    }
    /// Product along one dim.
    pub fn prod_dim(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        apply(self, ReduceOp::Prod, Some(&[dim]), keepdim)
    }
    /// Index of the maximum along `dim` (`None`: over the flattened tensor), as i64.
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        match dim {
            Some(d) => apply(self, ReduceOp::ArgMax, Some(&[d]), keepdim),
            None => apply(
                &self.reshape(&[self.numel()])?,
                ReduceOp::ArgMax,
                Some(&[0]),
                false,
            ),
        }
    }
    /// Index of the minimum along `dim`.
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        match dim {
            Some(d) => apply(self, ReduceOp::ArgMin, Some(&[d]), keepdim),
            None => apply(
                &self.reshape(&[self.numel()])?,
                ReduceOp::ArgMin,
                Some(&[0]),
                false,
            ),
        }
    }
    /// `(values, indices)` of the maximum along `dim` (PyTorch's `max(dim)`).
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let idx = self.argmax(Some(dim), true)?;
        let v = self.gather(dim, &idx)?;
        if keepdim {
            Ok((v, idx))
        } else {
            Ok((v.squeeze_dim(dim)?, idx.squeeze_dim(dim)?))
        }
    }
    /// `(values, indices)` of the minimum along `dim`.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let idx = self.argmin(Some(dim), true)?;
        let v = self.gather(dim, &idx)?;
        if keepdim {
            Ok((v, idx))
        } else {
            Ok((v.squeeze_dim(dim)?, idx.squeeze_dim(dim)?))
        }
    }
    /// `log(sum(exp(x)))` over `dims`, computed stably.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let m = self.amax(dims, true)?.detach();
        let m = m.masked_fill(&m.abs()?.eq_scalar(f64::INFINITY)?, 0.0)?;
        let s = self.sub(&m)?.exp()?.sum_dim(dims, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let mut d = norm_dims("logsumexp", dims, self.rank())?;
            d.sort();
            s.reshape(
                &reduced_shape(self.shape(), &d, false)
                    .into_iter()
                    .take(self.rank())
                    .collect::<Vec<_>>(),
            )
        }
    }
    /// Variance over `dims` with `correction` (1 = unbiased), like `torch.var`.
    pub fn var_dim(
        &self,
        dims: Option<&[isize]>,
        correction: f64,
        keepdim: bool,
    ) -> Result<Tensor> {
        let all: Vec<isize> = (0..self.rank() as isize).collect();
        let dims = dims.unwrap_or(&all);
        let nd = norm_dims("var", dims, self.rank())?;
        let n: usize = nd
            .iter()
            .map(|&d| self.shape().get(d).copied().unwrap_or(1))
            .product();
        let mu = self.mean_dim(dims, true)?;
        let ss = self.sub(&mu)?.square()?.sum_dim(dims, keepdim)?;
        ss.mul_scalar(1.0 / (n as f64 - correction).max(0.0))
    }
    /// Standard deviation over `dims` with `correction`.
    pub fn std_dim(
        &self,
        dims: Option<&[isize]>,
        correction: f64,
        keepdim: bool,
    ) -> Result<Tensor> {
        self.var_dim(dims, correction, keepdim)?.sqrt()
    }
    /// `torch.linalg.vector_norm`: `ord` may be any p > 0, `inf`, `-inf` or 0.
    pub fn vector_norm(&self, ord: f64, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let all: Vec<isize> = (0..self.rank() as isize).collect();
        let dims = dims.unwrap_or(&all);
        let a = self.abs()?;
        if ord == f64::INFINITY {
            a.amax(dims, keepdim)
        } else if ord == f64::NEG_INFINITY {
            a.amin(dims, keepdim)
        } else if ord == 0.0 {
            a.ne_scalar(0.0)?
                .to_dtype(self.dtype())?
                .sum_dim(dims, keepdim)
        } else if ord == 2.0 {
            self.square()?.sum_dim(dims, keepdim)?.sqrt()
        } else if ord == 1.0 {
            a.sum_dim(dims, keepdim)
        } else {
            a.powf(ord)?.sum_dim(dims, keepdim)?.powf(1.0 / ord)
        }
    }
    /// Inclusive prefix sum along `dim`.
    pub fn cumsum(&self, dim: isize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        let out = backend::cumsum(self, d)?;
        if !needs_record(&[self]) {
            return Ok(out);
        }
        Ok(record1(Op::Cumsum { dim: d }, &[self], out, vec![], false))
    }
}
