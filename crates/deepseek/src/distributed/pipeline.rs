//! Pipeline parallelism (`torch.distributed.pipelining`'s names): a model cut into stages,
//! one [`PipelineStage`] per rank of a group, fed micro-batches by a schedule,
//! [`ScheduleGPipe`] or [`Schedule1F1B`]. Activations go forward and their gradients back
//! point to point ([`ProcessGroup::isend`] / [`ProcessGroup::recv_tensor`]).
//!
//! ```no_run
//! use deepseek::distributed::{self as dist, PipelineStage, ScheduleGPipe};
//! use deepseek::nn::functional as F;
//! use deepseek::{DType, Tensor};
//! # fn main() -> deepseek::Result<()> {
//! dist::init_process_group("mpi")?; // mpirun -np 2
//! let rank = dist::get_rank()?;
//! let w = Tensor::randn(&[8, 8], DType::F32)?.requires_grad_(true)?; // this stage's weights
//! let w2 = w.clone();
//! let stage = PipelineStage::new(move |x| F::tanh(&x.linear(&w2, None)?), rank, 2, None)?;
//! let loss = |y: &Tensor, t: &Tensor| F::mse_loss(y, t, "mean");
//! let schedule = ScheduleGPipe::new(stage, 4, Some(std::sync::Arc::new(loss)))?;
//! let (x, y) = (Tensor::randn(&[16, 8], DType::F32)?, Tensor::randn(&[16, 8], DType::F32)?);
//! let mut losses = Vec::new();
//! if rank == 0 {
//!     schedule.step(Some(&x), None, None)?; // the first stage takes the input
//! } else {
//!     schedule.step(None, Some(&y), Some(&mut losses))?; // the last, the target
//! }
//! // w.grad() now holds this stage's gradient of mean-squared error over all 16 rows.
//! # let _ = w; Ok(()) }
//! ```
//!
//! The batch splits along dim 0 into `n_microbatches` equal chunks; the loss of each
//! micro-batch is divided by `n_microbatches` (torch's `scale_grads=True`), so with a mean
//! loss the gradients equal those of the whole batch in one process.

use super::{world, ProcessGroup, Work};
use crate::{Error, Result, Tensor};
use std::sync::Arc;

/// A stage's forward function: this rank's part of the model.
pub type StageFn = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;
/// `loss_fn(output, target)` of the last stage, for one micro-batch.
pub type LossFn = Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// Message tags of activations (forward) and their gradients (backward).
const TAG_FWD: i32 = 16000;
const TAG_BWD: i32 = 16001;

/// One stage of a pipeline: a forward function, its place in the pipeline, and the group
/// whose rank `i` runs stage `i`.
#[derive(Clone)]
pub struct PipelineStage {
    forward: StageFn,
    stage_index: usize,
    num_stages: usize,
    group: ProcessGroup,
}

impl std::fmt::Debug for PipelineStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipelineStage({}/{})", self.stage_index, self.num_stages)
    }
}

impl PipelineStage {
    /// Stage `stage_index` of `num_stages`, run by this rank; `group` (the world when
    /// `None`) must have `num_stages` ranks, and this rank must be its rank `stage_index`.
    pub fn new(
        forward: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
        stage_index: usize,
        num_stages: usize,
        group: Option<ProcessGroup>,
    ) -> Result<Self> {
        let op = "PipelineStage";
        let group = match group {
            Some(g) => g,
            None => world()?,
        };
        if num_stages == 0 || stage_index >= num_stages {
            return Err(Error::value(
                op,
                format!("stage_index {stage_index} is not below num_stages {num_stages}"),
            ));
        }
        if group.size() != num_stages {
            return Err(Error::value(
                op,
                format!(
                    "num_stages is {num_stages} but the group has {} ranks (one stage per rank)",
                    group.size()
                ),
            ));
        }
        let me = group.rank()?;
        if me != stage_index {
            return Err(Error::value(
                op,
                format!("stage {stage_index} built on group rank {me}; stage i runs on rank i"),
            ));
        }
        Ok(PipelineStage {
            forward: Arc::new(forward),
            stage_index,
            num_stages,
            group,
        })
    }
    /// This stage's index.
    pub fn stage_index(&self) -> usize {
        self.stage_index
    }
    /// Number of stages.
    pub fn num_stages(&self) -> usize {
        self.num_stages
    }
    /// Whether this stage takes the pipeline's input.
    pub fn is_first(&self) -> bool {
        self.stage_index == 0
    }
    /// Whether this stage produces the output (and computes the loss).
    pub fn is_last(&self) -> bool {
        self.stage_index + 1 == self.num_stages
    }
    fn peer(&self, d: isize) -> usize {
        self.group.ranks()[(self.stage_index as isize + d) as usize]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    GPipe,
    OneFOneB,
}

/// What one micro-batch keeps between its forward and its backward.
struct Micro {
    /// The stage's input (a fresh leaf on every stage but the first).
    input: Tensor,
    output: Tensor,
    loss: Option<Tensor>,
}

struct Runner<'a> {
    stage: &'a PipelineStage,
    loss_fn: Option<&'a LossFn>,
    scale: f64,
    inputs: Vec<Tensor>,
    targets: Vec<Tensor>,
    micro: Vec<Option<Micro>>,
    outputs: Vec<Tensor>,
    /// Each micro-batch's (unscaled) loss, detached.
    losses: Vec<Tensor>,
    sends: Vec<Work>,
}

