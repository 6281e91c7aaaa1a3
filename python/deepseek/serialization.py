"""``deepseek.save`` / ``deepseek.load``.

A dict of name -> tensor (a ``state_dict``) is written as a **safetensors** file (the format
PyTorch / Hugging Face users already have, readable without deepseek). Anything else (an
optimizer state dict, a checkpoint dict mixing tensors and numbers) is pickled, with tensors
stored as numpy arrays. ``load`` tells the two apart by content.
"""

import io
import os
import pickle

from . import _C


def _is_tensor_dict(obj):
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, _C.Tensor) for k, v in obj.items()))


def save(obj, f, pickle_protocol=4, **kwargs):
    """Saves ``obj`` to a path or a writable binary file."""
    if _is_tensor_dict(obj) and isinstance(f, (str, os.PathLike)):
        _C.save_file(dict(obj), os.fspath(f))
        return
    data = pickle.dumps(obj, protocol=pickle_protocol)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    else:
        f.write(data)


def _looks_like_safetensors(head):
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < (1 << 30) and head[8:9] == b"{"


def _refuse_torch_zip(head, name):
    if head[:2] == b"PK":
        raise RuntimeError(
            f"load: {name} is a PyTorch zip checkpoint (torch.save's format), which deepseek "
            "does not read; save the state dict as safetensors instead (in PyTorch: "
            "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')) and load "
            "that with deepseek.load")


# What a weights-only load may rebuild: tensors, parameters, numpy arrays (the tensors'
# payload) and plain containers; never a class or function of the program.
_SAFE_GLOBALS = {
    ("deepseek._tensor_extras", "_rebuild"),
    ("deepseek.nn.parameter", "_rebuild_parameter"),
    ("deepseek", "Size"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
}


class _WeightsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS or (
                module.startswith("numpy") and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"weights_only load refuses {module}.{name}: only tensors, numpy arrays and plain "
            "containers are loaded this way. Load with weights_only=False only if you trust "
            "the file (unpickling can run arbitrary code)")


def _unpickle(fh, name, weights_only):
    try:
        if weights_only:
            return _WeightsOnlyUnpickler(fh).load()
        return pickle.load(fh)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"load: {name}: {e}") from e
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise pickle.UnpicklingError(
            f"load: {name}: not a file written by deepseek.save (safetensors or pickle), or "
            f"damaged: {type(e).__name__}: {e}") from e


def load(f, map_location=None, weights_only=None, **kwargs):
    """Loads what ``save`` wrote. ``map_location`` may name the CPU (the only device).

    As in PyTorch (2.6 and later), ``weights_only`` defaults to True: pickled content may
    hold tensors, numpy arrays and plain containers (dicts, lists, tuples, numbers,
    strings) but no other classes or functions. ``weights_only=False`` unpickles anything
    (only for trusted files). Errors name the file."""
    if weights_only is None:
        weights_only = True
    if map_location is not None:
        loc = str(map_location)
        if not loc.startswith("cpu"):
            raise RuntimeError(
                f"load: map_location={loc!r}: CUDA is not available in this build of deepseek")
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        with open(path, "rb") as fh:
            head = fh.read(9)
        if _looks_like_safetensors(head):
            return _C.load_file(path)
        _refuse_torch_zip(head, path)
        with open(path, "rb") as fh:
            return _unpickle(fh, path, weights_only)
    data = f.read()
    if _looks_like_safetensors(data[:9]):
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as tmp:
            tmp.write(data)
        try:
            return _C.load_file(tmp.name)
        finally:
            os.unlink(tmp.name)
    _refuse_torch_zip(data[:2], "the stream")
    return _unpickle(io.BytesIO(data), getattr(f, "name", "the stream"), weights_only)
