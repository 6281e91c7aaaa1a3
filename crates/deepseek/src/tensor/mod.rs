//! The [`Tensor`] type: a cheap-to-clone handle on shared storage plus a layout.

mod buffer;
mod creation;
mod device;
mod display;
mod dtype;
pub(crate) mod layout;
pub mod rng;
mod storage;

pub use buffer::Buffer;
pub use creation::TensorOptions;
pub use device::Device;
pub use display::{get_printoptions, grad_fn_class, set_printoptions, PrintOptions};
pub use dtype::DType;
pub use layout::{broadcast_shapes, Layout};
pub use rng::{
    get_rng_state, initial_seed, manual_seed, set_rng_state, Generator, SharedGenerator,
};
pub use storage::{CpuStorage, Element, Storage};

use crate::autograd::{self, Node};
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A gradient hook: sees the gradient flowing into a tensor and may replace it.
pub type Hook = Arc<dyn Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A storage shared by a tensor and its views, with a version counter that every in-place
/// write bumps (autograd uses it to refuse a backward over modified saved tensors).
///
/// In lazy mode the storage may be *deferred*: `pending` holds the expression that computes
/// it and `data` is empty until the value is needed ([`crate::lazy`]). `readers` lists the
/// deferred storages that read this one, so an in-place write realises them first (they
/// must see the values from before the write).
pub(crate) struct StorageCell {
    pub(crate) data: RwLock<Storage>,
    version: AtomicU64,
    pub(crate) pending: crate::lazy::expr::PendingSlot,
    readers: Mutex<Vec<std::sync::Weak<StorageCell>>>,
}

