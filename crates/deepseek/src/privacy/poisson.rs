//! Poisson sampling of text windows: the sampling the RDP analysis of DP-SGD assumes.

use crate::tensor::Generator;
use crate::train::BatchSource;
use crate::{Error, Result, Tensor};

/// The training text cut into `N` disjoint windows of `seq_len + 1` characters (one
/// example each: ids = the first `seq_len`, targets = the last `seq_len`); every step takes
/// each window independently with probability `q = expected_batch / N` (Opacus'
/// `UniformWithReplacementSampler`), so batch sizes vary around `expected_batch` and may be
/// 0. An epoch is `round(1/q)` steps. The draws depend only on `(seed, epoch)`, so a
/// resumed run sees the same batches.
///
/// The privacy unit is one window: every character belongs to exactly one example.
///
/// ```
/// use deepseek::privacy::PoissonTextBatches;
/// use deepseek::train::BatchSource;
/// let ids: Vec<i64> = (0..1000).map(|i| i % 7).collect();
/// let b = PoissonTextBatches::new(ids, 9, 20, 0)?; // 100 windows of 10, q = 0.2
/// assert_eq!(b.num_examples(), 100);
/// assert_eq!(b.batches_per_epoch(), 5);
/// let first = b.epoch_from(0, 0).next().unwrap()?;
/// assert_eq!(first[0].shape()[1], 9);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub struct PoissonTextBatches {
    ids: Vec<i64>,
    seq_len: usize,
    examples: usize,
    q: f64,
    seed: u64,
}

impl PoissonTextBatches {
    /// Windows of `ids` sampled at rate `expected_batch / N`.
    pub fn new(
        ids: Vec<i64>,
        seq_len: usize,
        expected_batch: usize,
        seed: u64,
    ) -> Result<PoissonTextBatches> {
        let op = "PoissonTextBatches";
        if seq_len == 0 || expected_batch == 0 {
            return Err(Error::value(
                op,
                format!("seq_len and the expected batch size must be positive, got {seq_len} and {expected_batch}"),
            ));
        }
        let examples = ids.len() / (seq_len + 1);
        if examples < expected_batch {
            return Err(Error::value(
                op,
                format!(
                    "the text has {} tokens: {examples} windows of {} characters, fewer than the expected batch of {expected_batch}",
                    ids.len(),
                    seq_len + 1
                ),
            ));
        }
        Ok(PoissonTextBatches {
            ids,
            seq_len,
            examples,
            q: expected_batch as f64 / examples as f64,
            seed,
        })
    }
    /// The sampling rate `q`.
    pub fn sample_rate(&self) -> f64 {
        self.q
    }
    /// The number of examples `N` (windows).
    pub fn num_examples(&self) -> usize {
        self.examples
    }
    fn batch(&self, chosen: &[usize]) -> Result<Vec<Tensor>> {
        let t = self.seq_len;
        let mut x = Vec::with_capacity(chosen.len() * t);
        let mut y = Vec::with_capacity(chosen.len() * t);
        for &i in chosen {
            let w = &self.ids[i * (t + 1)..(i + 1) * (t + 1)];
            x.extend_from_slice(&w[..t]);
            y.extend_from_slice(&w[1..]);
        }
        let n = chosen.len();
        Ok(vec![
            Tensor::from_vec(x, &[n, t])?,
            Tensor::from_vec(y, &[n, t])?,
        ])
    }
}

impl BatchSource for PoissonTextBatches {
    fn batches_per_epoch(&self) -> usize {
        ((1.0 / self.q).round() as usize).max(1)
    }
    fn epoch_from(
        &self,
        epoch: u64,
        skip: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_> {
        let mut g =
            Generator::new(self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let steps = self.batches_per_epoch();
        Box::new((0..steps).filter_map(move |s| {
            let chosen: Vec<usize> = (0..self.examples)
                .filter(|_| g.uniform() < self.q)
                .collect();
            (s >= skip).then(|| self.batch(&chosen))
        }))
    }
}
