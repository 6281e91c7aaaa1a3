//! The batch loader.

use super::{collate, Dataset};
use crate::tensor::Generator;
use crate::{Error, Result, Tensor};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Options of a [`DataLoader`] (PyTorch's names; `seed` drives shuffling).
#[derive(Debug, Clone, Copy)]
pub struct DataLoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    /// Batches prepared ahead on a background thread (0: prepare in the caller).
    pub prefetch: usize,
}

impl Default for DataLoaderConfig {
    fn default() -> Self {
        DataLoaderConfig {
            batch_size: 1,
            shuffle: false,
            drop_last: false,
            seed: 0,
            prefetch: 2,
        }
    }
}

/// Iterates a dataset in batches. The order of epoch `e` depends only on `(seed, e)`, so a
/// resumed run sees the same batches as an uninterrupted one.
///
/// ```
/// use deepseek::data::{DataLoader, DataLoaderConfig, TensorDataset};
/// use deepseek::prelude::*;
/// let ds = TensorDataset::new(vec![Tensor::arange(0.0, 10.0, 1.0, DType::F32)?])?;
/// let dl = DataLoader::new(ds, DataLoaderConfig { batch_size: 4, ..Default::default() })?;
/// let sizes: Vec<usize> = dl.epoch(0).map(|b| b.unwrap()[0].shape()[0]).collect();
/// assert_eq!(sizes, [4, 4, 2]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub struct DataLoader<D: Dataset + 'static> {
    dataset: Arc<D>,
    pub config: DataLoaderConfig,
}

impl<D: Dataset + 'static> DataLoader<D> {
    pub fn new(dataset: D, config: DataLoaderConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::value(
                "DataLoader",
                "batch_size must be a positive integer, got 0",
            ));
        }
        if dataset.is_empty() {
            return Err(Error::value("DataLoader", "the dataset is empty"));
        }
        Ok(DataLoader {
            dataset: Arc::new(dataset),
            config,
        })
    }
    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }
    /// Batches per epoch.
    pub fn len(&self) -> usize {
        let n = self.dataset.len();
        if self.config.drop_last {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }
    /// True when an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sample order of an epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        let mut idx: Vec<usize> = (0..n).collect();
        if self.config.shuffle {
            let mut g =
                Generator::new(self.config.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for i in (1..n).rev() {
                idx.swap(i, g.below(i as u64 + 1) as usize);
            }
        }
        idx
    }
    /// Batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> BatchIter {
        self.epoch_from(epoch, 0)
    }
    /// Batches of `epoch` starting at batch `skip` (for resuming mid-epoch).
    pub fn epoch_from(&self, epoch: u64, skip: usize) -> BatchIter {
        let order = self.order(epoch);
        let bs = self.config.batch_size;
        let nb = self.len();
        let batches: Vec<Vec<usize>> = (skip..nb)
            .map(|b| order[b * bs..((b + 1) * bs).min(order.len())].to_vec())
            .collect();
        let ds = self.dataset.clone();
        let make = move |ix: &[usize]| -> Result<Vec<Tensor>> {
            let samples: Vec<Vec<Tensor>> = ix.iter().map(|&i| ds.get(i)).collect::<Result<_>>()?;
            collate(&samples)
        };
        if self.config.prefetch == 0 {
            let mut it = batches.into_iter();
            return BatchIter {
                inner: Inner::Direct(Box::new(move || it.next().map(|b| make(&b)))),
            };
        }
        let (tx, rx) = sync_channel(self.config.prefetch);
        std::thread::spawn(move || {
            for b in batches {
                let r = crate::with_no_grad(|| make(&b));
                if tx.send(r).is_err() {
                    break;
                }
            }
        });
        BatchIter {
            inner: Inner::Thread(rx),
        }
    }
}

enum Inner {
    Direct(Box<dyn FnMut() -> Option<Result<Vec<Tensor>>> + Send>),
    Thread(Receiver<Result<Vec<Tensor>>>),
}

/// Iterator over the batches of one epoch.
pub struct BatchIter {
    inner: Inner,
}

impl Iterator for BatchIter {
    type Item = Result<Vec<Tensor>>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Direct(f) => f(),
            Inner::Thread(rx) => rx.recv().ok(),
        }
    }
}
