//! wip
use crate::autograd::Ctx;
use crate::{Result, Tensor};
pub(crate) fn lstm_layer_backward(_c: &Ctx, _g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> { unimplemented!() }
