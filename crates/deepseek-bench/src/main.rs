//! deepseek half of the deepseek-vs-PyTorch CPU benchmark.
//!
//! Usage:
//!
//! ```text
//! cargo run --release -p deepseek-bench -- --threads 2 [--only NAME,...] [--repeat N]
//! ```
//!
//! Runs the same workloads as `bench/torch_bench.py` (same names, shapes, warm-up and median
//! timing) and prints one JSON object per workload on stdout:
//!
//! ```text
//! {"name": "matmul_f32_512", "ms": 1.23, "gflops": 218.0}
//! ```
//!
//! `bench/compare.py` runs both sides and prints them side by side. `py_add_8x8` (Python
//! per-op overhead) has no deepseek counterpart and is skipped.
//!
//! With `DEEPSEEK_BENCH_BREAKDOWN=1`, the backward/training workloads also print to stderr
//! the median time of each phase of a step (forward ops, backward ops, optimizer step); the
//! backward is split with gradient hooks on the intermediate tensors.

use deepseek::nn::functional as F;
use deepseek::optim::{Adam, AdamConfig, Optimizer};
use deepseek::{DType, Result, Tensor, TensorOptions};
use std::process::ExitCode;
use std::time::Instant;

/// A timed sample of a fast workload loops for at least this long (seconds).
const MIN_SAMPLE_S: f64 = 0.02;

type StepFn = Box<dyn FnMut() -> Result<()>>;
type ResetFn = Box<dyn FnMut()>;

/// One benchmark workload: what a timed call runs, and how it is timed.
struct Workload {
    /// One call.
    step: StepFn,
    /// Run before every warm-up call and before every timed sample (resets gradients).
    reset: Option<ResetFn>,
    /// Floating-point operations of one call (reported as GFLOP/s).
    flops: Option<f64>,
    /// Run under `no_grad` (forward-only workloads).
    no_grad: bool,
    /// Calls per timed sample; `None` calibrates it from the warm-up.
    inner: Option<usize>,
}

impl Workload {
    fn forward(step: StepFn) -> Workload {
        Workload {
            step,
            reset: None,
            flops: None,
            no_grad: true,
            inner: None,
        }
    }
}

// ------------------------------------------------------------------------------ breakdown

/// Per-phase timing of a step, enabled by `DEEPSEEK_BENCH_BREAKDOWN=1`; printed to stderr.
mod breakdown {
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    struct State {
        /// Marks of the call in progress: (phase that just ended, when).
        marks: Vec<(&'static str, Instant)>,
        /// Per phase, in first-seen order: the duration of that phase in each finished call (ms).
        phases: Vec<(&'static str, Vec<f64>)>,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        marks: Vec::new(),
        phases: Vec::new(),
    });

    fn state() -> std::sync::MutexGuard<'static, State> {
        STATE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `DEEPSEEK_BENCH_BREAKDOWN` is set to something other than `0` / empty.
    pub fn enabled() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            std::env::var("DEEPSEEK_BENCH_BREAKDOWN")
                .map(|v| !v.is_empty() && v != "0")
                .unwrap_or(false)
        })
    }

    /// Starts a call.
    pub fn begin() {
        if enabled() {
            let mut s = state();
            s.marks.clear();
            s.marks.push(("<start>", Instant::now()));
        }
    }

    /// Ends the phase `name` (which started at the previous mark).
    pub fn mark(name: &'static str) {
        if enabled() {
            state().marks.push((name, Instant::now()));
        }
    }

    /// Ends a call: turns its marks into phase durations.
    pub fn end() {
        if !enabled() {
            return;
        }
        let mut s = state();
        let marks = std::mem::take(&mut s.marks);
        for w in marks.windows(2) {
            let (name, ms) = (w[1].0, (w[1].1 - w[0].1).as_secs_f64() * 1e3);
            match s.phases.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(ms),
                None => s.phases.push((name, vec![ms])),
            }
        }
    }

    /// Forgets everything recorded so far (the warm-up).
    pub fn clear() {
        let mut s = state();
        s.marks.clear();
        s.phases.clear();
    }

    /// Prints the median of each phase to stderr.
    pub fn report(workload: &str, median_ms: f64) {
        if !enabled() {
            return;
        }
        let mut s = state();
        let phases = std::mem::take(&mut s.phases);
        if phases.is_empty() {
            return;
        }
        let mut total = 0.0;
        eprintln!("[breakdown] {workload}: median {median_ms:.3} ms per step");
        for (name, mut v) in phases {
            let m = super::median(&mut v);
            total += m;
            eprintln!(
                "[breakdown]   {name:<44} {m:>10.3} ms  {:>5.1}%",
                100.0 * m / median_ms
            );
        }
        eprintln!(
            "[breakdown]   {:<44} {total:>10.3} ms",
            "(sum of phase medians)"
        );
    }
}

