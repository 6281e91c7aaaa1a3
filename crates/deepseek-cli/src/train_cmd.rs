//! `deepseek train`: the training loop of the command line, one generic function for both
//! models it trains (`--model lstm`, the tutorials' TextGenerator, and `--model gpt`, a
//! small character-level GPT), so both get the same Trainer, checkpoints, resume, metrics
//! and final sample.

use super::dp;
use super::{
    data_parallel_group, read_config, resolve, stop_on_signals, write_profile, AnyResult, Settings,
    TrainArgs, LAST_SIGNAL,
};
use deepseek::data::CharTokenizer;
use deepseek::distributed as dist;
use deepseek::nn::Module;
use deepseek::optim::lr_scheduler::CosineAnnealingLR;
use deepseek::optim::{Adam, AdamConfig, AdamW, Optimizer};
use deepseek::tensor::Generator;
use deepseek::train::{
    checkpoint, load_text, textgen, CharGpt, CharGptConfig, SampleOptions, StopReason, TextBatches,
    TextGenerator, TextGeneratorConfig, Throughput, Trainer,
};
use deepseek::{Result, Tensor};
use std::path::Path;
use std::time::Duration;

/// What `deepseek train` needs from a character-level model.
pub(crate) trait CharLm: Module + Sized + 'static {
    /// The optimizer's name, for the banner.
    const OPTIMIZER: &'static str;
    /// A fresh model for the settings, its `config.json` and a one-line description.
    fn build(s: &Settings, vocab_size: usize) -> Result<(Self, Vec<u8>, String)>;
    /// The optimizer over `params` at the settings' learning rate.
    fn optimizer(params: Vec<Tensor>, s: &Settings) -> Result<Box<dyn Optimizer>>;
    /// Mean cross-entropy of `[inputs, targets]`.
    fn loss(&self, batch: &[Tensor]) -> Result<Tensor>;
    /// The DP-SGD gradient step of `--dp-epsilon` for this model (per-sample clipping and
    /// noise), or an error when the model has no per-sample rules.
    fn dp_gradient_fn(plan: &dp::DpPlan, batch: usize) -> AnyResult<DpGradientFn<Self>>;
    /// Continues `prompt` (no gradients).
    fn sample(
        &self,
        tok: &CharTokenizer,
        prompt: &str,
        opts: &SampleOptions,
        rng: &mut Generator,
    ) -> Result<String>;
}

/// A gradient step the Trainer runs instead of loss + backward (`TrainerBuilder::gradient_fn`).
pub(crate) type DpGradientFn<M> = Box<dyn Fn(&M, &[Tensor]) -> Result<Option<f64>>>;

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| deepseek::Error::io("config.json", e.to_string()))
}

impl CharLm for TextGenerator {
    const OPTIMIZER: &'static str = "Adam";
    fn build(s: &Settings, vocab_size: usize) -> Result<(Self, Vec<u8>, String)> {
        let cfg = TextGeneratorConfig {
            vocab_size,
            embedding_dim: s.embed,
            hidden_size: s.hidden,
            num_layers: s.layers,
            dropout: s.dropout,
        };
        let banner = format!(
            "TextGenerator (LSTM): vocab {vocab_size}, embed {}, hidden {}, layers {}",
            s.embed, s.hidden, s.layers
        );
        let j = json(&cfg)?;
        Ok((TextGenerator::new(cfg)?, j, banner))
    }
    fn optimizer(params: Vec<Tensor>, s: &Settings) -> Result<Box<dyn Optimizer>> {
        let cfg = AdamConfig {
            lr: s.lr,
            ..Default::default()
        };
        Ok(Box::new(Adam::new(params, cfg)?))
    }
    fn loss(&self, batch: &[Tensor]) -> Result<Tensor> {
        TextGenerator::loss(self, batch)
    }
    fn dp_gradient_fn(plan: &dp::DpPlan, batch: usize) -> AnyResult<DpGradientFn<Self>> {
        let step = plan.step(batch)?;
        Ok(Box::new(move |m: &TextGenerator, b: &[Tensor]| {
            step.step(m, b)
        }))
    }
    fn sample(
        &self,
        tok: &CharTokenizer,
        prompt: &str,
        opts: &SampleOptions,
        rng: &mut Generator,
    ) -> Result<String> {
        self.generate(tok, prompt, opts, rng)
    }
}

impl CharLm for CharGpt {
    const OPTIMIZER: &'static str = "AdamW";
    fn build(s: &Settings, vocab_size: usize) -> Result<(Self, Vec<u8>, String)> {
        let mut cfg = CharGptConfig::new(vocab_size, s.hidden, s.layers, s.heads, s.seq);
        cfg.dropout = s.dropout;
        let banner = format!(
            "GPT: vocab {vocab_size}, width {}, layers {}, heads {}, context {}",
            s.hidden, s.layers, s.heads, s.seq
        );
        let j = json(&cfg)?;
        Ok((CharGpt::new(cfg)?, j, banner))
    }
    fn optimizer(params: Vec<Tensor>, s: &Settings) -> Result<Box<dyn Optimizer>> {
        let cfg = AdamConfig {
            lr: s.lr,
            ..AdamConfig::adamw_default()
        };
        Ok(Box::new(AdamW::new(params, cfg)?))
    }
    fn loss(&self, batch: &[Tensor]) -> Result<Tensor> {
        CharGpt::loss(self, batch)
    }
    fn dp_gradient_fn(_: &dp::DpPlan, _: usize) -> AnyResult<DpGradientFn<Self>> {
        Err("--dp-epsilon: DP-SGD has per-sample gradient rules for the LSTM TextGenerator only (--model lstm), not for --model gpt".into())
    }
    fn sample(
        &self,
        tok: &CharTokenizer,
        prompt: &str,
        opts: &SampleOptions,
        rng: &mut Generator,
    ) -> Result<String> {
        self.generate(tok, prompt, opts, rng)
    }
}

/// `deepseek train`: the LSTM or the GPT, by `--model`.
pub(crate) fn train(args: TrainArgs) -> AnyResult<()> {
    let s = resolve(&args)?;
    match s.model.as_str() {
        "gpt" => train_model::<CharGpt>(args),
        _ => train_model::<TextGenerator>(args),
    }
}

fn train_model<M: CharLm>(args: TrainArgs) -> AnyResult<()> {
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
    let s = resolve(&args)?;
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
    let (model, cfg_json, banner) = M::build(&s, tok.vocab_size()).map_err(e)?;
    let mut opt = M::optimizer(model.parameters(), &s).map_err(e)?;
    let schedule = if s.schedule == "cosine" {
        Some(CosineAnnealingLR::new(opt.as_mut(), s.decay_steps as usize, s.lr / 30.0).map_err(e)?)
    } else {
        None
    };
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
        .optimizer(opt)
        .loss(|m: &M, batch: &[deepseek::Tensor]| m.loss(batch))
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
        b = b.gradient_fn(M::dp_gradient_fn(plan, s.batch)?);
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
        "{banner}, {n_params} parameters | batch {}, seq {}, {} lr {}, clip {} | {} threads",
        s.batch,
        s.seq,
        M::OPTIMIZER,
        s.lr,
        s.clip,
        s.threads
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
            .sample(
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
