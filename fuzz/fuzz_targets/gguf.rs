//! Any bytes given to the GGUF reader, then to the Llama loader that builds a model from
//! the file's metadata and tensors (the path of `deepseek generate --checkpoint x.gguf`):
//! an error or a model, never a panic, abort or an allocation the file does not justify.
#![no_main]
use deepseek::models::gguf::GgufFile;
use deepseek::models::llama::LlamaForCausalLM;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::parse(data.to_vec(), "fuzz.gguf") else {
        return;
    };
    let names: Vec<String> = f.tensors.iter().map(|t| t.name.clone()).collect();
    for n in &names {
        let _ = f.tensor_f32(n);
    }
    let _ = LlamaForCausalLM::from_gguf(&f);
});
