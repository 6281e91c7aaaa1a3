"""``deepseek.save`` / ``deepseek.load``: PyTorch's checkpoint format, both ways.

``save(obj, f)`` writes **PyTorch's zip format** (what ``torch.save`` writes since PyTorch 1.6:
``<name>/data.pkl`` -- a protocol-2 pickle whose tensors are persistent references to
storages -- plus one ``<name>/data/<key>`` record per storage, ``byteorder``, ``version``),
so ``torch.load(f, weights_only=True)`` reads state dicts, optimizer state dicts and
checkpoint dicts written by deepseek. A path ending in ``.safetensors`` gets a safetensors
file instead (for a dict of name -> tensor).

``load(f)`` reads files written by ``torch.save`` and by ``deepseek.save``: the zip format,
safetensors, and the plain pickles older deepseek versions wrote. As in PyTorch 2.6+,
``weights_only=True`` is the default: the pickle is read by a **restricted unpickler** that
rebuilds only tensors, parameters, dtypes, ``Size``, ``device`` and plain containers
(dict, ``OrderedDict``, list, tuple, set, numbers, strings, bytes); any other global in the
file is refused with an error naming the file and the global -- no code from the file runs.
``add_safe_globals`` / ``safe_globals`` allow more classes, as in PyTorch.

Storages are read into memory once each (tensors that are views of one storage in the file
are rebuilt from that buffer with their offsets and strides); the data moves by buffer
copies, never per element in Python. Tensors of dtypes deepseek does not have are converted
as ``deepseek.from_numpy`` does (int8/int16/uint16 -> int32, uint32 -> int64); complex,
float8 and uint64 storages raise. Record checksums (CRC-32) are verified, so damaged data
raises instead of loading silently.
"""

import _compat_pickle
import collections
import contextlib
import io
import os
import pickle
import struct
import warnings
import zipfile
import zlib

import numpy as np

from . import _C

__all__ = ["save", "load", "add_safe_globals", "get_safe_globals", "clear_safe_globals",
           "safe_globals", "DEFAULT_PROTOCOL"]

DEFAULT_PROTOCOL = 2


# ------------------------------------------------------------------------------------ dtypes

# torch's legacy storage class name -> (numpy dtype of the bytes, deepseek dtype name)
_STORAGE_TYPES = {
    "FloatStorage": ("<f4", "float32"),
    "DoubleStorage": ("<f8", "float64"),
    "HalfStorage": ("<f2", "float16"),
    "BFloat16Storage": ("<u2", "bfloat16"),
    "LongStorage": ("<i8", "int64"),
    "IntStorage": ("<i4", "int32"),
    "ShortStorage": ("<i2", "int16"),
    "CharStorage": ("i1", "int8"),
    "ByteStorage": ("u1", "uint8"),
    "BoolStorage": ("?", "bool"),
}
# torch dtype name -> (numpy dtype of the bytes, storage class name)
_TORCH_DTYPES = {
    "float32": ("<f4", "FloatStorage"),
    "float64": ("<f8", "DoubleStorage"),
    "float16": ("<f2", "HalfStorage"),
    "bfloat16": ("<u2", "BFloat16Storage"),
    "int64": ("<i8", "LongStorage"),
    "int32": ("<i4", "IntStorage"),
    "int16": ("<i2", "ShortStorage"),
    "int8": ("i1", "CharStorage"),
    "uint8": ("u1", "ByteStorage"),
    "bool": ("?", "BoolStorage"),
    "uint16": ("<u2", None),
    "uint32": ("<u4", None),
}
_TORCH_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16",
                        "long": "int64", "int": "int32", "short": "int16"}
_UNSUPPORTED_DTYPES = ("complex32", "complex64", "complex128", "cfloat", "cdouble",
                       "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                       "float8_e8m0fnu", "float4_e2m1fn_x2", "uint64", "qint8", "quint8",
                       "qint32", "quint4x2", "quint2x4", "bits8", "bits16", "bits1x8",
                       "bits2x4", "bits4x2") + tuple(f"uint{i}" for i in range(1, 8)) + tuple(
                           f"int{i}" for i in range(1, 8))


