"""``deepseek.autograd``: ``grad`` and the grad-mode switches."""

from . import _C
from ._grad_mode import no_grad, enable_grad, set_grad_enabled  # noqa: F401
from . import _C as _C  # noqa: E402


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


class FunctionCtx:
    """The ``ctx`` of a custom ``Function``: ``save_for_backward`` / ``saved_tensors``,
    ``needs_input_grad``, and any attributes ``forward`` sets."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        self._non_diff = {id(t) for t in tensors}

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self._materialize = value


class Function:
    """Custom differentiable operations, as in PyTorch::

        class Exp(deepseek.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad):
                (y,) = ctx.saved_tensors
                return grad * y

        y = Exp.apply(x)

    ``forward`` runs without recording; the outputs are tied to the inputs in the graph,
    and during backward ``backward(ctx, *grad_outputs)`` supplies the input gradients
    (through tensor hooks of deepseek's engine). Double backward through a custom Function
    is not supported."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function must implement backward")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, _C.Tensor) and a.requires_grad for a in args)
        ctx.saved_tensors = ()
        with no_grad():
            outputs = cls.forward(ctx, *args)
        if not (_C.is_grad_enabled() and any(ctx.needs_input_grad)):
            return outputs
        single = isinstance(outputs, _C.Tensor)
        outs = [outputs] if single else list(outputs)
        inputs = [(i, a) for i, a in enumerate(args) if ctx.needs_input_grad[i]]
        anchors = [a * 1 for _, a in inputs]  # non-leaf stand-ins whose gradients we replace
        zero = None
        for anc in anchors:
            z = (anc.reshape(-1)[:1] * 0).sum()
            zero = z if zero is None else zero + z
        non_diff = getattr(ctx, "_non_diff", set())
        grads = [None] * len(outs)
        state = {"res": None, "left": len(anchors)}
        tied = []
        for j, o in enumerate(outs):
            if isinstance(o, _C.Tensor) and o.is_floating_point() and id(o) not in non_diff:
                t = o.detach() + zero.to(o.dtype)

                def keep(g, j=j):
                    grads[j] = g

                t.register_hook(keep)
                tied.append(t)
            else:
                tied.append(o)

        def input_grad(g, k):
            if state["res"] is None:
                gs = [grads[j] if grads[j] is not None
                      else (_C.zeros_like(o) if isinstance(o, _C.Tensor) else None)
                      for j, o in enumerate(outs)]
                res = cls.backward(ctx, *gs)
                res = res if isinstance(res, tuple) else (res,)
                if len(res) != len(args):
                    raise RuntimeError(f"{cls.__name__}.backward returned {len(res)} gradients, "
                                       f"expected {len(args)} (one per forward input)")
                state["res"] = res
            r = state["res"][inputs[k][0]]
            state["left"] -= 1
            if state["left"] == 0:  # ready for another backward (retain_graph)
                state["res"], state["left"] = None, len(anchors)
                for j in range(len(grads)):
                    grads[j] = None
            if r is None:
                return g * 0
            if tuple(r.shape) != tuple(g.shape):
                raise RuntimeError(f"{cls.__name__}.backward returned a gradient of shape "
                                   f"{tuple(r.shape)} for an input of shape {tuple(g.shape)}")
            return r

        for k, anc in enumerate(anchors):
            anc.register_hook(lambda g, k=k: input_grad(g, k))
        # The anchors stand for the inputs: rebuild the ties from them.
        return tied[0] if single else tuple(tied)
