//! Indexing: where, masked_fill, index_select, gather, take_along_dim, scatter_add,
//! index_add, tril/triu, embedding.

use super::{reduce_to_shape, Op};
use crate::autograd::{needs_record, record1, Ctx};
use crate::tensor::broadcast_shapes;
use crate::{backend, DType, Error, Result, Tensor};

impl Tensor {
    /// `cond ? a : b` elementwise with broadcasting (PyTorch's `torch.where`).
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if cond.dtype() != DType::Bool {
            return Err(Error::dtype(
                "where",
                format!("condition must be a bool tensor, got {}", cond.dtype()),
            ));
        }
        let s = broadcast_shapes("where", cond.shape(), a.shape())?;
        let shape = broadcast_shapes("where", &s, b.shape())?;
        let dt = a.result_type(b);
        let (a, b) = (a.to_dtype(dt)?, b.to_dtype(dt)?);
        let out = backend::where_(cond, &a, &b, &shape)?;
        if !needs_record(&[&a, &b]) {
            return Ok(out);
        }
        Ok(record1(
            Op::Where,
            &[cond, &a, &b],
            out,
            vec![cond.clone()],
            false,
        ))
    }
    /// Elements where `mask` is true replaced by `value`.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        if mask.dtype() != DType::Bool {
            return Err(Error::dtype(
                "masked_fill",
                format!("mask must be a bool tensor, got {}", mask.dtype()),
            ));
        }
        let shape = broadcast_shapes("masked_fill", self.shape(), mask.shape())?;
        if shape != self.shape() {
            return Err(Error::shape(
                "masked_fill",
                format!(
                    "mask of shape {:?} cannot be broadcast to the input's shape {:?}",
                    mask.shape(),
                    self.shape()
                ),
            ));
        }
        let v = Tensor::full(&[], value, self.dtype())?;
        Tensor::where_cond(mask, &v, self)
    }
    /// Rows (along `dim`) picked by a 1-D integer index.
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = self.dim(dim)?;
        if index.rank() > 1 {
            return Err(Error::shape(
                "index_select",
                format!("index must be 0-d or 1-d, got shape {:?}", index.shape()),
            ));
        }
        let idx = backend::indices(index, "index_select")?;
        let out = backend::index_select(self, d, &idx)?;
        if !needs_record(&[self]) {
            return Ok(out);
        }
        let index = index.reshape(&[idx.len()])?;
        Ok(record1(
            Op::IndexSelect { dim: d },
            &[self, &index],
            out,
            vec![index.clone()],
            false,
        ))
    }
    /// `out[i][j] = self[i][index[i][j]]` along `dim` (PyTorch's `gather`).
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = self.dim(dim)?;
        let idx = backend::indices(index, "gather")?;
        let out = backend::gather(self, d, &idx, index.shape())?;
        if !needs_record(&[self]) {
            return Ok(out);
        }
        Ok(record1(
            Op::Gather { dim: d },
            &[self, index],
            out,
            vec![index.clone()],
            false,
        ))
    }
    /// `gather` after broadcasting self and index against each other except along `dim`.
    pub fn take_along_dim(&self, index: &Tensor, dim: isize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        if index.rank() != self.rank() {
            return Err(Error::shape(
                "take_along_dim",
                format!("input and indices should have the same number of dimensions, got {:?} and {:?}", self.shape(), index.shape()),
            ));
        }
        let mut s1 = self.shape().to_vec();
        let mut s2 = index.shape().to_vec();
        s1[d] = 1;
        s2[d] = 1;
        let b = broadcast_shapes("take_along_dim", &s1, &s2)?;
        let mut xs = b.clone();
        xs[d] = self.shape()[d];
        let mut is = b;
        is[d] = index.shape()[d];
        self.expand(&xs)?.gather(d as isize, &index.expand(&is)?)
    }
    /// A copy of self with `src` added at positions given by `index` along `dim`.
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        self.scatter_impl(dim, index, src, true)
    }
    /// A copy of self with `src[p]` written at `p` with `p[dim] = index[p]`
    /// (`torch.scatter(self, dim, index, src)`); of duplicate positions the last wins.
    pub fn scatter(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        self.scatter_impl(dim, index, src, false)
    }
    /// [`Tensor::scatter`] of one value (`torch.scatter(self, dim, index, value=v)`).
    pub fn scatter_value(&self, dim: isize, index: &Tensor, value: f64) -> Result<Tensor> {
        let src = Tensor::full(&[1], value, self.dtype())?;
        let ones = vec![1; index.rank()];
        let src = src.reshape(&ones)?.expand(index.shape())?;
        self.scatter_impl(dim, index, &src, false)
    }
    fn scatter_impl(
        &self,
        dim: isize,
        index: &Tensor,
        src: &Tensor,
        accumulate: bool,
    ) -> Result<Tensor> {
        scatter_owned(self.clone(), dim, index, src, accumulate)
    }
    /// A copy of self with `src.select(dim, i)` added at `self.select(dim, index[i])`.
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        index_add_owned(self.clone(), dim, index, src)
    }
    /// Lower triangle of the last two dims (elements above `diagonal` zeroed).
    pub fn tril(&self, diagonal: i64) -> Result<Tensor> {
        self.tri(diagonal, true)
    }
    /// Upper triangle of the last two dims.
    pub fn triu(&self, diagonal: i64) -> Result<Tensor> {
        self.tri(diagonal, false)
    }
    fn tri(&self, k: i64, lower: bool) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape(
                if lower { "tril" } else { "triu" },
                format!("input must have at least 2 dims, got {:?}", self.shape()),
            ));
        }
        let (n, m) = (self.shape()[self.rank() - 2], self.shape()[self.rank() - 1]);
        let mut mask = vec![false; n * m];
        for i in 0..n {
            for j in 0..m {
                let off = j as i64 - i as i64;
                mask[i * m + j] = if lower { off > k } else { off < k };
            }
        }
        self.masked_fill(&Tensor::from_vec(mask, &[n, m])?, 0.0)
    }
    /// Rows of `weight` ([num, dim]) looked up by integer `indices` of any shape
    /// (PyTorch's `F.embedding`); rows at `padding_idx` receive no gradient.
    pub fn embedding(
        weight: &Tensor,
        indices: &Tensor,
        padding_idx: Option<i64>,
    ) -> Result<Tensor> {
        if !matches!(indices.dtype(), DType::I64 | DType::I32 | DType::U8) {
            return Err(Error::dtype(
                "Embedding",
                format!("expected integer indices (int64 or int32), got a tensor of dtype {}; convert it with .long()", indices.dtype()),
            ));
        }
        if weight.rank() != 2 {
            return Err(Error::shape(
                "Embedding",
                format!(
                    "weight must be 2-D [num_embeddings, dim], got {:?}",
                    weight.shape()
                ),
            ));
        }
        let num = weight.shape()[0];
        let pad = match padding_idx {
            Some(p) => {
                let q = if p < 0 { p + num as i64 } else { p };
                if q < 0 || q >= num as i64 {
                    return Err(Error::index(
                        "Embedding",
                        format!("padding_idx {p} must be within num_embeddings {num}"),
                    ));
                }
                Some(q as usize)
            }
            None => None,
        };
        let idx = backend::indices(indices, "Embedding")?;
        for &i in &idx {
            if i < 0 || i >= num as i64 {
                return Err(Error::index(
                    "Embedding",
                    format!("index {i} is out of range for an embedding of {num} rows"),
                ));
            }
        }
        let rows = backend::index_select(weight, 0, &idx)?;
        let mut shape = indices.shape().to_vec();
        shape.push(weight.shape()[1]);
        let out = rows.reshape(&shape)?;
        if !needs_record(&[weight]) {
            return Ok(out);
        }
        let flat = indices.reshape(&[idx.len()])?.to_dtype(DType::I64)?;
        Ok(record1(
            Op::Embedding { padding_idx: pad },
            &[weight, indices],
            out,
            vec![flat],
            false,
        ))
    }
}

