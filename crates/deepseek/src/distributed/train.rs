//! Pieces that make the [`crate::train::Trainer`] data-parallel: each rank's share of the
//! batches, and stop decisions that every rank takes together.

use super::{ProcessGroup, ReduceOp};
use crate::train::{BatchSource, Callback, Control, TrainerState};
use crate::{Error, Result, Tensor};
use std::time::{Duration, Instant};

/// Rank `rank`'s share of a batch source: batches `rank, rank + size, rank + 2 size, ...` of
/// each epoch, the same number on every rank (the tail that does not fill all ranks is
/// dropped). One optimizer step then covers `size` batches, one per rank.
pub struct ShardedBatches<'a> {
    inner: &'a dyn BatchSource,
    rank: usize,
    size: usize,
}

impl<'a> ShardedBatches<'a> {
    /// The share of `group`'s rank (`group.rank()` of `group.size()`).
    pub fn new(inner: &'a dyn BatchSource, group: &ProcessGroup) -> Result<Self> {
        let (rank, size) = (group.rank()?, group.size());
        if inner.batches_per_epoch() < size {
            return Err(Error::value(
                "ShardedBatches",
                format!(
                    "{} batches per epoch cannot feed {size} ranks",
                    inner.batches_per_epoch()
                ),
            ));
        }
        Ok(ShardedBatches { inner, rank, size })
    }
}

impl BatchSource for ShardedBatches<'_> {
    fn batches_per_epoch(&self) -> usize {
        self.inner.batches_per_epoch() / self.size
    }
    fn epoch_from(
        &self,
        epoch: u64,
        skip: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<Tensor>>> + '_> {
        let per = self.batches_per_epoch();
        Box::new(
            self.inner
                .epoch_from(epoch, skip * self.size)
                .skip(self.rank)
                .step_by(self.size)
                .take(per.saturating_sub(skip)),
        )
    }
}

/// Stops training when any rank's clock passed `budget` — decided together (an all-reduce
/// of the ranks' verdicts after every step), so no rank is left waiting in a collective.
pub struct SharedTimeBudget {
    group: ProcessGroup,
    budget: Duration,
    start: Instant,
}

impl SharedTimeBudget {
    /// Starts the clock now.
    pub fn new(group: ProcessGroup, budget: Duration) -> Self {
        SharedTimeBudget {
            group,
            budget,
            start: Instant::now(),
        }
    }
}

impl Callback for SharedTimeBudget {
    fn on_step_end(&mut self, _s: &TrainerState) -> Control {
        let over = f32::from(u8::from(self.start.elapsed() >= self.budget));
        let t = match Tensor::from_vec(vec![over], &[1]) {
            Ok(t) => t,
            Err(_) => return Control::Stop,
        };
        match self
            .group
            .all_reduce(&t, ReduceOp::Max)
            .and_then(|_| t.item())
        {
            Ok(v) if v > 0.0 => Control::Stop,
            Ok(_) => Control::Continue,
            // A broken group: stop; the next collective reports the error.
            Err(e) => {
                eprintln!("distributed: {e}");
                Control::Stop
            }
        }
    }
}