/// Marks the end of the backward phase `name` when `t`'s gradient is ready (i.e. when the
/// backward of everything downstream of `t` has run).
fn mark_grad(t: &Tensor, name: &'static str) -> Result<()> {
    if breakdown::enabled() {
        t.register_hook(move |_| {
            breakdown::mark(name);
            Ok(None)
        })?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------ helpers

fn f32_opts() -> TensorOptions {
    TensorOptions::default().dtype(DType::F32)
}

/// A leaf parameter uniform in [-bound, bound).
fn uniform_param(shape: &[usize], bound: f64) -> Result<Tensor> {
    Tensor::uniform(shape, -bound, bound, f32_opts().requires_grad(true))
}

/// A leaf parameter drawn from N(0, std^2).
fn normal_param(shape: &[usize], std: f64) -> Result<Tensor> {
    Tensor::normal(shape, 0.0, std, f32_opts().requires_grad(true))
}

/// `nn.Linear(inp, out)` parameters as PyTorch initialises them: weight [out, inp] and bias
/// [out], both uniform in ±1/sqrt(inp).
fn linear_params(inp: usize, out: usize) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (inp as f64).sqrt();
    Ok((
        uniform_param(&[out, inp], bound)?,
        uniform_param(&[out], bound)?,
    ))
}

/// `nn.LSTM(inp, hidden)` (one layer) parameters as PyTorch initialises them:
/// w_ih [4H, I], w_hh [4H, H], b_ih [4H], b_hh [4H], all uniform in ±1/sqrt(H).
fn lstm_params(inp: usize, hidden: usize) -> Result<Vec<Tensor>> {
    let k = 1.0 / (hidden as f64).sqrt();
    Ok(vec![
        uniform_param(&[4 * hidden, inp], k)?,
        uniform_param(&[4 * hidden, hidden], k)?,
        uniform_param(&[4 * hidden], k)?,
        uniform_param(&[4 * hidden], k)?,
    ])
}

fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    F::cross_entropy(logits, targets, None, -100, "mean", 0.0)
}

fn zero_grads(params: &[Tensor]) {
    for p in params {
        p.zero_grad();
    }
}

// ------------------------------------------------------------------------------ workloads

/// Square float32 `a @ b`.
fn matmul(n: usize) -> Result<Workload> {
    let a = Tensor::randn(&[n, n], DType::F32)?;
    let b = Tensor::randn(&[n, n], DType::F32)?;
    let mut w = Workload::forward(Box::new(move || {
        std::hint::black_box(a.matmul(&b)?);
        Ok(())
    }));
    w.flops = Some(2.0 * (n as f64).powi(3));
    Ok(w)
}

/// `a + b` on two float32 tensors of 2^24 elements.
fn add_16m() -> Result<Workload> {
    let a = Tensor::randn(&[1 << 24], DType::F32)?;
    let b = Tensor::randn(&[1 << 24], DType::F32)?;
    Ok(Workload::forward(Box::new(move || {
        std::hint::black_box(a.add(&b)?);
        Ok(())
    })))
}

