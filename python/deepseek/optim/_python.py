"""Optimizers written in Python over tensor ops (the Rust core has no fused loop for them):
``Adamax``, ``Adadelta``, ``Rprop`` and ``ASGD``, with PyTorch's hyper-parameters,
defaults, update rules (single-tensor form) and per-parameter state names, so their
``state_dict`` reads like PyTorch's. Like any Python-defined optimizer they are driven by
the Python schedulers (``LambdaLR``, ``ExponentialLR``, ...), not the Rust ones."""

from .. import _C
from .._grad_mode import enable_grad, no_grad

__all__ = ["Adamax", "Adadelta", "Rprop", "ASGD"]


def _check(name, value, cond, msg=None):
    if not cond:
        raise ValueError(msg or f"Invalid {name}: {value}")


def _base():
    from . import Optimizer

    return Optimizer


class _PyOptimizer:
    """Mixin: ``step(closure)`` runs ``_update(group, p, grad, state)`` for every parameter
    with a gradient, under ``no_grad``."""

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad
                    if group.get("maximize"):
                        grad = -grad
                    self._update(group, p, grad, self.state[p])
        return loss


def _scalar(v):
    return _C.tensor(float(v))


class Adamax(_PyOptimizer, _base()):
    """Adam with the infinity norm: ``u_t = max(beta2 u_{t-1}, |g| + eps)``, step
    ``lr / (1 - beta1^t) * m_t / u_t``."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check("learning rate", lr, lr >= 0)
        _check("epsilon value", eps, eps >= 0)
        _check("beta parameter at index 0", betas[0], 0.0 <= betas[0] < 1.0)
        _check("beta parameter at index 1", betas[1], 0.0 <= betas[1] < 1.0)
        _check("weight_decay value", weight_decay, weight_decay >= 0)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update(self, group, p, grad, st):
        b1, b2 = group["betas"]
        if not st:
            st["step"] = _scalar(0)
            st["exp_avg"] = _C.zeros_like(p)
            st["exp_inf"] = _C.zeros_like(p)
        st["step"] = st["step"] + 1
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        st["exp_avg"] = st["exp_avg"] + (grad - st["exp_avg"]) * (1 - b1)
        st["exp_inf"] = (st["exp_inf"] * b2).maximum(grad.abs() + group["eps"])
        clr = group["lr"] / (1 - b1 ** float(st["step"].item()))
        p.sub_(st["exp_avg"] / st["exp_inf"] * clr)


class Adadelta(_PyOptimizer, _base()):
    """Adadelta: running averages of squared gradients and squared updates; the update is
    ``sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g`` scaled by ``lr``."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check("learning rate", lr, lr >= 0)
        _check("rho value", rho, 0.0 <= rho <= 1.0)
        _check("epsilon value", eps, eps >= 0)
        _check("weight_decay value", weight_decay, weight_decay >= 0)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _update(self, group, p, grad, st):
        rho, eps = group["rho"], group["eps"]
        if not st:
            st["step"] = _scalar(0)
            st["square_avg"] = _C.zeros_like(p)
            st["acc_delta"] = _C.zeros_like(p)
        st["step"] = st["step"] + 1
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        st["square_avg"] = st["square_avg"] * rho + grad * grad * (1 - rho)
        delta = (st["acc_delta"] + eps).sqrt() / (st["square_avg"] + eps).sqrt() * grad
        st["acc_delta"] = st["acc_delta"] * rho + delta * delta * (1 - rho)
        p.sub_(delta * group["lr"])


class Rprop(_PyOptimizer, _base()):
    """Resilient backpropagation: per-element step sizes grow by ``etas[1]`` while the
    gradient keeps its sign and shrink by ``etas[0]`` when it flips (that step is then
    skipped), clamped to ``step_sizes``; the update is ``-sign(g) * step``."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check("learning rate", lr, lr >= 0)
        _check("eta values", etas, 0.0 < etas[0] < 1.0 < etas[1],
               f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                                      maximize=maximize))

    def _update(self, group, p, grad, st):
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        if not st:
            st["step"] = _scalar(0)
            st["prev"] = _C.zeros_like(p)
            st["step_size"] = _C.full_like(p, float(group["lr"]))
        st["step"] = st["step"] + 1
        s = (grad * st["prev"]).sign()
        factor = _C.where(s > 0, s * 0 + etaplus, _C.where(s < 0, s * 0 + etaminus, s * 0 + 1))
        st["step_size"] = (st["step_size"] * factor).clamp(lo, hi)
        grad = _C.where(s < 0, grad * 0, grad)
        p.sub_(grad.sign() * st["step_size"])
        st["prev"] = grad.clone()


class ASGD(_PyOptimizer, _base()):
    """Averaged SGD: ``p <- p (1 - lambd eta) - eta g`` with ``eta_t = lr / (1 + lambd lr
    t)^alpha``; ``ax`` holds the running average of the iterates from step ``t0`` on."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        _check("learning rate", lr, lr >= 0)
        _check("weight_decay value", weight_decay, weight_decay >= 0)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update(self, group, p, grad, st):
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        if not st:
            st["step"] = _scalar(0)
            st["eta"] = _scalar(lr)
            st["mu"] = _scalar(1)
            st["ax"] = _C.zeros_like(p)
        st["step"] = st["step"] + 1
        step = float(st["step"].item())
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        eta, mu = float(st["eta"].item()), float(st["mu"].item())
        p.mul_(1 - lambd * eta)
        p.sub_(grad * eta)
        if mu != 1:
            st["ax"] = st["ax"] + (p - st["ax"]) * mu
        else:
            st["ax"] = p.clone()
        st["eta"] = _scalar(lr / ((1 + lambd * lr * step) ** alpha))
        st["mu"] = _scalar(1 / max(1, step - t0))