impl StorageCell {
    pub(crate) fn new(storage: Storage) -> Arc<StorageCell> {
        Arc::new(StorageCell {
            data: RwLock::new(storage),
            version: AtomicU64::new(0),
            pending: crate::lazy::expr::PendingSlot::none(),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// A storage whose value `expr` computes later.
    pub(crate) fn deferred(expr: Arc<crate::lazy::expr::Expr>, dtype: DType) -> Arc<StorageCell> {
        Arc::new(StorageCell {
            data: RwLock::new(Storage::Cpu(CpuStorage::empty(dtype))),
            version: AtomicU64::new(0),
            pending: crate::lazy::expr::PendingSlot::some(expr),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Computes the value if it is deferred.
    pub(crate) fn ensure_realized(self: &Arc<Self>) {
        if self.pending.is_pending() {
            crate::lazy::realize_cell(self);
        }
    }

    /// Sets the value of a deferred storage (the scheduler, once its kernel ran).
    pub(crate) fn fill(&self, storage: Storage) {
        crate::memory::on_alloc(storage.nbytes());
        *self.data.write().unwrap_or_else(|e| e.into_inner()) = storage;
    }

    /// Notes that the deferred storage `r` reads this one.
    pub(crate) fn add_reader(&self, r: &Arc<StorageCell>) {
        let mut rs = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if rs.len() >= 16 && rs.len().is_power_of_two() {
            rs.retain(|w| w.upgrade().is_some_and(|c| c.pending.is_pending()));
        }
        rs.push(Arc::downgrade(r));
    }

    /// Realises the deferred storages that read this one (before an in-place write).
    fn realize_readers(&self) {
        let rs = std::mem::take(&mut *self.readers.lock().unwrap_or_else(|e| e.into_inner()));
        for r in rs.iter().filter_map(|w| w.upgrade()) {
            r.ensure_realized();
        }
    }
}

pub(crate) struct TensorImpl {
    pub(crate) id: u64,
    pub(crate) storage: Arc<StorageCell>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
    /// The node that produced this tensor and which of its outputs it is.
    pub(crate) grad_fn: Option<(Arc<Node>, usize)>,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) hooks: Mutex<Vec<Hook>>,
    pub(crate) retains_grad: AtomicBool,
}

/// An n-dimensional array with autograd. Cloning is cheap (an `Arc`); views share storage.
///
/// ```
/// use deepseek::prelude::*;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = a.matmul(&a.t()?)?;
/// assert_eq!(b.to_vec::<f32>()?, vec![5.0, 11.0, 11.0, 25.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorImpl>);

impl Tensor {
    /// Wraps a storage and layout into a new tensor (no autograd history).
    pub fn from_storage(storage: Storage, layout: Layout, device: Device) -> Tensor {
        let dtype = storage.dtype();
        crate::memory::on_alloc(storage.nbytes());
        Self::from_shared(StorageCell::new(storage), layout, dtype, device)
    }

    pub(crate) fn from_shared(
        storage: Arc<StorageCell>,
        layout: Layout,
        dtype: DType,
        device: Device,
    ) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            storage,
            layout,
            dtype,
            device,
            grad_fn: None,
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
            hooks: Mutex::new(Vec::new()),
            retains_grad: AtomicBool::new(false),
        }))
    }

    /// A contiguous CPU tensor over a fresh buffer.
    pub(crate) fn from_cpu(s: CpuStorage, shape: &[usize]) -> Tensor {
        debug_assert_eq!(s.len(), shape.iter().product::<usize>());
        Self::from_storage(Storage::Cpu(s), Layout::contiguous(shape), Device::Cpu)
    }

    /// A CPU tensor over memory that another library owns (a NumPy array, a DLPack tensor),
    /// used in place: writes through either side are seen by the other. `owner` keeps the
    /// memory alive and is dropped when the last tensor or view over it is gone.
    ///
    /// `len` elements start at `ptr`; `layout` (strides and offset in elements) must stay
    /// inside them, which is checked.
    ///
    /// # Safety
    /// `ptr` must point to `len` initialised elements of `T`, aligned for `T`, readable and
    /// writable, that stay valid and in place until `owner` is dropped.
    pub unsafe fn from_foreign<T: Element>(
        ptr: std::ptr::NonNull<T>,
        len: usize,
        layout: Layout,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<Tensor> {
        if layout.strides.len() != layout.shape.len() {
            return Err(Error::shape(
                "from_foreign",
                format!(
                    "shape {:?} and strides {:?} have different ranks",
                    layout.shape, layout.strides
                ),
            ));
        }
        let last = layout
            .shape
            .iter()
            .zip(&layout.strides)
            .try_fold(layout.offset, |acc, (&n, &s)| {
                acc.checked_add(n.saturating_sub(1).checked_mul(s)?)
            });
        if layout.numel() > 0 && last.is_none_or(|l| l >= len) {
            return Err(Error::shape(
                "from_foreign",
                format!(
                    "shape {:?} with strides {:?} and offset {} reaches past the {len} elements lent",
                    layout.shape, layout.strides, layout.offset
                ),
            ));
        }
        // SAFETY: forwarded from this function's contract.
        let buf = unsafe { Buffer::foreign(ptr, len, owner) };
        let storage = Storage::Cpu(T::into_buffer_storage(buf));
        Ok(Self::from_shared(
            StorageCell::new(storage),
            layout,
            T::DTYPE,
            Device::Cpu,
        ))
    }

    /// The address of this tensor's first element (its storage plus offset), as PyTorch's
    /// `data_ptr()`: for lending the memory to another library while a clone of this tensor
    /// keeps it alive. The memory never moves while any tensor over the storage exists.
    pub fn data_ptr(&self) -> *const u8 {
        let g = self.read();
        let Storage::Cpu(c) = &*g;
        crate::with_storage!(c, |v: T| v
            .as_ptr()
            .wrapping_add(self.0.layout.offset)
            .cast::<u8>())
    }

    /// A tensor sharing this one's storage with another layout (no autograd history).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Self::from_shared(self.0.storage.clone(), layout, self.0.dtype, self.0.device)
    }

    /// The same data attached to a graph node as output `idx`.
    pub(crate) fn attach(&self, node: Arc<Node>, idx: usize) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            device: self.0.device,
            grad_fn: Some((node, idx)),
            requires_grad: AtomicBool::new(true),
            grad: Mutex::new(None),
            hooks: Mutex::new(Vec::new()),
            retains_grad: AtomicBool::new(false),
        }))
    }

    /// Whether this handle is the only reference to its storage and views all of it
    /// contiguously (a realised value): then nothing else can observe or change its
    /// elements, and it can be kept instead of copied.
    pub(crate) fn is_sole_owner(&self) -> bool {
        Arc::strong_count(&self.0) == 1
            && Arc::strong_count(&self.0.storage) == 1
            && !self.is_deferred()
            && self.is_contiguous()
            && self.0.layout.offset == 0
            && self.read().len() == self.numel()
    }

    /// A unique id of this tensor handle (for graphs and optimizer state).
    pub fn id(&self) -> u64 {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }
    /// Alias of [`Tensor::shape`].
    pub fn dims(&self) -> &[usize] {
        &self.0.layout.shape
    }
    /// Size along one dim (negative dims count from the end).
    pub fn size(&self, dim: isize) -> Result<usize> {
        Ok(self.shape()[self.dim(dim)?])
    }
    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.0.layout.shape.len()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.0.device
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    /// Strides in elements.
    pub fn stride(&self) -> &[usize] {
        &self.0.layout.strides
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// True when both tensors share one storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    pub(crate) fn dim(&self, d: isize) -> Result<usize> {
        if self.rank() == 0 {
            return Err(Error::index(
                "dim",
                format!("dimension {d} specified, but the tensor is 0-dimensional (a scalar)"),
            ));
        }
        layout::norm_dim("dim", d, self.rank())
    }
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.ensure_realized();
        self.0
            .storage
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }
    /// Write access to the storage; counts as an in-place modification (bumps the version).
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.ensure_realized();
        self.0.storage.realize_readers();
        self.0.storage.version.fetch_add(1, Ordering::Relaxed);
        self.0
            .storage
            .data
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }
    /// Write access to a contiguous tensor's elements in its own storage, for engines that
    /// fill a tensor in place (the MPI collectives): `f` gets the storage and the element
    /// range this tensor views. `None` (and `f` is not called) when the tensor is not
    /// contiguous. Counts as an in-place modification.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn with_contiguous_mut<R>(
        &self,
        f: impl FnOnce(&mut CpuStorage, std::ops::Range<usize>) -> R,
    ) -> Option<R> {
        if !self.is_contiguous() {
            return None;
        }
        let start = self.0.layout.offset;
        let mut g = self.write();
        let Storage::Cpu(c) = &mut *g;
        Some(f(c, start..start + self.numel()))
    }
    /// How many times the storage has been written in place (PyTorch's `_version`); shared
    /// by all views of the storage.
    pub fn version(&self) -> u64 {
        self.0.storage.version.load(Ordering::Relaxed)
    }

    // ---------------------------------------------------------------- autograd state

    /// Whether gradients flow to this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Sets `requires_grad` on a leaf (PyTorch's `requires_grad_`); returns `self` for chaining.
    pub fn requires_grad_(&self, on: bool) -> Result<Tensor> {
        if !self.is_leaf() && !on {
            return Err(Error::Autograd(
                "you can only change requires_grad flags of leaf tensors; use detach() for a non-leaf".into(),
            ));
        }
        if on && !self.dtype().is_float() {
            return Err(Error::dtype(
                "requires_grad_",
                format!(
                    "only floating-point tensors can require gradients, got {}",
                    self.dtype()
                ),
            ));
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
        Ok(self.clone())
    }
    /// True for tensors not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.is_none()
    }
    /// The name of the op that produced this tensor, if recorded.
    pub fn grad_fn_name(&self) -> Option<String> {
        self.0
            .grad_fn
            .as_ref()
            .map(|(n, _)| n.op.name().to_string())
    }
    pub(crate) fn grad_fn(&self) -> Option<&(Arc<Node>, usize)> {
        self.0.grad_fn.as_ref()
    }
    /// The accumulated gradient (leaves, and non-leaves after `retain_grad`).
    pub fn grad(&self) -> Option<Tensor> {
        self.0
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Replaces the accumulated gradient (`None` clears it).
    pub fn set_grad(&self, g: Option<Tensor>) -> Result<()> {
        if let Some(g) = &g {
            if g.dtype() != self.dtype() {
                return Err(Error::dtype(
                    "set_grad",
                    format!(
                        "gradient of dtype {} for a tensor of dtype {}",
                        g.dtype(),
                        self.dtype()
                    ),
                ));
            }
            if g.shape() != self.shape() {
                return Err(Error::shape(
                    "set_grad",
                    format!(
                        "gradient of shape {:?} for a tensor of shape {:?}",
                        g.shape(),
                        self.shape()
                    ),
                ));
            }
        }
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = g;
        Ok(())
    }
    /// Clears the gradient (PyTorch's `set_to_none=True`).
    pub fn zero_grad(&self) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    /// Keeps the gradient of a non-leaf tensor in `.grad()` after backward. An error for the
    /// output of a `log_softmax` that an `nll_loss` has already been fused with (its own
    /// gradient is never formed; call this before the loss).
    pub fn retain_grad(&self) -> Result<()> {
        if let Some((node, _)) = &self.0.grad_fn {
            if let Some(e) = node.bypassed_error("retain_grad of") {
                return Err(e);
            }
        }
        self.0.retains_grad.store(true, Ordering::Relaxed);
        Ok(())
    }
    pub(crate) fn retains_grad(&self) -> bool {
        self.0.retains_grad.load(Ordering::Relaxed)
    }
    /// Registers a hook called with this tensor's gradient during backward; it may return a
    /// replacement gradient.
    pub fn register_hook(
        &self,
        f: impl Fn(&Tensor) -> Result<Option<Tensor>> + Send + Sync + 'static,
    ) -> Result<()> {
        if !self.requires_grad() {
            return Err(Error::Autograd(
                "cannot register a hook on a tensor that doesn't require gradient".into(),
            ));
        }
        // A non-leaf's hook goes with the node that made it (it runs even after this handle
        // is dropped, like PyTorch's); a leaf keeps its own.
        if let Some(e) = self
            .0
            .grad_fn
            .as_ref()
            .and_then(|(n, _)| n.bypassed_error("register a hook on"))
        {
            return Err(e);
        }
        match &self.0.grad_fn {
            Some((node, i)) => node
                .out_hooks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*i, Arc::new(f))),
            None => self
                .0
                .hooks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Arc::new(f)),
        }
        Ok(())
    }
    /// The hooks that run on this tensor's gradient (a leaf's own, or a non-leaf's on its node).
    pub(crate) fn hooks(&self) -> Vec<Hook> {
        match &self.0.grad_fn {
            Some((node, i)) => node_hooks(node, *i),
            None => self
                .0
                .hooks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
    /// A tensor sharing this one's data but cut from the graph.
    pub fn detach(&self) -> Tensor {
        self.with_layout(self.0.layout.clone())
    }
    /// [`Tensor::detach`] consuming this handle (its graph reference goes at once).
    pub(crate) fn detach_owned(self) -> Tensor {
        self.detach()
    }
    /// Backward from a scalar: accumulates d(self)/d(leaf) into every leaf's `.grad()`.
    pub fn backward(&self) -> Result<()> {
        autograd::backward(std::slice::from_ref(self), &[None], false, false)
    }
    /// Backward with an explicit output gradient and PyTorch's `retain_graph`/`create_graph`.
    pub fn backward_with(
        &self,
        grad: Option<&Tensor>,
        retain_graph: bool,
        create_graph: bool,
    ) -> Result<()> {
        autograd::backward(
            std::slice::from_ref(self),
            &[grad.cloned()],
            retain_graph || create_graph,
            create_graph,
        )
    }

    // ---------------------------------------------------------------- data out

    /// The elements in row-major order as `Vec<T>`; `T` must match the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::dtype(
                "to_vec",
                format!("tensor has dtype {}, asked for {}", self.dtype(), T::DTYPE),
            ));
        }
        self.with_slice(|v: &[T]| v.to_vec())
    }
    /// Calls `f` with the elements in row-major order, borrowed from the storage when the
    /// tensor is already contiguous (no copy), else from a contiguous copy; `T` must match
    /// the dtype. For kernels outside the backend that read a whole tensor once.
    pub(crate) fn with_slice<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        if T::DTYPE != self.dtype() {
            return Err(Error::dtype(
                "with_slice",
                format!("tensor has dtype {}, asked for {}", self.dtype(), T::DTYPE),
            ));
        }
        let c = self.contiguous()?.realize()?;
        let g = c.read();
        let Storage::Cpu(s) = &*g;
        let r = c.0.layout.offset..c.0.layout.offset + c.numel();
        Ok(f(&T::slice(s).expect("dtype checked")[r]))
    }
    /// The elements converted to f64, row-major.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        let c = self.contiguous()?.realize()?;
        let g = c.read();
        let Storage::Cpu(s) = &*g;
        let r = c.0.layout.offset..c.0.layout.offset + c.numel();
        Ok(crate::with_storage!(s, |v: T| v[r]
            .iter()
            .map(|x| x.to_f64())
            .collect()))
    }
    /// The value of a one-element tensor as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::value(
                "item",
                format!(
                    "a tensor with {} elements (shape {:?}) cannot be converted to a scalar",
                    self.numel(),
                    self.shape()
                ),
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {}, {}]",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}

