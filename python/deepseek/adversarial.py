"""``deepseek.adversarial``: adversarial examples and adversarial training.

Gradient attacks on a classifier, with the semantics of Madry et al. (2018, "Towards Deep
Learning Models Resistant to Adversarial Attacks") and of the torchattacks / advertorch
libraries:

* :func:`fgsm` -- the fast gradient sign method (Goodfellow et al., 2015): one step of
  size ``eps`` along ``sign(grad)`` (``norm="l2"``: along the per-example normalised
  gradient, advertorch's ``FGM``).
* :func:`pgd` -- projected gradient descent: optional random start inside the ε-ball,
  ``steps`` steps of size ``alpha`` (L∞: ``alpha * sign(grad)``; L2: ``alpha * grad /
  ||grad||_2`` per example), each followed by the projection onto the ε-ball around the
  clean input (per example) and a clamp to the data range.
* :func:`robust_accuracy` -- clean and robust accuracy of a model over a loader.
* :class:`PGDConfig` / :class:`FGSMConfig` -- an attack's settings as a callable
  ``(model, x, y) -> x_adv``; ``deepseek.trainer.Trainer(adversarial=PGDConfig(...))``
  trains on the attack's examples (Madry-style adversarial training).

```python
import deepseek
from deepseek import adversarial as adv

x_adv = adv.pgd(model, x, y, eps=0.1, alpha=0.01, steps=20)            # L-inf, random start
res = adv.robust_accuracy(model, test_loader, attack=adv.PGDConfig(eps=0.1, alpha=0.01, steps=20))
print(res.clean, res.robust)
```

Every attack runs the model in eval mode (as torchattacks does by default: no dropout, no
batch-norm statistics updates from adversarial inputs) and restores its mode afterwards;
gradients are taken with ``deepseek.autograd.grad`` with respect to the input only, with
the parameters' ``requires_grad`` switched off for the duration (restored afterwards), so
no parameter's ``.grad`` is touched. Attacks work inside ``deepseek.no_grad()`` too.
"""

import math
import numbers
from collections import namedtuple

from . import _C
from ._grad_mode import enable_grad, no_grad
from .autograd import grad as _grad
from .nn import functional as F

__all__ = ["fgsm", "pgd", "robust_accuracy", "PGDConfig", "FGSMConfig", "RobustAccuracy"]

# torchattacks' ``eps_for_division``: keeps a zero gradient (or perturbation) from dividing
# by zero in the L2 normalisations.
_EPS_DIV = 1e-10

_NORMS = {"linf": "linf", "inf": "linf", "l2": "l2", "2": "l2"}


# --------------------------------------------------------------------------- validation

def _check_norm(norm, fn):
    key = norm
    if isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        key = "inf" if math.isinf(norm) and norm > 0 else ("2" if norm == 2 else None)
    elif isinstance(norm, str):
        key = norm.lower()
    if key not in _NORMS:
        raise ValueError(f"{fn}: unknown norm {norm!r} (expected 'linf' or 'l2'; "
                         "float('inf') and 2 are accepted too)")
    return _NORMS[key]


def _check_real(value, name, fn, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{fn}: {name} must be finite, got {value}")
    if positive and v <= 0:
        raise ValueError(f"{fn}: {name} must be > 0, got {value}")
    if v < 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value}")
    return v


def _check_steps(steps, fn):
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"{fn}: steps must be an int, got {type(steps).__name__}")
    if steps < 1:
        raise ValueError(f"{fn}: steps must be >= 1, got {steps}")
    return int(steps)


def _check_clamp(clamp, fn):
    if clamp is None:
        return None
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise ValueError(f"{fn}: clamp must be a (min, max) pair or None, got {clamp!r}")
    lo, hi = clamp
    for v, name in ((lo, "clamp min"), (hi, "clamp max")):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{fn}: {name} must be a finite number, got {v!r}")
    if not lo < hi:
        raise ValueError(f"{fn}: clamp min must be < max, got {clamp!r}")
    return float(lo), float(hi)


