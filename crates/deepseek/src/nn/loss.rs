//! Losses as modules (PyTorch's `nn.CrossEntropyLoss`, `nn.MSELoss`, `nn.BCEWithLogitsLoss`).

use super::functional as F;
use crate::{Result, Tensor};

/// Cross-entropy over logits with class dim 1 (`ignore_index` -100, `reduction` "mean").
#[derive(Debug, Clone)]
pub struct CrossEntropyLoss {
    pub weight: Option<Tensor>,
    pub ignore_index: i64,
    pub reduction: String,
    pub label_smoothing: f64,
}
impl Default for CrossEntropyLoss {
    fn default() -> Self {
        CrossEntropyLoss {
            weight: None,
            ignore_index: -100,
            reduction: "mean".into(),
            label_smoothing: 0.0,
        }
    }
}
impl CrossEntropyLoss {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        F::cross_entropy(
            input,
            target,
            self.weight.as_ref(),
            self.ignore_index,
            &self.reduction,
            self.label_smoothing,
        )
    }
}

/// Mean squared error.
#[derive(Debug, Clone)]
pub struct MSELoss {
    pub reduction: String,
}
impl Default for MSELoss {
    fn default() -> Self {
        MSELoss {
            reduction: "mean".into(),
        }
    }
}
impl MSELoss {
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        F::mse_loss(input, target, &self.reduction)
    }
}

/// Binary cross-entropy on logits.
#[derive(Debug, Clone)]
pub struct BCEWithLogitsLoss {
    pub weight: Option<Tensor>,
    pub pos_weight: Option<Tensor>,
    pub reduction: String,
}
impl Default for BCEWithLogitsLoss {
    fn default() -> Self {
        BCEWithLogitsLoss {
            weight: None,
            pos_weight: None,
            reduction: "mean".into(),
        }
    }
}
impl BCEWithLogitsLoss {
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        F::binary_cross_entropy_with_logits(
            input,
            target,
            self.weight.as_ref(),
            self.pos_weight.as_ref(),
            &self.reduction,
        )
    }
}
