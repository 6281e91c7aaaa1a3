//! `deepseek`: the project's command line.
//!
//! - `deepseek train` trains the tutorials' TextGenerator (Embedding -> LSTM -> Linear,
//!   character level) on the bundled Shakespeare corpus, with a progress bar, validation,
//!   checkpoints in `runs/<name>/`, and a generated sample at the end.
//! - `deepseek generate --checkpoint DIR --prompt TEXT` samples from a checkpoint.
//! - `deepseek generate --model HF_DIR --prompt TEXT` runs a pretrained GPT-2 / Llama model
//!   (Hugging Face directory with `config.json`, `model.safetensors`, `tokenizer.json`),
//!   printing tokens as they come and the tokens/s.
//! - `deepseek viz RUN_DIR` writes `RUN_DIR/viz.html`: the run's loss, learning-rate and
//!   gradient-norm curves as a self-contained page (see `deepseek::viz`).
//! - `deepseek consolidate CKPT_DIR OUT.safetensors` turns a sharded checkpoint of
//!   distributed training into one state dict of the unsplit model (no MPI needed).

use clap::{Args, Parser, Subcommand};
use deepseek::distributed as dist;
use deepseek::nn::Module;
use deepseek::tensor::Generator;
use deepseek::train::{CharGpt, SampleOptions, TextGenerator};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod dp;
mod pretrained;
mod train_cmd;
mod tune;

#[derive(Parser)]
#[command(
    name = "deepseek",
    version,
    about = "deepseek: train the TextGenerator and sample from it"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a character-level model on the bundled Shakespeare corpus: the TextGenerator
    /// LSTM (`--model lstm`, the default: hidden 256, batch 32, sequence 128, Adam 3e-3 with
    /// a cosine decay, clip 1.0, 4.5 minutes) or a small GPT (`--model gpt`: 4 layers,
    /// width 128, 4 heads, context 128, AdamW 1e-3). Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and exits;
    /// a second one stops at once.
    Train(Box<TrainArgs>),
    /// Sample text from a trained checkpoint, or from a pretrained model with --model.
    Generate(GenerateArgs),
    /// Write a self-contained HTML page of a training run: loss, validation loss,
    /// learning-rate and gradient-norm curves from RUN_DIR/metrics.jsonl.
    Viz(VizArgs),
    /// Tune the TextGenerator's learning rate, batch size, hidden size, layers and dropout
    /// with AutoHyper (Bayesian optimisation) within a time budget: each trial a short
    /// `deepseek train` run in its own process, its final validation loss the objective
    Tune(Box<tune::TuneArgs>),
    /// Merge a sharded checkpoint of distributed training (a directory of
    /// rank-*.safetensors files and index.json, written by
    /// deepseek.distributed.checkpoint.save) into one safetensors state dict with the
    /// unsplit model's names; the optimizer state, if any, goes to a second file
    Consolidate(ConsolidateArgs),
}

/// Flags of `deepseek consolidate`.
#[derive(Args, Debug)]
struct ConsolidateArgs {
    /// The sharded checkpoint directory
    dir: PathBuf,
    /// The state dict to write (.safetensors)
    out: PathBuf,
    /// Where to write the optimizer state [default: OUT with .safetensors replaced by
    /// .optim.safetensors]
    #[arg(long)]
    optimizer_out: Option<PathBuf>,
}

fn consolidate(a: ConsolidateArgs) -> AnyResult<()> {
    let c = dist::checkpoint::consolidate(&a.dir, &a.out, a.optimizer_out.as_deref())
        .map_err(|e| e.to_string())?;
    println!(
        "consolidate: {} tensors of a {}-rank checkpoint -> {}",
        c.model_tensors,
        c.world_size,
        c.model_path.display()
    );
    if let Some(p) = &c.optimizer_path {
        println!(
            "consolidate: optimizer state ({} tensors) -> {}",
            c.optimizer_tensors,
            p.display()
        );
    }
    Ok(())
}

