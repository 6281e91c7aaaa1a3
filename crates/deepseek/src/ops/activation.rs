//! wip
use crate::autograd::Ctx;
use crate::{Result, Tensor};
pub(crate) fn softmax_backward(_d: usize, _c: &Ctx, _g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> { unimplemented!() }
pub(crate) fn log_softmax_backward(_d: usize, _c: &Ctx, _g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> { unimplemented!() }
pub(crate) fn dropout_backward(_p: f64, _c: &Ctx, _g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> { unimplemented!() }
