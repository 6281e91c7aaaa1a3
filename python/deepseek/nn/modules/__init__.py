"""``deepseek.nn.modules``: PyTorch's module paths (``torch.nn.modules.<file>.<Class>``).

Programs import layers by the file PyTorch defines them in (``torch.nn.modules.dropout.
Dropout``, ``torch.nn.modules.rnn.LSTM``) and list those paths in ``safe_globals``. Each
``deepseek.nn.modules.<file>`` is a module holding the same classes as ``deepseek.nn`` (the
very same objects, so ``isinstance`` checks and pickles agree). A name PyTorch has in that
file but deepseek does not implement raises ``AttributeError`` saying so -- there are no
placeholder classes.
"""

import sys
import types

from .. import layers as _layers, loss as _loss, transformer as _transformer  # noqa: F401
from .. import module as _module

# PyTorch 2.15's torch/nn/modules/<file>.py -> the public names it defines.
_TORCH_FILES = {
    "activation": ["Threshold", "ReLU", "RReLU", "Hardtanh", "ReLU6", "Sigmoid", "Hardsigmoid",
                   "Tanh", "SiLU", "Mish", "Hardswish", "ELU", "CELU", "SELU", "GLU", "GELU",
                   "Hardshrink", "LeakyReLU", "LogSigmoid", "Softplus", "Softshrink",
                   "MultiheadAttention", "PReLU", "Softsign", "Tanhshrink", "Softmin",
                   "Softmax", "Softmax2d", "LogSoftmax"],
    "adaptive": ["AdaptiveLogSoftmaxWithLoss"],
    "batchnorm": ["BatchNorm1d", "LazyBatchNorm1d", "BatchNorm2d", "LazyBatchNorm2d",
                  "BatchNorm3d", "LazyBatchNorm3d", "SyncBatchNorm"],
    "channelshuffle": ["ChannelShuffle"],
    "container": ["Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
                  "ParameterDict"],
    "conv": ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
             "ConvTranspose3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
             "LazyConvTranspose2d", "LazyConvTranspose3d"],
    "distance": ["PairwiseDistance", "CosineSimilarity"],
    "dropout": ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                "FeatureAlphaDropout"],
    "flatten": ["Flatten", "Unflatten"],
    "fold": ["Fold", "Unfold"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d",
                     "LazyInstanceNorm2d", "LazyInstanceNorm3d"],
    "linear": ["Bilinear", "Identity", "LazyLinear", "Linear",
               "NonDynamicallyQuantizableLinear"],
    "loss": ["L1Loss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss", "GaussianNLLLoss", "KLDivLoss",
             "MSELoss", "BCELoss", "BCEWithLogitsLoss", "HingeEmbeddingLoss",
             "MultiLabelMarginLoss", "SmoothL1Loss", "HuberLoss", "SoftMarginLoss",
             "CrossEntropyLoss", "LinearCrossEntropyLoss", "MultiLabelSoftMarginLoss",
             "CosineEmbeddingLoss", "MarginRankingLoss", "MultiMarginLoss", "TripletMarginLoss",
             "TripletMarginWithDistanceLoss", "CTCLoss"],
    "module": ["Module", "register_module_forward_pre_hook", "register_module_forward_hook",
               "register_module_full_backward_pre_hook", "register_module_backward_hook",
               "register_module_full_backward_hook",
               "register_module_buffer_registration_hook",
               "register_module_module_registration_hook",
               "register_module_parameter_registration_hook"],
    "normalization": ["LocalResponseNorm", "CrossMapLRN2d", "LayerNorm", "GroupNorm", "RMSNorm"],
    "padding": ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
                "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
                "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
                "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"],
    "pixelshuffle": ["PixelShuffle", "PixelUnshuffle"],
    "pooling": ["MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
                "MaxUnpool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "FractionalMaxPool2d",
                "FractionalMaxPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d",
                "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AdaptiveAvgPool1d",
                "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"],
    "rnn": ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"],
    "sparse": ["Embedding", "EmbeddingBag"],
    "transformer": ["Transformer", "TransformerEncoder", "TransformerDecoder",
                    "TransformerEncoderLayer", "TransformerDecoderLayer"],
    "upsampling": ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"],
}
# deepseek's names for PyTorch's base classes.
_ALIASES = {"RNNBase": "_RNNBase", "RNNCellBase": "_RNNCellBase"}


def _missing(modname, torch_names):
    def __getattr__(name):
        if name in torch_names:
            raise AttributeError(
                f"deepseek does not implement torch.nn.modules.{modname.rsplit('.', 1)[-1]}."
                f"{name} yet (module {modname!r} has no attribute {name!r})")
        raise AttributeError(f"module {modname!r} has no attribute {name!r}")

    return __getattr__


def _source(name):
    nn_ns = sys.modules[__name__.rsplit(".", 1)[0]].__dict__
    if name in nn_ns:
        return nn_ns[name]
    from .. import recurrent as _recurrent, dropout as _dropout

    for m in (_module, _layers, _loss, _transformer, _recurrent, _dropout):
        v = getattr(m, _ALIASES.get(name, name), None)
        if v is not None:
            return v
    return None


__all__ = []
for _file, _names in _TORCH_FILES.items():
    _full = f"{__name__}.{_file}"
    _m = types.ModuleType(_full, f"PyTorch's ``torch.nn.modules.{_file}``: the deepseek "
                          "classes PyTorch defines in that file.")
    _have = []
    for _n in _names:
        _v = _source(_n)
        if _v is not None:
            setattr(_m, _n, _v)
            _have.append(_n)
    _m.__all__ = _have
    _m.__getattr__ = _missing(_full, set(_names))
    sys.modules[_full] = _m
    globals()[_file] = _m
    for _n in _have:
        globals()[_n] = getattr(_m, _n)
        __all__.append(_n)
del _file, _names, _full, _m, _have, _n