/// Flags of `deepseek viz`.
#[derive(Args, Debug)]
struct VizArgs {
    /// The run directory (`deepseek train --out DIR`, or runs/<name>)
    run_dir: PathBuf,
    /// Where to write the page [default: RUN_DIR/viz.html]
    #[arg(long, short)]
    out: Option<PathBuf>,
}

fn viz(a: VizArgs) -> AnyResult<()> {
    let out = a.out.unwrap_or_else(|| a.run_dir.join("viz.html"));
    deepseek::viz::write_run_page(&a.run_dir, &out).map_err(|e| e.to_string())?;
    println!("viz: wrote {}", out.display());
    Ok(())
}

/// Flags of `deepseek train`. The same names (with `-` or `_`) are the keys of the TOML
/// file given with `--config`; flags on the command line override the file.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct TrainArgs {
    /// TOML file of settings (keys = flag names, e.g. `hidden = 512`, `eval-every = 50`)
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Directory with train.txt and val.txt [default: the bundled data/shakespeare]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run name: output goes to runs/<name> [default: textgen]
    #[arg(long)]
    name: Option<String>,
    /// Output directory (overrides runs/<name>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// The model: `lstm` (Embedding -> LSTM -> Linear) or `gpt` (a character-level GPT:
    /// pre-norm causal transformer layers, learned positions) [default: lstm]
    #[arg(long)]
    model: Option<String>,
    /// LSTM hidden size, or the GPT's width [default: 256 (lstm), 128 (gpt)]
    #[arg(long)]
    hidden: Option<usize>,
    /// GPT attention heads (the width must be divisible by it) [default: 4]
    #[arg(long)]
    heads: Option<usize>,
    /// Embedding width (lstm only; the GPT's is its width) [default: the hidden size]
    #[arg(long)]
    embed: Option<usize>,
    /// Stacked LSTM layers, or GPT transformer layers [default: 1 (lstm), 4 (gpt)]
    #[arg(long)]
    layers: Option<usize>,
    /// Dropout between LSTM layers, or inside each GPT layer [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// Sequences per batch [default: 32]
    #[arg(long)]
    batch: Option<usize>,
    /// Characters per sequence (the GPT's context) [default: 128]
    #[arg(long)]
    seq: Option<usize>,
    /// Adam / AdamW (peak) learning rate [default: 0.003 (lstm), 0.001 (gpt)]
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Learning-rate schedule: `cosine` (from --lr down to lr/30 over --decay-steps) or
    /// `constant` [default: cosine]
    #[arg(long)]
    schedule: Option<String>,
    /// Steps of the cosine decay, at least --steps (give it explicitly when a run is done in
    /// parts with growing --steps) [default: --steps]
    #[arg(long)]
    decay_steps: Option<u64>,
    /// Gradient-norm clipping, 0 to disable [default: 1.0]
    #[arg(long, allow_negative_numbers = true)]
    clip: Option<f64>,
    /// Micro-batches per optimizer step [default: 1]
    #[arg(long)]
    accumulate: Option<usize>,
    /// Random seed (initialisation and data order) [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// Time budget in minutes for this invocation [default: 4.5]
    #[arg(long, allow_negative_numbers = true)]
    minutes: Option<f64>,
    /// Stop after this many optimizer steps (in total, over resumes); the cosine schedule
    /// spans them [default: 2800]
    #[arg(long)]
    steps: Option<u64>,
    /// Validate every N steps [default: 100]
    #[arg(long)]
    eval_every: Option<u64>,
    /// Validation batch size [default: 128]
    #[arg(long)]
    eval_batch: Option<usize>,
    /// Validation batches per periodic validation, 0 for all; the final validation always
    /// uses the whole validation text [default: 2]
    #[arg(long)]
    eval_batches: Option<usize>,
    /// Checkpoint every N steps (and at the end) [default: 200]
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Checkpoints to keep, 0 to keep all [default: 3]
    #[arg(long)]
    keep_last: Option<usize>,
    /// Stop when the validation loss has not improved for N validations
    #[arg(long)]
    patience: Option<usize>,
    /// Plain log line every N steps when stdout is not a terminal [default: 50]
    #[arg(long)]
    log_every: Option<u64>,
    /// Compute threads [default: DEEPSEEK_NUM_THREADS or all cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Characters to sample at the end, 0 for none [default: 400]
    #[arg(long)]
    sample_length: Option<usize>,
    /// Sampling temperature of the final sample [default: 0.8]
    #[arg(long, allow_negative_numbers = true)]
    temperature: Option<f64>,
    /// Continue the run from its newest checkpoint
    #[arg(long)]
    resume: bool,
    /// Start over, deleting the run's checkpoints
    #[arg(long)]
    overwrite: bool,
    /// With --resume: load the checkpoint even if its files no longer match the SHA-256
    /// sums recorded when it was written (files edited on purpose)
    #[arg(long)]
    #[serde(skip)]
    no_verify: bool,
    /// Write TensorBoard event files (train/loss, train/lr, train/tokens_per_second,
    /// val/loss) into DIR; view with `tensorboard --logdir DIR`
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Serve Prometheus metrics at http://0.0.0.0:PORT/metrics while training (steps, loss,
    /// learning rate, tokens/s, memory, checkpoint age); 0 picks a free port
    #[arg(long, value_name = "PORT")]
    metrics_port: Option<u16>,
    /// Profile STEPS training steps (after one skipped and one warm-up step): writes
    /// <out>/profile/trace.json (Chrome trace) and <out>/profile/key_averages.txt
    #[arg(long, value_name = "STEPS")]
    profile: Option<u64>,
    /// Train with DP-SGD to this ε (differential privacy): per-sample gradient clipping,
    /// Gaussian noise and Poisson sampling of disjoint text windows, with the noise
    /// multiplier chosen by the RDP accountant for --steps steps; prints the ε spent at
    /// the end. Disables --clip unless given
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    dp_epsilon: Option<f64>,
    /// δ of the DP guarantee, in (0, 1) [default: 1e-5]
    #[arg(long, allow_negative_numbers = true)]
    dp_delta: Option<f64>,
    /// Per-sample gradient clipping norm of DP-SGD [default: 1.0]
    #[arg(long, allow_negative_numbers = true)]
    dp_max_grad_norm: Option<f64>,
    /// Mixed precision f16 (recorded; takes effect with the mixed-precision work)
    #[arg(long)]
    fp16: bool,
    /// Mixed precision bf16 (recorded; takes effect with the mixed-precision work)
    #[arg(long)]
    bf16: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// A run directory, its checkpoints/ directory, or one checkpoint (step-<N>)
    #[arg(long, default_value = "runs/textgen")]
    checkpoint: PathBuf,
    /// Text to continue
    #[arg(long, default_value = "")]
    prompt: String,
    /// Softmax temperature (0 = always the most likely character)
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    temperature: f64,
    /// Sample among the K most likely characters only
    #[arg(long)]
    top_k: Option<usize>,
    /// Characters to generate
    #[arg(long, default_value_t = 400)]
    length: usize,
    /// Random seed [default: from the clock]
    #[arg(long)]
    seed: Option<u64>,
    /// Load the checkpoint even if its files no longer match the SHA-256 sums recorded
    /// when it was written (files edited on purpose)
    #[arg(long)]
    no_verify: bool,
    /// A pretrained model to generate with instead of a checkpoint: a Hugging Face
    /// directory (GPT-2 or Llama architecture, with tokenizer.json) or a llama-architecture
    /// .gguf file (its tokenizer inside); --length counts tokens
    #[arg(long)]
    model: Option<PathBuf>,
    /// With --model: wrap the prompt as a user message in the model's chat template
    /// (instruct models such as SmolLM2-Instruct)
    #[arg(long)]
    chat: bool,
    /// With --model: nucleus sampling threshold
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// With --model: penalty (> 1) for tokens already present
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f64,
    /// With --model: stop after this token id (repeatable; default: the tokenizer's
    /// end-of-text token when it has one)
    #[arg(long)]
    stop_token: Vec<i64>,
}

