//! Any bytes given to the safetensors reader: an error or tensors, never a panic, abort or
//! an allocation the bytes do not justify.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = deepseek::nn::parse_safetensors(data, "fuzz.safetensors") {
        for t in map.values() {
            let _ = t.to_vec_f64();
        }
    }
});
