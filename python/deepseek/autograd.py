"""``deepseek.autograd``: ``grad`` and the grad-mode switches."""

from . import _C
from ._grad_mode import no_grad, enable_grad, set_grad_enabled  # noqa: F401


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, only_inputs=True):
    """Gradients of ``outputs`` with respect to ``inputs`` (a tuple), without touching
    ``.grad``. ``create_graph=True`` records the backward pass for higher-order gradients."""
    return _C.autograd_grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                            allow_unused)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Backward from one or more tensors, accumulating into the leaves' ``.grad``."""
    if isinstance(tensors, _C.Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors] if grad_tensors is not None else [None]
    elif grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    n = len(tensors)
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        keep = True if i + 1 < n else retain_graph
        t.backward(g, retain_graph=keep, create_graph=create_graph)
