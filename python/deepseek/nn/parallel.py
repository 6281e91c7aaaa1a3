"""``deepseek.nn.parallel``: ``torch.nn.parallel``'s wrappers.

``DistributedDataParallel`` is ``deepseek.distributed.DistributedDataParallel`` (gradients
averaged over MPI ranks). ``DataParallel`` splits work over CUDA devices in PyTorch; with no
GPU, PyTorch's ``DataParallel`` runs the wrapped module as it is, and so does deepseek's
(asking for ``device_ids`` raises, as there are no devices to use).
"""

from .module import Module

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]


class DataParallel(Module):
    """Wraps ``module`` (kept as ``self.module``, so state dict keys get the ``module.``
    prefix as in PyTorch) and calls it on the inputs. deepseek runs on the CPU only, where
    PyTorch's ``DataParallel`` does the same."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if device_ids:
            raise RuntimeError(f"DataParallel: device_ids={device_ids!r}, but deepseek has no "
                               "CUDA devices")
        self.module = module
        self.device_ids = []
        self.output_device = None
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0,
                  module_kwargs=None):
    """``module(*inputs)`` (PyTorch's functional ``data_parallel`` without CUDA devices)."""
    if device_ids:
        raise RuntimeError(f"data_parallel: device_ids={device_ids!r}, but deepseek has no "
                           "CUDA devices")
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    return module(*inputs, **(module_kwargs or {}))


def __getattr__(name):
    if name == "DistributedDataParallel":
        from ..distributed.parallel import DistributedDataParallel

        return DistributedDataParallel
    raise AttributeError(f"module 'deepseek.nn.parallel' has no attribute {name!r}")
