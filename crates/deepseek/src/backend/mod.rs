//! Backends: the storage-level interface every device implements ([`Backend`]), and the one
//! place that dispatches to it (`dispatch.rs`).
//!
//! A backend takes storages and their layouts and returns storages: it never sees a
//! `Tensor`, never records autograd nodes and never allocates a `Tensor`. The dispatcher
//! (this module's `pub(crate)` functions, used by `crate::ops`, `crate::optim`, `crate::nn`
//! and `crate::lazy`) reads the tensors' storages, picks the backend of their device with
//! [`for_device`], runs every kernel through one wrapper (kernel counters, the lazy-mode
//! hooks, out-of-memory → `Error::OutOfMemory`), and wraps the results in tensors. Nothing
//! outside `backend/cpu/` matches `Storage::Cpu` to compute. A new device (CUDA, HIP,
//! OpenCL) is a new [`Backend`] implementation and a `Storage` variant.

pub mod cpu;
mod dispatch;

pub(crate) use dispatch::*;

use crate::lazy::kernel::Kernel;
use crate::ops::conv::ConvGeom;
use crate::ops::rnn::LstmDims;
use crate::ops::{BinaryOp, Pool2dAttrs, ReduceOp, UnaryOp};
use crate::optim::fused::UpdateRule;
use crate::tensor::{Layout, Storage};
use crate::{DType, Device, Error, Result};

/// A storage with the layout of the view a kernel reads (or writes).
pub(crate) type Src<'a> = (&'a Storage, &'a Layout);

/// Inputs of one LSTM layer (see [`crate::ops::Op::LstmLayer`]); all contiguous.
pub(crate) struct LstmArgs<'a> {
    pub x: Src<'a>,
    pub h0: Src<'a>,
    pub c0: Src<'a>,
    /// Absent when `x` is already the input projection.
    pub w_ih: Option<Src<'a>>,
    pub w_hh: Src<'a>,
    pub bias: Src<'a>,
}

/// What the backward of one LSTM layer reads (all contiguous): the forward's inputs and
/// saved activations, and the gradients that arrived (any may be absent).
pub(crate) struct LstmBackwardArgs<'a> {
    pub x: Src<'a>,
    pub h0: Src<'a>,
    pub c0: Src<'a>,
    /// Absent when `x` was the input projection.
    pub w_ih: Option<Src<'a>>,
    pub w_hh: Src<'a>,
    pub gates: Src<'a>,
    pub cells: Src<'a>,
    pub out: Src<'a>,
    pub dout: Option<Src<'a>>,
    pub dh: Option<Src<'a>>,
    pub dc: Option<Src<'a>>,
}

/// One parameter of a multi-tensor optimizer step (see [`Backend::optimizer_update`]).
pub(crate) struct UpdateJob<'a, 's> {
    pub rule: UpdateRule,
    pub p: &'a mut Storage,
    pub pl: &'a Layout,
    pub g: Src<'a>,
    pub state: &'a mut [&'s mut Vec<f32>],
}

