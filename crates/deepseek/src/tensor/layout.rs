//! Shapes, strides and offsets: how a tensor's elements sit in its storage.
//!
//! Views (transpose, permute, slice, expand, squeeze, unsqueeze, reshape of contiguous data)
//! only build a new [`Layout`]; they never touch the data.

use crate::error::{bail_shape, bail_value};
use crate::Result;

/// Shape, strides (in elements) and offset (in elements) into a storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub offset: usize,
}

/// Row-major strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        s[i] = acc;
        acc *= shape[i].max(1);
    }
    s
}

/// Resolves a possibly negative dim against a rank.
pub fn norm_dim(op: &str, dim: isize, rank: usize) -> Result<usize> {
    let r = rank.max(1) as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(crate::Error::index(
            op,
            format!(
                "dimension {dim} out of range for a tensor of rank {rank} (expected [{}, {}])",
                -r,
                r - 1
            ),
        ));
    }
    Ok(d as usize)
}

/// Resolves a list of dims; rejects repeats.
pub fn norm_dims(op: &str, dims: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = norm_dim(op, d, rank)?;
        if out.contains(&d) {
            bail_value!(op, "dim {d} appears more than once in {dims:?}");
        }
        out.push(d);
    }
    Ok(out)
}

/// The broadcast shape of two shapes (NumPy/PyTorch rules).
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            bail_shape!(
                op,
                "shapes {a:?} and {b:?} cannot be broadcast together (dim {i}: {da} vs {db})"
            );
        };
    }
    crate::memory::checked_numel(op, &out)?;
    Ok(out)
}

impl Layout {
    /// A contiguous row-major layout at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when the elements are row-major and dense (offset may be non-zero).
    pub fn is_contiguous(&self) -> bool {
        // A layout without elements is contiguous (as in PyTorch); otherwise `contiguous()`
        // of an empty tensor would never report contiguous and `reshape` would recurse.
        if self.shape.contains(&0) {
            return true;
        }
        let mut acc = 1;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] != 1 && self.strides[i] != acc {
                return false;
            }
            acc *= self.shape[i];
        }
        true
    }
    /// The range of storage this layout touches when contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        if self.is_contiguous() {
            Some(self.offset..self.offset + self.numel())
        } else {
            None
        }
    }
    /// Strides of this layout broadcast to `shape` (0 on broadcast dims).
    pub fn broadcast_strides(&self, op: &str, shape: &[usize]) -> Result<Vec<usize>> {
        let n = shape.len();
        if self.rank() > n {
            bail_shape!(op, "cannot broadcast shape {:?} to {:?}", self.shape, shape);
        }
        let mut out = vec![0; n];
        let k = n - self.rank();
        for i in 0..self.rank() {
            if self.shape[i] == shape[i + k] {
                out[i + k] = if self.shape[i] == 1 {
                    0
                } else {
                    self.strides[i]
                };
            } else if self.shape[i] == 1 {
                out[i + k] = 0;
            } else {
                bail_shape!(op, "cannot broadcast shape {:?} to {:?}", self.shape, shape);
            }
        }
        Ok(out)
    }
    pub fn transpose(&self, d0: usize, d1: usize) -> Layout {
        let mut l = self.clone();
        l.shape.swap(d0, d1);
        l.strides.swap(d0, d1);
        l
    }
    pub fn permute(&self, dims: &[usize]) -> Layout {
        Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        }
    }
    /// `start..end` with `step` along `dim` (already clamped).
    pub fn slice(&self, dim: usize, start: usize, len: usize, step: usize) -> Layout {
        let mut l = self.clone();
        l.offset += start * self.strides[dim];
        l.shape[dim] = len;
        l.strides[dim] *= step;
        l
    }
    pub fn expand(&self, op: &str, shape: &[usize]) -> Result<Layout> {
        let strides = self.broadcast_strides(op, shape)?;
        crate::memory::checked_numel(op, shape)?;
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        let st = if dim < self.rank() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, st);
        l
    }
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        l.shape.remove(dim);
        l.strides.remove(dim);
        l
    }
    /// The layout of `shape` over the same elements, if it can be a view (PyTorch's
    /// `view` rule: each group of merged dims must be contiguous with itself).
    pub fn view(&self, shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.to_vec(),
                strides: contiguous_strides(shape),
                offset: self.offset,
            });
        }
        // General case: walk both shapes, matching chunks of equal element counts.
        let old: Vec<(usize, usize)> = self
            .shape
            .iter()
            .copied()
            .zip(self.strides.iter().copied())
            .filter(|(s, _)| *s != 1)
            .collect();
        let mut new_strides = vec![0usize; shape.len()];
        let mut oi = 0;
        let mut ni = 0;
        while ni < shape.len() || oi < old.len() {
            // skip size-1 dims of the new shape
            if ni < shape.len() && shape[ni] == 1 {
                new_strides[ni] = 1;
                ni += 1;
                continue;
            }
            if oi >= old.len() || ni >= shape.len() {
                return None;
            }
            // gather a chunk of old dims that are mutually contiguous
            let mut chunk = old[oi].0;
            let mut oj = oi;
            let mut nj = ni;
            let mut nsize = shape[ni];
            while chunk != nsize {
                if chunk < nsize {
                    oj += 1;
                    if oj >= old.len() || old[oj - 1].1 != old[oj].1 * old[oj].0 {
                        return None;
                    }
                    chunk *= old[oj].0;
                } else {
                    nj += 1;
                    if nj >= shape.len() {
                        return None;
                    }
                    nsize *= shape[nj];
                }
            }
            // the chunk's innermost stride
            let mut st = old[oj].1;
            for k in (ni..=nj).rev() {
                new_strides[k] = st;
                st *= shape[k];
            }
            oi = oj + 1;
            ni = nj + 1;
        }
        Some(Layout {
            shape: shape.to_vec(),
            strides: new_strides,
            offset: self.offset,
        })
    }
}

