//! Views and data movement: reshape, permute, transpose, expand, slice, squeeze/unsqueeze,
//! contiguous, cat/stack, split/chunk, pad, flip, dtype and device conversion.

use super::{reduce_to_shape, Op};
use crate::autograd::{needs_record, record, record1, Ctx};
use crate::error::{bail_shape, bail_value};
use crate::tensor::layout::{infer_shape, norm_dim};
use crate::{backend, DType, Device, Error, Result, Tensor};

fn view_op(x: &Tensor, layout: crate::Layout, op: Op) -> Tensor {
    let out = x.with_layout(layout);
    if !needs_record(&[x]) {
        return out;
    }
    record1(op, &[x], out, vec![], false)
}

impl Tensor {
    /// A tensor of `shape` over the same elements (a view when the layout allows, else a copy);
    /// one entry may be -1.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = crate::memory::checked_numel("reshape", shape)?;
        if n != self.numel() {
            bail_shape!(
                "reshape",
                "shape {shape:?} is invalid for input of shape {:?} ({} elements)",
                self.shape(),
                self.numel()
            );
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        match self.layout().view(shape) {
            Some(l) => Ok(view_op(
                self,
                l,
                Op::Reshape {
                    shape: shape.to_vec(),
                },
            )),
            None => self.contiguous()?.reshape(shape),
        }
    }
    /// [`Tensor::reshape`] with PyTorch's `-1` inference.
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<Tensor> {
        let s = infer_shape("reshape", shape, self.numel(), self.shape())?;
        self.reshape(&s)
    }
    /// Like `reshape` but fails instead of copying (PyTorch's `view`).
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        let s = infer_shape("view", shape, self.numel(), self.shape())?;
        match self.layout().view(&s) {
            Some(l) => Ok(view_op(self, l, Op::Reshape { shape: s })),
            None => Err(Error::shape(
                "view",
                format!(
                    "view size {s:?} is not compatible with input of shape {:?} and strides {:?}; use reshape",
                    self.shape(),
                    self.stride()
                ),
            )),
        }
    }
    /// Reorders dims (a view).
    pub fn permute(&self, dims: &[isize]) -> Result<Tensor> {
        if dims.len() != self.rank() {
            bail_shape!(
                "permute",
                "number of dims {} does not match the rank {} of shape {:?}",
                dims.len(),
                self.rank(),
                self.shape()
            );
        }
        let d = crate::tensor::layout::norm_dims("permute", dims, self.rank())?;
        Ok(view_op(
            self,
            self.layout().permute(&d),
            Op::Permute { dims: d },
        ))
    }
    /// Swaps two dims (a view).
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let (a, b) = (self.dim(d0)?, self.dim(d1)?);
        let mut p: Vec<isize> = (0..self.rank() as isize).collect();
        p.swap(a, b);
        self.permute(&p)
    }
    /// Transpose of a tensor of rank <= 2.
    pub fn t(&self) -> Result<Tensor> {
        match self.rank() {
            0 | 1 => Ok(self.clone()),
            2 => self.transpose(0, 1),
            r => Err(Error::shape(
                "t",
                format!(
                    "t() expects a tensor with <= 2 dims, got {r} (shape {:?})",
                    self.shape()
                ),
            )),
        }
    }
    /// Broadcasts to `shape` without copying (stride 0 on expanded dims).
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.layout().expand("expand", shape)?;
        Ok(view_op(
            self,
            l,
            Op::Expand {
                shape: shape.to_vec(),
            },
        ))
    }
    /// `expand` with PyTorch's `-1` meaning "keep this dim".
    pub fn expand_infer(&self, shape: &[isize]) -> Result<Tensor> {
        let k = shape.len().checked_sub(self.rank()).ok_or_else(|| {
            Error::shape(
                "expand",
                format!(
                    "the number of sizes {} must be >= the rank of {:?}",
                    shape.len(),
                    self.shape()
                ),
            )
        })?;
        let s: Vec<usize> = shape
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v == -1 && i >= k {
                    self.shape()[i - k]
                } else {
                    v.max(0) as usize
                }
            })
            .collect();
        self.expand(&s)
    }
    /// Broadcasts to another tensor's shape.
    pub fn expand_as(&self, other: &Tensor) -> Result<Tensor> {
        self.expand(other.shape())
    }
    /// Elements `start, start+step, ...` before `end` along `dim` (a view). Negative
    /// `start`/`end` count from the end; both are clamped like Python slices.
    pub fn slice(&self, dim: isize, start: isize, end: isize, step: usize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        if step == 0 {
            bail_value!("slice", "slice step must be positive");
        }
        let n = self.shape()[d] as isize;
        let clamp = |v: isize| if v < 0 { (v + n).max(0) } else { v.min(n) };
        let (s, e) = (clamp(start), clamp(end));
        let len = if e > s {
            ((e - s) as usize).div_ceil(step)
        } else {
            0
        };
        let s = s as usize;
        if s == 0 && len == self.shape()[d] && step == 1 {
            return Ok(self.clone());
        }
        Ok(view_op(
            self,
            self.layout().slice(d, s, len, step),
            Op::Slice {
                dim: d,
                start: s,
                len,
                step,
            },
        ))
    }
    /// `len` elements from `start` along `dim` (PyTorch's `narrow`).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        if start.checked_add(len).is_none_or(|e| e > self.shape()[d]) {
            return Err(Error::index(
                "narrow",
                format!(
                    "start ({start}) + length ({len}) exceeds dimension size ({}) of shape {:?}",
                    self.shape()[d],
                    self.shape()
                ),
            ));
        }
        self.slice(d as isize, start as isize, (start + len) as isize, 1)
    }
    /// Element `i` along `dim`, removing that dim (a view).
    pub fn select(&self, dim: isize, i: isize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        let n = self.shape()[d] as isize;
        let j = if i < 0 { i + n } else { i };
        if j < 0 || j >= n {
            return Err(Error::index(
                "select",
                format!("index {i} is out of bounds for dimension {d} with size {n}"),
            ));
        }
        self.slice(d as isize, j, j + 1, 1)?.squeeze_dim(d as isize)
    }
    /// Inserts a dim of size 1 at `dim`.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = norm_dim("unsqueeze", dim, self.rank() + 1)?;
        let mut s = self.shape().to_vec();
        s.insert(d, 1);
        self.reshape(&s)
    }
    /// Removes `dim` if it has size 1 (otherwise returns the tensor unchanged, like PyTorch).
    pub fn squeeze_dim(&self, dim: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return Ok(self.clone());
        }
        let d = self.dim(dim)?;
        if self.shape()[d] != 1 {
            return Ok(self.clone());
        }
        let mut s = self.shape().to_vec();
        s.remove(d);
        self.reshape(&s)
    }
    /// Removes every dim of size 1.
    pub fn squeeze(&self) -> Result<Tensor> {
        let s: Vec<usize> = self.shape().iter().copied().filter(|&v| v != 1).collect();
        self.reshape(&s)
    }
    /// Merges dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(&[1]);
        }
        let (a, b) = (self.dim(start)?, self.dim(end)?);
        if a > b {
            bail_value!("flatten", "start_dim {start} comes after end_dim {end}");
        }
        let mut s: Vec<usize> = self.shape()[..a].to_vec();
        s.push(self.shape()[a..=b].iter().product());
        s.extend_from_slice(&self.shape()[b + 1..]);
        self.reshape(&s)
    }
    /// A contiguous tensor with the same values (itself if already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.contiguous_copy()
    }
    /// A fresh contiguous copy (PyTorch's `clone`).
    pub fn contiguous_copy(&self) -> Result<Tensor> {
        let out = backend::cast(self, self.dtype())?;
        if !needs_record(&[self]) {
            return Ok(out);
        }
        Ok(record1(Op::Contiguous, &[self], out, vec![], false))
    }
    /// Converts to another dtype (a no-op when equal).
    pub fn to_dtype(&self, dt: DType) -> Result<Tensor> {
        if dt == self.dtype() {
            return Ok(self.clone());
        }
        let out = backend::cast(self, dt)?;
        if !dt.is_float() || !needs_record(&[self]) {
            return Ok(out);
        }
        Ok(record1(Op::Cast(dt), &[self], out, vec![], false))
    }
    /// Moves to a device.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        crate::backend::check_device(device)?;
        Err(Error::device(
            "to",
            format!("device {device} is not supported by this build"),
        ))
    }
    /// Concatenates along `dim`; all other dims must match.
    pub fn cat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::value("cat", "expected a non-empty list of tensors"))?;
        let d = first.dim(dim)?;
        let dt = tensors
            .iter()
            .fold(first.dtype(), |a, t| DType::promote(a, t.dtype()));
        let mut total = 0;
        for (i, t) in tensors.iter().enumerate() {
            if t.rank() != first.rank() {
                bail_shape!(
                    "cat",
                    "tensor {i} has rank {} but tensor 0 has rank {} (shapes {:?} and {:?})",
                    t.rank(),
                    first.rank(),
                    t.shape(),
                    first.shape()
                );
            }
            for k in 0..t.rank() {
                if k != d && t.shape()[k] != first.shape()[k] {
                    bail_shape!("cat", "sizes of tensors must match except in dimension {d}: tensor 0 has shape {:?}, tensor {i} has shape {:?}", first.shape(), t.shape());
                }
            }
            if t.device() != first.device() {
                return Err(Error::device(
                    "cat",
                    "all tensors must be on the same device",
                ));
            }
            total += t.shape()[d];
        }
        let ts: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.to_dtype(dt))
            .collect::<Result<_>>()?;
        let mut shape = first.shape().to_vec();
        shape[d] = total;
        let out = backend::cat(&ts, d, &shape)?;
        let refs: Vec<&Tensor> = ts.iter().collect();
        if !needs_record(&refs) {
            return Ok(out);
        }
        Ok(record1(Op::Cat { dim: d }, &refs, out, vec![], false))
    }
    /// Stacks equal-shaped tensors along a new dim.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::value("stack", "expected a non-empty list of tensors"))?;
        for (i, t) in tensors.iter().enumerate() {
            if t.shape() != first.shape() {
                bail_shape!("stack", "stack expects each tensor to be equal size, but got {:?} at entry 0 and {:?} at entry {i}", first.shape(), t.shape());
            }
        }
        let d = norm_dim("stack", dim, first.rank() + 1)? as isize;
        let us: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(d))
            .collect::<Result<_>>()?;
        Tensor::cat(&us, d)
    }
    /// Splits into pieces of the given sizes along `dim` (views; one graph node).
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Result<Vec<Tensor>> {
        let d = self.dim(dim)?;
        if sizes.iter().sum::<usize>() != self.shape()[d] {
            bail_shape!(
                "split",
                "split sizes {sizes:?} do not sum to dimension {d} of shape {:?}",
                self.shape()
            );
        }
        let mut outs = Vec::with_capacity(sizes.len());
        let mut start = 0;
        for &s in sizes {
            outs.push(self.with_layout(self.layout().slice(d, start, s, 1)));
            start += s;
        }
        if !needs_record(&[self]) {
            return Ok(outs);
        }
        Ok(record(
            Op::Split {
                dim: d,
                sizes: sizes.to_vec(),
            },
            &[self],
            outs,
            vec![],
            false,
        ))
    }
    /// Splits into pieces of `size` (the last may be smaller) along `dim`.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        if size == 0 {
            bail_value!("split", "split_size must be positive");
        }
        let n = self.shape()[self.dim(dim)?];
        let mut sizes = vec![size; n / size];
        if !n.is_multiple_of(size) {
            sizes.push(n % size);
        }
        self.split_sizes(&sizes, dim)
    }
    /// Splits into `chunks` nearly equal pieces along `dim`.
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        if chunks == 0 {
            bail_value!("chunk", "chunk expects `chunks` to be greater than 0");
        }
        let n = self.shape()[self.dim(dim)?];
        self.split(n.div_ceil(chunks).max(1), dim)
    }
    /// Removes `dim`, returning each slice.
    pub fn unbind(&self, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.dim(dim)?;
        let parts = self.split(1, d as isize)?;
        parts
            .into_iter()
            .map(|p| p.squeeze_dim(d as isize))
            .collect()
    }
    /// Constant padding like `F.pad`: `pad` lists (before, after) pairs from the last dim
    /// backwards.
    pub fn pad(&self, pad: &[usize], value: f64) -> Result<Tensor> {
        if !pad.len().is_multiple_of(2) || pad.len() / 2 > self.rank() {
            bail_value!(
                "pad",
                "padding length {} must be even and at most 2 * rank ({}) for shape {:?}",
                pad.len(),
                2 * self.rank(),
                self.shape()
            );
        }
        let mut pads = vec![(0usize, 0usize); self.rank()];
        for (i, p) in pad.chunks(2).enumerate() {
            pads[self.rank() - 1 - i] = (p[0], p[1]);
        }
        self.pad_dims(&pads, value)
    }
    /// Constant padding with one (before, after) pair per dim.
    pub fn pad_dims(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        if pads.len() != self.rank() {
            bail_value!(
                "pad",
                "{} (before, after) pairs for a tensor of rank {}",
                pads.len(),
                self.rank()
            );
        }
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(s, (a, b))| {
                s.checked_add(*a)
                    .and_then(|v| v.checked_add(*b))
                    .filter(|v| *v <= isize::MAX as usize / 16)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::value(
                    "pad",
                    format!("padding {pads:?} of shape {:?} overflows", self.shape()),
                )
            })?;
        let out = backend::pad(self, pads, &shape, value)?;
        if !needs_record(&[self]) {
            return Ok(out);
        }
        Ok(record1(
            Op::Pad {
                pads: pads.to_vec(),
                value,
            },
            &[self],
            out,
            vec![],
            false,
        ))
    }
    /// Reverses the order of elements along `dim`.
    pub fn flip(&self, dim: isize) -> Result<Tensor> {
        let d = self.dim(dim)?;
        let n = self.shape()[d];
        let idx: Vec<i64> = (0..n as i64).rev().collect();
        self.index_select(d as isize, &Tensor::from_vec(idx, &[n])?)
    }
    /// Repeats the tensor along each dim (PyTorch's `repeat`).
    pub fn repeat(&self, reps: &[usize]) -> Result<Tensor> {
        if reps.len() < self.rank() {
            bail_value!(
                "repeat",
                "number of repeat dims {} can not be smaller than the rank {}",
                reps.len(),
                self.rank()
            );
        }
        let k = reps.len() - self.rank();
        let mut src_shape = vec![1; k];
        src_shape.extend_from_slice(self.shape());
        let x = self.reshape(&src_shape)?;
        // interleave: [r0, s0, r1, s1, ...] then merge pairs
        let mut ex_shape = Vec::new();
        let mut un_shape = Vec::new();
        for (i, &r) in reps.iter().enumerate() {
            ex_shape.push(r);
            ex_shape.push(src_shape[i]);
            un_shape.push(1);
            un_shape.push(src_shape[i]);
        }
        let out_shape: Vec<usize> = reps.iter().zip(&src_shape).map(|(r, s)| r * s).collect();
        x.reshape(&un_shape)?
            .expand(&ex_shape)?
            .contiguous()?
            .reshape(&out_shape)
    }
}

