"""``deepseek.tokenizers``: Hugging Face ``tokenizer.json`` files (BPE, WordPiece, Unigram)
through the Rust ``tokenizers`` crate.

    tok = deepseek.tokenizers.Tokenizer.from_file("tokenizer.json")
    tok.no_padding()
    batch = tok(["Hello!", "Two sentences."])   # {"input_ids", "attention_mask"}
"""

from . import _C

Tokenizer = _C.Tokenizer

__all__ = ["Tokenizer"]
