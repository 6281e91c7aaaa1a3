//! A Hugging Face model directory (`config.json`, `model.safetensors`) made of any bytes,
//! loaded as `from_pretrained` / `deepseek generate` load it: an error naming the file, or
//! a model, never a panic, abort or allocation from sizes the weights do not back.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let files = common::split(data, 2);
    let dir = common::scratch("pretrained");
    std::fs::write(dir.join("config.json"), files[0]).unwrap();
    std::fs::write(dir.join("model.safetensors"), files[1]).unwrap();
    let _ = deepseek::models::from_pretrained(&dir);
});
