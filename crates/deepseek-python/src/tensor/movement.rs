//! Shape and movement methods (`view`, `permute`, `cat`-like) and `new_*` factories.

use super::*;

#[pymethods]
impl PyTensor {
    // ---------------------------------------------------------------- movement

    /// `view(*shape)` reshapes without copying (the layout must allow it); `view(dtype)` reinterprets the bytes.
    #[pyo3(signature = (*shape))]
    fn view(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        if shape.len() == 1 {
            if let Ok(dt) = shape.get_item(0)?.cast::<PyDType>() {
                if dt.get().d != self.t.dtype() {
                    return Err(PyNotImplementedError::new_err(
                        "view(dtype) (reinterpreting bits) is not supported; use .to(dtype)",
                    ));
                }
                return Ok(PyTensor { t: self.t.clone() });
            }
        }
        Ok(PyTensor {
            t: self.t.view(&shape_args(shape)?).py()?,
        })
    }
    /// `reshape(*shape)`: the same elements in a new shape (-1 inferred); a view when the layout allows, else a copy.
    #[pyo3(signature = (*shape))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.reshape_infer(&shape_args(shape)?).py()?,
        })
    }
    /// `view_as(other)`: `self.view(other.size())`.
    fn view_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        let s: Vec<isize> = other.t.shape().iter().map(|&d| d as isize).collect();
        Ok(PyTensor {
            t: self.t.view(&s).py()?,
        })
    }
    /// `reshape_as(other)`: `self.reshape(other.size())`.
    fn reshape_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.reshape(other.t.shape()).py()?,
        })
    }
    /// `permute(*dims)`: a view with the dims reordered.
    #[pyo3(signature = (*dims))]
    fn permute(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.permute(&shape_args(dims)?).py()?,
        })
    }
    /// `transpose(dim0, dim1)`: a view with the two dims swapped.
    fn transpose(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.transpose(dim0, dim1).py()?,
        })
    }
    /// Alias of `transpose(dim0, dim1)`.
    fn swapaxes(&self, dim0: isize, dim1: isize) -> PyResult<PyTensor> {
        self.transpose(dim0, dim1)
    }
    /// Transpose of a tensor with at most 2 dims.
    fn t(&self) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.t().py()?,
        })
    }
    /// The tensor with its dims reversed.
    #[getter(T)]
    fn big_t(&self) -> PyResult<PyTensor> {
        let r = self.t.rank() as isize;
        let d: Vec<isize> = (0..r).rev().collect();
        Ok(PyTensor {
            t: self.t.permute(&d).py()?,
        })
    }
    /// The last two dims swapped.
    #[getter(mT)]
    fn m_t(&self) -> PyResult<PyTensor> {
        self.transpose(-2, -1)
    }
    /// `unsqueeze(dim)`: a view with a size-1 dim inserted at `dim`.
    fn unsqueeze(&self, dim: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.unsqueeze(dim).py()?,
        })
    }
    /// `squeeze(dim=None)`: remove size-1 dims (all, or the given dim(s)).
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let t = match dims_arg(dim)? {
            None => self.t.squeeze().py()?,
            Some(ds) => {
                let r = self.t.rank() as isize;
                let mut nd: Vec<isize> =
                    ds.iter().map(|&d| if d < 0 { d + r } else { d }).collect();
                nd.sort_unstable();
                let mut t = self.t.clone();
                for &d in nd.iter().rev() {
                    t = t.squeeze_dim(d).py()?;
                }
                t
            }
        };
        Ok(PyTensor { t })
    }
    /// `expand(*sizes)`: a broadcast view with size-1 dims repeated to `sizes` (-1 keeps a dim); no copy.
    #[pyo3(signature = (*sizes))]
    fn expand(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.expand_infer(&shape_args(sizes)?).py()?,
        })
    }
    /// `expand_as(other)`: `self.expand(other.size())`.
    fn expand_as(&self, other: &PyTensor) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.expand_as(&other.t).py()?,
        })
    }
    /// `flatten(start_dim=0, end_dim=-1)`: merge dims `start_dim..=end_dim` into one.
    #[pyo3(
        signature = (start_dim=0, end_dim=-1),
        text_signature = "($self, start_dim=0, end_dim=-1)"
    )]
    fn flatten(&self, start_dim: isize, end_dim: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.flatten(start_dim, end_dim).py()?,
        })
    }
    /// Splits dim `dim` into `sizes` (one may be -1).
    fn unflatten(&self, dim: isize, sizes: Vec<isize>) -> PyResult<PyTensor> {
        let r = self.t.rank() as isize;
        let d = if dim < 0 { dim + r } else { dim };
        if d < 0 || d >= r {
            return Err(PyIndexError::new_err(format!(
                "unflatten: dim {dim} out of range for a {r}-d tensor"
            )));
        }
        let mut shape: Vec<isize> = self.t.shape()[..d as usize]
            .iter()
            .map(|&s| s as isize)
            .collect();
        shape.extend_from_slice(&sizes);
        shape.extend(self.t.shape()[d as usize + 1..].iter().map(|&s| s as isize));
        Ok(PyTensor {
            t: self.t.reshape_infer(&shape).py()?,
        })
    }
    /// `narrow(dim, start, length)`: the view `self[..., start:start+length, ...]` along `dim`.
    fn narrow(&self, dim: isize, start: usize, length: usize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.narrow(dim, start, length).py()?,
        })
    }
    /// `select(dim, index)`: the view at `index` along `dim`, with that dim removed.
    fn select(&self, dim: isize, index: isize) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.select(dim, index).py()?,
        })
    }
    /// `chunk(chunks, dim=0)`: split into `chunks` views of near-equal size along `dim` (the last may be smaller).
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk(&self, chunks: usize, dim: isize) -> PyResult<Vec<PyTensor>> {
        wrap_all(self.t.chunk(chunks, dim).py()?)
    }
    /// `split(size, dim)` or `split([sizes], dim)`.
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split(
        &self,
        split_size_or_sections: &Bound<'_, PyAny>,
        dim: isize,
    ) -> PyResult<Vec<PyTensor>> {
        let parts = if let Ok(s) = split_size_or_sections.extract::<usize>() {
            self.t.split(s, dim).py()?
        } else {
            let sizes: Vec<usize> = split_size_or_sections.extract()?;
            self.t.split_sizes(&sizes, dim).py()?
        };
        wrap_all(parts)
    }
    /// `unbind(dim=0)`: the tuple of slices along `dim`, that dim removed.
    #[pyo3(signature = (dim=0))]
    fn unbind(&self, dim: isize) -> PyResult<Vec<PyTensor>> {
        wrap_all(self.t.unbind(dim).py()?)
    }
    /// Reverses the order along each of `dims`.
    #[pyo3(signature = (*dims))]
    fn flip(&self, dims: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let mut t = self.t.clone();
        for d in shape_args(dims)? {
            t = t.flip(d).py()?;
        }
        Ok(PyTensor { t })
    }
    /// `repeat(*sizes)`: tile the tensor `sizes[i]` times along each dim (copies).
    #[pyo3(signature = (*sizes))]
    fn repeat(&self, sizes: &Bound<'_, PyTuple>) -> PyResult<PyTensor> {
        let s = usize_shape(&shape_args(sizes)?, "repeat")?;
        Ok(PyTensor {
            t: self.t.repeat(&s).py()?,
        })
    }
    /// `tril(diagonal=0)`: the lower triangle of the last two dims, zeros above.
    #[pyo3(signature = (diagonal=0))]
    fn tril(&self, diagonal: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.tril(diagonal).py()?,
        })
    }
    /// `triu(diagonal=0)`: the upper triangle of the last two dims, zeros below.
    #[pyo3(signature = (diagonal=0))]
    fn triu(&self, diagonal: i64) -> PyResult<PyTensor> {
        Ok(PyTensor {
            t: self.t.triu(diagonal).py()?,
        })
    }

    // ---------------------------------------------------------------- factories

    /// `new_zeros(*size, dtype=None, requires_grad=False)`: zeros of `size`, this tensor's dtype by default.
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_zeros(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_full_impl(size, 0.0, dtype, requires_grad)
    }
    /// `new_ones(*size, dtype=None, requires_grad=False)`: ones of `size`, this tensor's dtype by default.
    #[pyo3(signature = (*size, dtype=None, requires_grad=false))]
    fn new_ones(
        &self,
        size: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        self.new_full_impl(size, 1.0, dtype, requires_grad)
    }
    /// `new_full(size, fill_value, *, dtype=None, requires_grad=False)`: a tensor of `size` filled with the value, this tensor's dtype by default.
    #[pyo3(signature = (size, fill_value, dtype=None, requires_grad=false))]
    fn new_full(
        &self,
        size: &Bound<'_, PyAny>,
        fill_value: f64,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let t = PyTuple::new(size.py(), [size])?;
        self.new_full_impl(&t, fill_value, dtype, requires_grad)
    }
    /// `new_tensor(data, *, dtype=None, requires_grad=False)`: a new tensor from data, this tensor's dtype by default.
    #[pyo3(signature = (data, dtype=None, requires_grad=false))]
    fn new_tensor(
        &self,
        data: &Bound<'_, PyAny>,
        dtype: Option<&Bound<'_, PyAny>>,
        requires_grad: bool,
    ) -> PyResult<PyTensor> {
        let dt = dtype.map(dtype_arg).transpose()?;
        let t = tensor_from_data(data, Some(dt.unwrap_or(self.t.dtype())))?;
        if requires_grad {
            t.requires_grad_(true).py()?;
        }
        Ok(PyTensor { t })
    }
}