/// Tanh-approximated GELU on 2^24 elements.
fn gelu_tanh_16m() -> Result<Workload> {
    let x = Tensor::randn(&[1 << 24], DType::F32)?;
    Ok(Workload::forward(Box::new(move || {
        std::hint::black_box(F::gelu(&x, "tanh")?);
        Ok(())
    })))
}

/// GELU-tanh written out as eight elementwise ops (`0.5 * x * (1 + tanh(k * (x + 0.044715 *
/// x^3)))`), on 2^24 elements; `lazy` runs it deferred (one fused kernel per call).
fn gelu_chain_16m(lazy: bool) -> Result<Workload> {
    let x = Tensor::randn(&[1 << 24], DType::F32)?;
    let k = (2.0 / std::f64::consts::PI).sqrt();
    Ok(Workload::forward(Box::new(move || {
        let _g = lazy.then(deepseek::lazy::lazy);
        let inner = x.add(&x.powf(3.0)?.mul_scalar(0.044715)?)?.mul_scalar(k)?;
        let y = x.mul_scalar(0.5)?.mul(&inner.tanh()?.add_scalar(1.0)?)?;
        std::hint::black_box(y.realize()?);
        Ok(())
    })))
}

/// Softmax over the last dim of a [4096, 1024] tensor.
fn softmax_4096x1024() -> Result<Workload> {
    let x = Tensor::randn(&[4096, 1024], DType::F32)?;
    Ok(Workload::forward(Box::new(move || {
        std::hint::black_box(F::softmax(&x, -1)?);
        Ok(())
    })))
}

/// LayerNorm over the last dim (1024) with weight and bias.
fn layer_norm_4096x1024() -> Result<Workload> {
    let x = Tensor::randn(&[4096, 1024], DType::F32)?;
    let w = Tensor::randn(&[1024], DType::F32)?;
    let b = Tensor::randn(&[1024], DType::F32)?;
    Ok(Workload::forward(Box::new(move || {
        std::hint::black_box(F::layer_norm(&x, &[1024], Some(&w), Some(&b), 1e-5)?);
        Ok(())
    })))
}

/// 3x3 conv, 64->64 channels on [8, 64, 56, 56], padding 1: forward and backward of
/// `out.sum()` w.r.t. input, weight and bias.
fn conv2d_fwd_bwd() -> Result<Workload> {
    let x = Tensor::randn(&[8, 64, 56, 56], f32_opts().requires_grad(true))?;
    let w = normal_param(&[64, 64, 3, 3], 0.05)?;
    let b = Tensor::randn(&[64], f32_opts().requires_grad(true))?;
    let params = vec![x.clone(), w.clone(), b.clone()];
    Ok(Workload {
        step: Box::new(move || {
            breakdown::begin();
            let y = F::conv2d(&x, &w, Some(&b), [1, 1], [1, 1], [1, 1], 1)?;
            breakdown::mark("fwd conv2d (+bias)");
            mark_grad(&y, "bwd sum")?;
            let s = y.sum_all()?;
            breakdown::mark("fwd sum");
            s.backward()?;
            breakdown::mark("bwd conv2d (+bias) + grad accumulation");
            breakdown::end();
            Ok(())
        }),
        reset: Some(Box::new(move || zero_grads(&params))),
        flops: None,
        no_grad: false,
        inner: None,
    })
}