/// The storage-level interface of a device. Every method is one kernel: inputs are storages
/// with the layout of the view to read, outputs are new contiguous storages (or writes into
/// `&mut Storage` arguments). Methods documented as taking contiguous inputs are given
/// contiguous layouts by the dispatcher.
#[allow(clippy::too_many_arguments)]
pub(crate) trait Backend: Send + Sync {
    // ------------------------------------------------------------------ memory
    /// `n` elements of `dt`, all `value`.
    fn full(&self, op: &str, dt: DType, n: usize, value: f64) -> Result<Storage>;
    /// Copies the view `src` into the view `dst` (equal shapes and dtypes).
    fn copy(&self, dst: &mut Storage, dl: &Layout, src: Src<'_>) -> Result<()>;
    /// The elements of a contiguous view as little-endian bytes (for files).
    fn to_le_bytes(&self, x: Src<'_>) -> Result<Vec<u8>>;

    // ------------------------------------------------------------------ elementwise
    fn unary(&self, op: UnaryOp, x: Src<'_>) -> Result<Storage>;
    /// `x = op(x)` on a contiguous float view, in place.
    fn unary_inplace(&self, op: UnaryOp, x: &mut Storage, l: &Layout) -> Result<()>;
    /// `x = x op (alpha * b)` in place on a contiguous float view, `op` one of add, sub, mul,
    /// div; `b` contiguous, of `x`'s dtype and either `x`'s element count or one element.
    fn binary_inplace(
        &self,
        op: BinaryOp,
        x: &mut Storage,
        xl: &Layout,
        b: Src<'_>,
        alpha: f64,
    ) -> Result<()>;
    /// `y[r, :] += b` for every row of a contiguous float `y` whose rows have `b`'s length
    /// (a Linear's bias added to the product it owns, without a second buffer).
    fn bias_add_inplace(&self, y: &mut Storage, yl: &Layout, b: Src<'_>) -> Result<()>;
    /// `op(a, b)` broadcast to `shape` (both of one dtype).
    fn binary(&self, op: BinaryOp, a: Src<'_>, b: Src<'_>, shape: &[usize]) -> Result<Storage>;
    /// `c ? a : b` broadcast to `shape` (`c` bool; `a`, `b` of one dtype).
    fn where_(&self, c: Src<'_>, a: Src<'_>, b: Src<'_>, shape: &[usize]) -> Result<Storage>;
    fn cast(&self, x: Src<'_>, dt: DType) -> Result<Storage>;

    // ------------------------------------------------------------------ reductions
    /// Reduces over `dims`; the result has the kept dims' elements in order.
    fn reduce(&self, op: ReduceOp, x: Src<'_>, dims: &[usize]) -> Result<Storage>;
    fn cumsum(&self, x: Src<'_>, dim: usize) -> Result<Storage>;
    /// PyTorch's `vector_norm` of all elements (`ord` may be 0, ±inf), in f64.
    fn vector_norm(&self, x: Src<'_>, ord: f64) -> Result<f64>;

    // ------------------------------------------------------------------ indexing
    /// The values of an integer index tensor, checked to be integers. (Read on the host:
    /// the index kernels below take them as a slice.)
    fn indices(&self, idx: Src<'_>, op: &str) -> Result<Vec<i64>>;
    fn index_select(&self, x: Src<'_>, dim: usize, idx: &[i64]) -> Result<Storage>;
    fn gather(&self, x: Src<'_>, dim: usize, idx: &[i64], ishape: &[usize]) -> Result<Storage>;
    /// `dst.scatter_add_(dim, idx, src)` (`accumulate`) or `dst.scatter_(dim, idx, src)` on
    /// a contiguous `dst`.
    #[allow(clippy::too_many_arguments)]
    fn scatter(
        &self,
        dst: &mut Storage,
        dl: &Layout,
        dim: usize,
        idx: &[i64],
        ishape: &[usize],
        src: Src<'_>,
        accumulate: bool,
    ) -> Result<()>;
    /// `dst.index_add_(dim, idx, src)` on a contiguous `dst` of `shape`, `src` contiguous.
    fn index_add(
        &self,
        dst: &mut Storage,
        shape: &[usize],
        dim: usize,
        idx: &[i64],
        src: Src<'_>,
    ) -> Result<()>;

    // ------------------------------------------------------------------ dense layers
    /// Batched matrix product of equal-rank operands.
    fn matmul(&self, a: Src<'_>, b: Src<'_>) -> Result<Storage>;
    /// Softmax (or log-softmax) of each row of `n` elements of a contiguous f32/f64 view.
    fn softmax_rows(&self, x: Src<'_>, n: usize, log: bool) -> Result<Storage>;
    /// The input gradient of [`Backend::softmax_rows`] from its output `y` and output gradient
    /// `g` (both contiguous, same dtype, rows of `n`): `y * (g - sum(g * y))` for softmax,
    /// `g - exp(y) * sum(g)` for log-softmax, per row.
    fn softmax_backward_rows(&self, g: Src<'_>, y: Src<'_>, n: usize, log: bool)
        -> Result<Storage>;
    /// Cross-entropy rows of contiguous logits [rows, n] (f32/f64) against in-range targets:
    /// (loss per row, logsumexp per row).
    fn cross_entropy(
        &self,
        x: Src<'_>,
        n: usize,
        t: &[i64],
        ignore: i64,
        smoothing: f64,
    ) -> Result<(Storage, Storage)>;
    /// Gradient of [`Backend::cross_entropy`] w.r.t. the logits, from the per-row output
    /// gradient `g` (contiguous, of x's dtype).
    fn cross_entropy_backward(
        &self,
        x: Src<'_>,
        n: usize,
        t: &[i64],
        lse: Src<'_>,
        g: Src<'_>,
        ignore: i64,
        smoothing: f64,
    ) -> Result<Storage>;
    /// Layer norm over rows of `n` (contiguous f32/f64 inputs of one dtype): (y, mean, rstd).
    fn layer_norm(
        &self,
        x: Src<'_>,
        n: usize,
        w: Option<Src<'_>>,
        b: Option<Src<'_>>,
        eps: f64,
    ) -> Result<[Storage; 3]>;

    // ------------------------------------------------------------------ conv, pooling
    /// conv2d of contiguous f32/f64 inputs of one dtype.
    fn conv2d(&self, x: Src<'_>, w: Src<'_>, gm: &ConvGeom) -> Result<Storage>;
    /// conv2d backward: (dx, dw), each only when asked for.
    fn conv2d_backward(
        &self,
        x: Src<'_>,
        w: Src<'_>,
        dy: Src<'_>,
        gm: &ConvGeom,
        need_dx: bool,
        need_dw: bool,
    ) -> Result<(Option<Storage>, Option<Storage>)>;
    /// 2-D pooling of a contiguous f32/f64 x [N, C, H, W] to [N, C, ho, wo]: (y, argmax
    /// within each plane as i64; empty for average pooling).
    fn pool2d(
        &self,
        x: Src<'_>,
        ho: usize,
        wo: usize,
        a: &Pool2dAttrs,
    ) -> Result<(Storage, Storage)>;
    /// Average-pooling backward from a contiguous dy [N, C, ho, wo].
    fn avg_pool2d_backward(
        &self,
        dy: Src<'_>,
        in_shape: &[usize],
        a: &Pool2dAttrs,
    ) -> Result<Storage>;

    // ------------------------------------------------------------------ recurrent
    /// One LSTM layer (f32/f64): (out, h_T, c_T, gates, cells).
    fn lstm_layer(&self, a: LstmArgs<'_>, d: LstmDims) -> Result<[Storage; 5]>;
    /// Its backward: (dx, dh0, dc0, dw_ih, dw_hh, db).
    fn lstm_layer_backward(
        &self,
        a: LstmBackwardArgs<'_>,
        d: LstmDims,
    ) -> Result<[Option<Storage>; 6]>;

    // ------------------------------------------------------------------ fused kernels
    /// Runs a fused kernel of the lazy scheduler (`crate::lazy::kernel`): one storage per
    /// output. `inputs` are the storages of `k.inputs`, in order.
    fn run_fused(&self, k: &Kernel, inputs: &[&Storage]) -> Result<Vec<Storage>>;
    /// Runs a fused kernel whose value is reduced by `op`: over rows of `r` elements
    /// (`leading` false: the reduced dims are innermost), or over `r` rows for each column
    /// (`leading` true: the reduced dims come first). Returns (the reduced values, the
    /// kernel's other outputs).
    fn run_fused_reduce(
        &self,
        k: &Kernel,
        inputs: &[&Storage],
        r: usize,
        op: ReduceOp,
        leading: bool,
    ) -> Result<(Storage, Vec<Storage>)>;
    /// One optimizer step over several parameters at once (one launch: the multi-tensor
    /// update): each job's contiguous f32/f64 parameter is updated in place from its
    /// contiguous gradient (same dtype) and its f32 state buffers.
    fn optimizer_update(&self, jobs: &mut [UpdateJob<'_, '_>]) -> Result<()>;
}

/// The backend of `device`, or an error when this build or machine has none.
pub(crate) fn for_device(device: Device) -> Result<&'static dyn Backend> {
    match device {
        Device::Cpu => Ok(&cpu::CpuBackend),
        Device::Cuda(n) => Err(Error::device(
            "device",
            format!("cuda:{n} requested, but this build of deepseek has no CUDA backend (CUDA is not available)"),
        )),
    }
}

/// Fails unless `device` can be used by this build and machine.
pub fn check_device(device: Device) -> Result<()> {
    for_device(device).map(|_| ())
}
