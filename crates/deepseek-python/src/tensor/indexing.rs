//! `t[idx]` and `t[idx] = v`: basic and advanced indexing, and the index-op methods.

use super::*;

// ------------------------------------------------------------------------------ indexing

pub(super) enum Ix {
    Int(isize),
    Slice(Py<PySlice>),
    NewAxis,
    Ellipsis,
    Adv(Tensor),
}

pub(super) fn parse_index(idx: &Bound<'_, PyAny>) -> PyResult<Vec<Ix>> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = idx.cast::<PyTuple>() {
        t.iter().collect()
    } else {
        vec![idx.clone()]
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        if it.is_none() {
            out.push(Ix::NewAxis);
        } else if it.cast::<PyEllipsis>().is_ok() {
            out.push(Ix::Ellipsis);
        } else if let Ok(s) = it.cast::<PySlice>() {
            out.push(Ix::Slice(s.clone().unbind()));
        } else if let Ok(t) = it.cast::<PyTensor>() {
            let t = t.borrow().t.clone();
            if t.rank() == 0 && t.dtype() != DType::Bool {
                if t.dtype().is_float() {
                    return Err(PyIndexError::new_err(
                        "tensors used as indices must be long, int, uint8 or bool tensors",
                    ));
                }
                out.push(Ix::Int(t.item().py()? as isize));
            } else {
                out.push(Ix::Adv(t));
            }
        } else if it.cast::<PyBool>().is_ok() {
            return Err(PyIndexError::new_err(
                "indexing with a Python bool is not supported",
            ));
        } else if let Ok(i) = it.extract::<isize>() {
            out.push(Ix::Int(i));
        } else if it.cast::<PyList>().is_ok() || it.hasattr("__array_interface__")? {
            let t = tensor_from_data(&it, None)?;
            if t.dtype().is_float() {
                return Err(PyIndexError::new_err(
                    "index lists must hold ints or bools, got floats",
                ));
            }
            out.push(Ix::Adv(t));
        } else {
            return Err(PyIndexError::new_err(format!(
                "only integers, slices (`:`), ellipsis (`...`), None and integer or boolean tensors are valid indices (got {})",
                it.get_type().name()?
            )));
        }
    }
    Ok(out)
}

/// Positions of the true elements of a bool mask, one int64 tensor per mask dim.
pub(super) fn nonzero_cols(mask: &Tensor) -> PyResult<Vec<Tensor>> {
    let v = mask.to_vec::<bool>().py()?;
    let shape = mask.shape();
    let r = shape.len();
    let mut cols: Vec<Vec<i64>> = vec![Vec::new(); r];
    for (flat, &b) in v.iter().enumerate() {
        if b {
            let mut rem = flat;
            for d in (0..r).rev() {
                cols[d].push((rem % shape[d]) as i64);
                rem /= shape[d];
            }
        }
    }
    cols.into_iter()
        .map(|c| {
            let n = c.len();
            Tensor::from_vec(c, &[n]).py()
        })
        .collect()
}

/// Basic indexing (views), then advanced indexing with integer / bool tensors.
pub(super) fn getitem(t: &Tensor, idx: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let (x, adv) = basic_index(t, idx)?;
    if adv.is_empty() {
        return Ok(x);
    }
    let a = Advanced::new(&x, &adv)?;
    let merged = a.xp.reshape(&a.merged_shape).py()?;
    merged
        .index_select(a.first as isize, &a.flat)
        .py()?
        .reshape(&a.out_shape)
        .py()
}

