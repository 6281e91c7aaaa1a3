"""``deepseek.nn.utils.rnn``: padding variable-length sequences into one batch."""

from ... import _C


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks tensors of shape [L_i, *] into [L_max, B, *] (or [B, L_max, *] with
    ``batch_first``), filling with ``padding_value``."""
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    trailing = tuple(sequences[0].shape[1:])
    for s in sequences:
        if tuple(s.shape[1:]) != trailing:
            raise ValueError("pad_sequence: all sequences must have the same trailing dims")
    n = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        pad = n - s.shape[0]
        if pad:
            fill = _C.full((pad,) + trailing, padding_value, dtype=s.dtype)
            s = _C.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    out = _C.stack(rows, 0)
    return out if batch_first else out.transpose(0, 1)