def _check_inputs(model, x, y, clamp, fn):
    if not callable(model):
        raise TypeError(f"{fn}: model must be callable, got {type(model).__name__}")
    if not isinstance(x, _C.Tensor):
        raise TypeError(f"{fn}: x must be a deepseek.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{fn}: x must be a floating-point tensor, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{fn}: x must have a batch dimension, got shape {tuple(x.shape)}")
    if not isinstance(y, _C.Tensor):
        raise TypeError(f"{fn}: y must be a deepseek.Tensor of labels, got {type(y).__name__}")
    if y.dim() < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: y must have the batch size of x first: x {tuple(x.shape)}, "
                         f"y {tuple(y.shape)}")
    if clamp is not None and x.numel() > 0:
        with no_grad():
            lo, hi = x.min().item(), x.max().item()
        if lo < clamp[0] or hi > clamp[1]:
            raise ValueError(f"{fn}: x has values in [{lo:.4g}, {hi:.4g}], outside "
                             f"clamp={clamp}; pass the data's range as clamp, or clamp=None "
                             "(attacks expect unnormalised inputs: put normalisation inside "
                             "the model)")


def _check_targeted(targeted, fn):
    if not isinstance(targeted, bool):
        raise TypeError(f"{fn}: targeted must be a bool, got {type(targeted).__name__}")
    return targeted


# --------------------------------------------------------------------------- helpers

def _sum_ce(outputs, targets):
    # advertorch's default: summed cross-entropy (the same direction as the mean, but the
    # per-example gradients do not shrink with the batch size).
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return F.cross_entropy(outputs, targets, reduction="sum")


def _save_modes(model):
    """Each submodule's own ``training`` flag (a model may hold a frozen, eval-mode part),
    for :func:`_restore_modes`; [] for a model that is not a Module."""
    if getattr(model, "training", None) is None or not hasattr(model, "modules"):
        return []
    return [(mod, mod.training) for mod in model.modules()]


def _restore_modes(modes):
    for mod, flag in modes:
        mod.__dict__["training"] = flag


