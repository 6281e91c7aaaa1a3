//! [`Checkpointed`]: a sub-module trained with gradient checkpointing.

use super::{Forward, Module, Visit, Visitor};
use crate::{Result, Tensor};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Wraps a sub-module so that its activations are not kept between forward and backward:
/// backward runs its forward again (with the same RNG state, so dropout masks match) to
/// rebuild them — less memory for one more forward pass of the segment. Parameter names are
/// the wrapped module's own (a `Checkpointed` field named `body` holding a `Linear` exposes
/// `body.weight`), so state dicts are unchanged.
///
/// ```
/// use deepseek::nn::{Checkpointed, Forward, Linear, Module, Sequential, Tanh};
/// use deepseek::{DType, Tensor};
/// let body = Checkpointed::new(Sequential::new().add(Linear::new(16, 16, true)?).add(Tanh {}));
/// let x = Tensor::randn(&[4, 16], DType::F32)?;
/// body.forward(&x)?.sum_all()?.backward()?;
/// assert!(body.parameters().iter().all(|p| p.grad().is_some()));
/// # Ok::<(), deepseek::Error>(())
/// ```
pub struct Checkpointed<M> {
    inner: Arc<RwLock<M>>,
}

impl<M> Checkpointed<M> {
    pub fn new(module: M) -> Self {
        Checkpointed {
            inner: Arc::new(RwLock::new(module)),
        }
    }
    /// The wrapped module.
    pub fn inner(&self) -> RwLockReadGuard<'_, M> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl<M: Visit> Visit for Checkpointed<M> {
    fn visit(&self, prefix: &str, v: &mut dyn Visitor) {
        self.inner().visit(prefix, v);
    }
    fn set_train(&mut self, on: bool) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_train(on);
    }
}

impl<M: Visit> Module for Checkpointed<M> {}

impl<M: Forward + Module + Send + Sync + 'static> Forward for Checkpointed<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let params = self.inner().parameters();
        let m = self.inner.clone();
        let mut out = crate::autograd::checkpoint(
            move |xs| {
                let m = m.read().unwrap_or_else(|e| e.into_inner());
                Ok(vec![m.forward(&xs[0])?])
            },
            std::slice::from_ref(x),
            &params,
        )?;
        Ok(out.remove(0))
    }
}
