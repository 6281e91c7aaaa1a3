//! Selections and rearrangements built from index arithmetic: `roll`, `diag`,
//! `repeat_interleave`, and the ops whose result shape comes from the data (`nonzero`,
//! `masked_select`, `unique`). Each is a composition of primitives (`narrow` + `cat`,
//! `index_select`, `index_add`), so autograd, lazy mode and every backend come with them;
//! only the index lists are computed on the host (from the shapes, or for the data-dependent
//! ones from the values, which must be read anyway to know the result's size).

use crate::tensor::layout::broadcast_shapes;
use crate::{DType, Error, Result, Tensor};

/// How many times `repeat_interleave` repeats each element.
#[derive(Debug, Clone)]
pub enum Repeats {
    /// The same count for every element.
    Each(usize),
    /// One count per element along the dim (a 1-D integer tensor; one element broadcasts).
    PerElement(Tensor),
}

/// The result of [`Tensor::unique`]: sorted distinct values, and when asked the index of
/// each input element's value in them (input's shape) and each value's count.
#[derive(Debug, Clone)]
pub struct Unique {
    pub values: Tensor,
    pub inverse: Option<Tensor>,
    pub counts: Option<Tensor>,
}

fn index_tensor(v: Vec<i64>) -> Result<Tensor> {
    let n = v.len();
    Tensor::from_vec(v, &[n])
}

impl Tensor {
    /// Rolls elements along `dims` by `shifts` (`torch.roll`): an element at index `i`
    /// moves to `(i + shift) mod n`. With `dims` empty the tensor is rolled flattened and
    /// restored to its shape (then `shifts` must hold one value).
    pub fn roll(&self, shifts: &[i64], dims: &[isize]) -> Result<Tensor> {
        if dims.is_empty() {
            if shifts.len() != 1 {
                return Err(Error::value(
                    "roll",
                    format!(
                        "shifts must hold one value when dims is empty, got {}",
                        shifts.len()
                    ),
                ));
            }
            return self
                .reshape(&[self.numel()])?
                .roll(shifts, &[0])?
                .reshape(self.shape());
        }
        if shifts.len() != dims.len() {
            return Err(Error::value(
                "roll",
                format!(
                    "shifts and dims must have the same length, got {} and {}",
                    shifts.len(),
                    dims.len()
                ),
            ));
        }
        // A copy even when nothing moves, as PyTorch returns.
        let mut x = self.mul_scalar(1.0)?;
        for (&s, &d) in shifts.iter().zip(dims) {
            let d = x.dim(d)?;
            let n = x.shape()[d];
            if n == 0 {
                continue;
            }
            let k = s.rem_euclid(n as i64) as usize;
            if k == 0 {
                continue;
            }
            let tail = x.narrow(d as isize, n - k, k)?;
            let head = x.narrow(d as isize, 0, n - k)?;
            x = Tensor::cat(&[tail, head], d as isize)?;
        }
        Ok(x)
    }

    /// `torch.diag`: of a 1-D tensor, the square matrix with it on the `diagonal`-th
    /// diagonal (0 main, > 0 above, < 0 below); of a 2-D tensor, that diagonal as 1-D.
    pub fn diag(&self, diagonal: i64) -> Result<Tensor> {
        let up = diagonal.max(0) as usize;
        let down = (-diagonal).max(0) as usize;
        match self.rank() {
            1 => {
                let n = self.numel();
                let m = n + up + down;
                let pos = (0..n).map(|i| ((i + down) * m + i + up) as i64).collect();
                Tensor::zeros(&[m * m], self.dtype())?
                    .index_add(0, &index_tensor(pos)?, self)?
                    .reshape(&[m, m])
            }
            2 => {
                let (r, c) = (self.shape()[0], self.shape()[1]);
                let len = if diagonal >= 0 {
                    r.min(c.saturating_sub(up))
                } else {
                    r.saturating_sub(down).min(c)
                };
                let pos = (0..len).map(|i| ((i + down) * c + i + up) as i64).collect();
                self.reshape(&[r * c])?.index_select(0, &index_tensor(pos)?)
            }
            n => Err(Error::shape(
                "diag",
                format!("expected a 1-D or 2-D tensor, got {n} dims"),
            )),
        }
    }