/// The basic part of an index applied as views, and the advanced indices left over as
/// (dim of the view, integer index tensor).
pub(super) fn basic_index(
    t: &Tensor,
    idx: &Bound<'_, PyAny>,
) -> PyResult<(Tensor, Vec<(usize, Tensor)>)> {
    let py = idx.py();
    let items = parse_index(idx)?;
    let consumed: usize = items
        .iter()
        .map(|i| match i {
            Ix::Int(_) | Ix::Slice(_) => 1,
            Ix::Adv(a) if a.dtype() == DType::Bool => a.rank().max(1),
            Ix::Adv(_) => 1,
            _ => 0,
        })
        .sum();
    if consumed > t.rank() {
        return Err(PyIndexError::new_err(format!(
            "too many indices for tensor of dimension {} (got {consumed})",
            t.rank()
        )));
    }
    if items.iter().filter(|i| matches!(i, Ix::Ellipsis)).count() > 1 {
        return Err(PyIndexError::new_err(
            "an index can only have a single ellipsis ('...')",
        ));
    }
    let mut x = t.clone();
    let mut d = 0usize;
    // (dim in x, index tensors for dims d.., count)
    let mut adv: Vec<(usize, Tensor)> = Vec::new();
    for it in &items {
        match it {
            Ix::Int(i) => {
                let n = x.shape()[d] as isize;
                if *i < -n || *i >= n {
                    return Err(PyIndexError::new_err(format!(
                        "index {i} is out of bounds for dimension {d} with size {n}"
                    )));
                }
                x = x.select(d as isize, *i).py()?;
            }
            Ix::Slice(s) => {
                let n = x.shape()[d] as isize;
                let ind = s.bind(py).indices(n)?;
                if ind.step <= 0 {
                    return Err(PyValueError::new_err("step must be greater than zero"));
                }
                let stop = ind.stop.max(ind.start);
                x = x
                    .slice(d as isize, ind.start, stop, ind.step as usize)
                    .py()?;
                d += 1;
            }
            Ix::NewAxis => {
                x = x.unsqueeze(d as isize).py()?;
                d += 1;
            }
            Ix::Ellipsis => {
                d += t.rank() - consumed;
            }
            Ix::Adv(a) => {
                if a.dtype() == DType::Bool {
                    let k = a.rank();
                    if x.shape().get(d..d + k) != Some(a.shape()) {
                        return Err(PyIndexError::new_err(format!(
                            "the shape of the mask {:?} does not match the shape of the indexed tensor {:?} at dims {d}..{}",
                            a.shape(),
                            x.shape(),
                            d + k
                        )));
                    }
                    for (j, c) in nonzero_cols(a)?.into_iter().enumerate() {
                        adv.push((d + j, c));
                    }
                    d += k;
                } else {
                    adv.push((d, a.clone()));
                    d += 1;
                }
            }
        }
    }
    Ok((x, adv))
}

/// PyTorch's advanced indexing, prepared: the indexed view (advanced dims moved first when
/// they are not adjacent), the advanced dims merged into one of `merged_shape`, and one flat
/// int64 index into that merged dim.
pub(super) struct Advanced {
    xp: Tensor,
    /// The permutation applied to the view, if any.
    perm: Option<Vec<isize>>,
    first: usize,
    merged_shape: Vec<usize>,
    out_shape: Vec<usize>,
    /// Flat indices into the merged dim, 1-D.
    flat: Tensor,
}

impl Advanced {
    fn new(x: &Tensor, adv: &[(usize, Tensor)]) -> PyResult<Advanced> {
        let dims: Vec<usize> = adv.iter().map(|(d, _)| *d).collect();
        let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
        // Non-adjacent advanced dims go first (as in PyTorch).
        let (xp, first, perm) = if adjacent {
            (x.clone(), dims[0], None)
        } else {
            let mut perm: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            perm.extend(
                (0..x.rank())
                    .filter(|d| !dims.contains(d))
                    .map(|d| d as isize),
            );
            (x.permute(&perm).py()?, 0, Some(perm))
        };
        let k = dims.len();
        let sizes: Vec<usize> = xp.shape()[first..first + k].to_vec();
        // Broadcast the index tensors, wrap negatives, and fold them into one flat index.
        let mut bshape: Vec<usize> = Vec::new();
        for (_, t) in adv {
            bshape = deepseek::tensor::broadcast_shapes("index", &bshape, t.shape()).py()?;
        }
        let mut flat: Option<Tensor> = None;
        for (j, (_, t)) in adv.iter().enumerate() {
            let n = sizes[j] as f64;
            let t = t.to_dtype(DType::I64).py()?;
            let vals = t.to_vec::<i64>().py()?;
            if let Some(bad) = vals.iter().find(|&&v| v < -(n as i64) || v >= n as i64) {
                return Err(PyIndexError::new_err(format!(
                    "index {bad} is out of bounds for dimension with size {}",
                    sizes[j]
                )));
            }
            let t = t
                .add(
                    &t.lt_scalar(0.0)
                        .py()?
                        .to_dtype(DType::I64)
                        .py()?
                        .mul_scalar(n)
                        .py()?,
                )
                .py()?
                .expand(&bshape)
                .py()?;
            let stride: usize = sizes[j + 1..].iter().product();
            let term = t.mul_scalar(stride as f64).py()?;
            flat = Some(match flat {
                None => term,
                Some(f) => f.add(&term).py()?,
            });
        }
        let flat = flat.expect("at least one index");
        let mut merged_shape: Vec<usize> = xp.shape()[..first].to_vec();
        merged_shape.push(sizes.iter().product());
        merged_shape.extend_from_slice(&xp.shape()[first + k..]);
        let mut out_shape: Vec<usize> = xp.shape()[..first].to_vec();
        out_shape.extend_from_slice(&bshape);
        out_shape.extend_from_slice(&xp.shape()[first + k..]);
        let nflat = flat.numel();
        Ok(Advanced {
            flat: flat.reshape(&[nflat]).py()?,
            xp,
            perm,
            first,
            merged_shape,
            out_shape,
        })
    }