/// The effective settings of a training run (written to `<out>/settings.toml`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
struct Settings {
    model: String,
    data: PathBuf,
    out: PathBuf,
    hidden: usize,
    heads: usize,
    embed: usize,
    layers: usize,
    dropout: f64,
    batch: usize,
    seq: usize,
    lr: f64,
    schedule: String,
    decay_steps: u64,
    clip: f64,
    accumulate: usize,
    seed: u64,
    minutes: f64,
    steps: u64,
    eval_every: u64,
    eval_batch: usize,
    eval_batches: usize,
    checkpoint_every: u64,
    keep_last: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    patience: Option<usize>,
    log_every: u64,
    threads: usize,
    sample_length: usize,
    temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tensorboard: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp_epsilon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp_delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dp_max_grad_norm: Option<f64>,
    fp16: bool,
    bf16: bool,
}

type AnyResult<T> = std::result::Result<T, String>;

fn default_data_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/shakespeare");
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// Reads a TOML settings file; keys may be written with `-` or `_`.
fn read_config(path: &Path) -> AnyResult<TrainArgs> {
    let p = path.display();
    let s = std::fs::read_to_string(path).map_err(|e| format!("{p}: cannot read: {e}"))?;
    let table: toml::Table = s.parse().map_err(|e| format!("{p}: not valid TOML: {e}"))?;
    let norm: toml::Table = table
        .into_iter()
        .map(|(k, v)| (k.replace('_', "-"), v))
        .collect();
    toml::Value::Table(norm)
        .try_into()
        .map_err(|e| format!("{p}: {e}"))
}