impl Runner<'_> {
    fn forward(&mut self, m: usize) -> Result<()> {
        let s = self.stage;
        let input = if s.is_first() {
            self.inputs[m].clone()
        } else {
            let x = s.group.recv_tensor(s.peer(-1), TAG_FWD)?;
            if self.loss_fn.is_some() {
                x.requires_grad_(true)?
            } else {
                x
            }
        };
        let output = (s.forward)(&input)?;
        let mut loss = None;
        if !s.is_last() {
            let y = output.detach().contiguous_copy()?;
            self.sends.push(s.group.isend(&y, s.peer(1), TAG_FWD)?);
        } else {
            self.outputs.push(output.detach());
            if let Some(f) = self.loss_fn {
                let l = f(&output, &self.targets[m])?;
                if l.numel() != 1 {
                    return Err(Error::shape(
                        "pipeline schedule",
                        format!("loss_fn returned shape {:?}, not a scalar", l.shape()),
                    ));
                }
                self.losses.push(l.detach());
                loss = Some(l);
            }
        }
        self.micro[m] = Some(Micro {
            input,
            output,
            loss,
        });
        Ok(())
    }

    fn backward(&mut self, m: usize) -> Result<()> {
        let s = self.stage;
        let mb = self.micro[m].take().ok_or_else(|| {
            Error::Msg(format!("pipeline schedule: micro-batch {m} has no forward"))
        })?;
        if s.is_last() {
            let l = mb.loss.as_ref().expect("loss on the last stage");
            l.mul_scalar(self.scale)?.backward()?;
        } else {
            let g = s.group.recv_tensor(s.peer(1), TAG_BWD)?;
            if g.shape() != mb.output.shape() {
                return Err(Error::shape(
                    "pipeline schedule",
                    format!(
                        "stage {} got a gradient of shape {:?} for its output of shape {:?}",
                        s.stage_index,
                        g.shape(),
                        mb.output.shape()
                    ),
                ));
            }
            if mb.output.requires_grad() {
                mb.output.backward_with(Some(&g), false, false)?;
            }
        }
        if !s.is_first() {
            let g = match mb.input.grad() {
                Some(g) => g.contiguous_copy()?,
                None => Tensor::zeros(mb.input.shape(), mb.input.dtype())?,
            };
            self.sends.push(s.group.isend(&g, s.peer(-1), TAG_BWD)?);
        }
        Ok(())
    }
}

/// The part shared by both schedules.
struct Schedule {
    stage: PipelineStage,
    n_microbatches: usize,
    loss_fn: Option<LossFn>,
    scale_grads: bool,
    kind: Kind,
}

impl Schedule {
    fn new(
        stage: PipelineStage,
        n_microbatches: usize,
        loss_fn: Option<LossFn>,
        kind: Kind,
    ) -> Result<Schedule> {
        if n_microbatches == 0 {
            return Err(Error::value(
                "pipeline schedule",
                "n_microbatches must be positive",
            ));
        }
        Ok(Schedule {
            stage,
            n_microbatches,
            loss_fn,
            scale_grads: true,
            kind,
        })
    }

    fn split(&self, what: &str, t: &Tensor) -> Result<Vec<Tensor>> {
        let n = self.n_microbatches;
        let b = t.shape().first().copied().unwrap_or(0);
        if t.rank() == 0 || b % n != 0 {
            return Err(Error::shape(
                "pipeline schedule",
                format!(
                    "the {what} of shape {:?} does not split along dim 0 into {n} equal \
                     micro-batches",
                    t.shape()
                ),
            ));
        }
        (0..n).map(|m| t.narrow(0, m * (b / n), b / n)).collect()
    }