    /// Repeats each element `repeats` times along `dim` (`torch.repeat_interleave`); with
    /// `dim` `None` the input is flattened first.
    pub fn repeat_interleave(&self, repeats: &Repeats, dim: Option<isize>) -> Result<Tensor> {
        let (x, d) = match dim {
            Some(d) => (self.clone(), self.dim(d)?),
            None => (self.reshape(&[self.numel()])?, 0),
        };
        let n = x.shape()[d];
        let counts: Vec<i64> = match repeats {
            Repeats::Each(r) => vec![*r as i64; n],
            Repeats::PerElement(t) => {
                if t.dtype().is_float() || t.dtype() == DType::Bool || t.rank() > 1 {
                    return Err(Error::value(
                        "repeat_interleave",
                        format!(
                            "repeats must be a 0-d or 1-d integer tensor, got {} of shape {:?}",
                            t.dtype(),
                            t.shape()
                        ),
                    ));
                }
                let v = t.to_dtype(DType::I64)?.to_vec::<i64>()?;
                match v.len() {
                    1 => vec![v[0]; n],
                    l if l == n => v,
                    l => {
                        return Err(Error::shape(
                            "repeat_interleave",
                            format!(
                            "repeats must have the same size as input along dim, got {l} and {n}"
                        ),
                        ))
                    }
                }
            }
        };
        if let Some(c) = counts.iter().find(|&&c| c < 0) {
            return Err(Error::value(
                "repeat_interleave",
                format!("repeats can not be negative, got {c}"),
            ));
        }
        let idx: Vec<i64> = counts
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| std::iter::repeat_n(i as i64, c as usize))
            .collect();
        x.index_select(d as isize, &index_tensor(idx)?)
    }

    /// The indices of the non-zero elements (`torch.nonzero`): an int64 tensor of shape
    /// `[count, rank]`, in row-major order.
    pub fn nonzero(&self) -> Result<Tensor> {
        let flat = self.flat_nonzero()?;
        let r = self.rank();
        let mut out = Vec::with_capacity(flat.len() * r);
        let shape = self.shape();
        for &f in &flat {
            let mut rem = f as usize;
            let start = out.len();
            out.resize(start + r, 0);
            for d in (0..r).rev() {
                out[start + d] = (rem % shape[d]) as i64;
                rem /= shape[d];
            }
        }
        Tensor::from_vec(out, &[flat.len(), r])
    }

    /// Row-major positions of the non-zero elements.
    fn flat_nonzero(&self) -> Result<Vec<i64>> {
        let v = self.ne_scalar(0.0)?.to_vec::<bool>()?;
        Ok(v.iter()
            .enumerate()
            .filter(|(_, &b)| b)
            .map(|(i, _)| i as i64)
            .collect())
    }

    /// The elements where the boolean `mask` is true, as 1-D (`torch.masked_select`);
    /// `mask` and self broadcast together.
    pub fn masked_select(&self, mask: &Tensor) -> Result<Tensor> {
        if mask.dtype() != DType::Bool {
            return Err(Error::dtype(
                "masked_select",
                format!("expected a bool mask, got {}", mask.dtype()),
            ));
        }
        let shape = broadcast_shapes("masked_select", self.shape(), mask.shape())?;
        let pos = mask.expand(&shape)?.flat_nonzero()?;
        let n: usize = shape.iter().product();
        self.expand(&shape)?
            .reshape(&[n])?
            .index_select(0, &index_tensor(pos)?)
    }

    /// The sorted distinct elements (`torch.unique` over the flattened input), with the
    /// inverse indices and counts when asked. NaNs are distinct from each other, as in
    /// PyTorch.
    pub fn unique(&self, return_inverse: bool, return_counts: bool) -> Result<Unique> {
        let flat = self.reshape(&[self.numel()])?.detach();
        let n = self.numel();
        let mut order: Vec<usize> = (0..n).collect();
        let same: Box<dyn Fn(usize, usize) -> bool> = if self.dtype().is_float() {
            let keys = flat.to_vec_f64()?;
            order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
            // NaN != NaN: every NaN stays its own value.
            Box::new(move |a, b| keys[a] == keys[b])
        } else {
            let keys = flat.to_dtype(DType::I64)?.to_vec::<i64>()?;
            order.sort_by_key(|&a| keys[a]);
            Box::new(move |a, b| keys[a] == keys[b])
        };
        let mut firsts: Vec<i64> = Vec::new();
        let mut counts: Vec<i64> = Vec::new();
        let mut inverse = vec![0i64; n];
        for (k, &i) in order.iter().enumerate() {
            if k == 0 || !same(order[k - 1], i) {
                firsts.push(i as i64);
                counts.push(0);
            }
            *counts.last_mut().expect("a group") += 1;
            inverse[i] = firsts.len() as i64 - 1;
        }
        let values = flat.index_select(0, &index_tensor(firsts)?)?;
        Ok(Unique {
            values,
            inverse: if return_inverse {
                Some(Tensor::from_vec(inverse, self.shape())?)
            } else {
                None
            },
            counts: if return_counts {
                Some(index_tensor(counts)?)
            } else {
                None
            },
        })
    }
}
