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

use clap::{Args, Parser, Subcommand};
use deepseek::distributed as dist;
use deepseek::nn::Module;
use deepseek::optim::lr_scheduler::CosineAnnealingLR;
use deepseek::optim::{Adam, AdamConfig};
use deepseek::tensor::Generator;
use deepseek::train::{
    checkpoint, load_text, textgen, SampleOptions, StopReason, TextBatches, TextGenerator,
    TextGeneratorConfig, Throughput, Trainer,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod dp;
mod pretrained;
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
    /// Train the character-level TextGenerator (defaults: the bundled Shakespeare corpus,
    /// hidden 256, batch 32, sequence 128, Adam 3e-3 with a cosine decay, clip 1.0,
    /// 4.5 minutes). Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and exits;
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
    /// LSTM hidden size [default: 256]
    #[arg(long)]
    hidden: Option<usize>,
    /// Embedding width [default: the hidden size]
    #[arg(long)]
    embed: Option<usize>,
    /// Stacked LSTM layers [default: 1]
    #[arg(long)]
    layers: Option<usize>,
    /// Dropout between LSTM layers [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// Sequences per batch [default: 32]
    #[arg(long)]
    batch: Option<usize>,
    /// Characters per sequence [default: 128]
    #[arg(long)]
    seq: Option<usize>,
    /// Adam (peak) learning rate [default: 0.003]
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
    data: PathBuf,
    out: PathBuf,
    hidden: usize,
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

fn resolve(cli: TrainArgs) -> AnyResult<Settings> {
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
    let hidden = pick!(hidden, 256);
    let dpf = dp::flags(
        cli.dp_epsilon.or(file.dp_epsilon),
        cli.dp_delta.or(file.dp_delta),
        cli.dp_max_grad_norm.or(file.dp_max_grad_norm),
    )?;
    let s = Settings {
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
        embed: pick!(embed, hidden),
        layers: pick!(layers, 1),
        dropout: pick!(dropout, 0.0),
        batch: pick!(batch, 32),
        seq: pick!(seq, 128),
        lr: pick!(lr, 3e-3),
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

fn train(args: TrainArgs) -> AnyResult<()> {
    let (resume, overwrite) = (args.resume, args.overwrite);
    let file_flags = match &args.config {
        Some(p) => {
            let f = read_config(p)?;
            (f.resume, f.overwrite)
        }
        None => (false, false),
    };
    let (resume, overwrite) = (resume || file_flags.0, overwrite || file_flags.1);
    if resume && overwrite {
        return Err("--resume and --overwrite contradict each other".into());
    }
    let no_verify = args.no_verify;
    let s = resolve(args)?;
    if s.out.exists() && !s.out.is_dir() {
        return Err(format!(
            "--out {}: is a file; the output must be a directory (give a new or existing directory)",
            s.out.display()
        ));
    }
    deepseek::set_num_threads(s.threads);
    // Under mpirun with several ranks: data-parallel training; rank 0 writes and prints.
    let group = data_parallel_group()?;
    let rank = group
        .as_ref()
        .map_or(Ok(0), |g| g.rank())
        .map_err(|e| e.to_string())?;
    let lead = rank == 0;
    let dpf = dp::flags(s.dp_epsilon, s.dp_delta, s.dp_max_grad_norm)?;
    if dpf.is_some() && group.is_some() {
        return Err(
            "--dp-epsilon runs in one process (DP-SGD under mpirun is not supported)".into(),
        );
    }
    let e = |e: deepseek::Error| e.to_string();
    let train_text = load_text(&s.data.join("train.txt")).map_err(e)?;
    let val_text = load_text(&s.data.join("val.txt")).map_err(e)?;
    let ckroot = s.out.join("checkpoints");
    let existing = checkpoint::latest(&ckroot).map_err(e)?;
    if let (Some(l), false, false) = (&existing, resume, overwrite) {
        return Err(format!(
            "{} already holds a run (newest checkpoint {}): add --resume to continue it, --overwrite to start over, or pick another --name",
            s.out.display(),
            l.display()
        ));
    }
    // The vocabulary: a resumed run keeps its own.
    let tok_path = s.out.join(textgen::TOKENIZER_FILE);
    let tok = match (&existing, resume) {
        (Some(_), true) if tok_path.is_file() => {
            let j = std::fs::read_to_string(&tok_path)
                .map_err(|err| format!("{}: {err}", tok_path.display()))?;
            deepseek::data::CharTokenizer::from_json(&j)
                .map_err(|err| format!("{}: {err}", tok_path.display()))?
        }
        _ => deepseek::data::CharTokenizer::fit(&format!("{train_text}{val_text}")),
    };
    let train_ids = tok
        .encode(&train_text)
        .map_err(|err| format!("{}: {err}", s.data.join("train.txt").display()))?;
    let val_ids = tok
        .encode(&val_text)
        .map_err(|err| format!("{}: {err}", s.data.join("val.txt").display()))?;
    let data_err = |f: &str| {
        let p = s.data.join(f);
        move |err: deepseek::Error| format!("{}: {err}", p.display())
    };
    let dp_run = match dpf {
        Some(f) => Some(dp::plan(
            f,
            train_ids.clone(),
            s.seq,
            s.batch,
            s.steps,
            s.seed,
        )?),
        None => None,
    };
    if resume && existing.is_some() {
        dp::check_resume(&s.out, dp_run.as_ref().map(|d| &d.1))?;
    }
    let all_train_batches =
        TextBatches::shuffled(train_ids, s.seq, s.batch, s.seed).map_err(data_err("train.txt"))?;
    let sharded = match &group {
        Some(g) => Some(dist::ShardedBatches::new(&all_train_batches, g).map_err(e)?),
        None => None,
    };
    let train_batches: &dyn deepseek::train::BatchSource = match (&dp_run, &sharded) {
        (Some((b, _)), _) => b,
        (None, Some(b)) => b,
        (None, None) => &all_train_batches,
    };
    let val_batches =
        TextBatches::new(val_ids, s.seq, s.eval_batch).map_err(data_err("val.txt"))?;

    deepseek::manual_seed(s.seed);
    let cfg = TextGeneratorConfig {
        vocab_size: tok.vocab_size(),
        embedding_dim: s.embed,
        hidden_size: s.hidden,
        num_layers: s.layers,
        dropout: s.dropout,
    };
    let model = TextGenerator::new(cfg.clone()).map_err(e)?;
    let mut opt = Adam::new(
        model.parameters(),
        AdamConfig {
            lr: s.lr,
            ..Default::default()
        },
    )
    .map_err(e)?;
    let schedule = if s.schedule == "cosine" {
        Some(CosineAnnealingLR::new(&mut opt, s.decay_steps as usize, s.lr / 30.0).map_err(e)?)
    } else {
        None
    };
    let cfg_json = serde_json::to_vec_pretty(&cfg).map_err(|err| err.to_string())?;
    let tok_json = tok.to_json();
    if lead {
        std::fs::create_dir_all(&s.out)
            .map_err(|err| format!("{}: cannot create: {err}", s.out.display()))?;
    }
    let write = |name: &str, bytes: &[u8]| {
        if lead {
            deepseek::nn::write_atomic(&s.out.join(name), bytes).map_err(e)
        } else {
            Ok(())
        }
    };
    write(textgen::CONFIG_FILE, &cfg_json)?;
    write(textgen::TOKENIZER_FILE, tok_json.as_bytes())?;
    write(
        "settings.toml",
        toml::to_string(&s)
            .map_err(|err| err.to_string())?
            .as_bytes(),
    )?;

    let mut b = Trainer::builder(model)
        .optimizer(Box::new(opt))
        .loss(|m: &TextGenerator, batch: &[deepseek::Tensor]| m.loss(batch))
        .gradient_accumulation_steps(s.accumulate)
        .eval_every(s.eval_every)
        .log_every(s.log_every)
        .throughput(Throughput::Tokens)
        .fp16_enabled(s.fp16)
        .bf16(s.bf16)
        .checkpoint_file(textgen::CONFIG_FILE, cfg_json.clone())
        .checkpoint_file(textgen::TOKENIZER_FILE, tok_json.clone());
    let budget = Duration::from_secs_f64(s.minutes * 60.0);
    b = match &group {
        // Ranks must stop at the same step: they decide together after every step.
        Some(g) => b.callback(Box::new(dist::SharedTimeBudget::new(g.clone(), budget))),
        None => b.max_time(budget),
    };
    if lead {
        b = b
            .out_dir(&s.out)
            .checkpoint_every(s.checkpoint_every)
            .keep_last(s.keep_last)
            .resume(resume)
            .verify_checksums(!no_verify)
            .overwrite(overwrite);
        if group.is_none() {
            // Ctrl-C / SIGTERM: finish the step, checkpoint, exit (single process only: under
            // mpirun every rank must stop at the same step, which the time budget decides).
            b = b.stop_flag(stop_on_signals()?);
        }
    } else {
        // Other ranks write nothing; a resumed run reads the same checkpoint as rank 0.
        b = b.progress(false).plot(false);
        if let (true, Some(dir)) = (resume, &existing) {
            b = b.resume_from(dir);
        }
    }
    if s.clip > 0.0 {
        b = b.clip_grad_norm(s.clip);
    }
    if let Some((_, plan)) = &dp_run {
        let step = plan.step(s.batch)?;
        b = b.gradient_fn(move |m: &TextGenerator, batch: &[deepseek::Tensor]| step.step(m, batch));
        if lead && !resume {
            dp::record(&s.out, plan, 0)?;
        }
    } else if lead && !resume {
        // A fresh run without DP in a directory that held a DP run (--overwrite).
        let _ = std::fs::remove_file(s.out.join(dp::FILE));
    }
    b = b.max_steps(s.steps);
    if let Some(sch) = schedule {
        b = b.scheduler(Box::new(sch));
    }
    if s.eval_batches > 0 {
        b = b.eval_max_batches(s.eval_batches);
    }
    if let Some(p) = s.patience {
        b = b.early_stopping(p, 0.0);
    }
    if s.profile == Some(0) {
        return Err("--profile 0: give the number of steps to profile (at least 1)".into());
    }
    let prof = match (s.profile, lead) {
        (Some(n), true) => Some(deepseek::profiler::Profiler::new(
            deepseek::profiler::ProfilerConfig {
                record_shapes: true,
                profile_memory: true,
                with_flops: true,
                schedule: Some(deepseek::profiler::Schedule::new(1, 1, n, 1, 0).map_err(e)?),
            },
        )),
        _ => None,
    };
    if lead {
        if let Some(d) = &s.tensorboard {
            b = b.tensorboard(d);
        }
        if let Some(p) = s.metrics_port {
            b = b.metrics_port(p);
        }
        if let Some(p) = &prof {
            b = b.profiler(p.clone());
        }
    }
    let mut trainer = b.build().map_err(e)?;
    if let Some(m) = trainer.metrics_server() {
        println!(
            "metrics: serving Prometheus metrics at http://{}/metrics",
            m.local_addr()
        );
    }
    // Gradients averaged over the ranks during backward (parameters broadcast from rank 0).
    let _ddp = match &group {
        Some(g) => Some(
            dist::DistributedDataParallel::new(
                trainer.model(),
                Some(g.clone()),
                dist::DEFAULT_BUCKET_CAP_MB,
            )
            .map_err(e)?,
        ),
        None => None,
    };
    let n_params = trainer.model().num_parameters();
    if let Some(g) = &group {
        if lead {
            println!(
                "data parallel: {} ranks (MPI), batch {} per rank, {} per step",
                g.size(),
                s.batch,
                s.batch * g.size()
            );
        }
    }
    if !lead {
        let r = trainer.fit(train_batches, Some(&val_batches)).map_err(e)?;
        drop(r);
        dist::destroy_process_group();
        return Ok(());
    }
    println!(
        "TextGenerator: vocab {}, embed {}, hidden {}, layers {}, {} parameters | batch {}, seq {}, Adam lr {}, clip {} | {} threads",
        cfg.vocab_size, s.embed, s.hidden, s.layers, n_params, s.batch, s.seq, s.lr, s.clip, s.threads
    );
    println!(
        "data {}: train {} chars ({} batches/epoch), val {} chars | budget {} min, {} steps, {} schedule | output {}",
        s.data.display(),
        train_text.chars().count(),
        train_batches.batches_per_epoch(),
        val_text.chars().count(),
        s.minutes,
        s.steps,
        s.schedule,
        s.out.display()
    );
    if let Some((_, plan)) = &dp_run {
        println!("{}", plan.describe());
    }
    if s.fp16 || s.bf16 {
        println!("note: fp16/bf16 are recorded but take effect only with the mixed-precision work; training runs in f32");
    }
    let r = trainer.fit(train_batches, Some(&val_batches));
    if let Some(p) = &prof {
        // Also after a failed run: the trace shows what ran.
        write_profile(p, &s.out.join("profile"))?;
    }
    let r = r.map_err(e)?;
    let why = match r.stop_reason {
        StopReason::MaxSteps => "step limit",
        StopReason::Epochs => "epochs done",
        StopReason::TimeBudget => "time budget",
        StopReason::EarlyStopping => "early stopping",
        StopReason::Callback => "stopped by a callback",
        StopReason::Interrupted => "interrupted",
    };
    println!(
        "done ({why}): {} steps ({} in this run), {:.1}s, {:.0} tokens/s | final val loss {:.4} nats/char (whole validation text) | train loss {:.4}",
        r.steps,
        r.steps_this_run,
        r.elapsed,
        r.throughput,
        r.final_val_loss.unwrap_or(f64::NAN),
        r.final_loss().unwrap_or(f64::NAN)
    );
    if let Some(c) = &r.last_checkpoint {
        println!("checkpoint: {}", c.display());
    }
    if let Some((_, plan)) = &dp_run {
        let eps = dp::record(&s.out, plan, r.steps)?;
        println!(
            "privacy: ε = {eps:.4} at δ = {} after {} steps (RDP accountant; σ = {:.4}, q = {:.6}, C = {}; target {}) | {}",
            plan.delta,
            r.steps,
            plan.noise_multiplier,
            plan.sample_rate,
            plan.max_grad_norm,
            plan.target_epsilon,
            s.out.join(dp::FILE).display()
        );
    }
    if r.stop_reason == StopReason::Interrupted {
        println!(
            "interrupted: continue this run with `deepseek train --resume{}`",
            if s.out == Path::new("runs").join("textgen") {
                String::new()
            } else {
                format!(" --out {}", s.out.display())
            }
        );
        std::process::exit(128 + LAST_SIGNAL.load(std::sync::atomic::Ordering::SeqCst));
    }
    println!(
        "metrics: {} | plot: {}",
        s.out.join("metrics.jsonl").display(),
        s.out.join("loss.svg").display()
    );
    if s.sample_length > 0 {
        let model = trainer.model_mut();
        model.eval();
        let text = model
            .generate(
                &tok,
                "",
                &SampleOptions {
                    length: s.sample_length,
                    temperature: s.temperature,
                    top_k: None,
                },
                &mut Generator::new(s.seed),
            )
            .map_err(e)?;
        println!(
            "--- sample (temperature {}) ---\n{text}\n------------------------------",
            s.temperature
        );
    }
    dist::destroy_process_group();
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
    let (mut model, tok, dir) = TextGenerator::from_checkpoint_with(&a.checkpoint, !a.no_verify)
        .map_err(|e| e.to_string())?;
    model.eval();
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let text = model
        .generate(
            &tok,
            &a.prompt,
            &SampleOptions {
                length: a.length,
                temperature: a.temperature,
                top_k: a.top_k,
            },
            &mut Generator::new(seed),
        )
        .map_err(|e| e.to_string())?;
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
        Cmd::Train(a) => train(*a),
        Cmd::Generate(a) => generate(a),
        Cmd::Viz(a) => viz(a),
        Cmd::Tune(a) => tune::tune(*a),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