/// `nn.LSTM(512, 512, batch_first=True)` on [32, 64, 512]: forward and backward of
/// `out.sum()` w.r.t. the LSTM's parameters.
fn lstm_fwd_bwd() -> Result<Workload> {
    let (bsz, seq, hidden) = (32, 64, 512);
    let weights = lstm_params(512, hidden)?;
    let x = Tensor::randn(&[bsz, seq, 512], DType::F32)?;
    let h0 = Tensor::zeros(&[1, bsz, hidden], DType::F32)?;
    let c0 = Tensor::zeros(&[1, bsz, hidden], DType::F32)?;
    let params = weights.clone();
    Ok(Workload {
        step: Box::new(move || {
            breakdown::begin();
            let (out, _, _) = F::lstm(&x, &h0, &c0, &weights, 1, true)?;
            breakdown::mark("fwd lstm");
            mark_grad(&out, "bwd sum")?;
            let s = out.sum_all()?;
            breakdown::mark("fwd sum");
            s.backward()?;
            breakdown::mark("bwd lstm + grad accumulation");
            breakdown::end();
            Ok(())
        }),
        reset: Some(Box::new(move || zero_grads(&params))),
        flops: None,
        no_grad: false,
        inner: None,
    })
}

/// A training step: zero_grad + forward + backward + Adam step. `forward` returns the loss
/// and the intermediate tensors that carry breakdown hooks (kept alive through the backward:
/// the engine only runs the hooks of tensors that are still alive).
fn train_step(
    params: Vec<Tensor>,
    mut forward: impl FnMut() -> Result<(Tensor, Vec<Tensor>)> + 'static,
) -> Result<Workload> {
    let mut opt = Adam::new(
        params,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    )?;
    Ok(Workload {
        step: Box::new(move || {
            breakdown::begin();
            opt.zero_grad();
            breakdown::mark("zero_grad");
            let (loss, hooked) = forward()?;
            loss.backward()?;
            breakdown::mark("bwd remainder + grad accumulation");
            drop(hooked);
            opt.step()?;
            breakdown::mark("adam step");
            breakdown::end();
            Ok(())
        }),
        reset: None,
        flops: None,
        no_grad: false,
        inner: Some(1),
    })
}

/// Embedding -> single-layer LSTM (batch_first) -> Linear to the vocabulary, one Adam
/// training step on random tokens (batch 32, sequence 64).
fn lm_step(vocab: usize, hidden: usize) -> Result<Workload> {
    let (bsz, seq) = (32, 64);
    // nn.Embedding: N(0, 1); nn.LSTM: U(±1/sqrt(H)); nn.Linear: U(±1/sqrt(in)).
    let emb = normal_param(&[vocab, hidden], 1.0)?;
    let lstm = lstm_params(hidden, hidden)?;
    let (head_w, head_b) = linear_params(hidden, vocab)?;
    let tokens = Tensor::randint(0, vocab as i64, &[bsz, seq + 1], DType::I64)?;
    let inputs = tokens.narrow(1, 0, seq)?;
    let targets = tokens.narrow(1, 1, seq)?;
    let h0 = Tensor::zeros(&[1, bsz, hidden], DType::F32)?;
    let c0 = Tensor::zeros(&[1, bsz, hidden], DType::F32)?;
    let mut params = vec![emb.clone()];
    params.extend(lstm.iter().cloned());
    params.extend([head_w.clone(), head_b.clone()]);
    train_step(params, move || {
        let e = F::embedding(&inputs, &emb, None)?;
        breakdown::mark("fwd embedding");
        let (out, _, _) = F::lstm(&e, &h0, &c0, &lstm, 1, true)?;
        breakdown::mark("fwd lstm");
        let logits = F::linear(&out, &head_w, Some(&head_b))?;
        breakdown::mark("fwd head linear");
        let flat = logits.reshape(&[bsz * seq, vocab])?;
        let loss = cross_entropy(&flat, &targets.reshape(&[bsz * seq])?)?;
        breakdown::mark("fwd cross_entropy");
        mark_grad(&flat, "bwd cross_entropy")?;
        mark_grad(&out, "bwd head linear")?;
        mark_grad(&e, "bwd lstm")?;
        Ok((loss, vec![flat, out, e]))
    })
}