/// Resolves a shape with at most one `-1` against a number of elements.
pub fn infer_shape(op: &str, shape: &[isize], numel: usize, from: &[usize]) -> Result<Vec<usize>> {
    let mut infer = None;
    let mut known = 1usize;
    for (i, &s) in shape.iter().enumerate() {
        if s == -1 {
            if infer.is_some() {
                bail_value!(op, "only one dimension can be -1 in {shape:?}");
            }
            infer = Some(i);
        } else if s < 0 {
            bail_value!(op, "invalid size {s} in shape {shape:?}");
        } else {
            known *= s as usize;
        }
    }
    let mut out: Vec<usize> = shape.iter().map(|&s| s.max(0) as usize).collect();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            bail_shape!(
                op,
                "shape {shape:?} is invalid for input of shape {from:?} ({numel} elements)"
            );
        }
        out[i] = numel / known;
    } else if known != numel {
        bail_shape!(
            op,
            "shape {shape:?} is invalid for input of shape {from:?} ({numel} elements)"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn view_of_transposed_fails_and_split_dims_work() {
        let l = Layout::contiguous(&[4, 6]).transpose(0, 1);
        assert!(l.view(&[24]).is_none());
        assert!(l.view(&[2, 3, 4]).is_some());
        let v = l.view(&[2, 3, 4]).unwrap();
        assert_eq!(v.strides, vec![3, 1, 6]);
    }
    #[test]
    fn empty_layouts_are_contiguous_and_reshape() {
        let l = Layout::contiguous(&[2, 0]);
        assert!(l.is_contiguous());
        assert_eq!(l.view(&[0, 2]).unwrap().shape, vec![0, 2]);
        let t = crate::Tensor::zeros(&[2, 0], crate::DType::F32).unwrap();
        assert_eq!(t.reshape(&[0, 2]).unwrap().shape(), &[0, 2]);
        assert_eq!(t.flatten(0, -1).unwrap().shape(), &[0]);
        let r = crate::Tensor::ones(&[2, 3], crate::DType::F32).unwrap();
        assert_eq!(r.repeat(&[1, 0]).unwrap().shape(), &[2, 0]);
    }
    #[test]
    fn broadcast() {
        assert_eq!(
            broadcast_shapes("t", &[4, 1, 5], &[3, 1]).unwrap(),
            vec![4, 3, 5]
        );
        assert!(broadcast_shapes("t", &[4, 2], &[3]).is_err());
    }
}