_EPS = {"float32": 1.1920928955078125e-07, "float64": 2.220446049250313e-16,
        "float16": 0.0009765625, "bfloat16": 0.0078125}


class Adafactor(_PyOptimizer, _base()):
    """Adafactor (``torch.optim.Adafactor``): second moments kept as row and column
    factors for matrices (a full vector otherwise), decay ``1 - beta2_t = t^beta2_decay``,
    relative step ``min(lr, 1/sqrt(t))`` scaled by the parameter's RMS, update clipping by
    ``d``, decoupled weight decay."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        _check("lr", lr, 0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        _check("beta2_decay", beta2_decay, 0.0 >= beta2_decay,
               f"beta2_decay should be <= 0 but is: {beta2_decay}")
        _check("eps", eps, eps[0] is None or 0.0 <= eps[0],
               f"epsilon1 should be >= 0 but is: {eps[0]}")
        _check("eps", eps, 0.0 <= eps[1], f"epsilon2 should be >= 0 but is: {eps[1]}")
        _check("d", d, 1.0 <= d, f"Clipping threshold d should be >= 1 but is: {d}")
        _check("weight_decay", weight_decay, 0.0 <= weight_decay,
               f"weight_decay should be >= 0 but is: {weight_decay}")
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, maximize=maximize))

    def _update(self, group, p, grad, st):
        if not st:
            st["step"] = _scalar(0)
            if grad.dim() > 1:
                st["row_var"] = _C.zeros(*(list(grad.shape[:-1]) + [1]), dtype=grad.dtype)
                st["col_var"] = _C.zeros(*(list(grad.shape[:-2]) + [1, grad.shape[-1]]),
                                         dtype=grad.dtype)
            else:
                st["variance"] = _C.zeros_like(grad)
        lr, d, wd = float(group["lr"]), group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = _EPS[str(p.dtype).split(".")[-1]]
        st["step"] = st["step"] + 1
        step = float(st["step"].item())
        one_minus_beta2_t = step ** group["beta2_decay"]
        rho_t = min(lr, 1 / step ** 0.5)
        alpha = max(eps2, float(p.norm(2).item()) / p.numel() ** 0.5) * rho_t
        if wd != 0:
            p.mul_(1 - lr * wd)
        if grad.dim() > 1:
            row_mean = (grad * grad).sum(-1, keepdim=True) / grad.shape[-1]
            st["row_var"] = st["row_var"] + (row_mean - st["row_var"]) * one_minus_beta2_t
            col_mean = (grad * grad).sum(-2, keepdim=True) / grad.shape[-2]
            st["col_var"] = st["col_var"] + (col_mean - st["col_var"]) * one_minus_beta2_t
            var_estimate = st["row_var"].matmul(st["col_var"])
            var_estimate = var_estimate / st["row_var"].mean(-2, keepdim=True).clamp(min=eps1)
        else:
            st["variance"] = st["variance"] + (grad * grad - st["variance"]) * one_minus_beta2_t
            var_estimate = st["variance"]
        update = var_estimate.clamp(min=eps1 * eps1).rsqrt() * grad
        denom = max(1.0, float(update.norm(2).item()) / (update.numel() ** 0.5 * d))
        p.sub_(update * (alpha / denom))


__all__ += ["Adafactor"]


def _zeropower_via_newtonschulz(grad, coeffs, steps, eps):
    """Approximate orthogonalisation ``U V^T`` of a matrix by the quintic Newton-Schulz
    iteration, in bfloat16 as PyTorch's Muon does."""
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.dim() != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coeffs) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coeffs
    x = grad.to(_C.bfloat16)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.t()
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x.matmul(x.t())
        update = gram * b + gram.matmul(gram) * c
        x = x * a + update.matmul(x)
    return x.t() if tall else x


class Muon(_PyOptimizer, _base()):
    """Muon (``torch.optim.Muon``) for 2-D parameters: SGD momentum (Nesterov by default)
    whose update is orthogonalised by Newton-Schulz iterations, the learning rate scaled by
    the matrix shape (``adjust_lr_fn``), decoupled weight decay."""

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5,
                 adjust_lr_fn=None):
        _check("lr", lr, 0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        _check("momentum", momentum, 0.0 <= momentum,
               f"momentum should be >= 0 but is: {momentum}")
        _check("weight_decay", weight_decay, 0.0 <= weight_decay,
               f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn not in (None, "original", "match_rms_adamw", "spectral_unclamped"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      nesterov=nesterov, ns_coefficients=tuple(ns_coefficients),
                                      eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn))
        for g in self.param_groups:
            for p in g["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a "
                                     f"parameter with size: {tuple(p.shape)}")

    def _update(self, group, p, grad, st):
        import math

        m = group["momentum"]
        if "momentum_buffer" not in st:
            st["momentum_buffer"] = _C.zeros_like(grad)
        buf = st["momentum_buffer"] + (grad - st["momentum_buffer"]) * (1 - m)
        st["momentum_buffer"] = buf
        update = grad + (buf - grad) * m if group["nesterov"] else buf
        update = _zeropower_via_newtonschulz(update, group["ns_coefficients"],
                                             group["ns_steps"], group["eps"])
        A, B = p.shape[0], p.shape[1]
        fn = group["adjust_lr_fn"]
        if fn in (None, "original"):
            ratio = math.sqrt(max(1, A / B))
        elif fn == "match_rms_adamw":
            ratio = 0.2 * math.sqrt(max(A, B))
        else:
            ratio = math.sqrt(A / B)
        lr = float(group["lr"])
        p.mul_(1 - lr * group["weight_decay"])
        p.sub_(update.to(p.dtype) * (lr * ratio))


__all__ += ["Muon"]
