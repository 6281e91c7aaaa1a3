"""Eager-mode static quantization and quantization-aware training, PyTorch's workflow
(``torch.ao.quantization``):

    model.eval()
    model.qconfig = get_default_qconfig("x86")
    model = fuse_modules(model, [["conv", "bn", "relu"], ["fc1", "relu1"]])
    prepared = prepare(model)          # observers on every quantizable layer's output
    for x in calibration_batches:      # calibration: observe the value ranges
        prepared(x)
    qmodel = convert(prepared)         # int8 layers with the observed scales / zero points

The model marks where quantization starts and ends with ``QuantStub()`` / ``DeQuantStub()``.
For QAT: ``fuse_modules_qat`` (keeps batch norms), ``prepare_qat`` (fake-quantized weights and
activations), train, ``convert``.
"""

import copy
from collections import namedtuple

from ..nn.module import Module
from .fake_quantize import FakeQuantize, default_fake_quant, \
    default_per_channel_weight_fake_quant, default_weight_fake_quant
from .observer import (HistogramObserver, MovingAverageMinMaxObserver,
                       default_per_channel_weight_observer, default_weight_observer,
                       default_observer)

__all__ = ["QConfig", "QuantStub", "DeQuantStub", "QuantWrapper", "get_default_qconfig",
           "get_default_qat_qconfig", "default_qconfig", "default_qat_qconfig",
           "propagate_qconfig_", "prepare", "prepare_qat", "convert", "quantize", "quantize_qat",
           "fuse_modules", "fuse_modules_qat", "get_default_static_quant_module_mappings",
           "get_default_qat_module_mappings"]

QConfig = namedtuple("QConfig", ["activation", "weight"])
QConfig.__doc__ = """How to quantize a layer: ``activation`` and ``weight`` are observer (or
FakeQuantize) constructors, e.g. ``HistogramObserver.with_args(reduce_range=True)``."""

default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)

_BACKENDS = ("x86", "fbgemm", "qnnpack", "onednn")


def _check_backend(backend):
    if backend not in _BACKENDS:
        raise ValueError(f"backend {backend!r} is not supported; choose one of {list(_BACKENDS)}")


def get_default_qconfig(backend="x86", version=0):
    """PyTorch's default post-training qconfig: a histogram observer for activations (7-bit
    ``reduce_range`` on x86/fbgemm) and symmetric int8 weights per output channel (per tensor
    for qnnpack)."""
    _check_backend(backend)
    if version != 0:
        raise ValueError(f"get_default_qconfig: version {version} is not supported (only 0)")
    if backend == "qnnpack":
        return QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                       weight=default_weight_observer)
    return QConfig(activation=HistogramObserver.with_args(reduce_range=backend != "onednn"),
                   weight=default_per_channel_weight_observer)


def get_default_qat_qconfig(backend="x86", version=1):
    """PyTorch's default QAT qconfig: moving-average min/max fake quantization of activations
    (``reduce_range`` on x86/fbgemm) and per-channel symmetric int8 weights (per tensor for
    qnnpack)."""
    _check_backend(backend)
    if version not in (0, 1, None):
        raise ValueError(f"get_default_qat_qconfig: version {version} is not supported")
    act = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
                                 quant_max=255, reduce_range=backend in ("x86", "fbgemm"))
    weight = (default_weight_fake_quant if backend == "qnnpack"
              else default_per_channel_weight_fake_quant)
    return QConfig(activation=act, weight=weight)


class QuantStub(Module):
    """Marks where quantization starts: identity before ``convert``, an observer after
    ``prepare``, then a ``nn.quantized.Quantize`` (float → quint8)."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class DeQuantStub(Module):
    """Marks where quantization ends: identity before ``convert``, then a
    ``nn.quantized.DeQuantize`` (quint8 → float)."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantWrapper(Module):
    """``QuantStub`` → ``module`` → ``DeQuantStub``."""

    def __init__(self, module):
        super().__init__()
        self.quant = QuantStub(getattr(module, "qconfig", None))
        self.dequant = DeQuantStub(getattr(module, "qconfig", None))
        self.module = module

    def forward(self, x):
        return self.dequant(self.module(self.quant(x)))