fn resolve(cli: &TrainArgs) -> AnyResult<Settings> {
    let file = match &cli.config {
        Some(p) => read_config(p)?,
        None => TrainArgs::default(),
    };
    macro_rules! pick {
        ($f:ident, $d:expr) => {
            cli.$f.or(file.$f).unwrap_or($d)
        };
    }
    let name = cli
        .name
        .clone()
        .or(file.name.clone())
        .unwrap_or_else(|| "textgen".into());
    if name.is_empty() || name.contains(['/', '\\']) || name == ".." {
        return Err(format!(
            "--name {name:?}: give a plain name (use --out for a path)"
        ));
    }
    let model = cli
        .model
        .clone()
        .or(file.model.clone())
        .unwrap_or_else(|| "lstm".into());
    let gpt = match model.as_str() {
        "lstm" => false,
        "gpt" => true,
        m => return Err(format!("--model must be `lstm` or `gpt`, got `{m}`")),
    };
    let heads = cli.heads.or(file.heads);
    if !gpt && heads.is_some() {
        return Err("--heads applies to --model gpt only".into());
    }
    let hidden = pick!(hidden, if gpt { 128 } else { 256 });
    let embed = cli.embed.or(file.embed);
    if gpt && embed.is_some_and(|e| e != hidden) {
        return Err(format!(
            "--embed applies to --model lstm only (the GPT's embedding width is --hidden, {hidden})"
        ));
    }
    let dpf = dp::flags(
        cli.dp_epsilon.or(file.dp_epsilon),
        cli.dp_delta.or(file.dp_delta),
        cli.dp_max_grad_norm.or(file.dp_max_grad_norm),
    )?;
    let s = Settings {
        model,
        heads: heads.unwrap_or(4),
        data: cli
            .data
            .clone()
            .or(file.data.clone())
            .unwrap_or_else(default_data_dir),
        out: cli
            .out
            .clone()
            .or(file.out.clone())
            .unwrap_or_else(|| Path::new("runs").join(&name)),
        hidden,
        embed: embed.unwrap_or(hidden),
        layers: pick!(layers, if gpt { 4 } else { 1 }),
        dropout: pick!(dropout, 0.0),
        batch: pick!(batch, 32),
        seq: pick!(seq, 128),
        lr: pick!(lr, if gpt { 1e-3 } else { 3e-3 }),
        schedule: cli
            .schedule
            .clone()
            .or(file.schedule.clone())
            .unwrap_or_else(|| "cosine".into()),
        // Under DP-SGD the per-sample clipping replaces the global one.
        clip: pick!(clip, if dpf.is_some() { 0.0 } else { 1.0 }),
        accumulate: pick!(accumulate, 1),
        seed: pick!(seed, 0),
        minutes: pick!(minutes, 4.5),
        steps: pick!(steps, 2800),
        decay_steps: cli
            .decay_steps
            .or(file.decay_steps)
            .unwrap_or_else(|| cli.steps.or(file.steps).unwrap_or(2800)),
        eval_every: pick!(eval_every, 100),
        eval_batch: pick!(eval_batch, 128),
        eval_batches: pick!(eval_batches, 2),
        checkpoint_every: pick!(checkpoint_every, 200),
        keep_last: pick!(keep_last, 3),
        patience: cli.patience.or(file.patience),
        log_every: pick!(log_every, 50),
        threads: pick!(threads, deepseek::get_num_threads()),
        sample_length: pick!(sample_length, 400),
        temperature: pick!(temperature, 0.8),
        tensorboard: cli.tensorboard.clone().or(file.tensorboard.clone()),
        metrics_port: cli.metrics_port.or(file.metrics_port),
        profile: cli.profile.or(file.profile),
        dp_epsilon: dpf.map(|d| d.epsilon),
        dp_delta: dpf.map(|d| d.delta),
        dp_max_grad_norm: dpf.map(|d| d.max_grad_norm),
        fp16: cli.fp16 || file.fp16,
        bf16: cli.bf16 || file.bf16,
    };
    let positive = [
        ("hidden", s.hidden),
        ("embed", s.embed),
        ("layers", s.layers),
        ("heads", s.heads),
        ("batch", s.batch),
        ("seq", s.seq),
        ("accumulate", s.accumulate),
        ("eval-batch", s.eval_batch),
        ("threads", s.threads),
        ("eval-every", s.eval_every as usize),
        ("checkpoint-every", s.checkpoint_every as usize),
        ("log-every", s.log_every as usize),
    ];
    for (k, v) in positive {
        if v == 0 {
            return Err(format!("--{k} must be a positive integer, got 0"));
        }
    }
    if s.steps == 0 {
        return Err("--steps must be a positive integer, got 0".into());
    }
    if s.decay_steps < s.steps {
        return Err(format!(
            "--decay-steps ({}) must be at least --steps ({})",
            s.decay_steps, s.steps
        ));
    }
    if !matches!(s.schedule.as_str(), "cosine" | "constant") {
        return Err(format!(
            "--schedule must be `cosine` or `constant`, got `{}`",
            s.schedule
        ));
    }
    if s.lr.is_nan() || s.lr <= 0.0 {
        return Err(format!("--lr must be positive, got {}", s.lr));
    }
    if s.minutes.is_nan() || s.minutes <= 0.0 {
        return Err(format!("--minutes must be positive, got {}", s.minutes));
    }
    if s.clip.is_nan() || s.clip < 0.0 {
        return Err(format!("--clip must be >= 0, got {}", s.clip));
    }
    if !(0.0..1.0).contains(&s.dropout) {
        return Err(format!("--dropout must be in [0, 1), got {}", s.dropout));
    }
    if dpf.is_some() && s.accumulate != 1 {
        return Err(
            "--dp-epsilon trains on one Poisson-sampled batch per step: --accumulate must be 1"
                .into(),
        );
    }
    if gpt && !s.hidden.is_multiple_of(s.heads) {
        return Err(format!(
            "--hidden ({}) must be divisible by --heads ({})",
            s.hidden, s.heads
        ));
    }
    Ok(s)
}