    /// `x` with `value` (broadcast to the indexed shape) written at the indexed positions;
    /// for repeated positions the last value wins.
    fn scatter(&self, value: &Tensor) -> PyResult<Tensor> {
        let work = if self.xp.dtype() == DType::Bool {
            DType::I64
        } else {
            self.xp.dtype()
        };
        let merged = self
            .xp
            .to_dtype(work)
            .py()?
            .reshape(&self.merged_shape)
            .py()?;
        let mut vshape: Vec<usize> = self.merged_shape.clone();
        vshape[self.first] = self.flat.numel();
        let v = value
            .to_dtype(work)
            .py()?
            .expand(&self.out_shape)
            .py()?
            .reshape(&vshape)
            .py()?;
        // Keep the last occurrence of each position.
        let fv = self.flat.to_vec::<i64>().py()?;
        let mut seen = std::collections::HashSet::new();
        let mut keep: Vec<i64> = Vec::with_capacity(fv.len());
        for (i, f) in fv.iter().enumerate().rev() {
            if seen.insert(*f) {
                keep.push(i as i64);
            }
        }
        keep.reverse();
        let (flat, v) = if keep.len() < fv.len() {
            let n = keep.len();
            let ki = Tensor::from_vec(keep, &[n]).py()?;
            (
                self.flat.index_select(0, &ki).py()?,
                v.index_select(self.first as isize, &ki).py()?,
            )
        } else {
            (self.flat.clone(), v)
        };
        let d = self.first as isize;
        let cur = merged.index_select(d, &flat).py()?;
        let new = merged
            .index_add(d, &flat, &v.sub(&cur).py()?)
            .py()?
            .reshape(self.xp.shape())
            .py()?;
        match &self.perm {
            None => Ok(new),
            Some(p) => {
                let mut inv = vec![0isize; p.len()];
                for (i, &d) in p.iter().enumerate() {
                    inv[d as usize] = i as isize;
                }
                new.permute(&inv).py()
            }
        }
    }
}