    fn step(
        &self,
        input: Option<&Tensor>,
        target: Option<&Tensor>,
        losses: Option<&mut Vec<Tensor>>,
    ) -> Result<Option<Tensor>> {
        let op = "pipeline schedule";
        let s = &self.stage;
        let n = self.n_microbatches;
        let inputs = match (s.is_first(), input) {
            (true, Some(x)) => self.split("input", x)?,
            (true, None) => return Err(Error::value(op, "the first stage needs the input")),
            (false, Some(_)) => {
                return Err(Error::value(
                    op,
                    format!(
                        "stage {} is not the first: only stage 0 takes the input",
                        s.stage_index
                    ),
                ))
            }
            (false, None) => Vec::new(),
        };
        let targets = match (s.is_last() && self.loss_fn.is_some(), target) {
            (true, Some(y)) => self.split("target", y)?,
            (true, None) => {
                return Err(Error::value(
                    op,
                    "the last stage needs the target to compute the loss",
                ))
            }
            (false, _) => Vec::new(),
        };
        let mut r = Runner {
            stage: s,
            loss_fn: self.loss_fn.as_ref(),
            scale: if self.scale_grads {
                1.0 / n as f64
            } else {
                1.0
            },
            inputs,
            targets,
            micro: (0..n).map(|_| None).collect(),
            outputs: Vec::new(),
            losses: Vec::new(),
            sends: Vec::new(),
        };
        let backward = self.loss_fn.is_some();
        let res = if !backward {
            (0..n).try_for_each(|m| r.forward(m))
        } else {
            match self.kind {
                Kind::GPipe => (0..n)
                    .try_for_each(|m| r.forward(m))
                    .and_then(|_| (0..n).try_for_each(|m| r.backward(m))),
                Kind::OneFOneB => one_f_one_b(&mut r, n),
            }
        };
        // Every send must have left before the step ends (and its error surface).
        let mut sent = Ok(());
        for mut w in std::mem::take(&mut r.sends) {
            if let Err(e) = w.wait() {
                sent = Err(e);
            }
        }
        res?;
        sent?;
        if !s.is_last() {
            return Ok(None);
        }
        if let Some(out) = losses {
            out.append(&mut r.losses);
        }
        Ok(Some(Tensor::cat(&r.outputs, 0)?))
    }
}

/// 1F1B: stage `s` of `S` runs `S - s - 1` warm-up forwards, then alternates one forward
/// and one backward, then drains the remaining backwards; at most `S - s` micro-batches'
/// activations are alive at once.
fn one_f_one_b(r: &mut Runner, n: usize) -> Result<()> {
    let s = r.stage;
    let warmup = (s.num_stages - s.stage_index - 1).min(n);
    for m in 0..warmup {
        r.forward(m)?;
    }
    for i in 0..n - warmup {
        r.forward(warmup + i)?;
        r.backward(i)?;
    }
    for m in n - warmup..n {
        r.backward(m)?;
    }
    Ok(())
}

macro_rules! schedule_type {
    ($name:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(Schedule);

        impl $name {
            /// A schedule for `stage` with `n_microbatches` per step; `loss_fn` (on every
            /// stage, used by the last) enables the backward pass: without it `step` only
            /// runs forward.
            pub fn new(
                stage: PipelineStage,
                n_microbatches: usize,
                loss_fn: Option<LossFn>,
            ) -> Result<Self> {
                Ok($name(Schedule::new(stage, n_microbatches, loss_fn, $kind)?))
            }
            /// Whether each micro-batch's loss is divided by `n_microbatches` (default
            /// true, torch's `scale_grads`).
            pub fn with_scale_grads(mut self, on: bool) -> Self {
                self.0.scale_grads = on;
                self
            }
            /// One training step over a batch: `input` on the first stage, `target` on the
            /// last. Gradients accumulate into the stages' parameters. The last stage gets
            /// the concatenated output (and each micro-batch's loss in `losses`); the other
            /// stages get `None`.
            pub fn step(
                &self,
                input: Option<&Tensor>,
                target: Option<&Tensor>,
                losses: Option<&mut Vec<Tensor>>,
            ) -> Result<Option<Tensor>> {
                self.0.step(input, target, losses)
            }
            /// The stage this schedule drives.
            pub fn stage(&self) -> &PipelineStage {
                &self.0.stage
            }
        }
    };
}

schedule_type!(
    ScheduleGPipe,
    Kind::GPipe,
    "GPipe: every micro-batch's forward, then every backward."
);
schedule_type!(
    Schedule1F1B,
    Kind::OneFOneB,
    "1F1B (PipeDream-flush): after a warm-up, one forward then one backward, bounding the \
     activations kept to the number of stages."
);
