//! A training checkpoint directory (trainer.json, model.safetensors, optimizer.json,
//! scheduler.json, SHA256SUMS) made of any bytes, read as `deepseek train --resume` reads it.
//! The model "now" is the one the checkpoint's own fingerprint describes, so the reader goes
//! past the fingerprint check into the weights and optimizer state. An error, or a
//! checkpoint; never a panic or abort.
#![no_main]
use deepseek::train::checkpoint;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const FILES: [&str; 5] = [
    checkpoint::TRAINER_FILE,
    checkpoint::MODEL_FILE,
    checkpoint::OPTIMIZER_FILE,
    checkpoint::SCHEDULER_FILE,
    checkpoint::SUMS_FILE,
];

fuzz_target!(|data: &[u8]| {
    let files = common::split(data, FILES.len());
    let dir = common::scratch("checkpoint");
    for (name, bytes) in FILES.iter().zip(&files) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let fingerprint = serde_json::from_slice::<checkpoint::TrainerCheckpoint>(files[0])
        .map(|t| t.fingerprint)
        .unwrap_or_default();
    for verify in [true, false] {
        let _ = checkpoint::load_with(&dir, &fingerprint, verify);
    }
});
