//! Data: the [`Dataset`] trait, [`TensorDataset`], a seeded [`DataLoader`] that prepares
//! batches on a background thread, a character tokenizer and a text-window dataset.

mod loader;
mod text;

pub use loader::{BatchIter, DataLoader, DataLoaderConfig};
pub use text::{CharTokenizer, TextWindows};

use crate::{Error, Result, Tensor};

/// An indexable collection of samples; a sample is a tuple of tensors (e.g. input, target).
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample `i` (0 <= i < len).
    fn get(&self, i: usize) -> Result<Vec<Tensor>>;
}

/// Samples are the rows (dim 0) of equally long tensors (PyTorch's `TensorDataset`).
pub struct TensorDataset {
    tensors: Vec<Tensor>,
}

impl TensorDataset {
    pub fn new(tensors: Vec<Tensor>) -> Result<TensorDataset> {
        let n = tensors
            .first()
            .map(|t| t.shape().first().copied().unwrap_or(0));
        for t in &tensors {
            if t.rank() == 0 || Some(t.shape()[0]) != n {
                return Err(Error::shape("TensorDataset", format!("size mismatch between tensors: every tensor needs the same dim 0, got {:?}", tensors.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>())));
            }
        }
        Ok(TensorDataset { tensors })
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.tensors.first().map_or(0, |t| t.shape()[0])
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>> {
        self.tensors
            .iter()
            .map(|t| t.select(0, i as isize))
            .collect()
    }
}

/// Stacks samples field by field into a batch.
pub fn collate(samples: &[Vec<Tensor>]) -> Result<Vec<Tensor>> {
    let k = samples.first().map_or(0, |s| s.len());
    (0..k)
        .map(|j| {
            let col: Vec<Tensor> = samples.iter().map(|s| s[j].clone()).collect();
            Tensor::stack(&col, 0)
        })
        .collect()
}