class _UnsupportedDType:
    """A torch dtype deepseek has no tensors of: loading a tensor of it raises."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType:
    """Stands for one of torch's storage classes (``torch.FloatStorage``, ...)."""

    def __init__(self, name):
        self.name = name
        self.np_dtype, self.dtype_name = _STORAGE_TYPES.get(name, ("u1", "uint8"))


class _LoadError(Exception):
    pass


def _ds_dtype(name):
    return getattr(_C, name)


# ------------------------------------------------------------------------------ safe globals

# What a weights-only load may rebuild besides torch's tensor machinery: deepseek's own
# rebuild functions (files of older deepseek versions) and plain containers. numpy arrays are
# not in it, as in PyTorch 2.6+ (whose weights-only unpickler refuses every numpy global by
# default): a file holding one needs add_safe_globals([np._core.multiarray._reconstruct,
# np.ndarray, np.dtype, type(np.dtype(...))]) or weights_only=False, in both.
_SAFE_GLOBALS = {
    ("deepseek._tensor_extras", "_rebuild"),
    ("deepseek.nn.parameter", "_rebuild_parameter"),
    ("deepseek", "Size"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "bytearray"),
    ("_codecs", "encode"),
}

_user_safe_globals = {}


def _global_name(obj):
    if isinstance(obj, tuple):  # (obj, "module.Name") as torch accepts
        obj, full = obj
        mod, _, name = full.rpartition(".")
        return (mod, name), obj
    return (obj.__module__, getattr(obj, "__qualname__", obj.__name__)), obj


def add_safe_globals(safe_globals):
    """Allows the given classes/functions in weights-only loads (``torch.serialization.
    add_safe_globals``): a list of objects, or of ``(object, "module.Name")`` pairs."""
    for g in safe_globals:
        key, obj = _global_name(g)
        _user_safe_globals[key] = obj


def get_safe_globals():
    """The objects allowed by ``add_safe_globals``."""
    return list(_user_safe_globals.values())


def clear_safe_globals():
    """Forgets every object added with ``add_safe_globals``."""
    _user_safe_globals.clear()


@contextlib.contextmanager
def safe_globals(safe_globals):
    """Context manager: ``add_safe_globals`` for the duration of the block."""
    saved = dict(_user_safe_globals)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _user_safe_globals.clear()
        _user_safe_globals.update(saved)


# --------------------------------------------------------------------------------- rebuilding

class _Storage:
    """One storage of a zip checkpoint: its bytes as a numpy array of its element type."""

    __slots__ = ("array", "dtype_name", "key")

    def __init__(self, array, dtype_name, key):
        self.array, self.dtype_name, self.key = array, dtype_name, key