/// `t[idx] = value` as a new tensor, differentiable with respect to `t` (the assigned
/// positions get no gradient). `value` must not require grad.
pub(super) fn setitem_functional(
    t: &Tensor,
    idx: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Tensor> {
    let v = to_tensor_like(value, Some(t))?;
    if v.requires_grad() {
        return Err(PyNotImplementedError::new_err(
            "__setitem__: assigning a tensor that requires grad into a tensor in the autograd graph is not supported; build the result with deepseek.where or deepseek.cat",
        ));
    }
    let (sel, full) = {
        let _g = deepseek::no_grad();
        let sel = Tensor::zeros(t.shape(), DType::Bool).py()?;
        setitem(&sel, idx, PyBool::new(idx.py(), true).as_any())?;
        let full = Tensor::zeros(t.shape(), t.dtype()).py()?;
        let vb = Py::new(idx.py(), PyTensor { t: v })?;
        setitem(&full, idx, vb.bind(idx.py()).as_any())?;
        (sel, full)
    };
    Tensor::where_cond(&sel, &full, t).py()
}

pub(super) fn setitem(
    t: &Tensor,
    idx: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    check_grad_inplace(t, "__setitem__")?;
    // A bool mask over the leading dims: masked_fill / where.
    if let Ok(m) = idx.cast::<PyTensor>() {
        let m = m.borrow().t.clone();
        if m.dtype() == DType::Bool {
            if m.rank() > t.rank() || t.shape()[..m.rank()] != *m.shape() {
                return Err(PyIndexError::new_err(format!(
                    "the shape of the mask {:?} does not match the shape of the indexed tensor {:?}",
                    m.shape(),
                    t.shape()
                )));
            }
            let mut ms = m.shape().to_vec();
            ms.resize(t.rank(), 1);
            let mb = m.reshape(&ms).py()?;
            let _g = deepseek::no_grad();
            let new = match scalar(value)? {
                Some(s) => t.masked_fill(&mb, s.value()).py()?,
                None => {
                    let v = to_tensor_like(value, Some(t))?;
                    Tensor::where_cond(&mb, &v.to_dtype(t.dtype()).py()?, t).py()?
                }
            };
            return t.copy_(&new).py();
        }
    }
    let _g = deepseek::no_grad();
    let (view, adv) = basic_index(t, idx)?;
    if !view.shares_storage(t) {
        return Err(PyRuntimeError::new_err(
            "__setitem__: the index did not produce a view",
        ));
    }
    let v = to_tensor_like(value, Some(t))?;
    if adv.is_empty() {
        return view.copy_(&v).py();
    }
    // Integer-tensor (or mixed) indices: compute the updated view, then write it back.
    let new = Advanced::new(&view, &adv)?.scatter(&v)?;
    view.copy_(&new).py()
}

#[pymethods]
impl PyTensor {
    // ---------------------------------------------------------------- index ops

    /// `gather(dim, index)`: `out[i][j] = self[index[i][j]][j]` along `dim` (PyTorch's gather).
    fn gather(&self, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        if let Some(t) = empty_index_result(&self.t, &index.t, dim, "gather")? {
            return Ok(PyTensor { t });
        }
        Ok(PyTensor {
            t: self.t.gather(dim, &index.t).py()?,
        })
    }
    /// `index_select(dim, index)`: the slices of `self` at the int64 `index` positions along `dim`.
    fn index_select(&self, dim: isize, index: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.index_select(dim, &index.t).py()?,
        })
    }
    /// `take_along_dim(indices, dim=None)`: gather values at `indices` along `dim` (flattened when None).
    #[pyo3(signature = (indices, dim=None))]
    fn take_along_dim(&self, indices: &PyTensor, dim: Option<isize>) -> PyResult<PyTensor> {
        if let Some(d) = dim {
            if let Some(t) = empty_index_result(&self.t, &indices.t, d, "take_along_dim")? {
                return Ok(PyTensor { t });
            }
        }
        let t = match dim {
            Some(d) => self.t.take_along_dim(&indices.t, d).py()?,
            None => self
                .t
                .reshape(&[self.t.numel()])
                .py()?
                .take_along_dim(&indices.t.reshape(&[indices.t.numel()]).py()?, 0)
                .py()?,
        };
        Ok(PyTensor { t })
    }
    /// `masked_fill(mask, value)`: a copy with `value` where the bool `mask` (broadcast) is True.
    fn masked_fill(&self, mask: &PyTensor, value: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let v: f64 = match value.cast::<PyTensor>() {
            Ok(t) => t.borrow().t.item().py()?,
            Err(_) => value.extract()?,
        };
        Ok(PyTensor {
            t: self.t.masked_fill(&mask.t, v).py()?,
        })
    }
    /// `scatter_add(dim, index, src)`: a copy with `src` summed into the `index` positions along `dim`.
    fn scatter_add(&self, dim: isize, index: &PyTensor, src: &PyTensor) -> PyResult<PyTensor> {
        if index.t.numel() == 0 && index.t.rank() == self.t.rank() {
            // Nothing to add (the core's kernel does not take empty indices).
            return Ok(PyTensor {
                t: self.t.mul_scalar(1.0).py()?,
            });
        }
        Ok(PyTensor {
            t: self.t.scatter_add(dim, &index.t, &src.t).py()?,
        })
    }
    fn index_add(&self, dim: isize, index: &PyTensor, source: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.index_add(dim, &index.t, &source.t).py()?,
        })
    }
    /// `where(condition, self, other)`.
    #[pyo3(name = "where")]
    fn where_(&self, condition: &PyTensor, other: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let o = to_tensor_like(other, Some(&self.t))?;
        Ok(PyTensor {
            t: Tensor::where_cond(&condition.t, &self.t, &o).py()?,
        })
    }
}