/// Writes a profile's Chrome trace and key-averages table into `dir`; prints the table.
fn write_profile(p: &deepseek::profiler::Profiler, dir: &Path) -> AnyResult<()> {
    let e = |e: deepseek::Error| e.to_string();
    let trace = dir.join("trace.json");
    p.export_chrome_trace(&trace).map_err(e)?;
    let table = p
        .key_averages(false)
        .table("self_cpu_time_total", 25)
        .map_err(e)?;
    let shapes = p
        .key_averages(true)
        .table("self_cpu_time_total", 0)
        .map_err(e)?;
    let txt = dir.join("key_averages.txt");
    std::fs::write(&txt, format!("{table}\nBy input shape:\n{shapes}"))
        .map_err(|err| format!("{}: {err}", txt.display()))?;
    println!(
        "profile of {} steps:\n{table}",
        p.events()
            .iter()
            .filter(|e| e.category == deepseek::profiler::Category::Step)
            .count()
    );
    println!(
        "profile: {} (open in chrome://tracing or ui.perfetto.dev), {}",
        trace.display(),
        txt.display()
    );
    Ok(())
}

/// The world group when this process is one of several ranks started by mpirun.
fn data_parallel_group() -> AnyResult<Option<dist::ProcessGroup>> {
    let size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    if size <= 1 {
        return Ok(None);
    }
    if !dist::is_mpi_available() {
        return Err(format!(
            "started by mpirun with {size} ranks, but this deepseek was built without MPI: \
             rebuild with `cargo build --release -p deepseek-cli --features mpi`"
        ));
    }
    dist::init_process_group("mpi").map_err(|e| e.to_string())?;
    Ok(Some(dist::world().map_err(|e| e.to_string())?))
}

