//! [`DistributedSampler`]: each rank's share of a dataset's indices, PyTorch's rules.

use crate::tensor::rng::Generator;
use crate::{Error, Result};

/// Splits `len` indices over `num_replicas` ranks: rank `r` takes every
/// `num_replicas`-th index starting at `r` of the (optionally shuffled) order. Without
/// `drop_last` the order is padded with its own first indices so every rank gets
/// `ceil(len / num_replicas)`; with it, the tail is dropped. The shuffle depends on
/// `seed` and the epoch ([`DistributedSampler::set_epoch`]) only, so all ranks agree.
#[derive(Debug, Clone)]
pub struct DistributedSampler {
    len: usize,
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    epoch: u64,
}

impl DistributedSampler {
    /// A sampler for rank `rank` of `num_replicas`.
    pub fn new(
        len: usize,
        num_replicas: usize,
        rank: usize,
        shuffle: bool,
        seed: u64,
        drop_last: bool,
    ) -> Result<DistributedSampler> {
        if num_replicas == 0 || rank >= num_replicas {
            return Err(Error::value(
                "DistributedSampler",
                format!("invalid rank {rank} for {num_replicas} replicas"),
            ));
        }
        Ok(DistributedSampler {
            len,
            num_replicas,
            rank,
            shuffle,
            seed,
            drop_last,
            epoch: 0,
        })
    }
    /// A sampler for this process in the default group.
    pub fn for_world(len: usize, shuffle: bool, seed: u64, drop_last: bool) -> Result<Self> {
        let w = super::world()?;
        Self::new(len, w.size(), w.rank()?, shuffle, seed, drop_last)
    }
    /// Selects the epoch's shuffle.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }
    /// Number of indices this rank gets per epoch.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.len / self.num_replicas
        } else {
            self.len.div_ceil(self.num_replicas)
        }
    }
    /// This rank's indices for the current epoch.
    pub fn indices(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            let mut g = Generator::new(self.seed.wrapping_add(self.epoch));
            for i in (1..self.len).rev() {
                idx.swap(i, g.below(i as u64 + 1) as usize);
            }
        }
        let total = self.num_samples() * self.num_replicas;
        if total <= idx.len() {
            idx.truncate(total);
        } else if !idx.is_empty() {
            let mut k = 0;
            while idx.len() < total {
                idx.push(idx[k]);
                k += 1;
            }
        }
        idx.into_iter()
            .skip(self.rank)
            .step_by(self.num_replicas)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ranks_partition_the_padded_order() {
        for &(n, w, drop) in &[(10, 3, false), (10, 3, true), (8, 4, false), (1, 2, false)] {
            let mut all: Vec<usize> = Vec::new();
            for r in 0..w {
                let s = DistributedSampler::new(n, w, r, true, 7, drop).unwrap();
                assert_eq!(s.indices().len(), s.num_samples());
                all.extend(s.indices());
            }
            let mut uniq = all.clone();
            uniq.sort_unstable();
            uniq.dedup();
            if drop {
                assert_eq!(uniq.len(), all.len());
            } else {
                assert_eq!(uniq.len(), n);
            }
        }
        assert!(DistributedSampler::new(4, 2, 2, false, 0, false).is_err());
        let s = DistributedSampler::new(5, 2, 1, false, 0, false).unwrap();
        assert_eq!(s.indices(), vec![1, 3, 0]);
    }
}