# ------------------------------------------------------------------ mappings

def _nn():
    from .. import nn
    from ..nn import intrinsic as nni, qat as nnqat, quantized as nnq
    from ..nn.intrinsic import qat as nniqat, quantized as nniq
    return nn, nni, nnqat, nniqat, nnq, nniq


def get_default_static_quant_module_mappings():
    """Float / fused / QAT layer type → its quantized type."""
    nn, nni, nnqat, nniqat, nnq, nniq = _nn()
    return {
        QuantStub: nnq.Quantize, DeQuantStub: nnq.DeQuantize,
        nn.Linear: nnq.Linear, nn.Conv2d: nnq.Conv2d,
        nni.LinearReLU: nniq.LinearReLU, nni.ConvReLU2d: nniq.ConvReLU2d,
        nnqat.Linear: nnq.Linear, nnqat.Conv2d: nnq.Conv2d,
        nniqat.LinearReLU: nniq.LinearReLU, nniqat.ConvReLU2d: nniq.ConvReLU2d,
        nniqat.ConvBn2d: nnq.Conv2d, nniqat.ConvBnReLU2d: nniq.ConvReLU2d,
    }


def get_default_qat_module_mappings():
    """Float / fused layer type → its quantization-aware-training type."""
    nn, nni, nnqat, nniqat, _, _ = _nn()
    return {
        nn.Linear: nnqat.Linear, nn.Conv2d: nnqat.Conv2d,
        nni.LinearReLU: nniqat.LinearReLU, nni.ConvReLU2d: nniqat.ConvReLU2d,
        nni.ConvBn2d: nniqat.ConvBn2d, nni.ConvBnReLU2d: nniqat.ConvBnReLU2d,
    }


def _same_scale_types():
    nn = _nn()[0]
    return (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout)


# ------------------------------------------------------------------ prepare / convert

def propagate_qconfig_(module, qconfig_dict=None):
    """Sets ``qconfig`` on every submodule: its own if it has one (None excludes it and its
    children), else its parent's. ``qconfig_dict`` maps types or qualified names to qconfigs."""
    qconfig_dict = qconfig_dict or {}

    def walk(mod, name, parent_qc):
        qc = parent_qc
        if type(mod) in qconfig_dict:
            qc = qconfig_dict[type(mod)]
        if name in qconfig_dict:
            qc = qconfig_dict[name]
        if "qconfig" in mod.__dict__:
            qc = mod.__dict__["qconfig"]
        mod.qconfig = qc
        for cname, child in mod._modules.items():
            if child is not None:
                walk(child, f"{name}.{cname}" if name else cname, qc)

    walk(module, "", qconfig_dict.get("", getattr(module, "qconfig", None)))


def _observer_hook(mod, args, output):
    app = mod.activation_post_process
    try:
        return app(output)
    except (ValueError, RuntimeError) as e:
        name = app.__dict__.get("_layer_name", "?")
        raise type(e)(f"layer {name} ({type(mod).__name__}): {e}") from None


def _observed_types():
    return set(get_default_static_quant_module_mappings()) - {DeQuantStub}


def _add_observers(module, observed, prefix=""):
    for cname, child in module._modules.items():
        if child is None:
            continue
        name = f"{prefix}.{cname}" if prefix else cname
        if type(child) in observed:
            if getattr(child, "qconfig", None) is not None and \
                    "activation_post_process" not in child._modules:
                child.activation_post_process = child.qconfig.activation()
                child.activation_post_process.__dict__["_layer_name"] = name
                child.register_forward_hook(_observer_hook)
        else:
            _add_observers(child, observed, name)