def _bf16_to_tensor(u16):
    f32 = (u16.astype(np.uint32) << 16).view(np.float32)
    return _C.from_numpy(f32).to(_C.bfloat16)


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, dtype=None):
    if not isinstance(storage, _Storage):
        raise _LoadError(f"tensor record without a storage ({type(storage).__name__})")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    arr = storage.array
    name = storage.dtype_name
    if dtype is not None:  # _rebuild_tensor_v3: an untyped (byte) storage and a dtype
        if isinstance(dtype, _UnsupportedDType):
            raise _LoadError(f"storage {storage.key} holds {dtype!r} tensors, a dtype deepseek "
                             "does not have")
        name = dtype.name if isinstance(dtype, _TorchDType) else str(dtype).split(".")[-1]
        name = _TORCH_DTYPE_ALIASES.get(name, name)
        if name not in _TORCH_DTYPES:
            raise _LoadError(f"storage {storage.key}: dtype {name} is not supported")
        np_dt = np.dtype(_TORCH_DTYPES[name][0])
        raw = arr.view(np.uint8)
        usable = raw.size - raw.size % np_dt.itemsize
        arr = raw[:usable].view(np_dt)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise _LoadError(f"storage {storage.key}: invalid size {size} / stride {stride}")
    n = 1
    for s in size:
        n *= s
    if n:
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        if storage_offset < 0 or last >= arr.size:
            raise _LoadError(
                f"storage {storage.key}: a tensor of size {list(size)}, stride {list(stride)} "
                f"at offset {storage_offset} reaches element {last}, beyond the storage's "
                f"{arr.size} elements (truncated or damaged file)")
        if stride == _contiguous_strides(size):
            # the common case: no copy; tensors of one storage share its memory, as in torch
            data = arr[storage_offset:storage_offset + n].reshape(size)
        else:
            view = np.lib.stride_tricks.as_strided(
                arr[storage_offset:], shape=size, strides=[st * arr.itemsize for st in stride],
                writeable=False)
            data = np.array(view, copy=True, order="C")
    else:
        data = np.zeros(size, dtype=arr.dtype)
    if name == "bfloat16":
        t = _bf16_to_tensor(data)
    else:
        if data.dtype == np.bool_ and data.size and data.view(np.uint8).max() > 1:
            data = data.view(np.uint8) != 0
        t = _C.from_numpy(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride, requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride, requires_grad, dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    from .nn.parameter import Parameter

    if not isinstance(data, _C.Tensor):
        raise _LoadError(f"parameter record holds {type(data).__name__}, not a tensor")
    return Parameter(data, requires_grad=requires_grad and data.is_floating_point())


def _rebuild_from_type_v2(func, new_type, args, state):
    out = func(*args)
    from .nn.parameter import Parameter

    if new_type is Parameter and not isinstance(out, Parameter):
        out = Parameter(out, out.requires_grad)
    return out


def _unsupported(what):
    def f(*args, **kwargs):
        raise _LoadError(f"{what} tensors are not supported by deepseek")

    return f


class _TorchDType:
    """A torch dtype that deepseek has: rebuilt as the deepseek dtype object itself."""

    def __init__(self, name):
        self.name = name


def _torch_dtype(name):
    name = _TORCH_DTYPE_ALIASES.get(name, name)
    if name in ("uint16", "uint32"):
        return _TorchDType(name)
    if name in _TORCH_DTYPES:
        return _ds_dtype(name)
    return _UnsupportedDType(name)


def _device(*args, **kwargs):
    return _C.device("cpu")


def _torch_global(module, name):
    """deepseek's object for a global of torch's tensor machinery, or None."""
    from . import Size
    from .nn.parameter import Parameter

    if module == "torch._utils":
        table = {"_rebuild_tensor_v2": _rebuild_tensor_v2,
                 "_rebuild_tensor_v3": _rebuild_tensor_v3,
                 "_rebuild_parameter": _rebuild_parameter,
                 "_rebuild_parameter_with_state": _rebuild_parameter}
        if name in table:
            return table[name]
        if name.startswith("_rebuild_"):
            return _unsupported(name[len("_rebuild_"):].replace("_", " "))
        return None
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return _rebuild_from_type_v2
    if module == "torch.nn.parameter" and name == "Parameter":
        return Parameter
    if module in ("torch.storage", "torch") and name in ("UntypedStorage", "TypedStorage"):
        return _StorageType("ByteStorage")
    if module == "torch":
        if name == "Size":
            return Size
        if name == "device":
            return _device
        if name == "Tensor":
            return _C.Tensor
        if name.endswith("Storage"):
            if name not in _STORAGE_TYPES:
                return None
            return _StorageType(name)
        if name in _TORCH_DTYPES or name in _TORCH_DTYPE_ALIASES or name in _UNSUPPORTED_DTYPES:
            return _torch_dtype(name)
    if module == "torch.serialization" and name == "_get_layout":
        return lambda name: name
    return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh, weights_only, storages=None):
        super().__init__(fh)
        self._weights_only = weights_only
        self._storages = storages

    def find_class(self, module, name):
        # protocol-2 pickles name Python 2's modules (``__builtin__.set``)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        obj = _torch_global(module, name)
        if obj is not None:
            return obj
        if (module, name) in _user_safe_globals:
            return _user_safe_globals[(module, name)]
        if module == "numpy.core" or module.startswith("numpy.core."):
            # numpy 1 pickles name numpy.core, numpy 2's own objects are in numpy._core
            alias = ("numpy._core" + module[len("numpy.core"):], name)
            if alias in _user_safe_globals:
                return _user_safe_globals[alias]
        if not self._weights_only:
            return super().find_class(module, name)
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"weights_only load refuses the global {module}.{name}: only tensors, "
            "parameters, dtypes and plain containers are loaded this way (as in PyTorch 2.6+). "
            f"If you trust the file, allow it with deepseek.serialization.add_safe_globals("
            f"[{module}.{name}]) (or the safe_globals context manager), or load with "
            "weights_only=False (unpickling can run arbitrary code)")

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("a persistent id outside a zip checkpoint")
        return self._storages(pid)