/// 784-1024-1024-10 ReLU MLP, batch 256, cross_entropy, Adam.
fn mlp_step() -> Result<Workload> {
    let (w1, b1) = linear_params(784, 1024)?;
    let (w2, b2) = linear_params(1024, 1024)?;
    let (w3, b3) = linear_params(1024, 10)?;
    let x = Tensor::randn(&[256, 784], DType::F32)?;
    let y = Tensor::randint(0, 10, &[256], DType::I64)?;
    let params = vec![
        w1.clone(),
        b1.clone(),
        w2.clone(),
        b2.clone(),
        w3.clone(),
        b3.clone(),
    ];
    train_step(params, move || {
        let h1 = F::relu(&F::linear(&x, &w1, Some(&b1))?)?;
        breakdown::mark("fwd linear1 + relu");
        let h2 = F::relu(&F::linear(&h1, &w2, Some(&b2))?)?;
        breakdown::mark("fwd linear2 + relu");
        let logits = F::linear(&h2, &w3, Some(&b3))?;
        breakdown::mark("fwd linear3");
        let loss = cross_entropy(&logits, &y)?;
        breakdown::mark("fwd cross_entropy");
        mark_grad(&logits, "bwd cross_entropy")?;
        mark_grad(&h2, "bwd linear3")?;
        mark_grad(&h1, "bwd relu + linear2")?;
        Ok((loss, vec![logits, h2, h1]))
    })
}

/// GPT-mini training step: token + learned position embeddings, 4 pre-norm causal
/// transformer layers (d 256, 4 heads, feed-forward 1024, GELU, no dropout), final layer norm,
/// LM head over 256 tokens, cross-entropy, AdamW; batch 16, sequence 128. `lazy` runs the
/// step deferred. With `DEEPSEEK_BENCH_KERNELS=1` it prints the kernels per step to stderr.
fn gpt_mini_step(lazy: bool) -> Result<Workload> {
    use deepseek::nn::{Embedding, Forward, LayerNorm, Linear, Module, TransformerEncoderLayer};
    use deepseek::optim::AdamW;
    let (vocab, d, heads, ff, layers, bsz, seq) = (256, 256, 4, 1024, 4, 16, 128);
    let tok = Embedding::new(vocab, d, None)?;
    let pos = Embedding::new(seq, d, None)?;
    let blocks = (0..layers)
        .map(|_| TransformerEncoderLayer::new(d, heads, ff, 0.0, true, 1e-5, true, true))
        .collect::<Result<Vec<_>>>()?;
    let norm = LayerNorm::new(&[d], 1e-5, true)?;
    let head = Linear::new(d, vocab, true)?;
    let mut params = tok.parameters();
    params.extend(pos.parameters());
    for b in &blocks {
        params.extend(b.parameters());
    }
    params.extend(norm.parameters());
    params.extend(head.parameters());
    let mut opt = AdamW::with_lr(params, 3e-4)?;
    let tokens = Tensor::randint(0, vocab as i64, &[bsz, seq + 1], DType::I64)?;
    let x = tokens.slice(1, 0, seq as isize, 1)?.contiguous()?;
    let y = tokens
        .slice(1, 1, seq as isize + 1, 1)?
        .contiguous()?
        .reshape(&[bsz * seq])?;
    let positions = Tensor::arange(0.0, seq as f64, 1.0, DType::I64)?;
    let show = std::env::var("DEEPSEEK_BENCH_KERNELS").is_ok_and(|v| v == "1");
    Ok(Workload {
        step: Box::new(move || {
            let _g = lazy.then(deepseek::lazy::lazy);
            deepseek::lazy::reset_stats();
            opt.zero_grad();
            let mut h = tok.forward(&x)?.add(&pos.forward(&positions)?)?;
            for b in &blocks {
                h = b.forward_masked(&h, None, true)?;
            }
            let logits = head.forward(&norm.forward(&h)?)?;
            let loss = cross_entropy(&logits.reshape(&[bsz * seq, vocab])?, &y)?;
            loss.backward()?;
            opt.step()?;
            if show {
                let s = deepseek::lazy::stats();
                eprintln!(
                    "gpt_mini_step{}: {} kernels ({} fused, {} ops in them)",
                    if lazy { "_lazy" } else { "" },
                    s.kernels,
                    s.fused_kernels,
                    s.fused_ops
                );
            }
            Ok(())
        }),
        reset: None,
        flops: None,
        no_grad: false,
        inner: Some(1),
    })
}

