//! What the targets share: splitting one fuzz input into several files, and a scratch
//! directory of this process to write them in.

use std::path::PathBuf;

/// The separator between the files packed into one input (scripts/fuzz.sh packs its seeds
/// the same way).
pub const SEP: &[u8] = b"\n--deepseek-fuzz-file--\n";

/// `data` cut at every [`SEP`], padded with empty files up to `n`.
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    while out.len() < n {
        out.push(&[]);
    }
    out
}

/// A fresh, empty directory of this process.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deepseek-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}