# -------------------------------------------------------------------------------------- load

def _zip_prefix(zf, name):
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise pickle.UnpicklingError(
            f"load: {name}: a zip file but not a PyTorch checkpoint (no <archive>/data.pkl "
            "record)")
    return pkl[0][: -len("data.pkl")]


def _read_record(zf, fobj, info, rec):
    """A zip record's bytes as a fresh uint8 array, its CRC-32 checked. Stored (uncompressed)
    records -- what torch.save writes -- are read straight into the array."""
    buf = np.empty(info.file_size, dtype=np.uint8)
    if info.compress_type == zipfile.ZIP_STORED and hasattr(fobj, "readinto"):
        fobj.seek(info.header_offset)
        head = fobj.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise _LoadError(f"record {rec}: bad local header")
        n, m = struct.unpack("<HH", head[26:30])
        fobj.seek(info.header_offset + 30 + n + m)
        got = fobj.readinto(memoryview(buf))
        if got != info.file_size:
            raise _LoadError(f"record {rec} is truncated ({got} of {info.file_size} bytes)")
        if zlib.crc32(buf) != info.CRC:
            raise _LoadError(f"record {rec} is damaged (CRC-32 mismatch)")
        return buf
    with zf.open(info) as src:  # CRC-32 checked at the end of the record
        view = memoryview(buf)
        got = 0
        while got < info.file_size:
            k = src.readinto(view[got:])
            if not k:
                break
            got += k
        if got != info.file_size or src.read(1):
            raise _LoadError(f"record {rec} is truncated")
    return buf


def _load_zip(fobj, name, weights_only):
    try:
        zf = zipfile.ZipFile(fobj)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise pickle.UnpicklingError(
            f"load: {name}: damaged or truncated PyTorch zip checkpoint: {e}") from e
    with zf:
        prefix = _zip_prefix(zf, name)
        names = set(zf.namelist())
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise pickle.UnpicklingError(f"load: {name}: unknown byteorder {byteorder!r}")
        cache = {}

        def storage(pid):
            if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
                raise _LoadError(f"unknown persistent id {pid!r}")
            _, stype, key, _location, numel = pid
            key = str(key)
            if key in cache:
                return cache[key]
            if not isinstance(stype, _StorageType):
                raise _LoadError(f"storage {key}: unknown storage type {stype!r}")
            rec = f"{prefix}data/{key}"
            if rec not in names:
                raise _LoadError(f"storage record {rec} is missing")
            info = zf.getinfo(rec)
            dt = np.dtype(stype.np_dtype)
            if info.file_size < int(numel) * dt.itemsize:
                raise _LoadError(f"storage record {rec} holds {info.file_size} bytes, fewer "
                                 f"than its {numel} elements of {dt.itemsize} bytes")
            buf = _read_record(zf, fobj, info, rec)
            arr = buf[: int(numel) * dt.itemsize].view(dt)
            if byteorder == "big" and dt.itemsize > 1:
                arr = arr.byteswap()
            cache[key] = _Storage(arr, stype.dtype_name, key)
            return cache[key]

        try:
            data = zf.read(prefix + "data.pkl")
            return _Unpickler(io.BytesIO(data), weights_only, storage).load()
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"load: {name}: {e}") from e
        except (_LoadError, zipfile.BadZipFile, EOFError, ValueError, TypeError,
                AttributeError, ImportError, IndexError, KeyError, UnicodeDecodeError,
                MemoryError, OverflowError, struct.error, OSError, RuntimeError) as e:
            raise pickle.UnpicklingError(
                f"load: {name}: damaged or unsupported PyTorch checkpoint: "
                f"{type(e).__name__ if not isinstance(e, _LoadError) else 'error'}: {e}") from e