class _AttackMode:
    """Eval mode, parameters frozen, grad mode on -- all restored on exit."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        m = self.model
        self.modes = _save_modes(m)
        if self.modes:
            m.eval()
        params = list(m.parameters()) if hasattr(m, "parameters") else []
        self.frozen = [p for p in params if p.requires_grad]
        for p in self.frozen:
            p.requires_grad_(False)
        self.grad_mode = enable_grad()
        self.grad_mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.grad_mode.__exit__(*exc)
        for p in self.frozen:
            p.requires_grad_(True)
        _restore_modes(self.modes)
        return False


def _input_grad(model, loss_fn, x_adv, y, targeted):
    """d loss / d x_adv (of ``-loss`` when targeted), detached."""
    x_adv = x_adv.detach().requires_grad_(True)
    loss = loss_fn(model(x_adv), y)
    if not isinstance(loss, _C.Tensor) or loss.numel() != 1:
        raise ValueError("adversarial: loss_fn must return a scalar tensor, got "
                         f"{getattr(loss, 'shape', type(loss).__name__)}")
    if targeted:
        loss = -loss
    (g,) = _grad(loss, (x_adv,))
    return g.detach()


def _per_example(v, like):
    """Reshapes a per-example vector [N] to broadcast against ``like`` [N, ...]."""
    return v.reshape([like.shape[0]] + [1] * (like.dim() - 1))


def _l2_norms(t):
    return t.reshape(t.shape[0], -1).norm(p=2, dim=1)


def _clamp(t, clamp):
    return t if clamp is None else t.clamp(clamp[0], clamp[1])


def _random_like(x, kind, generator):
    """Uniform [0, 1) or standard normal noise shaped like ``x``: from deepseek's generator
    (``manual_seed``) when ``generator`` is None, else from a ``numpy.random.Generator``."""
    if generator is None:
        return _C.rand_like(x) if kind == "uniform" else _C.randn_like(x)
    import numpy as np

    if not isinstance(generator, np.random.Generator):
        raise TypeError("pgd: generator must be None (deepseek's generator) or a "
                        f"numpy.random.Generator, got {type(generator).__name__}")
    shape = tuple(x.shape)
    a = generator.random(shape) if kind == "uniform" else generator.standard_normal(shape)
    np_dtype = np.float64 if x.dtype == _C.float64 else np.float32
    return _C.from_numpy(np.ascontiguousarray(a, dtype=np_dtype)).to(x.dtype)


# --------------------------------------------------------------------------- attacks

def fgsm(model, x, y, eps, loss_fn=None, clamp=(0.0, 1.0), targeted=False, norm="linf"):
    """Fast gradient sign method (Goodfellow et al., 2015).

    Returns ``clamp(x + eps * sign(grad_x loss(model(x), y)))``, detached. With
    ``targeted=True``, ``y`` holds the target classes and the step goes down the loss
    (``x - eps * sign(grad)``). ``norm="l2"`` takes the step along the gradient normalised
    per example instead (advertorch's ``FGM``), so each example moves by L2 distance ``eps``
    before clamping.

    Args:
        model: a callable (usually an ``nn.Module``) mapping ``x`` to logits. It is run in
            eval mode and its mode, parameters' ``requires_grad`` and ``.grad`` are left as
            they were.
        x (Tensor): clean inputs ``[N, ...]`` (floating point, inside ``clamp``).
        y (Tensor): labels ``[N]`` (targets when ``targeted``).
        eps (float): step size / perturbation budget, ``>= 0`` (0 returns ``x``).
        loss_fn: ``fn(outputs, y) -> scalar``; default summed cross-entropy.
        clamp ((float, float) or None): the data range, default ``(0, 1)``; None for none.
        targeted (bool): move towards ``y`` instead of away from it.
        norm (str): ``"linf"`` (default) or ``"l2"``.

    Returns:
        Tensor: adversarial examples, shaped like ``x``, without gradient history.

    Raises:
        ValueError: ``eps < 0`` or not finite, an unknown norm, a bad ``clamp``, ``x``
            outside ``clamp``, mismatched batch sizes.
        TypeError: non-tensor or non-float ``x``, non-numeric ``eps``.

    Example::

        >>> x_adv = deepseek.adversarial.fgsm(model, x, y, eps=0.1)
        >>> (x_adv - x).abs().max() <= 0.1
    """
    fn = "fgsm"
    eps = _check_real(eps, "eps", fn)
    norm = _check_norm(norm, fn)
    clamp = _check_clamp(clamp, fn)
    targeted = _check_targeted(targeted, fn)
    _check_inputs(model, x, y, clamp, fn)
    loss_fn = loss_fn or _sum_ce
    x = x.detach()
    with _AttackMode(model):
        g = _input_grad(model, loss_fn, x, y, targeted)
    with no_grad():
        if norm == "linf":
            step = g.sign()
        else:
            step = g / _per_example(_l2_norms(g) + _EPS_DIV, g)
        return _clamp(x + eps * step, clamp).detach()


def pgd(model, x, y, eps, alpha, steps, norm="linf", random_start=True, loss_fn=None,
        clamp=(0.0, 1.0), targeted=False, generator=None):
    """Projected gradient descent attack (Madry et al., 2018), L∞ or L2.

    Starting from ``x`` (or, with ``random_start``, from a random point of the ε-ball
    around it), takes ``steps`` steps up the loss and projects back after each::

        linf: x' = x' + alpha * sign(g);            x' = x + clamp(x' - x, -eps, eps)
        l2:   x' = x' + alpha * g / ||g||_2;        x' = x + (x' - x) * min(1, eps / ||x' - x||_2)
        then  x' = clamp(x', *clamp)

    with norms per example (torchattacks' ``PGD`` / ``PGDL2``). The random start is
    uniform in ``[-eps, eps]`` per element for L∞, and for L2 a Gaussian direction scaled to
    radius ``eps * U(0, 1)`` per example (torchattacks' ``PGDL2``); it is clamped to the data
    range too. With ``targeted=True`` ``y`` holds target classes and the steps go down the
    loss.

    Args:
        model: a callable mapping ``x`` to logits; run in eval mode, its mode, parameters'
            ``requires_grad`` and ``.grad`` are left as they were.
        x (Tensor): clean inputs ``[N, ...]`` (floating point, inside ``clamp``).
        y (Tensor): labels ``[N]`` (targets when ``targeted``).
        eps (float): radius of the ε-ball, ``>= 0``.
        alpha (float): step size, ``> 0`` (Madry's MNIST setting: ``eps / 4``-ish;
            ``2.5 * eps / steps`` is a common choice).
        steps (int): number of steps, ``>= 1``.
        norm (str): ``"linf"`` (default) or ``"l2"`` (``float('inf')`` and ``2`` work too).
        random_start (bool): start from a random point of the ball (default True).
        loss_fn: ``fn(outputs, y) -> scalar``; default summed cross-entropy.
        clamp ((float, float) or None): the data range, default ``(0, 1)``.
        targeted (bool): move towards ``y``.
        generator: None to draw the random start from deepseek's generator
            (``deepseek.manual_seed``), or a ``numpy.random.Generator``.

    Returns:
        Tensor: adversarial examples shaped like ``x``, without gradient history, with
        ``||x_adv - x|| <= eps`` per example (up to float rounding) and inside ``clamp``.

    Raises:
        ValueError: ``eps < 0``, ``alpha <= 0``, ``steps < 1``, an unknown norm, a bad
            ``clamp`` or ``x`` outside it, mismatched batch sizes.
        TypeError: non-tensor/non-float ``x``, non-integer ``steps``, a bad generator.

    Example::

        >>> x_adv = deepseek.adversarial.pgd(model, x, y, eps=0.1, alpha=0.01, steps=20)
        >>> acc = (model(x_adv).argmax(1) == y).float().mean()
    """
    fn = "pgd"
    eps = _check_real(eps, "eps", fn)
    alpha = _check_real(alpha, "alpha", fn, positive=True)
    steps = _check_steps(steps, fn)
    norm = _check_norm(norm, fn)
    clamp = _check_clamp(clamp, fn)
    targeted = _check_targeted(targeted, fn)
    if not isinstance(random_start, bool):
        raise TypeError(f"pgd: random_start must be a bool, got {type(random_start).__name__}")
    _check_inputs(model, x, y, clamp, fn)
    loss_fn = loss_fn or _sum_ce
    x = x.detach()

    with no_grad():
        if random_start and eps > 0:
            if norm == "linf":
                delta = (_random_like(x, "uniform", generator) * 2 - 1) * eps
            else:
                d = _random_like(x, "normal", generator)
                d = d / _per_example(_l2_norms(d) + _EPS_DIV, d)
                r = _random_like(x.new_zeros(x.shape[0]), "uniform", generator)
                delta = d * _per_example(r * eps, d)
            x_adv = _clamp(x + delta, clamp)
        else:
            x_adv = x.clone()

    with _AttackMode(model):
        for _ in range(steps):
            g = _input_grad(model, loss_fn, x_adv, y, targeted)
            with no_grad():
                if norm == "linf":
                    x_adv = x_adv + alpha * g.sign()
                    delta = (x_adv - x).clamp(-eps, eps)
                else:
                    g = g / _per_example(_l2_norms(g) + _EPS_DIV, g)
                    x_adv = x_adv + alpha * g
                    delta = x_adv - x
                    factor = (eps / (_l2_norms(delta) + _EPS_DIV)).clamp(max=1.0)
                    delta = delta * _per_example(factor, delta)
                x_adv = _clamp(x + delta, clamp).detach()
    return x_adv


# --------------------------------------------------------------------------- configs

class PGDConfig:
    """The settings of a :func:`pgd` attack, callable as ``config(model, x, y) -> x_adv``.

    Pass one to ``deepseek.trainer.Trainer(adversarial=...)`` for Madry-style adversarial
    training, or to :func:`robust_accuracy` as the attack. Arguments are :func:`pgd`'s and
    are checked here, so a bad setting fails when the config is made.

    Example::

        >>> cfg = deepseek.adversarial.PGDConfig(eps=0.1, alpha=0.02, steps=7)
        >>> x_adv = cfg(model, x, y)
    """

    def __init__(self, eps, alpha, steps, norm="linf", random_start=True, loss_fn=None,
                 clamp=(0.0, 1.0), targeted=False, generator=None):
        fn = "PGDConfig"
        self.eps = _check_real(eps, "eps", fn)
        self.alpha = _check_real(alpha, "alpha", fn, positive=True)
        self.steps = _check_steps(steps, fn)
        self.norm = _check_norm(norm, fn)
        if not isinstance(random_start, bool):
            raise TypeError(f"{fn}: random_start must be a bool")
        self.random_start = random_start
        self.loss_fn = loss_fn
        self.clamp = _check_clamp(clamp, fn)
        self.targeted = _check_targeted(targeted, fn)
        self.generator = generator

    def __call__(self, model, x, y, loss_fn=None):
        """Runs :func:`pgd` with these settings; ``loss_fn`` is used when the config has
        none (the Trainer passes its training loss)."""
        return pgd(model, x, y, self.eps, self.alpha, self.steps, norm=self.norm,
                   random_start=self.random_start, loss_fn=self.loss_fn or loss_fn,
                   clamp=self.clamp, targeted=self.targeted, generator=self.generator)

    def __repr__(self):
        return (f"PGDConfig(eps={self.eps}, alpha={self.alpha}, steps={self.steps}, "
                f"norm={self.norm!r}, random_start={self.random_start}, clamp={self.clamp}"
                f"{', targeted=True' if self.targeted else ''})")


class FGSMConfig:
    """The settings of an :func:`fgsm` attack, callable as ``config(model, x, y) -> x_adv``
    (for ``Trainer(adversarial=...)``, Goodfellow-style training, or
    :func:`robust_accuracy`)."""

    def __init__(self, eps, loss_fn=None, clamp=(0.0, 1.0), targeted=False, norm="linf"):
        fn = "FGSMConfig"
        self.eps = _check_real(eps, "eps", fn)
        self.loss_fn = loss_fn
        self.clamp = _check_clamp(clamp, fn)
        self.targeted = _check_targeted(targeted, fn)
        self.norm = _check_norm(norm, fn)

    def __call__(self, model, x, y, loss_fn=None):
        """Runs :func:`fgsm` with these settings."""
        return fgsm(model, x, y, self.eps, loss_fn=self.loss_fn or loss_fn, clamp=self.clamp,
                    targeted=self.targeted, norm=self.norm)

    def __repr__(self):
        return f"FGSMConfig(eps={self.eps}, norm={self.norm!r}, clamp={self.clamp})"


# --------------------------------------------------------------------------- evaluation

RobustAccuracy = namedtuple("RobustAccuracy", ["clean", "robust", "total"])
RobustAccuracy.__doc__ = """Result of :func:`robust_accuracy`: ``clean`` and ``robust``
accuracies (fractions in [0, 1]) over ``total`` examples."""


def _logits(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def robust_accuracy(model, loader_or_batches, attack="pgd", max_batches=None, **attack_kwargs):
    """Clean and robust accuracy of a classifier over a data set.

    Each batch ``(x, y)`` is classified as is and after ``attack``; an example counts as
    robust when both predictions are right (the clean input lies in the ε-ball, so an
    example the model already gets wrong is not robust -- RobustBench's convention).

    Args:
        model: the classifier (its mode is left as it was; predictions are made in eval
            mode).
        loader_or_batches: any iterable of ``(x, y)`` pairs -- a ``DataLoader``, a list of
            batches, or one ``(x, y)`` pair of tensors.
        attack: ``"pgd"`` or ``"fgsm"`` (with their arguments in ``attack_kwargs``), a
            :class:`PGDConfig` / :class:`FGSMConfig`, or any callable
            ``attack(model, x, y) -> x_adv``.
        max_batches (int, optional): stop after this many batches (a subset).
        **attack_kwargs: arguments of :func:`pgd` / :func:`fgsm` when ``attack`` is a name.

    Returns:
        RobustAccuracy: ``(clean, robust, total)``.

    Example::

        >>> res = deepseek.adversarial.robust_accuracy(model, test_loader, attack="pgd",
        ...                                            eps=0.1, alpha=0.01, steps=20)
        >>> print(f"clean {res.clean:.3f}  PGD-20 {res.robust:.3f}")
    """
    if isinstance(attack, str):
        names = {"pgd": pgd, "fgsm": fgsm}
        if attack.lower() not in names:
            raise ValueError(f"robust_accuracy: unknown attack {attack!r} (expected 'pgd', "
                             "'fgsm', a PGDConfig/FGSMConfig or a callable)")
        fn = names[attack.lower()]
        kwargs = dict(attack_kwargs)

        def run(m, x, y):
            return fn(m, x, y, **kwargs)
    elif callable(attack):
        if attack_kwargs:
            raise TypeError("robust_accuracy: attack arguments "
                            f"{sorted(attack_kwargs)} are only taken with a named attack")
        run = attack
    else:
        raise TypeError("robust_accuracy: attack must be 'pgd', 'fgsm', a config or a "
                        f"callable, got {type(attack).__name__}")
    if max_batches is not None:
        if isinstance(max_batches, bool) or not isinstance(max_batches, numbers.Integral) \
                or max_batches < 1:
            raise ValueError(f"robust_accuracy: max_batches must be an int >= 1, got "
                             f"{max_batches!r}")
    batches = loader_or_batches
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], _C.Tensor):
        batches = [batches]

    modes = _save_modes(model)
    clean_ok = robust_ok = total = 0
    try:
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise TypeError("robust_accuracy: batches must be (inputs, labels) pairs")
            x, y = batch
            if modes:
                model.eval()
            with no_grad():
                ok = _logits(model(x)).argmax(-1) == y
            x_adv = run(model, x, y)
            if modes:
                model.eval()
            with no_grad():
                ok_adv = _logits(model(x_adv)).argmax(-1) == y
                clean_ok += int(ok.sum().item())
                robust_ok += int((ok & ok_adv).sum().item())
            total += int(y.shape[0])
    finally:
        _restore_modes(modes)
    if total == 0:
        raise ValueError("robust_accuracy: the loader gave no examples")
    return RobustAccuracy(clean_ok / total, robust_ok / total, total)