impl Tensor {
    /// Copies `src` (broadcast to self's shape, converted to self's dtype) into self, in place.
    /// Refused on a leaf that requires grad while grad mode is on (as in PyTorch).
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        if self.requires_grad() && self.is_leaf() && autograd::is_grad_enabled() {
            return Err(Error::Autograd(
                "a leaf tensor that requires grad is being used in an in-place operation (wrap it in no_grad)".into(),
            ));
        }
        let s = src.to_dtype(self.dtype())?.expand(self.shape())?;
        crate::backend::copy_into(self, &s)
    }
    /// `self = self op (alpha * other)` in place, `other` broadcast to self's shape: PyTorch's
    /// `add_(other, alpha=)`, `sub_(other, alpha=)`, `mul_`, `div_` (`alpha` must be 1 for
    /// mul and div). A contiguous float tensor is updated in one pass over its own buffer
    /// (`other` of the same dtype); anything else is computed out of place and copied in,
    /// with PyTorch's promotion then a cast to self's dtype. Not recorded by autograd: an
    /// error while grad mode is on and either operand requires grad (use the out-of-place op,
    /// or wrap the update in `no_grad`).
    pub fn binary_(&self, op: crate::ops::BinaryOp, other: &Tensor, alpha: f64) -> Result<()> {
        use crate::ops::BinaryOp;
        let name = format!("{}_", op.name());
        if !matches!(
            op,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
        ) {
            return Err(Error::value(
                &name,
                "in-place arithmetic supports add, sub, mul and div",
            ));
        }
        if alpha != 1.0 && !matches!(op, BinaryOp::Add | BinaryOp::Sub) {
            return Err(Error::value(&name, "alpha is only taken by add and sub"));
        }
        if autograd::is_grad_enabled() && (self.requires_grad() || other.requires_grad()) {
            return Err(Error::Autograd(format!(
                "{name}: in-place arithmetic on a tensor that requires grad is not recorded by \
                 autograd; use the out-of-place op, or wrap the update in no_grad"
            )));
        }
        if crate::backend::binary_inplace(op, self, other, alpha)? {
            return Ok(());
        }
        let _g = autograd::no_grad();
        let o = if alpha != 1.0 {
            other.mul_scalar(alpha)?
        } else {
            other.clone()
        };
        let r = self.binary(&o, op)?;
        if crate::tensor::broadcast_shapes(&name, self.shape(), r.shape())?.as_slice()
            != self.shape()
        {
            return Err(Error::shape(
                &name,
                format!(
                    "output with shape {:?} doesn't match the broadcast shape {:?}",
                    self.shape(),
                    r.shape()
                ),
            ));
        }
        self.copy_(&r)
    }
}

/// The hooks registered on output `i` of `node`, in registration order.
pub(crate) fn node_hooks(node: &Node, i: usize) -> Vec<Hook> {
    node.out_hooks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(k, _)| *k == i)
        .map(|(_, h)| h.clone())
        .collect()
}