def _unpickle(fh, name, weights_only):
    try:
        return _Unpickler(fh, weights_only).load()
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(f"load: {name}: {e}") from e
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, UnicodeDecodeError, MemoryError, OverflowError, _LoadError) as e:
        raise pickle.UnpicklingError(
            f"load: {name}: not a file written by torch.save or deepseek.save (a PyTorch zip "
            f"checkpoint, safetensors or pickle), or damaged: {type(e).__name__}: {e}") from e


def _looks_like_safetensors(head):
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < (1 << 30) and head[8:9] == b"{"


_TRUE_VALUES = ("1", "y", "yes", "true")


def _resolve_weights_only(weights_only, pickle_module):
    """torch.load's choice of weights_only: the default, the TORCH_FORCE_* variables."""
    not_set = weights_only is None
    if not_set:
        weights_only = pickle_module is None
    force = os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE_VALUES
    force_no = os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE_VALUES
    if force and force_no:
        raise RuntimeError(
            "Only one of `TORCH_FORCE_WEIGHTS_ONLY_LOAD` or `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` "
            "should be set, but both were set.")
    if force:
        weights_only = True
    elif force_no and not_set:
        warnings.warn(
            "Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected, since the "
            "`weights_only` argument was not explicitly passed to `torch.load`, forcing "
            "weights_only=False.", UserWarning, stacklevel=3)
        weights_only = False
    if weights_only and pickle_module is not None:
        raise RuntimeError(
            "Can not safely load weights when explicit pickle_module is specified")
    return bool(weights_only)


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Loads a file written by ``torch.save`` or ``deepseek.save`` (PyTorch zip checkpoint,
    safetensors, or a plain pickle) from a path or a readable binary file.

    ``weights_only`` defaults to True, as in PyTorch 2.6+: the pickle may hold tensors,
    parameters, dtypes, sizes, devices and plain containers (dicts, lists, tuples, sets,
    numbers, strings, bytes) but no other classes or functions; anything else raises
    ``pickle.UnpicklingError`` naming the file and the refused global. Allow more with
    ``deepseek.serialization.add_safe_globals`` (or ``safe_globals``); ``weights_only=False``
    unpickles anything (only for trusted files). Tensors saved on a GPU load on the CPU;
    ``map_location`` may name the CPU (the only device). Errors name the file.

    As in PyTorch: an explicit ``pickle_module`` makes the default ``weights_only=False``
    (and ``weights_only=True`` with one raises); the environment variable
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` (1/y/yes/true) forces ``weights_only=True`` even over
    an explicit ``False``; ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` makes the default ``False``
    (with a ``UserWarning``) but leaves an explicit ``weights_only`` alone; both set raises."""
    weights_only = _resolve_weights_only(weights_only, pickle_module)
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("load: pickle_module is not supported (deepseek uses its own "
                         "unpickler, a subclass of pickle.Unpickler)")
    if map_location is not None and not callable(map_location) and not isinstance(
            map_location, dict):
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
            fh.seek(0)
            if head[:2] == b"PK":
                return _load_zip(fh, path, weights_only)
            return _unpickle(fh, path, weights_only)
    name = getattr(f, "name", "the stream")
    if not isinstance(name, str):
        name = "the stream"
    data = f.read()
    if _looks_like_safetensors(data[:9]):
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as tmp:
            tmp.write(data)
        try:
            return _C.load_file(tmp.name)
        finally:
            os.unlink(tmp.name)
    if data[:2] == b"PK":
        return _load_zip(io.BytesIO(data), name, weights_only)
    return _unpickle(io.BytesIO(data), name, weights_only)


# -------------------------------------------------------------------------------------- save

class _Global:
    """A global written into the pickle under torch's name (``torch._utils._rebuild_tensor_v2``
    ...) without importing torch."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable; never called
        raise TypeError(f"{self.module}.{self.name} is a name written into a checkpoint")