def prepare(model, inplace=False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    """Attaches an observer (``qconfig.activation()``) to the output of every quantizable layer
    (QuantStub, Linear, Conv2d, fused and QAT layers) that has a qconfig; run calibration data
    through the result, then ``convert`` it. Errors when no layer has a qconfig."""
    if not isinstance(model, Module):
        raise TypeError(f"prepare expects a deepseek.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) is not None for m in model.modules()):
        raise ValueError("prepare: no layer has a qconfig; set model.qconfig = "
                         "deepseek.quantization.get_default_qconfig('x86') first")
    observed = _observed_types()
    if type(model) in observed and model.qconfig is not None:
        raise ValueError("prepare: wrap a bare layer in a model with QuantStub/DeQuantStub "
                         "(QuantWrapper) before quantizing it")
    _add_observers(model, observed)
    return model


def _swap(module, mapping, same_scale, prefix):
    for cname, child in list(module._modules.items()):
        if child is None:
            continue
        name = f"{prefix}.{cname}" if prefix else cname
        target = mapping.get(type(child))
        if target is not None and getattr(child, "qconfig", None) is not None:
            new = target.from_float(child, name) if _takes_name(target) else \
                target.from_float(child)
            module._modules[cname] = new
        elif same_scale and isinstance(child, same_scale) and \
                getattr(child, "qconfig", None) is not None:
            from ..nn.quantized import SameScale
            module._modules[cname] = SameScale(child)
        else:
            _swap(child, mapping, same_scale, name)


def _takes_name(cls):
    import inspect
    try:
        return "name" in inspect.signature(cls.from_float).parameters
    except (TypeError, ValueError):
        return False


def convert(module, mapping=None, inplace=False, remove_qconfig=True, is_reference=False,
            convert_custom_config_dict=None, use_precomputed_fake_quant=False):
    """Replaces every observed (or QAT) layer with its int8 form, using the scales and zero
    points its observers chose; ReLU, pooling, flatten and dropout inside the quantized part
    run on quantized tensors (``nn.quantized.SameScale``). Errors name the layer whose
    observer saw no calibration data, observed only zeros, or whose weights hold NaN or are
    all zero."""
    if is_reference:
        raise ValueError("convert: reference quantized models are not supported")
    if not isinstance(module, Module):
        raise TypeError(f"convert expects a deepseek.nn.Module, got {type(module).__name__}")
    if not inplace:
        module = copy.deepcopy(module)
    mapping = get_default_static_quant_module_mappings() if mapping is None else mapping
    _swap(module, mapping, _same_scale_types(), "")
    if remove_qconfig:
        for m in module.modules():
            m.__dict__.pop("qconfig", None)
    module.eval()
    return module


def prepare_qat(model, mapping=None, inplace=False):
    """Swaps Linear/Conv2d and fused layers for their quantization-aware-training forms
    (fake-quantized weights) and attaches fake quantizers to their outputs; train the result,
    then ``convert`` it. The model should be in training mode."""
    if not isinstance(model, Module):
        raise TypeError(f"prepare_qat expects a deepseek.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(m, "qconfig", None) is not None for m in model.modules()):
        raise ValueError("prepare_qat: no layer has a qconfig; set model.qconfig = "
                         "deepseek.quantization.get_default_qat_qconfig('x86') first")
    mapping = get_default_qat_module_mappings() if mapping is None else mapping
    _swap(model, mapping, (), "")
    return prepare(model, inplace=True)


def quantize(model, run_fn, run_args, mapping=None, inplace=False):
    """``prepare``, ``run_fn(prepared, *run_args)`` (calibration), ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    return convert(model, mapping, inplace=True)


def quantize_qat(model, run_fn, run_args, inplace=False):
    """``prepare_qat``, ``run_fn(prepared, *run_args)`` (training), ``convert``."""
    if not inplace:
        model = copy.deepcopy(model)
    model.train()
    prepare_qat(model, inplace=True)
    run_fn(model, *run_args)
    return convert(model, inplace=True)


# ------------------------------------------------------------------ fusion

def _get(model, name):
    mod = model
    for part in name.split("."):
        mod = mod[int(part)] if part.isdigit() and not hasattr(mod, part) else getattr(mod, part)
    return mod


def _set(model, name, new):
    parent_name, _, last = name.rpartition(".")
    parent = _get(model, parent_name) if parent_name else model
    if last not in parent._modules:
        raise ValueError(f"fuse_modules: no submodule named {name!r}")
    parent._modules[last] = new


def fold_bn_into_conv(conv, bn):
    """A new Conv2d (or Linear, with BatchNorm1d) whose weights include the batch norm's
    running statistics: ``w' = w · γ/√(var+ε)``, ``b' = (b − mean) · γ/√(var+ε) + β``."""
    from .. import no_grad
    if bn.running_var is None:
        raise ValueError("fuse_modules: the batch norm has no running statistics "
                         "(track_running_stats=False) to fold")
    fused = copy.deepcopy(conv)
    with no_grad():
        sf = (bn.running_var + bn.eps).rsqrt()
        if bn.weight is not None:
            sf = sf * bn.weight
        shape = [-1] + [1] * (conv.weight.dim() - 1)
        b = conv.bias if conv.bias is not None else bn.running_mean * 0
        beta = bn.bias if bn.bias is not None else bn.running_mean * 0
        from ..nn import Parameter
        fused.weight = Parameter(conv.weight * sf.reshape(shape))
        fused.bias = Parameter((b - bn.running_mean) * sf + beta)
    return fused


def _fuse_group(mods, qat):
    nn, nni, _, _, _, _ = _nn()
    types = tuple(type(m) for m in mods)
    conv, lin, bn2, bn1, relu = nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU
    if types == (conv, bn2):
        return nni.ConvBn2d(*mods) if qat else fold_bn_into_conv(*mods)
    if types == (conv, bn2, relu):
        return nni.ConvBnReLU2d(*mods) if qat else nni.ConvReLU2d(fold_bn_into_conv(*mods[:2]),
                                                                  mods[2])
    if types == (conv, relu):
        return nni.ConvReLU2d(*mods)
    if types == (lin, relu):
        return nni.LinearReLU(*mods)
    if types == (lin, bn1) and not qat:
        return fold_bn_into_conv(*mods)
    raise ValueError("fuse_modules: cannot fuse " + ", ".join(t.__name__ for t in types)
                     + " (supported: Conv2d+BatchNorm2d[+ReLU], Conv2d+ReLU, Linear+ReLU, "
                     "Linear+BatchNorm1d)")


def _fuse(model, modules_to_fuse, inplace, qat):
    if not isinstance(model, Module):
        raise TypeError(f"fuse_modules expects a deepseek.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    groups = modules_to_fuse
    if groups and isinstance(groups[0], str):
        groups = [groups]
    for group in groups:
        if len(group) < 2:
            raise ValueError(f"fuse_modules: a group needs at least two modules, got {group}")
        try:
            mods = [_get(model, n) for n in group]
        except (AttributeError, IndexError, KeyError):
            raise ValueError(f"fuse_modules: no submodule named in {group}") from None
        if not qat and any(m.training for m in mods if hasattr(m, "running_var")):
            raise ValueError("fuse_modules folds batch norms with their running statistics: "
                             "call model.eval() first (use fuse_modules_qat for training)")
        fused = _fuse_group(mods, qat)
        _set(model, group[0], fused)
        for n in group[1:]:
            _set(model, n, _nn()[0].Identity())
    return model


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=None,
                 fuse_custom_config_dict=None):
    """Fuses each group of submodule names (``[["conv", "bn", "relu"], ["fc", "relu2"]]``)
    for inference: Conv2d+BatchNorm2d[+ReLU] (the batch norm folded into the conv),
    Conv2d+ReLU, Linear+ReLU, Linear+BatchNorm1d. The first name gets the fused module, the
    others become ``nn.Identity``. The model must be in eval mode."""
    return _fuse(model, modules_to_fuse, inplace, qat=False)


def fuse_modules_qat(model, modules_to_fuse, inplace=False, fuser_func=None,
                     fuse_custom_config_dict=None):
    """``fuse_modules`` for quantization-aware training: batch norms stay (``ConvBn2d``,
    ``ConvBnReLU2d``) and are folded into the fake-quantized weights while training."""
    return _fuse(model, modules_to_fuse, inplace, qat=True)