pub(crate) fn cast_backward(ctx: &Ctx, grads: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    Ok(vec![Some(g.to_dtype(ctx.node.input_meta[0].1)?)])
}

pub(crate) fn backward(
    op: &Op,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let in_shape = ctx.input_shape(0).to_vec();
    match op {
        Op::Split { dim, sizes } => {
            if grads.iter().all(|g| g.is_none()) {
                return Ok(vec![None]);
            }
            let mut parts = Vec::with_capacity(sizes.len());
            for (i, g) in grads.iter().enumerate() {
                parts.push(match g {
                    Some(g) => g.clone(),
                    None => Tensor::zeros(ctx.output_shape(i), ctx.node.out_meta[i].1)?,
                });
            }
            return Ok(vec![Some(Tensor::cat(&parts, *dim as isize)?)]);
        }
        Op::Cat { dim } => {
            let Some(g) = &grads[0] else {
                return Ok(vec![None; ctx.node.edges.len()]);
            };
            let sizes: Vec<usize> = ctx.node.input_meta.iter().map(|(s, _)| s[*dim]).collect();
            let parts = g.split_sizes(&sizes, *dim as isize)?;
            return Ok(parts.into_iter().map(Some).collect());
        }
        _ => {}
    }
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let gi = match op {
        Op::Reshape { .. } => g.reshape(&in_shape)?,
        Op::Permute { dims } => {
            let mut inv = vec![0isize; dims.len()];
            for (i, &d) in dims.iter().enumerate() {
                inv[d] = i as isize;
            }
            g.permute(&inv)?
        }
        Op::Expand { .. } => reduce_to_shape(g, &in_shape)?,
        Op::Contiguous => g.clone(),
        Op::Slice {
            dim,
            start,
            len,
            step,
        } => {
            if *step == 1 {
                let mut pads = vec![(0, 0); in_shape.len()];
                pads[*dim] = (*start, in_shape[*dim] - start - len);
                g.pad_dims(&pads, 0.0)?
            } else {
                let idx: Vec<i64> = (0..*len).map(|i| (start + i * step) as i64).collect();
                let idx = Tensor::from_vec(idx, &[*len])?;
                Tensor::zeros(&in_shape, g.dtype())?.index_add(*dim as isize, &idx, g)?
            }
        }
        Op::Pad { pads, .. } => {
            let mut t = g.clone();
            for (d, &(a, _)) in pads.iter().enumerate() {
                t = t.narrow(d as isize, a, in_shape[d])?;
            }
            t
        }
        _ => unreachable!("not a movement op: {}", op.name()),
    };
    Ok(vec![Some(gi)])
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    #[test]
    fn views_share_storage() {
        let a = Tensor::arange(0.0, 24.0, 1.0, crate::DType::F32)
            .unwrap()
            .reshape(&[2, 3, 4])
            .unwrap();
        let t = a.transpose(0, 2).unwrap();
        assert!(t.shares_storage(&a));
        let s = a.slice(2, 0, 4, 2).unwrap();
        assert!(s.shares_storage(&a));
        assert_eq!(
            s.to_vec::<f32>().unwrap(),
            vec![0., 2., 4., 6., 8., 10., 12., 14., 16., 18., 20., 22.]
        );
        let e = a.slice(0, 0, 1, 1).unwrap().expand(&[3, 3, 4]).unwrap();
        assert!(e.shares_storage(&a));
    }
}