_G_REBUILD = _Global("torch._utils", "_rebuild_tensor_v2")
_G_REBUILD_PARAM = _Global("torch._utils", "_rebuild_parameter")
_G_ORDERED_DICT = _Global("collections", "OrderedDict")
_G_SIZE = _Global("torch", "Size")
_G_DEVICE = _Global("torch", "device")


class _StorageRef:
    __slots__ = ("key", "stype", "numel")

    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel


def _tensor_bytes(t):
    """(bytes as a flat uint8 array, storage class name, numel) of a tensor's values."""
    d = t.detach()
    name = str(d.dtype).split(".")[-1]
    if name == "bfloat16":
        f = d.float().contiguous().numpy()
        a = (np.ascontiguousarray(f).view(np.uint32) >> 16).astype("<u2")
    else:
        a = np.ascontiguousarray(d.contiguous().numpy())
        if name not in _TORCH_DTYPES:
            raise pickle.PicklingError(f"save: tensors of dtype {name} cannot be saved")
        want = np.dtype(_TORCH_DTYPES[name][0])
        if a.dtype != want:
            a = a.astype(want)
    return a.reshape(-1).view(np.uint8), _TORCH_DTYPES[name][1], a.size


class _Pickler(pickle._Pickler):
    """The pure-Python pickler (its ``save_global`` can be overridden) writing tensors as
    torch's ``_rebuild_tensor_v2`` calls over persistent storage references."""

    def __init__(self, fh, protocol):
        super().__init__(fh, protocol)
        self.records = []  # (key, uint8 array)
        self._by_id = {}   # id(tensor) -> (StorageRef, tensor kept alive)

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _Global("torch", obj.stype), obj.key, "cpu", obj.numel)
        return None

    def _storage_of(self, t):
        hit = self._by_id.get(id(t))
        if hit is not None:
            return hit[0]
        raw, stype, numel = _tensor_bytes(t)
        ref = _StorageRef(str(len(self.records)), stype, numel)
        self.records.append((ref.key, raw))
        self._by_id[id(t)] = (ref, t)
        return ref

    def reducer_override(self, obj):
        from . import Size
        from .nn.parameter import Parameter

        if isinstance(obj, _C.Tensor):
            ref = self._storage_of(obj)
            tensor_args = (ref, 0, tuple(obj.shape), _contiguous_strides(obj.shape),
                           False if isinstance(obj, Parameter) else bool(obj.requires_grad),
                           _OrderedDictEmpty())
            if isinstance(obj, Parameter):
                return (_G_REBUILD_PARAM, (_Reduce(_G_REBUILD, tensor_args),
                                           bool(obj.requires_grad), _OrderedDictEmpty()))
            return (_G_REBUILD, tensor_args)
        if isinstance(obj, Size):
            return (_G_SIZE, (tuple(obj),))
        if isinstance(obj, _C.device):
            return (_G_DEVICE, (str(obj),))
        if isinstance(obj, _Reduce):
            return (obj.func, obj.args)
        if isinstance(obj, _OrderedDictEmpty):
            return (_G_ORDERED_DICT, ())
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            hit = self.memo.get(id(obj))
            if hit is not None:
                self.write(self.get(hit[0]))
                return
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
            self.memoize(obj)
            return
        if isinstance(obj, _C.dtype):
            name = str(obj).split(".")[-1]
            if name not in _DTYPE_GLOBALS:
                _DTYPE_GLOBALS[name] = _Global("torch", name)
            return self.save(_DTYPE_GLOBALS[name])
        return super().save(obj, save_persistent_id)


