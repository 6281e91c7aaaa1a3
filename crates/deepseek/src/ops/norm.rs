//! wip
use crate::autograd::Ctx;
use crate::{Result, Tensor};
pub(crate) fn layer_norm_backward(_n: usize, _e: f64, _w: bool, _b: bool, _c: &Ctx, _g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> { unimplemented!() }
