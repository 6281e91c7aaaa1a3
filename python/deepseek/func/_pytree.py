"""Minimal pytrees for the function transforms: nested tuples, lists, dicts and
namedtuples whose leaves are anything else (tensors, batched tensors, numbers, None).

Written with module-level recursion (no recursive closures): a closure that refers to
itself is a reference cycle, which would keep the flattened tensors alive until Python's
cycle collector ran (measured: a per-example gradient ran 2x slower for it)."""


class TreeSpec:
    """The structure of a flattened pytree: a node kind, its context and its children."""

    __slots__ = ("kind", "ctx", "children")

    def __init__(self, kind, ctx, children):
        self.kind, self.ctx, self.children = kind, ctx, children

    @property
    def num_leaves(self):
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (isinstance(other, TreeSpec) and self.kind == other.kind
                and self.ctx == other.ctx and self.children == other.children)

    def __repr__(self):
        if self.kind == "leaf":
            return "*"
        return f"{self.kind}({self.ctx}, {self.children})"


_LEAF = TreeSpec("leaf", None, ())


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _flatten(t, leaves):
    tt = type(t)
    if tt is tuple:
        return TreeSpec("tuple", None, [_flatten(c, leaves) for c in t])
    if tt is list:
        return TreeSpec("list", None, [_flatten(c, leaves) for c in t])
    if tt is dict or isinstance(t, dict):
        keys = list(t.keys())
        return TreeSpec("dict", keys, [_flatten(t[k], leaves) for k in keys])
    if isinstance(t, tuple):
        kind = "namedtuple" if hasattr(tt, "_fields") else "tuple"
        return TreeSpec(kind, tt if kind == "namedtuple" else None,
                        [_flatten(c, leaves) for c in t])
    if isinstance(t, list):
        return TreeSpec("list", None, [_flatten(c, leaves) for c in t])
    leaves.append(t)
    return _LEAF


def _count(t):
    """The number of leaves of ``t``."""
    if isinstance(t, (tuple, list)):
        return sum(_count(c) for c in t)
    if isinstance(t, dict):
        return sum(_count(c) for c in t.values())
    return 1


def tree_flatten(tree):
    """``(leaves, spec)`` of ``tree``."""
    leaves = []
    spec = _flatten(tree, leaves)
    return leaves, spec


def _unflatten(s, it):
    if s.kind == "leaf":
        return next(it)
    kids = [_unflatten(c, it) for c in s.children]
    if s.kind == "tuple":
        return tuple(kids)
    if s.kind == "list":
        return kids
    if s.kind == "namedtuple":
        return s.ctx(*kids)
    return dict(zip(s.ctx, kids))


def tree_unflatten(leaves, spec):
    """Rebuilds the tree of ``spec`` from ``leaves`` (in flattening order)."""
    return _unflatten(spec, iter(leaves))


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


def _prefix(p, t, out, what):
    if p is None or isinstance(p, int):
        out.extend([p] * _count(t))
        return
    if isinstance(p, (tuple, list)) and isinstance(t, (tuple, list)):
        if len(p) != len(t):
            raise ValueError(f"vmap: {what} is not compatible with the structure of the "
                             f"inputs: expected {len(t)} entries, got {len(p)} ({p!r})")
        for a, b in zip(p, t):
            _prefix(a, b, out, what)
        return
    if isinstance(p, dict) and isinstance(t, dict):
        if set(p) != set(t):
            raise ValueError(f"vmap: {what} keys {sorted(p)} do not match the input keys "
                             f"{sorted(t)}")
        for k in t:
            _prefix(p[k], t[k], out, what)
        return
    raise ValueError(f"vmap: {what} {p!r} is not compatible with the structure of the "
                     f"inputs ({type(t).__name__})")


def broadcast_prefix(prefix, tree, what="in_dims"):
    """The leaves of ``prefix`` repeated over the matching subtrees of ``tree``: ``prefix``
    is a pytree whose structure is a prefix of ``tree``'s (an int or None standing for a
    whole subtree). Returns one entry per leaf of ``tree``."""
    out = []
    _prefix(prefix, tree, out, what)
    return out