fn generate(a: GenerateArgs) -> AnyResult<()> {
    if let Some(dir) = a.model.clone() {
        return pretrained::generate_pretrained(&dir, &a);
    }
    let e = |e: deepseek::Error| e.to_string();
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let opts = SampleOptions {
        length: a.length,
        temperature: a.temperature,
        top_k: a.top_k,
    };
    let mut rng = Generator::new(seed);
    let (text, dir) = if CharGpt::is_checkpoint(&a.checkpoint).map_err(e)? {
        let (mut model, tok, dir) =
            CharGpt::from_checkpoint_with(&a.checkpoint, !a.no_verify).map_err(e)?;
        model.eval();
        (
            model
                .generate(&tok, &a.prompt, &opts, &mut rng)
                .map_err(e)?,
            dir,
        )
    } else {
        let (mut model, tok, dir) =
            TextGenerator::from_checkpoint_with(&a.checkpoint, !a.no_verify).map_err(e)?;
        model.eval();
        (
            model
                .generate(&tok, &a.prompt, &opts, &mut rng)
                .map_err(e)?,
            dir,
        )
    };
    eprintln!("(checkpoint {}, seed {seed})", dir.display());
    println!("{}{text}", a.prompt);
    Ok(())
}

/// The signal that raised the stop flag (its exit status is 128 + it).
static LAST_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(2);

/// A stop flag raised by the first SIGINT or SIGTERM (the trainer then finishes its step,
/// checkpoints and returns); a second signal ends the process at once (exit 130).
fn stop_on_signals() -> AnyResult<deepseek::train::StopFlag> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = deepseek::train::StopFlag::new();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    let f = flag.clone();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let name = if sig == SIGTERM { "SIGTERM" } else { "Ctrl-C" };
            if f.is_raised() {
                eprintln!("\n{name} again: stopping now (the newest complete checkpoint is kept)");
                std::process::exit(128 + sig);
            }
            LAST_SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
            eprintln!(
                "\n{name}: finishing the current step and writing a checkpoint (press Ctrl-C again to stop at once)"
            );
            f.raise();
        }
    });
    Ok(flag)
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train(a) => train_cmd::train(*a),
        Cmd::Generate(a) => generate(a),
        Cmd::Viz(a) => viz(a),
        Cmd::Tune(a) => tune::tune(*a),
        Cmd::Consolidate(a) => consolidate(a),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