class _Reduce:
    __slots__ = ("func", "args")

    def __init__(self, func, args):
        self.func, self.args = func, args


class _OrderedDictEmpty:
    __slots__ = ()


_DTYPE_GLOBALS = {}


def _contiguous_strides(shape):
    strides, acc = [], 1
    for s in reversed(tuple(shape)):
        strides.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(strides))


_ALIGN = 64


def _write_zip(obj, fh, archive, protocol):
    buf = io.BytesIO()
    p = _Pickler(buf, protocol)
    p.dump(obj)
    records = [("data.pkl", buf.getvalue()), (".format_version", b"1"),
               (".storage_alignment", str(_ALIGN).encode()), ("byteorder", b"little")]
    records += [(f"data/{k}", raw) for k, raw in p.records]
    records += [("version", b"3\n"), (".data/serialization_id", os.urandom(20).hex().encode())]
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rel, data in records:
            name = f"{archive}/{rel}"
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            size = len(data) if isinstance(data, bytes) else data.nbytes
            # Pad the local header's extra field so each record's data starts on a 64-byte
            # boundary, as torch.save does (torch.load(mmap=True) maps the records).
            zip64 = size > zipfile.ZIP64_LIMIT
            start = fh.tell() + 30 + len(name.encode()) + (20 if zip64 else 0) + 4
            pad = (-start) % _ALIGN
            info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            with zf.open(info, "w", force_zip64=zip64) as out:
                out.write(data if isinstance(data, bytes) else memoryview(data))


def save(obj, f, pickle_module=None, pickle_protocol=DEFAULT_PROTOCOL,
         _use_new_zipfile_serialization=True, _disable_byteorder_record=False):
    """Saves ``obj`` to a path or a writable binary file in PyTorch's zip checkpoint format
    (``torch.load`` reads it; with ``weights_only=True`` when ``obj`` holds only tensors,
    parameters, dtypes, sizes and plain containers -- state dicts, optimizer state dicts,
    checkpoint dicts). A path ending in ``.safetensors`` gets a safetensors file (``obj`` must
    be a dict of name -> tensor). Other objects (a whole module, ...) are pickled as
    ``torch.save`` does; reading those back needs ``weights_only=False``."""
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("save: pickle_module is not supported")
    if not _use_new_zipfile_serialization:
        raise ValueError("save: only the zip format (_use_new_zipfile_serialization=True) is "
                         "written")
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        if path.endswith(".safetensors"):
            if not (isinstance(obj, dict) and all(
                    isinstance(k, str) and isinstance(v, _C.Tensor) for k, v in obj.items())):
                raise TypeError(f"save: {path}: a .safetensors file holds a dict of name -> "
                                "tensor; use a .pt path for other objects")
            _C.save_file(dict(obj), path)
            return
        archive = os.path.splitext(os.path.basename(path))[0] or "archive"
        archive = "".join(c if c.isalnum() or c in "_-." else "_" for c in archive) or "archive"
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as fh:
                _write_zip(obj, fh, archive, pickle_protocol)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if getattr(f, "seekable", lambda: False)():
        _write_zip(obj, f, "archive", pickle_protocol)
    else:
        b = io.BytesIO()
        _write_zip(obj, b, "archive", pickle_protocol)
        f.write(b.getvalue())
