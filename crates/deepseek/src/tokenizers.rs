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

use crate::{Error, Result, Tensor};
use std::path::Path;

/// A tokenizer read from a Hugging Face `tokenizer.json`.
pub struct Tokenizer {
    inner: ::tokenizers::Tokenizer,
    path: String,
}

impl Tokenizer {
    /// Reads `tokenizer.json`; the padding and truncation it configures are kept (see
    /// [`Tokenizer::no_padding`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let p = path.as_ref().display().to_string();
        let inner = ::tokenizers::Tokenizer::from_file(path.as_ref())
            .map_err(|e| Error::io(&p, format!("cannot load the tokenizer: {e}")))?;
        Ok(Tokenizer { inner, path: p })
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
        })
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
