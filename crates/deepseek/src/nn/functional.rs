//! PyTorch's `torch.nn.functional`: activations, normalisation, convolution, pooling,
//! attention, recurrent layers and losses as free functions.

pub use crate::ops::activation::{dropout, log_softmax, softmax};
pub use crate::ops::attention::{
    begin_attention_recording, end_attention_recording, is_recording_attention, mha,
    multi_head_attention_forward, record_attention, record_attention_map,
    scaled_dot_product_attention,
};
pub use crate::ops::conv::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, conv1d, conv2d, max_pool2d,
};
pub use crate::ops::loss::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, mse_loss, nll_loss, smooth_l1_loss,
};
pub use crate::ops::norm::{batch_norm, group_norm, layer_norm, rms_norm};
pub use crate::ops::rnn::{
    gru, gru_with, lstm, lstm_layer, lstm_layer_projected, lstm_with, lstm_with_projected_input,
    RnnOptions,
};

use crate::{Result, Tensor};

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.relu()
}
/// GELU (`"none"` or `"tanh"`).
pub fn gelu(x: &Tensor, approximate: &str) -> Result<Tensor> {
    x.gelu(approximate)
}
/// SiLU / swish.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.silu()
}
/// Sigmoid.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.sigmoid()
}
/// Tanh.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    x.tanh()
}
/// Softplus with `beta` and `threshold`.
pub fn softplus(x: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    x.softplus(beta, threshold)
}
/// ELU.
pub fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    x.elu(alpha)
}
/// Leaky ReLU.
pub fn leaky_relu(x: &Tensor, negative_slope: f64) -> Result<Tensor> {
    x.leaky_relu(negative_slope)
}
/// `x @ w.T + b`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    x.linear(w, b)
}
/// Embedding lookup.
pub fn embedding(indices: &Tensor, weight: &Tensor, padding_idx: Option<i64>) -> Result<Tensor> {
    Tensor::embedding(weight, indices, padding_idx)
}
/// Constant padding.
pub fn pad(x: &Tensor, pad: &[usize], value: f64) -> Result<Tensor> {
    x.pad(pad, value)
}
