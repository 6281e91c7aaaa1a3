//! `deepseek generate --model PATH`: text generation with a pretrained model (a Hugging Face
//! directory or a GGUF file), streamed token by token, with the tokens/s at the end.

use super::{AnyResult, GenerateArgs};
use deepseek::models::gguf::GgufFile;
use deepseek::models::llama::LlamaForCausalLM;
use deepseek::models::PretrainedModel;
use deepseek::tokenizers::Tokenizer;
use std::path::Path;

/// `deepseek generate --model DIR`: streams the continuation of the prompt.
pub(crate) fn generate_pretrained(dir: &Path, a: &GenerateArgs) -> AnyResult<()> {
    use std::io::Write;
    if let Some(seed) = a.seed {
        deepseek::manual_seed(seed);
    }
    let (model, mut tok) = if deepseek::models::is_gguf(dir) {
        let f = GgufFile::open(dir).map_err(|e| e.to_string())?;
        let model = LlamaForCausalLM::from_gguf(&f).map_err(|e| e.to_string())?;
        let tok = Tokenizer::from_gguf(&f).map_err(|e| e.to_string())?;
        (PretrainedModel::Llama(model), tok)
    } else if dir.is_file() {
        return Err(format!(
            "{}: not a GGUF file; pass a .gguf file or a Hugging Face directory",
            dir.display()
        ));
    } else {
        let model = deepseek::models::from_pretrained(dir).map_err(|e| e.to_string())?;
        let tok = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| e.to_string())?;
        (model, tok)
    };
    tok.no_padding();
    let text = if a.chat {
        tok.apply_chat_template(&[("user", a.prompt.as_str())], true)
            .map_err(|e| e.to_string())?
    } else {
        a.prompt.clone()
    };
    // Chat templates spell their special tokens out; plain prompts get the tokenizer's own.
    let prompt = tok.encode(&text, !a.chat).map_err(|e| e.to_string())?;
    let mut stop = a.stop_token.clone();
    if stop.is_empty() {
        stop.extend(
            ["<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>"]
                .iter()
                .filter_map(|t| tok.token_to_id(t)),
        );
    }
    let opts = deepseek::models::GenerateOptions {
        max_new_tokens: a.length,
        temperature: a.temperature,
        top_k: a.top_k.unwrap_or(0),
        top_p: a.top_p,
        repetition_penalty: a.repetition_penalty,
        stop_tokens: stop,
    };
    if a.chat {
        println!("{}", a.prompt);
    } else {
        print!("{}", a.prompt);
    }
    let mut out = std::io::stdout();
    let _ = out.flush();
    let mut ids: Vec<i64> = Vec::new();
    let mut shown = 0usize;
    let start = std::time::Instant::now();
    let mut first: Option<std::time::Duration> = None;
    let new = model
        .generate(&prompt, &opts, &mut |t| {
            first.get_or_insert_with(|| start.elapsed());
            ids.push(t);
            let text = tok.decode(&ids, true)?;
            if let Some(rest) = text.get(shown..) {
                print!("{rest}");
                let _ = out.flush();
                shown = text.len();
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let total = start.elapsed().as_secs_f64();
    let prefill = first.map_or(0.0, |d| d.as_secs_f64());
    let decode_tps = if new.len() > 1 {
        (new.len() - 1) as f64 / (total - prefill).max(1e-9)
    } else {
        0.0
    };
    println!();
    eprintln!(
        "({} prompt tokens, {} new tokens in {total:.2} s: first token after {prefill:.2} s, then {decode_tps:.1} tokens/s)",
        prompt.len(),
        new.len()
    );
    Ok(())
}
