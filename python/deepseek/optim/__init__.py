"""``deepseek.optim``: SGD, Adam, AdamW, RMSprop, Adagrad, RAdam, NAdam (the Rust
optimizers, with fused update loops) and Adamax, Adadelta, Rprop, ASGD, Adafactor, Muon, LBFGS (Python, in
``_python.py`` and ``lbfgs.py``) behind PyTorch's interface: ``param_groups`` (a list of dicts you may edit),
``zero_grad``, ``step``, ``add_param_group``, ``state_dict`` / ``load_state_dict``."""

import json
from collections import defaultdict

from .. import _C
from .._grad_mode import enable_grad
from . import lr_scheduler  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "RAdam", "NAdam",
           "Adamax", "Adadelta", "Rprop", "ASGD", "LBFGS", "Adafactor", "Muon", "lr_scheduler"]

_HYPER = ("lr", "weight_decay", "initial_lr", "momentum", "dampening", "nesterov", "betas",
          "eps", "amsgrad", "alpha", "centered", "maximize", "lr_decay",
          "initial_accumulator_value", "momentum_decay", "decoupled_weight_decay")
# Per-parameter state that is one number (a 0-d tensor in PyTorch), not a buffer.
_SCALAR_STATE = ("mu_product",)


class Optimizer:
    """Base of the deepseek optimizers (a thin wrapper over ``deepseek._C.Optimizer``).

    Subclass it like PyTorch's to write an optimizer in Python: call
    ``super().__init__(params, defaults)``, override ``step`` (reading ``self.param_groups``
    and keeping per-parameter state in ``self.state``); ``zero_grad``, ``add_param_group``
    and ``state_dict``/``load_state_dict`` work as in PyTorch."""

    _kind = None

    def __init__(self, params, defaults):
        if isinstance(params, _C.Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups = []
        for g in groups:
            self.param_groups.append(self._make_group(g))
        if self._kind is None:
            # A user-defined optimizer (a subclass overriding step): plain Python state.
            self._c = None
            self._py_state = defaultdict(dict)
            return
        self._c = _C.Optimizer(self._kind, [self._rust_group(g) for g in self.param_groups],
                               {k: v for k, v in self.defaults.items() if v is not None})
        self._pull()

    def _make_group(self, g):
        if not isinstance(g, dict):
            raise TypeError("param groups must be dicts")
        g = dict(g)
        ps = g.get("params")
        if isinstance(ps, _C.Tensor):
            ps = [ps]
        ps = list(ps)
        for p in ps:
            if not isinstance(p, _C.Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        g["params"] = ps
        for k, v in self.defaults.items():
            g.setdefault(k, v)
        return g

    @staticmethod
    def _rust_group(g):
        d = {k: g[k] for k in _HYPER if k in g and g[k] is not None}
        if "betas" in d:
            d["betas"] = tuple(float(b) for b in d["betas"])
        d["params"] = g["params"]
        return d

    def _push(self):
        """Writes the hyper-parameters of ``param_groups`` into the Rust optimizer."""
        if self._c is None:
            return
        for i, g in enumerate(self.param_groups):
            self._c.set_group(i, {k: (tuple(g[k]) if k == "betas" else g[k])
                                  for k in _HYPER if k in g and g[k] is not None})

    def _pull(self):
        """Reads the Rust optimizer's hyper-parameters back into ``param_groups``."""
        if self._c is None:
            return
        for g, h in zip(self.param_groups, self._c.groups()):
            for k, v in h.items():
                g[k] = tuple(v) if k == "betas" else v

    def zero_grad(self, set_to_none=True):
        if set_to_none and self._c is not None:
            self._c.zero_grad()
        elif set_to_none:
            for g in self.param_groups:
                for p in g["params"]:
                    p.grad = None
        else:
            for g in self.param_groups:
                for p in g["params"]:
                    if p.grad is not None:
                        p.grad = p.grad.detach() * 0

    def step(self, closure=None):
        """One update; ``closure`` (re-evaluating the loss) is called first if given."""
        if self._c is None:
            raise NotImplementedError(f"{type(self).__name__} must implement step()")
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._push()
        self._c.step()
        return loss

    def add_param_group(self, param_group):
        g = self._make_group(param_group)
        seen = {id(p) for grp in self.param_groups for p in grp["params"]}
        if any(id(p) in seen for p in g["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        if self._c is not None:
            self._c.add_param_group(self._rust_group(g))
        self.param_groups.append(g)
        self._pull()

    @property
    def state(self):
        """Per-parameter state (``{param: {"step": n, "exp_avg": tensor, ...}}``)."""
        if self._c is None:
            return self._py_state
        sd = self.state_dict()
        out = {}
        idx = 0
        for g in self.param_groups:
            for p in g["params"]:
                if idx in sd["state"]:
                    out[p] = sd["state"][idx]
                idx += 1
        return out

    def state_dict(self):
        """PyTorch's layout: ``{"state": {index: {"step", buffers...}}, "param_groups":
        [{hyper-parameters..., "params": [indices]}]}`` (buffers as tensors)."""
        if self._c is None:
            return self._py_state_dict()
        self._push()
        raw = json.loads(self._c.state_json())
        state, groups, idx = {}, [], 0
        for g in raw["param_groups"]:
            hyper = dict(g["hyper"])
            opts = hyper.pop("options", {}) or {}
            grp = {k: v for k, v in hyper.items() if v is not None}
            grp.update({k: (tuple(v) if k == "betas" else v)
                        for k, v in opts.items() if v is not None})
            ids = []
            for p in g["params"]:
                if p["state"] is not None:
                    st = {"step": _C.tensor(float(p["state"]["step"]))}
                    for name, buf in p["state"]["buffers"].items():
                        st[name] = _C.tensor(buf, dtype=_C.float32).reshape(p["shape"])
                    for name, v in p["state"].get("scalars", {}).items():
                        st[name] = _C.tensor(float(v))
                    state[idx] = st
                ids.append(idx)
                idx += 1
            grp["params"] = ids
            groups.append(grp)
        return {"state": state, "param_groups": groups, "optimizer": raw["optimizer"]}

    def load_state_dict(self, state_dict):
        """Restores a ``state_dict()`` of an optimizer of the same kind over parameters of
        the same shapes (group hyper-parameters included)."""
        if self._c is None:
            return self._py_load_state_dict(state_dict)
        kind = state_dict.get("optimizer", self._c_kind())
        groups = []
        if len(state_dict["param_groups"]) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        opt_keys = ("momentum", "dampening", "nesterov", "betas", "eps", "amsgrad", "alpha",
                    "centered", "maximize", "lr_decay", "initial_accumulator_value",
                    "momentum_decay", "decoupled_weight_decay")
        for sg, g in zip(state_dict["param_groups"], self.param_groups):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
            params = []
            for i, p in zip(sg["params"], g["params"]):
                st = state_dict["state"].get(i, state_dict["state"].get(str(i)))
                if st is None:
                    params.append({"shape": list(p.shape), "state": None})
                    continue
                step = st.get("step", 0)
                step = int(step.item() if isinstance(step, _C.Tensor) else step)
                bufs = {k: [float(x) for x in v.reshape(-1).tolist()] if isinstance(v, _C.Tensor)
                        else list(v) for k, v in st.items()
                        if k != "step" and k not in _SCALAR_STATE}
                scalars = {k: float(v.item() if isinstance(v, _C.Tensor) else v)
                           for k, v in st.items() if k in _SCALAR_STATE}
                params.append({"shape": list(p.shape),
                               "state": {"step": step, "buffers": bufs, "scalars": scalars}})
            hyper = {"lr": sg.get("lr", g.get("lr")),
                     "weight_decay": sg.get("weight_decay", g.get("weight_decay")),
                     "initial_lr": sg.get("initial_lr"),
                     "options": {k: (list(sg[k]) if k == "betas" else sg[k])
                                 for k in opt_keys if k in sg}}
            groups.append({"hyper": hyper, "params": params})
        self._c.load_state_json(json.dumps({"optimizer": kind, "param_groups": groups}))
        self._pull()

    def _py_state_dict(self):
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        state = {index[id(p)]: dict(v) for p, v in self._py_state.items() if id(p) in index}
        groups = []
        for g in self.param_groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = [index[id(p)] for p in g["params"]]
            groups.append(d)
        return {"state": state, "param_groups": groups}

    def _py_load_state_dict(self, state_dict):
        if len(state_dict["param_groups"]) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params = [p for g in self.param_groups for p in g["params"]]
        for sg, g in zip(state_dict["param_groups"], self.param_groups):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
            g.update({k: v for k, v in sg.items() if k != "params"})
        self._py_state = defaultdict(dict)
        for i, st in state_dict["state"].items():
            self._py_state[params[int(i)]] = dict(st)

    def _c_kind(self):
        return json.loads(self._c.state_json())["optimizer"]

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov, weight decay."""

    _kind = "SGD"

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))


class Adam(Optimizer):
    """Adam (L2 weight decay added to the gradient), optionally AMSGrad."""

    _kind = "Adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))


class AdamW(Optimizer):
    """Adam with decoupled weight decay (default 0.01)."""

    _kind = "AdamW"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))


class RMSprop(Optimizer):
    """RMSprop with momentum and the centered variant."""

    _kind = "RMSprop"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))


class Adagrad(Optimizer):
    """Adagrad: each element's step is ``lr / (1 + (t - 1) lr_decay)`` divided by the root of
    its summed squared gradients (``sum`` starts at ``initial_accumulator_value``), as in
    ``torch.optim.Adagrad`` (dense gradients)."""

    _kind = "Adagrad"

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))


class RAdam(Optimizer):
    """Rectified Adam (``torch.optim.RAdam``): SGD with momentum while the variance estimate
    is unreliable (rho_t <= 5), Adam with a rectification factor after. Weight decay is L2
    or, with ``decoupled_weight_decay=True``, AdamW-style."""

    _kind = "RAdam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))


class NAdam(Optimizer):
    """Adam with Nesterov momentum (``torch.optim.NAdam``), momentum schedule
    ``mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay))``. Weight decay is L2 or, with
    ``decoupled_weight_decay=True``, AdamW-style."""

    _kind = "NAdam"

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))


from ._python import Adamax, Adadelta, Rprop, ASGD, Adafactor, Muon  # noqa: E402,F401  (written in Python)
from .lbfgs import LBFGS  # noqa: E402,F401
