//! `deepseek.Generator`: PyTorch's generator objects. A `Generator` owns its own random state;
//! `default_generator` stands for the global one (`manual_seed`). Random functions that take
//! `generator=` draw from it through [`with_generator`].

use crate::tensor::PyTensor;
use crate::PyDevice;
use deepseek::tensor::{Generator, SharedGenerator};
use deepseek::{DType, Device, Tensor};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

/// PyTorch's seed for a new `torch.Generator()` (`initial_seed()` before any `manual_seed`).
const DEFAULT_SEED: u64 = 67_280_421_310_721;
/// Bytes of a state from `get_state`: the four xoshiro256++ words and the initial seed.
const STATE_BYTES: usize = 40;

/// `Generator(device='cpu')`: a random generator of its own (`manual_seed`, `seed`,
/// `initial_seed`, `get_state`, `set_state`), passed to random functions as `generator=`.
#[pyclass(name = "Generator", module = "deepseek")]
pub struct PyGenerator {
    /// None: the global generator (`deepseek.default_generator`).
    inner: Option<SharedGenerator>,
    seed: u64,
}

/// A seed as PyTorch takes it: an int in [-2^63, 2^64), negative values wrapping.
pub fn seed_arg(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    let s: i128 = seed.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "manual_seed expected an int, got {}",
            seed.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    if s < i64::MIN as i128 || s > u64::MAX as i128 {
        return Err(PyRuntimeError::new_err(format!(
            "Overflow when unpacking long: seed {s} is outside [-2**63, 2**64)"
        )));
    }
    Ok(s as u64)
}

impl PyGenerator {
    /// The global generator, as `deepseek.default_generator`.
    pub fn default_generator() -> Self {
        PyGenerator {
            inner: None,
            seed: 0,
        }
    }
    fn with<R>(&self, f: impl FnOnce(&mut Generator) -> R) -> R {
        match &self.inner {
            Some(g) => g.with(f),
            None => deepseek::tensor::rng::with_rng(f),
        }
    }
    fn reseed(&mut self, seed: u64) {
        match &self.inner {
            Some(g) => g.with(|s| *s = Generator::new(seed)),
            None => deepseek::manual_seed(seed),
        }
        self.seed = seed;
    }
}

#[pymethods]
impl PyGenerator {
    #[new]
    #[pyo3(signature = (device=None))]
    fn new(device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        if let Some(d) = device.filter(|d| !d.is_none()) {
            crate::check_device(crate::device_arg(d)?)?;
        }
        Ok(PyGenerator {
            inner: Some(SharedGenerator::new(DEFAULT_SEED)),
            seed: DEFAULT_SEED,
        })
    }
    /// Seeds the generator; returns it (so `Generator().manual_seed(0)` chains).
    fn manual_seed<'py>(
        mut slf: PyRefMut<'py, Self>,
        seed: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let s = seed_arg(seed)?;
        slf.reseed(s);
        Ok(slf)
    }
    /// Seeds the generator from the operating system; returns the seed.
    fn seed(&mut self) -> PyResult<u64> {
        let mut b = [0u8; 8];
        getrandom(&mut b)?;
        let s = u64::from_le_bytes(b) >> 1;
        self.reseed(s);
        Ok(s)
    }
    /// The seed of the last `manual_seed`/`seed` (67280421310721 for a new generator, as in
    /// PyTorch).
    fn initial_seed(&self) -> u64 {
        match self.inner {
            Some(_) => self.seed,
            None => deepseek::tensor::initial_seed(),
        }
    }
    /// The state as a uint8 tensor (40 bytes: deepseek's xoshiro256++ state and the seed; not
    /// PyTorch's Mersenne-Twister layout), for `set_state`.
    fn get_state(&self) -> PyResult<PyTensor> {
        let st = self.with(|g| g.state());
        let mut bytes: Vec<u8> = st.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.extend(self.initial_seed().to_le_bytes());
        Ok(PyTensor {
            t: Tensor::from_vec(bytes, &[STATE_BYTES])
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?,
        })
    }
    /// Restores a state from `get_state`; returns the generator.
    fn set_state<'py>(
        mut slf: PyRefMut<'py, Self>,
        state: &PyTensor,
    ) -> PyResult<PyRefMut<'py, Self>> {
        if state.t.dtype() != DType::U8 || state.t.shape() != [STATE_BYTES] {
            return Err(PyRuntimeError::new_err(format!(
                "set_state expects the uint8 tensor of {STATE_BYTES} bytes that get_state returns, got {} of shape {:?}",
                state.t.dtype(),
                state.t.shape()
            )));
        }
        let b = state
            .t
            .to_vec::<u8>()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let st = [word(0), word(1), word(2), word(3)];
        if st == [0; 4] {
            return Err(PyRuntimeError::new_err(
                "set_state: an all-zero state is not a valid generator state",
            ));
        }
        slf.with(|g| g.set_state(st));
        if slf.inner.is_some() {
            slf.seed = word(4);
        }
        Ok(slf)
    }
    /// The generator's device (always the CPU).
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: Device::Cpu }
    }
    fn __repr__(&self) -> String {
        match self.inner {
            Some(_) => format!("<deepseek.Generator seed={}>", self.seed),
            None => "<deepseek.Generator (default)>".to_string(),
        }
    }
}

fn getrandom(b: &mut [u8]) -> PyResult<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(b))
        .map_err(|e| PyRuntimeError::new_err(format!("seed: cannot read /dev/urandom: {e}")))
}

/// Runs `f` with random ops drawing from `generator` (a `deepseek.Generator`; None or
/// `default_generator`: the global one).
pub fn with_generator<R>(
    generator: Option<&Bound<'_, PyAny>>,
    f: impl FnOnce() -> R,
) -> PyResult<R> {
    let Some(g) = generator.filter(|g| !g.is_none()) else {
        return Ok(f());
    };
    let g = g.cast::<PyGenerator>().map_err(|_| {
        PyTypeError::new_err(format!(
            "generator must be a deepseek.Generator, got {}",
            g.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let inner = g.borrow().inner.clone();
    Ok(match inner {
        Some(s) => s.scope(f),
        None => f(),
    })
}

/// `_with_generator(generator, fn)`: calls `fn()` with random ops drawing from `generator`
/// (the Python functions that take `generator=` use it).
#[pyfunction]
pub fn _with_generator(generator: &Bound<'_, PyAny>, f: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    with_generator(Some(generator), || f.call0().map(|r| r.unbind()))?
}
