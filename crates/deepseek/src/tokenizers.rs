//! Hugging Face `tokenizer.json` files (BPE, WordPiece, Unigram; normalisers,
//! pre-tokenisers, post-processors) through the `tokenizers` crate, in pure Rust.
//!
//! ```no_run
//! let mut tok = deepseek::tokenizers::Tokenizer::from_file("tokenizer.json")?;
//! tok.no_padding();
//! let ids = tok.encode("Hello world!", true)?;
//! println!("{ids:?} -> {}", tok.decode(&ids, true)?);
//! # Ok::<(), deepseek::Error>(())
//! ```

use crate::models::gguf::{GgufFile, GgufValue};
use crate::{Error, Result, Tensor};
use std::path::Path;

/// A tokenizer read from a Hugging Face `tokenizer.json` or built from a GGUF file.
pub struct Tokenizer {
    inner: ::tokenizers::Tokenizer,
    path: String,
    chat_template: Option<String>,
}

impl Tokenizer {
    /// Reads `tokenizer.json`; the padding and truncation it configures are kept (see
    /// [`Tokenizer::no_padding`]).
    /// A GGUF file (see [`Tokenizer::from_gguf`]) is recognised by its magic bytes.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        if crate::models::is_gguf(path.as_ref()) {
            return Tokenizer::from_gguf_file(path);
        }
        let p = path.as_ref().display().to_string();
        let inner = ::tokenizers::Tokenizer::from_file(path.as_ref())
            .map_err(|e| Error::io(&p, format!("cannot load the tokenizer: {e}")))?;
        Ok(Tokenizer {
            inner,
            path: p,
            chat_template: None,
        })
    }
    /// Parses a tokenizer from the JSON text of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Tokenizer> {
        let inner: ::tokenizers::Tokenizer = json.parse().map_err(|e| {
            Error::io(
                "<tokenizer json>",
                format!("cannot load the tokenizer: {e}"),
            )
        })?;
        Ok(Tokenizer {
            inner,
            path: "<tokenizer json>".into(),
            chat_template: None,
        })
    }
    /// The byte-level BPE tokenizer stored in a GGUF file (`tokenizer.ggml.model` "gpt2":
    /// vocabulary, merges, control tokens, BOS, and the pre-tokenizer its
    /// `tokenizer.ggml.pre` names, as llama.cpp splits text), with the file's chat template.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        use serde_json::{json, Value};
        let kind = f.str("tokenizer.ggml.model")?;
        if kind != "gpt2" {
            return Err(Error::io(
                &f.path,
                format!("GGUF tokenizer model `{kind}` is not supported (supported: gpt2, byte-level BPE)"),
            ));
        }
        let tokens = f.strings("tokenizer.ggml.tokens")?;
        let merges = f.strings("tokenizer.ggml.merges")?;
        let types: Vec<u64> = match f.get("tokenizer.ggml.token_type") {
            Some(GgufValue::Array(v)) => v.iter().map(|x| x.as_u64().unwrap_or(1)).collect(),
            _ => Vec::new(),
        };
        let byte_level = |regex: bool| {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                   "use_regex": regex})
        };
        let split = |re: &str| {
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated",
                 "invert": false},
                byte_level(false)]})
        };
        let pre_name = f
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let pre = match pre_name {
            "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" => byte_level(true),
            // Digits one by one, then GPT-2's split (llama.cpp's starcoder family).
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
                json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Digits", "individual_digits": true}, byte_level(true)]})
            }
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" => split(
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ),
            other => {
                return Err(Error::io(
                    &f.path,
                    format!("GGUF pre-tokenizer `{other}` is not supported (supported: gpt2, smollm/starcoder, llama3 families)"),
                ))
            }
        };
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            vocab.insert(t.to_string(), Value::from(i));
            // 3: control (special), 4: user-defined (matched whole, not special).
            if let Some(&ty @ (3 | 4)) = types.get(i) {
                added.push(json!({
                    "id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": ty == 3}));
            }
        }
        let bos = f
            .get("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.as_u64())
            .filter(|&b| (b as usize) < tokens.len());
        let add_bos = matches!(
            f.get("tokenizer.ggml.add_bos_token"),
            Some(GgufValue::Bool(true))
        );
        let post = match (add_bos, bos) {
            (true, Some(b)) => {
                let name = tokens[b as usize];
                json!({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": name, "type_id": 0}},
                               {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": name, "type_id": 0}},
                             {"Sequence": {"id": "A", "type_id": 0}},
                             {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {name: {"id": name, "ids": [b], "tokens": [name]}}})
            }
            _ => Value::Null,
        };
        let doc = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added, "normalizer": null, "pre_tokenizer": pre,
            "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                        "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        });
        let inner: ::tokenizers::Tokenizer = serde_json::to_string(&doc)
            .map_err(|e| Error::io(&f.path, format!("tokenizer: {e}")))?
            .parse()
            .map_err(|e| Error::io(&f.path, format!("cannot build the tokenizer: {e}")))?;
        Ok(Tokenizer {
            inner,
            path: f.path.clone(),
            chat_template: f
                .get("tokenizer.chat_template")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }
    /// Reads the tokenizer of a GGUF file.
    pub fn from_gguf_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        Tokenizer::from_gguf(&GgufFile::open(path)?)
    }
    /// The chat template that came with the tokenizer (a GGUF file's
    /// `tokenizer.chat_template`), if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
    /// `messages` (`(role, content)` pairs) rendered with the tokenizer's chat template, like
    /// `transformers`' `apply_chat_template(messages, tokenize=False, add_generation_prompt)`.
    /// ChatML templates (`<|im_start|>role\ncontent<|im_end|>\n`, with the default system
    /// message the template inserts when the first message is not a system one) are
    /// rendered; other templates are an error naming the limitation.
    pub fn apply_chat_template(
        &self,
        messages: &[(&str, &str)],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let t = self.chat_template.as_deref().ok_or_else(|| {
            Error::value(
                "apply_chat_template",
                format!("{}: the tokenizer has no chat template", self.path),
            )
        })?;
        if !t.contains("<|im_start|>") {
            return Err(Error::value(
                "apply_chat_template",
                "only ChatML chat templates (<|im_start|> ... <|im_end|>) are supported",
            ));
        }
        // The template's default system message, when it inserts one.
        let default_system = t
            .find("!= 'system'")
            .and_then(|i| t[i..].find("<|im_start|>system\n").map(|j| i + j + 19))
            .and_then(|s| t[s..].find("<|im_end|>").map(|e| &t[s..s + e]));
        let mut out = String::new();
        if let (Some(sys), Some((role, _))) = (default_system, messages.first()) {
            if *role != "system" {
                out.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
            }
        }
        for (role, content) in messages {
            out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
        }
        if add_generation_prompt {
            out.push_str("<|im_start|>assistant\n");
        }
        Ok(out)
    }
    /// Turns off the fixed-length padding a `tokenizer.json` may configure (e.g. to 128).
    pub fn no_padding(&mut self) {
        self.inner.with_padding(None);
    }
    /// Turns off truncation.
    pub fn no_truncation(&mut self) -> Result<()> {
        self.inner
            .with_truncation(None)
            .map_err(|e| Error::io(&self.path, format!("{e}")))?;
        Ok(())
    }
    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::value("Tokenizer", format!("{}: {e}", self.path))
    }
    /// Token ids of `text` (with the special tokens of the post-processor when
    /// `add_special_tokens`).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<i64>> {
        let e = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.err(e))?;
        Ok(e.get_ids().iter().map(|&i| i as i64).collect())
    }
    /// The token strings of `text`.
    pub fn tokenize(&self, text: &str, add_special_tokens: bool) -> Result<Vec<String>> {
        let e = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| self.err(e))?;
        Ok(e.get_tokens().to_vec())
    }
    /// `(input_ids, attention_mask)`, both int64 [B, L], the texts encoded and padded on the
    /// right to the longest (with the tokenizer's pad id, else 0) — `transformers`'
    /// `tokenizer(texts, padding=True)`.
    pub fn encode_batch(
        &self,
        texts: &[&str],
        add_special_tokens: bool,
    ) -> Result<(Tensor, Tensor)> {
        let rows = texts
            .iter()
            .map(|t| self.encode(t, add_special_tokens))
            .collect::<Result<Vec<_>>>()?;
        let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let pad = self.inner.get_padding().map_or(0, |p| p.pad_id as i64);
        let mut ids = Vec::with_capacity(rows.len() * l);
        let mut mask = Vec::with_capacity(rows.len() * l);
        for r in &rows {
            ids.extend(
                r.iter()
                    .copied()
                    .chain(std::iter::repeat_n(pad, l - r.len())),
            );
            mask.extend((0..l).map(|i| (i < r.len()) as i64));
        }
        Ok((
            Tensor::from_vec(ids, &[rows.len(), l])?,
            Tensor::from_vec(mask, &[rows.len(), l])?,
        ))
    }
    /// Text of `ids`; ids outside the vocabulary are an error, not a panic.
    pub fn decode(&self, ids: &[i64], skip_special_tokens: bool) -> Result<String> {
        let n = self.vocab_size() as i64;
        if let Some(bad) = ids.iter().find(|&&i| i < 0 || i >= n) {
            return Err(Error::index(
                "Tokenizer",
                format!("token id {bad} is outside the vocabulary of {n}"),
            ));
        }
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.inner
            .decode(&ids, skip_special_tokens)
            .map_err(|e| self.err(e))
    }
    /// Size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    /// The id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(|i| i as i64)
    }
    /// The string of a token id.
    pub fn id_to_token(&self, id: i64) -> Option<String> {
        u32::try_from(id)
            .ok()
            .and_then(|i| self.inner.id_to_token(i))
    }
}