/// The char-level step through the `deepseek train` model itself (`TextGenerator`, whose
/// Embedding -> LSTM goes through `Lstm::forward_tokens`: the [V, E] table is projected to
/// [V, 4H] once per step instead of projecting every token), same shapes and init as
/// `charlm_step`.
fn charlm_model_step() -> Result<Workload> {
    use deepseek::nn::{Forward, Module};
    use deepseek::train::textgen::{TextGenerator, TextGeneratorConfig};
    let (vocab, hidden, bsz, seq) = (65, 256, 32, 64);
    let model = TextGenerator::new(TextGeneratorConfig::new(vocab, hidden))?;
    let tokens = Tensor::randint(0, vocab as i64, &[bsz, seq + 1], DType::I64)?;
    let batch = [
        tokens.narrow(1, 0, seq)?.contiguous()?,
        tokens.narrow(1, 1, seq)?.contiguous()?,
    ];
    train_step(model.parameters(), move || {
        let (out, _) = model
            .lstm
            .forward_tokens(&model.embedding, &batch[0], None)?;
        breakdown::mark("fwd embedding+lstm (tokens)");
        let logits = model.fc.forward(&out)?;
        breakdown::mark("fwd head linear");
        let flat = logits.reshape(&[bsz * seq, vocab])?;
        let loss = cross_entropy(&flat, &batch[1].reshape(&[bsz * seq])?)?;
        breakdown::mark("fwd cross_entropy");
        mark_grad(&flat, "bwd cross_entropy")?;
        mark_grad(&out, "bwd head linear")?;
        Ok((loss, vec![flat, out]))
    })
}

/// Workload names, in torch_bench.py's order.
const WORKLOADS: &[&str] = &[
    "matmul_f32_128",
    "matmul_f32_256",
    "matmul_f32_384",
    "matmul_f32_512",
    "matmul_f32_1024",
    "matmul_f32_2048",
    "add_16M",
    "gelu_tanh_16M",
    "gelu_chain_16M",
    "gelu_chain_lazy_16M",
    "softmax_4096x1024",
    "layer_norm_4096x1024",
    "conv2d_fwd_bwd",
    "lstm_fwd_bwd",
    "textgen_step",
    "charlm_step",
    "charlm_model_step",
    "mlp_step",
    "gpt_mini_step",
    "gpt_mini_step_lazy",
];

/// torch_bench.py workloads with no deepseek counterpart (accepted by `--only`, skipped).
const PYTHON_ONLY: &[&str] = &["py_add_8x8"];

fn build(name: &str) -> Result<Workload> {
    match name {
        "matmul_f32_128" => matmul(128),
        "matmul_f32_256" => matmul(256),
        "matmul_f32_384" => matmul(384),
        "matmul_f32_512" => matmul(512),
        "matmul_f32_1024" => matmul(1024),
        "matmul_f32_2048" => matmul(2048),
        "add_16M" => add_16m(),
        "gelu_tanh_16M" => gelu_tanh_16m(),
        "gelu_chain_16M" => gelu_chain_16m(false),
        "gelu_chain_lazy_16M" => gelu_chain_16m(true),
        "softmax_4096x1024" => softmax_4096x1024(),
        "layer_norm_4096x1024" => layer_norm_4096x1024(),
        "conv2d_fwd_bwd" => conv2d_fwd_bwd(),
        "lstm_fwd_bwd" => lstm_fwd_bwd(),
        "textgen_step" => lm_step(10000, 512),
        "charlm_step" => lm_step(65, 256),
        "charlm_model_step" => charlm_model_step(),
        "mlp_step" => mlp_step(),
        "gpt_mini_step" => gpt_mini_step(false),
        "gpt_mini_step_lazy" => gpt_mini_step(true),
        _ => unreachable!("workload names are checked up front"),
    }
}