/// [`Tensor::scatter_add`] / [`Tensor::scatter`] of an owned base (see [`backend::scatter`]).
fn scatter_owned(
    base: Tensor,
    dim: isize,
    index: &Tensor,
    src: &Tensor,
    accumulate: bool,
) -> Result<Tensor> {
    let name = if accumulate { "scatter_add" } else { "scatter" };
    let d = base.dim(dim)?;
    if index.rank() != base.rank() || src.rank() != base.rank() {
        return Err(Error::shape(
            name,
            format!(
                "self {:?}, index {:?} and src {:?} must have the same rank",
                base.shape(),
                index.shape(),
                src.shape()
            ),
        ));
    }
    let src = src.to_dtype(base.dtype())?;
    let idx = backend::indices(index, name)?;
    // A recorded call keeps a handle to `base` (so the kernel copies it); otherwise a base
    // that nothing else holds is written in place.
    let keep = needs_record(&[&base, &src]).then(|| base.clone());
    let out = backend::scatter(base, d, &idx, index.shape(), &src, accumulate)?;
    let Some(base) = keep else {
        return Ok(out);
    };
    Ok(record1(
        if accumulate {
            Op::ScatterAdd { dim: d }
        } else {
            Op::Scatter { dim: d }
        },
        &[&base, index, &src],
        out,
        vec![index.clone()],
        false,
    ))
}

