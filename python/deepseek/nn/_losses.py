"""Loss functions of ``deepseek.nn.functional`` written as compositions of tensor ops
(margin, embedding, Poisson/Gaussian NLL, multi-label and multi-class margin losses), with
PyTorch's signatures, ``reduction`` handling and argument checks."""

import math

import numpy as np

from .. import _C

__all__ = ["soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
           "cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
           "poisson_nll_loss", "gaussian_nll_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "multilabel_margin_loss"]


def _legacy(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _relu(x):
    return x.clamp(min=0.0)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-target * input))`` (targets are 1 or -1)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    return _reduce(_C.functional.softplus(-target * input, 1.0, 20.0), reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise ValueError(f"margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {tuple(input1.shape)}, input2: "
                         f"{tuple(input2.shape)}, target: {tuple(target.shape)} ")
    return _reduce(_relu(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``x`` where ``target == 1``, ``max(0, margin - x)`` where ``target == -1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    zero = _C.zeros_like(input)
    margin_clamp = _C.where(target != 1, _relu(margin - input), zero)
    output_self = _C.where(target != -1, input, zero)
    return _reduce(margin_clamp + output_self, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1``; the cosine is taken along the last dimension."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input1.dim() != input2.dim():
        raise ValueError(f"cosine_embedding_loss: inputs must have the same number of "
                         f"dimensions, got {input1.dim()} and {input2.dim()}")
    if input1.dim() not in (1, 2):
        raise ValueError(f"cosine_embedding_loss: 1D target tensor expects 2D input tensors, "
                         f"but found inputs with sizes {tuple(input1.shape)} and "
                         f"{tuple(input2.shape)}.")
    eps = 1e-12
    d = input1.dim() - 1
    prod = (input1 * input2).sum(d)
    mag1 = (input1 * input1).sum(d) + eps
    mag2 = (input2 * input2).sum(d) + eps
    cos = prod / (mag1 * mag2).sqrt()
    zero = _C.zeros_like(cos)
    pos = _C.where(target == 1, 1 - cos, zero)
    neg = _C.where(target == -1, _relu(cos - margin), zero)
    return _reduce(pos + neg, reduction)


def _pairwise(x1, x2, p, eps):
    return (x1 - x2 + eps).norm(p, -1)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d`` the ``p``-norm pairwise distance;
    ``swap=True`` uses ``min(d(a, n), d(p, n))`` as the negative distance."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    dims = (anchor.dim(), positive.dim(), negative.dim())
    if len(set(dims)) != 1:
        raise ValueError(f"The anchor, positive, and negative tensors are expected to have the "
                         f"same number of dimensions, but got: anchor {dims[0]}D, positive "
                         f"{dims[1]}D, and negative {dims[2]}D inputs")
    if margin <= 0:
        raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} "
                         f"instead")
    d_pos = _pairwise(anchor, positive, p, eps)
    d_neg = _pairwise(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(_pairwise(positive, negative, p, eps))
    return _reduce(_relu(margin + d_pos - d_neg), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with a custom ``distance_function``
    (``pairwise_distance`` by default)."""
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                         f"got {margin} instead")
    dist = distance_function or (lambda a, b: _pairwise(a, b, 2.0, 1e-6))
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = d_neg.minimum(dist(positive, negative))
    return _reduce(_relu(margin + d_pos - d_neg), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log likelihood: ``exp(input) - target * input`` (``log_input``) or
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term
    ``target * log(target) - target + 0.5 * log(2 pi target)`` where ``target > 1``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        t = target.detach()
        safe = _C.where(t > 1, t, _C.ones_like(t))
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + _C.where(t > 1, stirling, _C.zeros_like(stirling))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log likelihood ``0.5 * (log(var) + (input - target)^2 / var)``
    (plus ``0.5 * log(2 pi)`` when ``full``); ``var`` is clamped to ``eps`` without
    stopping its gradient, as in PyTorch. ``var`` may omit the last dimension or have size
    1 there (one variance per sample)."""
    if isinstance(var, (int, float)):
        var = _C.full(tuple(input.shape), float(var), dtype=input.dtype)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    _check_reduction(reduction)
    if bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """``-mean_c(target * log(sigmoid(x)) + (1 - target) * log(sigmoid(-x)))`` per sample,
    optionally weighted per class."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    sp = _C.functional.softplus
    loss = target * sp(-input, 1.0, 20.0) + (1 - target) * sp(input, 1.0, 20.0)
    if weight is not None:
        loss = loss * weight
    c = input.dim() - 1
    loss = loss.sum(c) / input.shape[c]
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: ``sum_{i != y} max(0, margin - x[y] + x[i])^p / C`` per
    sample (``p`` is 1 or 2), times ``weight[y]`` when given."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if input.dim() not in (1, 2):
        raise ValueError(f"multi_margin_loss: Expected non-empty vector or matrix with optional "
                         f"0-dim batch size, but got: {tuple(input.shape)}")
    x = input if input.dim() == 2 else input.unsqueeze(0)
    y = target.reshape(-1)
    n, c = x.shape
    if y.numel() != n:
        raise ValueError(f"inconsistent target size: {tuple(target.shape)} for input of size: "
                         f"{tuple(input.shape)}")
    yi = y.unsqueeze(1)
    xy = x.gather(1, yi)
    z = _relu(margin - xy + x)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight.index_select(0, y).unsqueeze(1)
    notself = (_C.arange(c).unsqueeze(0) != yi).to(x.dtype)
    loss = (z * notself).sum(1) / c
    if input.dim() == 1:
        loss = loss.reshape([])
    return _reduce(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge loss: ``target`` holds class indices, ended by the first -1; the
    loss of a sample is ``sum_{j in targets, i not in targets} max(0, 1 - (x[j] - x[i])) /
    C``."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if input.dim() not in (1, 2) or tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"multilabel_margin_loss: inconsistent target size: "
                         f"{tuple(target.shape)} for input of size: {tuple(input.shape)}")
    x = input if input.dim() == 2 else input.unsqueeze(0)
    t = target.detach().reshape(x.shape[0], x.shape[1]).numpy().astype(np.int64)
    n, c = x.shape
    is_t = np.zeros((n, c), dtype=np.float64)
    for r in range(n):
        for k in t[r]:
            if k < 0:
                break
            if k >= c:
                raise IndexError(f"multilabel_margin_loss: target index {k} is out of bounds "
                                 f"for {c} classes")
            is_t[r, k] = 1.0
    mt = _C.tensor(is_t).to(x.dtype)
    pair = _relu(1 - x.unsqueeze(2) + x.unsqueeze(1))  # [n, j, i]
    loss = (pair * mt.unsqueeze(2) * (1 - mt).unsqueeze(1)).sum((1, 2)) / c
    if input.dim() == 1:
        loss = loss.reshape([])
    return _reduce(loss, reduction)


def _lse(stacked, dim):
    """logsumexp along ``dim`` that gives -inf (with zero gradient) for all -inf slices."""
    m = stacked.amax(dim, keepdim=True).detach()
    finite = m.abs() != math.inf
    m = _C.where(finite, m, _C.zeros_like(m))
    s = (stacked - m).exp().sum(dim, keepdim=True)
    empty = s == 0
    out = _C.where(empty, _C.full_like(s, -math.inf), _C.where(empty, _C.ones_like(s), s).log()
                   + m)
    return out.squeeze(dim)


def _lengths(v, n, name):
    if isinstance(v, _C.Tensor):
        v = v.detach().numpy().reshape(-1)
    a = np.asarray(v, dtype=np.int64).reshape(-1)
    if len(a) != n:
        raise ValueError(f"ctc_loss: expected {n} {name}, got {len(a)}")
    return a


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist Temporal Classification loss: ``-log p(target | input)`` summed over
    all alignments (the forward algorithm in log space, one step per time frame).
    ``log_probs`` is [T, N, C] (or [T, C]); ``targets`` padded [N, S] or concatenated 1-D.
    ``reduction='mean'`` divides each loss by its target length, then averages."""
    _check_reduction(reduction)
    unbatched = log_probs.dim() == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.dim() != 3:
        raise ValueError(f"ctc_loss: log_probs must be [T, N, C] or [T, C], got "
                         f"{tuple(log_probs.shape)}")
    T, n, c = lp.shape
    if not 0 <= blank < c:
        raise ValueError(f"blank must be in label range, got blank={blank} for {c} classes")
    il = _lengths(input_lengths, n, "input_lengths")
    tl = _lengths(target_lengths, n, "target_lengths")
    tg = targets.detach().numpy().astype(np.int64)
    if unbatched and tg.ndim == 1 and len(tl) == 1 and tg.shape[0] == tl[0]:
        tg = tg.reshape(1, -1)
    if (il > T).any() or (il < 0).any():
        raise ValueError(f"ctc_loss: input_lengths must be in [0, {T}], got {il.tolist()}")
    rows = []
    if tg.ndim == 2:
        if (tl > tg.shape[1]).any():
            raise ValueError("ctc_loss: target_lengths exceed the padded target length")
        rows = [tg[i, :tl[i]] for i in range(n)]
    else:
        if tl.sum() > len(tg):
            raise ValueError("ctc_loss: target_lengths add up to more than the targets given")
        off = np.concatenate([[0], np.cumsum(tl)])
        rows = [tg[off[i]:off[i + 1]] for i in range(n)]
    smax = 2 * int(tl.max() if n else 0) + 1
    ext = np.full((n, smax), blank, dtype=np.int64)
    skip = np.zeros((n, smax), dtype=bool)
    valid = np.zeros((n, smax), dtype=bool)
    for i, r in enumerate(rows):
        if len(r) and (r.min() < 0 or r.max() >= c or (r == blank).any()):
            raise ValueError("ctc_loss: targets must be class indices other than blank")
        ext[i, 1:2 * len(r):2] = r
        valid[i, :2 * len(r) + 1] = True
        for s in range(3, 2 * len(r), 2):
            skip[i, s] = ext[i, s] != ext[i, s - 2]
    neg = _C.full((n, smax), -math.inf, dtype=lp.dtype)
    e = lp.gather(2, _C.tensor(ext).unsqueeze(0).expand(T, n, smax))  # [T, N, S']
    vmask = _C.tensor(valid)
    first = np.zeros((n, smax), dtype=bool)
    first[:, 0] = True
    first[:, 1] = tl > 0
    alpha = _C.where(_C.tensor(first).logical_and(vmask), e[0], neg)
    pad1 = _C.full((n, 1), -math.inf, dtype=lp.dtype)
    pad2 = _C.full((n, 2), -math.inf, dtype=lp.dtype)
    skip_t = _C.tensor(skip)
    for t in range(1, T):
        a1 = _C.cat([pad1, alpha.narrow(1, 0, smax - 1)], 1)
        a2 = _C.cat([pad2, alpha.narrow(1, 0, smax - 2)], 1) if smax > 2 else neg
        a2 = _C.where(skip_t, a2, neg)
        new = _C.where(vmask, _lse(_C.stack([alpha, a1, a2], 0), 0) + e[t], neg)
        live = _C.tensor(t < il).unsqueeze(1)
        alpha = _C.where(live, new, alpha)
    last = 2 * tl
    a_end = alpha.gather(1, _C.tensor(last).unsqueeze(1)).squeeze(1)
    a_pre = alpha.gather(1, _C.tensor(np.maximum(last - 1, 0)).unsqueeze(1)).squeeze(1)
    a_pre = _C.where(_C.tensor(tl > 0), a_pre, _C.full((n,), -math.inf, dtype=lp.dtype))
    loss = -_lse(_C.stack([a_end, a_pre], 0), 0)
    loss = _C.where(_C.tensor(il == 0).logical_and(_C.tensor(tl == 0)), _C.zeros_like(loss),
                    loss)
    if zero_infinity:
        loss = _C.where(loss == math.inf, _C.zeros_like(loss), loss)
    if reduction == "mean":
        return (loss / _C.tensor(np.maximum(tl, 1).astype(np.float64)).to(loss.dtype)).mean()
    if unbatched and reduction == "none":
        return loss.reshape([])
    return _reduce(loss, reduction)


__all__ += ["ctc_loss"]


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None,
                         reduction="mean", ignore_index=None, label_smoothing=0.0,
                         options=None):
    """``cross_entropy(linear(input, W, b), target)`` with ``linear_weight`` [C, *out,
    in] (PyTorch's reference formulation). ``options`` (``LinearCrossEntropyOptions``,
    PyTorch's batch chunking) is accepted; deepseek computes the reference path."""
    from .functional import cross_entropy, linear

    c, *out, inf = linear_weight.shape
    if input.shape[-1] != inf:
        raise ValueError(f"linear_cross_entropy: input's last dimension {input.shape[-1]} "
                         f"does not match linear_weight's in_features {inf}")
    logits = linear(input, linear_weight.reshape(-1, inf),
                    None if linear_bias is None else linear_bias.reshape(-1))
    logits = logits.reshape(*input.shape[:-1], c, *out)
    kw = {} if ignore_index is None else {"ignore_index": ignore_index}
    return cross_entropy(logits, target, weight, reduction=reduction,
                         label_smoothing=label_smoothing, **kw)


__all__ += ["linear_cross_entropy"]