// ------------------------------------------------------------------------------ timing

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median seconds per call of `w` over `repeat` samples (as torch_bench.py's `measure`).
fn measure(w: &mut Workload, repeat: usize) -> Result<f64> {
    let fixed_inner = w.inner.or(if w.reset.is_some() { Some(1) } else { None });
    // Warm-up: at least two calls and ~0.2 s; also calibrates the inner loop.
    let mut calls = 0usize;
    let start = Instant::now();
    while calls < 2 || start.elapsed().as_secs_f64() < 0.2 {
        if let Some(r) = w.reset.as_mut() {
            r();
        }
        (w.step)()?;
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let inner =
        fixed_inner.unwrap_or_else(|| ((MIN_SAMPLE_S / per_call.max(1e-9)) as usize).max(1));
    breakdown::clear();
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        if let Some(r) = w.reset.as_mut() {
            r();
        }
        let t0 = Instant::now();
        for _ in 0..inner {
            (w.step)()?;
        }
        samples.push(t0.elapsed().as_secs_f64() / inner as f64);
    }
    Ok(median(&mut samples))
}

fn round_to(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

// ------------------------------------------------------------------------------ main

struct Args {
    threads: usize,
    only: Option<Vec<String>>,
    repeat: usize,
}

const USAGE: &str = "usage: deepseek-bench [--threads N] [--only NAME,...] [--repeat N]";

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        threads: 2,
        only: None,
        repeat: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--threads" => {
                let v = value("--threads")?;
                args.threads = v
                    .parse()
                    .map_err(|_| format!("--threads: not a number: {v:?}"))?;
            }
            "--repeat" => {
                let v = value("--repeat")?;
                args.repeat = v
                    .parse()
                    .map_err(|_| format!("--repeat: not a number: {v:?}"))?;
            }
            "--only" => {
                let v = value("--only")?;
                let names: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let unknown: Vec<&String> = names
                    .iter()
                    .filter(|n| {
                        !WORKLOADS.contains(&n.as_str()) && !PYTHON_ONLY.contains(&n.as_str())
                    })
                    .collect();
                if !unknown.is_empty() {
                    return Err(format!(
                        "unknown workload(s) {unknown:?}; known: {}",
                        WORKLOADS.join(", ")
                    ));
                }
                args.only = Some(names);
            }
            "-h" | "--help" => {
                println!("{USAGE}\nworkloads: {}", WORKLOADS.join(", "));
                std::process::exit(0);
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> Result<()> {
    deepseek::set_num_threads(args.threads.max(1));
    let names: Vec<String> = match &args.only {
        Some(n) => n.clone(),
        None => WORKLOADS.iter().map(|s| s.to_string()).collect(),
    };
    for name in &names {
        if PYTHON_ONLY.contains(&name.as_str()) {
            eprintln!("[deepseek-bench] skipping {name} (Python-only workload)");
            continue;
        }
        deepseek::manual_seed(0);
        let mut w = build(name)?;
        let sec = {
            let _guard = if w.no_grad {
                deepseek::no_grad()
            } else {
                deepseek::enable_grad()
            };
            measure(&mut w, args.repeat.max(1))?
        };
        breakdown::report(name, sec * 1e3);
        let mut rec = format!("{{\"name\": \"{name}\", \"ms\": {}", round_to(sec * 1e3, 4));
        if let Some(f) = w.flops {
            rec += &format!(", \"gflops\": {}", round_to(f / sec / 1e9, 2));
        }
        rec.push('}');
        println!("{rec}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{USAGE}\ndeepseek-bench: error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deepseek-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