/// [`Tensor::index_add`] of an owned base (see [`backend::scatter`]).
fn index_add_owned(base: Tensor, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
    let d = base.dim(dim)?;
    if index.rank() > 1 {
        return Err(Error::shape(
            "index_add",
            format!("index must be 0-d or 1-d, got shape {:?}", index.shape()),
        ));
    }
    let idx = backend::indices(index, "index_add")?;
    let mut expect = base.shape().to_vec();
    expect[d] = idx.len();
    if src.shape() != expect.as_slice() {
        return Err(Error::shape(
            "index_add",
            format!(
                "source of shape {:?} does not match {expect:?} (self {:?}, {} indices)",
                src.shape(),
                base.shape(),
                idx.len()
            ),
        ));
    }
    let src = src.to_dtype(base.dtype())?;
    let keep = needs_record(&[&base, &src]).then(|| base.clone());
    let out = backend::index_add(base, d, &idx, &src)?;
    let Some(base) = keep else {
        return Ok(out);
    };
    let index = index.reshape(&[idx.len()])?;
    Ok(record1(
        Op::IndexAdd { dim: d },
        &[&base, &index, &src],
        out,
        vec![index.clone()],
        false,
    ))
}

pub(crate) fn where_backward(ctx: &Ctx, grads: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None, None, None]);
    };
    let c = ctx.saved(0);
    let z = Tensor::zeros(&[], g.dtype())?;
    let ga = if ctx.needs(1) {
        Some(reduce_to_shape(
            &Tensor::where_cond(c, g, &z)?,
            ctx.input_shape(1),
        )?)
    } else {
        None
    };
    let gb = if ctx.needs(2) {
        Some(reduce_to_shape(
            &Tensor::where_cond(c, &z, g)?,
            ctx.input_shape(2),
        )?)
    } else {
        None
    };
    Ok(vec![None, ga, gb])
}

pub(crate) fn backward(
    op: &Op,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let n_in = ctx.node.edges.len();
    let Some(g) = &grads[0] else {
        return Ok(vec![None; n_in]);
    };
    let idx = ctx.saved(0);
    let zeros = || Tensor::zeros(ctx.input_shape(0), g.dtype());
    Ok(match op {
        Op::IndexSelect { dim } => vec![
            Some(index_add_owned(zeros()?, *dim as isize, idx, g)?),
            None,
        ],
        Op::Gather { dim } => vec![
            Some(scatter_owned(zeros()?, *dim as isize, idx, g, true)?),
            None,
        ],
        Op::ScatterAdd { dim } => vec![
            if ctx.needs(0) { Some(g.clone()) } else { None },
            None,
            if ctx.needs(2) {
                Some(g.gather(*dim as isize, idx)?.pad_to(ctx.input_shape(2))?)
            } else {
                None
            },
        ],
        Op::Scatter { dim } => vec![
            if ctx.needs(0) {
                Some(g.scatter_value(*dim as isize, idx, 0.0)?)
            } else {
                None
            },
            None,
            if ctx.needs(2) {
                Some(g.gather(*dim as isize, idx)?.pad_to(ctx.input_shape(2))?)
            } else {
                None
            },
        ],
        Op::IndexAdd { dim } => vec![
            if ctx.needs(0) { Some(g.clone()) } else { None },
            None,
            if ctx.needs(2) {
                Some(g.index_select(*dim as isize, idx)?)
            } else {
                None
            },
        ],
        Op::Embedding { padding_idx } => {
            let d = ctx.input_shape(0)[1];
            let mut g2 = g.reshape(&[idx.numel(), d])?;
            if let Some(p) = padding_idx {
                let m = idx.eq_scalar(*p as f64)?.unsqueeze(1)?;
                g2 = g2.masked_fill(&m, 0.0)?;
            }
            vec![Some(zeros()?.index_add(0, idx, &g2)?), None]
        }
        _ => unreachable!("not an index op"),
    })
}

impl Tensor {
    /// Zero-pads self at the end of each dim up to `shape` (gradients of scatter sources).
    fn pad_to(&self, shape: &[usize]) -> Result<Tensor> {
        let pads: Vec<(usize, usize)> = self
            .shape()
            .iter()
            .zip(shape)
            .map(|(a, b)| (0, b - a))
            .collect();
        self.pad_dims(&pads, 0.0)
    }
}
