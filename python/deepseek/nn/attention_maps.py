"""``deepseek.nn.capture_attention(model)``: each attention module's per-head weights from a
forward pass (a deepseek extension; PyTorch has no such helper).

::

    with nn.capture_attention(model) as maps:
        out = model(x)
    maps["layers.0.self_attn"]          # [B, H, T, S]

The maps come from the Rust recorder behind ``deepseek::nn::functional::record_attention``:
while a module runs inside the context, every attention probability tensor computed in it
(``F.scaled_dot_product_attention``, ``nn.MultiheadAttention`` fused or composed,
``nn.GroupedQueryAttention``, ``nn.SparseAttention``) is handed to the innermost running
module. The forward pass itself is unchanged — same kernels, same outputs — and outside the
context nothing is recorded.
"""

from .. import _C

__all__ = ["capture_attention"]


class capture_attention:
    """Context manager recording the attention weights of every attention module of
    ``model`` during the forward passes run inside it.

    Entering returns a dict (also ``.maps``) filled as the model runs:
    ``{module_name: tensor [B, H, T, S]}`` with ``softmax(q kᵀ/√d + mask)`` per head, taken
    before attention dropout and detached from the autograd graph. Unbatched
    ``MultiheadAttention`` inputs give B = 1; ``SparseAttention`` gives its dense
    [B, H, T, T] pattern (zero outside the window and globals). A module that attends
    several times in one call gets ``name[0]``, ``name[1]``, ...; a module called again
    overwrites its entry (the latest call wins). The root module's own attention is
    filed under its class name."""

    def __init__(self, model):
        if not hasattr(model, "named_modules"):
            raise TypeError(f"capture_attention expects an nn.Module, got "
                            f"{type(model).__name__}")
        self.model = model
        self.maps = {}
        self._handles = []
        self._stack = []

    def _pre(self, mod, args):
        _C._attention_recording_begin()
        self._stack.append(mod)

    def _post(self, mod, args, out):
        # Pop up to this module (a sub-module that raised and was caught left its scope).
        while self._stack:
            top = self._stack.pop()
            got = _C._attention_recording_end()
            if top is mod:
                self._store(mod, got)
                break

    def _store(self, mod, got):
        if not got:
            return
        name = self._names.get(id(mod)) or type(mod).__name__
        if len(got) == 1:
            self.maps[name] = got[0].detach()
        else:
            for i, t in enumerate(got):
                self.maps[f"{name}[{i}]"] = t.detach()

    def __enter__(self):
        if self._handles:
            raise RuntimeError("capture_attention is already active; use a new one")
        self._names = {}
        for name, m in self.model.named_modules():
            self._names[id(m)] = name
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(self._post))
        return self.maps

    def __exit__(self, *exc):
        while self._stack:  # scopes left open by an exception
            self._stack.pop()
            _C._attention_recording_end()
        for h in self._handles:
            h.remove()
        self._handles = []
        return False
