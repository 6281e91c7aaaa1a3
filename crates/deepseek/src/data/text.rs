//! Character-level text: a tokenizer and a dataset of (input, next-character target) windows.

use super::Dataset;
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// Maps each distinct character of a corpus to an id (sorted by character).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CharTokenizer {
    chars: Vec<char>,
    #[serde(skip)]
    index: HashMap<char, usize>,
}

impl CharTokenizer {
    /// The vocabulary of `text`.
    pub fn fit(text: &str) -> CharTokenizer {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_chars(chars)
    }
    /// A tokenizer over these characters, in this order.
    pub fn from_chars(chars: Vec<char>) -> CharTokenizer {
        let index = chars.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        CharTokenizer { chars, index }
    }
    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }
    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }
    /// Ids of `text`; a character outside the vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        text.chars()
            .map(|c| {
                self.index.get(&c).map(|&i| i as i64).ok_or_else(|| {
                    Error::value(
                        "CharTokenizer",
                        format!("character {c:?} is not in the vocabulary"),
                    )
                })
            })
            .collect()
    }
    /// Text of ids; an out-of-range id is an error.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        ids.iter()
            .map(|&i| {
                self.chars.get(i as usize).copied().ok_or_else(|| {
                    Error::index(
                        "CharTokenizer",
                        format!("id {i} is outside the vocabulary of {}", self.chars.len()),
                    )
                })
            })
            .collect()
    }
    /// JSON form (for checkpoints).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.chars.iter().collect::<String>()).expect("a string serialises")
    }
    /// From [`CharTokenizer::to_json`].
    pub fn from_json(s: &str) -> Result<CharTokenizer> {
        let chars: String = serde_json::from_str(s)
            .map_err(|e| Error::value("CharTokenizer", format!("bad tokenizer JSON: {e}")))?;
        Ok(Self::from_chars(chars.chars().collect()))
    }
}

/// Non-overlapping windows of `seq_len` ids: sample `i` is
/// `(ids[i*seq_len .. +seq_len], ids[i*seq_len+1 .. +seq_len+1])`.
pub struct TextWindows {
    ids: Vec<i64>,
    seq_len: usize,
}

impl TextWindows {
    pub fn new(ids: Vec<i64>, seq_len: usize) -> Result<TextWindows> {
        if seq_len == 0 {
            return Err(Error::value("TextWindows", "seq_len must be positive"));
        }
        if ids.len() < seq_len + 1 {
            return Err(Error::value(
                "TextWindows",
                format!(
                    "the text has {} tokens, fewer than one window of {} + 1",
                    ids.len(),
                    seq_len
                ),
            ));
        }
        Ok(TextWindows { ids, seq_len })
    }
}

impl Dataset for TextWindows {
    fn len(&self) -> usize {
        (self.ids.len() - 1) / self.seq_len
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>> {
        let s = i * self.seq_len;
        let x = Tensor::from_slice(&self.ids[s..s + self.seq_len], &[self.seq_len])?;
        let y = Tensor::from_slice(&self.ids[s + 1..s + self.seq_len + 1], &[self.seq_len])?;
        Ok(vec![x, y])
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DataLoader, DataLoaderConfig};
    use super::*;

    #[test]
    fn tokenizer_round_trip_and_errors() {
        let t = CharTokenizer::fit("hello world");
        assert_eq!(t.vocab_size(), 8);
        let ids = t.encode("hello").unwrap();
        assert_eq!(t.decode(&ids).unwrap(), "hello");
        assert!(t.encode("z").unwrap_err().to_string().contains("'z'"));
        assert_eq!(CharTokenizer::from_json(&t.to_json()).unwrap(), t);
    }

    #[test]
    fn loader_is_seeded_covers_every_sample_and_resumes() {
        let ids: Vec<i64> = (0..101).collect();
        let cfg = DataLoaderConfig {
            batch_size: 3,
            shuffle: true,
            drop_last: true,
            seed: 7,
            prefetch: 2,
        };
        let dl = DataLoader::new(TextWindows::new(ids.clone(), 5).unwrap(), cfg).unwrap();
        assert_eq!(dl.len(), 6);
        let e0: Vec<Vec<i64>> = dl
            .epoch(0)
            .map(|b| b.unwrap()[0].to_vec::<i64>().unwrap())
            .collect();
        let again: Vec<Vec<i64>> = dl
            .epoch(0)
            .map(|b| b.unwrap()[0].to_vec::<i64>().unwrap())
            .collect();
        assert_eq!(e0, again);
        let e1: Vec<Vec<i64>> = dl
            .epoch(1)
            .map(|b| b.unwrap()[0].to_vec::<i64>().unwrap())
            .collect();
        assert_ne!(e0, e1);
        let resumed: Vec<Vec<i64>> = dl
            .epoch_from(0, 2)
            .map(|b| b.unwrap()[0].to_vec::<i64>().unwrap())
            .collect();
        assert_eq!(resumed, e0[2..].to_vec());
        let mut starts: Vec<i64> = e0.iter().flat_map(|b| b.chunks(5).map(|w| w[0])).collect();
        starts.sort();
        starts.dedup();
        assert_eq!(starts.len(), 18);
        // Targets are the inputs shifted by one.
        let b = dl.epoch(0).next().unwrap().unwrap();
        let (x, y) = (b[0].to_vec::<i64>().unwrap(), b[1].to_vec::<i64>().unwrap());
        assert!(x.iter().zip(&y).all(|(a, b)| b - a == 1));
    }

    #[test]
    fn bad_loader_input_is_an_error() {
        let ds = TextWindows::new((0..20).collect(), 4).unwrap();
        assert!(DataLoader::new(
            ds,
            DataLoaderConfig {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err());
        assert!(TextWindows::new(vec![1, 2], 4).is_err());
    }
}
