"""``deepseek.models``: pretrained models with Hugging Face names.

``from_pretrained(path)`` loads a Hugging Face directory (``config.json`` +
``model.safetensors``): BERT (``model(input_ids, attention_mask)`` returns
``(last_hidden_state, pooler_output)``), GPT-2 and Llama-architecture decoders (``(logits,)``,
plus ``generate``). A ``.gguf`` file (llama.cpp's format, Llama architecture: e.g.
SmolLM2-Instruct) loads too; its tokenizer is ``deepseek.tokenizers.Tokenizer.from_file`` of
the same file. The model runs in Rust; its parameters are deepseek tensors.
"""

from .. import _C

PretrainedModel = _C.PretrainedModel

__all__ = ["from_pretrained", "PretrainedModel", "mean_pooling"]


def from_pretrained(path):
    """Loads the Hugging Face model directory ``path`` or the GGUF file ``path`` (weights
    F32/F16/BF16/Q8_0/Q4_0/Q4_1; the quantised blocks are kept for fast decoding); a
    checkpoint whose tensor names or shapes do not fit the architecture raises ``OSError``
    naming the first mismatch."""
    return _C.models_from_pretrained(str(path))


def mean_pooling(last_hidden_state, attention_mask, normalize=True):
    """Sentence embeddings as sentence-transformers computes them: the mean of the token
    vectors where ``attention_mask`` is 1, L2-normalised when ``normalize``."""
    m = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)
    e = (last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if normalize:
        e = e / (e * e).sum(1, keepdim=True).sqrt().clamp(min=1e-12)
    return e
