"""Shape and product functions of PyTorch's API composed from the core's ops:
``movedim``, ``rot90``, ``tensor_split``/``hsplit``/..., ``tile``, ``broadcast_to``,
``Tensor.unfold``, ``diagonal``/``diag_embed``, ``addmm``/``addmv``/``addr``/``baddbmm``/
``addbmm``/``addcmul``/``addcdiv``/``lerp``, ``outer``/``inner``/``kron``/``cross``/
``tensordot``/``matrix_power``. Indexing lives in ``_index_ops``, stacking/statistics/
sampling in ``_stats_ops``."""

import builtins
import math

import numpy as np

from . import _C
from ._math_ops import _op, METHODS, FUNCTIONS  # noqa: F401

_where = _C.where
_T = _C.Tensor


def _dim(d, n):
    if not -max(n, 1) <= d < max(n, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-max(n, 1)}, {max(n, 1) - 1}], but got {d})")
    return d % max(n, 1)


def _ints(v):
    return [int(v)] if isinstance(v, int) else [int(i) for i in v]


# --- dimension moves ----------------------------------------------------------------------

@_op("movedim", "moveaxis")
def movedim(input, source, destination):
    """Moves the dimensions ``source`` to the positions ``destination``."""
    src, dst = _ints(source), _ints(destination)
    n = input.dim()
    if len(src) != len(dst):
        raise ValueError(f"movedim: Invalid source or destination dims: source ({src} dims) "
                         f"should contain the same number of dims as destination ({dst} dims)")
    src = [_dim(s, n) for s in src]
    dst = [_dim(d, n) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError("movedim: repeated dim in `source` or `destination`")
    order = [None] * n
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(n) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    return input.permute(*order) if n else input


@_op("swapdims")
def swapdims(input, dim0, dim1):
    """Alias of ``transpose``."""
    return input.transpose(dim0, dim1)


@_op("fliplr")
def fliplr(input):
    """Flips the columns (dimension 1)."""
    if input.dim() < 2:
        raise ValueError("Input must be >= 2-d.")
    return input.flip(1)


@_op("flipud")
def flipud(input):
    """Flips the rows (dimension 0)."""
    if input.dim() < 1:
        raise ValueError("Input must be >= 1-d.")
    return input.flip(0)


@_op("rot90")
def rot90(input, k=1, dims=(0, 1)):
    """Rotates by 90 degrees ``k`` times in the plane ``dims`` (from the first toward the
    second)."""
    dims = _ints(dims)
    if len(dims) != 2:
        raise ValueError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.dim() < 2:
        raise ValueError(f"expected total dims >= 2, but got total dims = {input.dim()}")
    d0, d1 = _dim(dims[0], input.dim()), _dim(dims[1], input.dim())
    if d0 == d1:
        raise ValueError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                         f"dim1 = {d1}")
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip([d0, d1])
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input.clone()


@_op("ravel")
def ravel(input):
    """The flattened (1-D) tensor."""
    return input.reshape(-1)


@_op("tile")
def tile(input, dims):
    """Repeats ``input`` ``dims`` times per dimension (leading 1s added to whichever is
    shorter)."""
    dims = _ints(dims)
    x = input
    if len(dims) < x.dim():
        dims = [1] * (x.dim() - len(dims)) + dims
    while x.dim() < len(dims):
        x = x.unsqueeze(0)
    return x.repeat(*dims)


@_op("broadcast_to")
def broadcast_to(input, size):
    """``input.expand(size)``."""
    return input.expand(*size)


@_op("broadcast_tensors", method=False)
def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape."""
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t.expand(*shape) for t in tensors)


@_op("broadcast_shapes", method=False)
def broadcast_shapes(*shapes):
    """The shape the given shapes broadcast to (ValueError when they do not)."""
    shapes = [tuple(_ints(s)) for s in shapes]
    n = builtins.max((len(s) for s in shapes), default=0)
    out = [1] * n
    for s in shapes:
        for i, v in enumerate(s):
            j = n - len(s) + i
            if out[j] == 1:
                out[j] = v
            elif v != 1 and v != out[j]:
                raise ValueError(f"Shape mismatch: objects cannot be broadcast to a single "
                                 f"shape: {shapes}")
    from . import Size

    return Size(out)


# --- splitting ----------------------------------------------------------------------------

@_op("tensor_split")
def tensor_split(input, indices_or_sections, dim=0):
    """Splits into ``n`` nearly equal parts (the first ``size % n`` one longer), or at the
    given indices, along ``dim``."""
    d = _dim(dim, input.dim())
    size = input.shape[d]
    ios = indices_or_sections
    if isinstance(ios, _T):
        ios = ios.tolist()
    if isinstance(ios, int):
        if ios <= 0:
            raise ValueError(f"number of sections must be larger than 0, got {ios}")
        q, r = divmod(size, ios)
        bounds, start = [], 0
        for i in range(ios):
            start += q + (1 if i < r else 0)
            bounds.append(start)
        bounds = bounds[:-1]
    else:
        bounds = list(ios)
    out, prev = [], 0
    for b in bounds + [size]:
        b = builtins.min(builtins.max(b if b >= 0 else b + size, 0), size)
        lo = builtins.min(prev, b)
        out.append(input.narrow(d, lo, builtins.max(b - lo, 0)))
        prev = builtins.max(prev, b)
    return tuple(out)


def _split_n(input, ios, dim, name):
    if isinstance(ios, int):
        n = input.shape[dim]
        if ios == 0 or n % ios:
            raise ValueError(f"torch.{name} attempted to split along dimension {dim}, but the "
                             f"size of the dimension {n} is not divisible by the split_size "
                             f"{ios}!")
    return tensor_split(input, ios, dim)


@_op("hsplit")
def hsplit(input, indices_or_sections):
    """``tensor_split`` along dimension 1 (0 for 1-D inputs); sections must divide evenly."""
    if input.dim() < 1:
        raise ValueError("torch.hsplit requires a tensor with at least 1 dimension, but got "
                         "a tensor with 0 dimensions!")
    return _split_n(input, indices_or_sections, 1 if input.dim() > 1 else 0, "hsplit")


@_op("vsplit")
def vsplit(input, indices_or_sections):
    """``tensor_split`` along dimension 0 (inputs of at least 2 dimensions)."""
    if input.dim() < 2:
        raise ValueError(f"torch.vsplit requires a tensor with at least 2 dimension, but got "
                         f"a tensor with {input.dim()} dimensions!")
    return _split_n(input, indices_or_sections, 0, "vsplit")


@_op("dsplit")
def dsplit(input, indices_or_sections):
    """``tensor_split`` along dimension 2 (inputs of at least 3 dimensions)."""
    if input.dim() < 3:
        raise ValueError(f"torch.dsplit requires a tensor with at least 3 dimension, but got "
                         f"a tensor with {input.dim()} dimensions!")
    return _split_n(input, indices_or_sections, 2, "dsplit")


@_op("split_with_sizes")
def split_with_sizes(input, split_sizes, dim=0):
    """Splits into pieces of the given sizes (which must add up to the dimension)."""
    sizes = _ints(split_sizes)
    d = _dim(dim, input.dim())
    if builtins.sum(sizes) != input.shape[d]:
        raise ValueError(f"split_with_sizes expects split_sizes to sum exactly to "
                         f"{input.shape[d]} (input tensor's size at dimension {d}), but got "
                         f"split_sizes={sizes}")
    return tuple(input.split(sizes, d))


@_op("unsafe_split")
def unsafe_split(input, split_size, dim=0):
    """``split`` (deepseek's views are always safe)."""
    return tuple(input.split(split_size, dim))


@_op("unsafe_chunk")
def unsafe_chunk(input, chunks, dim=0):
    """``chunk``."""
    return tuple(input.chunk(chunks, dim))


@_op("unsafe_split_with_sizes")
def unsafe_split_with_sizes(input, split_sizes, dim=0):
    """``split_with_sizes``."""
    return split_with_sizes(input, split_sizes, dim)


def _unfold(self, dimension, size, step):
    """Sliding windows of ``size`` every ``step`` along ``dimension``, as a new last
    dimension."""
    d = _dim(dimension, self.dim())
    n = self.shape[d] if self.dim() else 1
    if size > n:
        raise ValueError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise ValueError(f"step is {step} but must be > 0")
    x = self if self.dim() else self.reshape(1)
    m = (n - size) // step + 1
    idx = (np.arange(m)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    y = x.index_select(d, _C.tensor(idx.astype(np.int64)))
    if not self.dim():
        return y
    shape = list(x.shape)
    shape[d:d + 1] = [m, size]
    return movedim(y.reshape(*shape), d + 1, -1)


METHODS["unfold"] = _unfold


# --- diagonals ----------------------------------------------------------------------------

def _diag_index(n, m, offset):
    i = np.arange(builtins.max(0, -offset), builtins.min(n, m - offset))
    return i, i + offset


@_op("diagonal")
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of the planes ``(dim1, dim2)``, as a new last dimension."""
    n = input.dim()
    d1, d2 = _dim(dim1, n), _dim(dim2, n)
    if d1 == d2:
        raise ValueError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    x = movedim(input, [d1, d2], [-2, -1])
    r, c = x.shape[-2], x.shape[-1]
    i, j = _diag_index(r, c, offset)
    flat = x.reshape(*x.shape[:-2], r * c)
    return flat.index_select(flat.dim() - 1, _C.tensor((i * c + j).astype(np.int64)))


@_op("diag_embed")
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices with the last dimension of ``input`` on diagonal ``offset`` of the planes
    ``(dim1, dim2)``."""
    k = input.shape[-1]
    n = k + abs(offset)
    i = np.arange(k) + builtins.max(0, -offset)
    j = np.arange(k) + builtins.max(0, offset)
    lead = list(input.shape[:-1])
    z = _C.zeros(*lead, n * n, dtype=input.dtype)
    out = z.index_add(len(lead), _C.tensor((i * n + j).astype(np.int64)), input) \
        .reshape(*lead, n, n)
    nd = out.dim()
    return movedim(out, [nd - 2, nd - 1], [_dim(dim1, nd), _dim(dim2, nd)])


@_op("diagflat")
def diagflat(input, offset=0):
    """The matrix with the flattened ``input`` on diagonal ``offset``."""
    return diag_embed(input.reshape(-1), offset)


@_op("trace")
def trace(input):
    """Sum of the main diagonal of a 2-D tensor."""
    if input.dim() != 2:
        raise ValueError(f"trace: expected a matrix, but got tensor with dim {input.dim()}")
    return diagonal(input).sum()


def _fill_diagonal_(self, fill_value, wrap=False):
    """Fills the main diagonal in place (all dimensions of equal length, or a matrix; with
    ``wrap`` a tall matrix restarts the diagonal every ``cols + 1`` rows)."""
    if self.dim() < 2:
        raise ValueError("dimensions must larger than 1")
    if self.dim() > 2 and len(set(self.shape)) != 1:
        raise ValueError("all dimensions of input must be of equal length")
    shape = tuple(self.shape)
    mask = np.zeros(shape, dtype=bool)
    if self.dim() == 2:
        r, c = shape
        rows = np.arange(r)
        step = c + 1
        flat = np.arange(0, r * c, step) if wrap else np.arange(builtins.min(r, c)) * step
        mask.reshape(-1)[flat] = True
    else:
        i = np.arange(shape[0])
        mask[tuple([i] * len(shape))] = True
    return _C._assign_inplace(self, self.masked_fill(_C.tensor(mask), fill_value),
                              "fill_diagonal_")


METHODS["fill_diagonal_"] = _fill_diagonal_


# --- products and fused multiply-adds ------------------------------------------------------

def _scale(t, s):
    return t if s == 1 else t * s


@_op("addmm")
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)``."""
    if mat1.dim() != 2 or mat2.dim() != 2:
        raise ValueError(f"addmm: mat1 and mat2 must be matrices, got {mat1.dim()}D and "
                         f"{mat2.dim()}D")
    prod = _scale(mat1.matmul(mat2), alpha)
    return prod if beta == 0 else _scale(input, beta) + prod


@_op("addmv")
def addmv(input, mat, vec, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat @ vec)``."""
    if mat.dim() != 2 or vec.dim() != 1:
        raise ValueError(f"vector + matrix @ vector expected, got {input.dim()}, {mat.dim()}, "
                         f"{vec.dim()}")
    prod = _scale(mat.matmul(vec), alpha)
    return prod if beta == 0 else _scale(input, beta) + prod


@_op("addr")
def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """``beta * input + alpha * outer(vec1, vec2)``."""
    prod = _scale(outer(vec1, vec2), alpha)
    return prod if beta == 0 else _scale(input, beta) + prod


@_op("baddbmm")
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise ValueError(f"batch1 must be a 3D tensor, got {batch1.dim()}D and {batch2.dim()}D")
    prod = _scale(batch1.bmm(batch2), alpha)
    return prod if beta == 0 else _scale(input, beta) + prod


@_op("addbmm")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise ValueError(f"batch1 must be a 3D tensor, got {batch1.dim()}D and {batch2.dim()}D")
    prod = _scale(batch1.bmm(batch2).sum(0), alpha)
    return prod if beta == 0 else _scale(input, beta) + prod


@_op("addcmul")
def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    return input + _scale(tensor1 * tensor2, value)


@_op("addcdiv")
def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    if not tensor1.is_floating_point() and not tensor2.is_floating_point():
        raise TypeError("Integer division with addcdiv is no longer supported, and in a future "
                        "release addcdiv will perform a true division of tensor1 and tensor2.")
    return input + _scale(tensor1 / tensor2, value)


@_op("lerp")
def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    return input + (end - input) * weight


@_op("mv")
def mv(input, vec):
    """Matrix-vector product."""
    if input.dim() != 2 or vec.dim() != 1:
        raise ValueError(f"vector + matrix @ vector expected, got {input.dim()}D and "
                         f"{vec.dim()}D")
    return input.matmul(vec)


@_op("outer", "ger")
def outer(input, vec2):
    """Outer product of two vectors."""
    if input.dim() != 1 or vec2.dim() != 1:
        raise ValueError(f"outer: expected 1-D inputs, got {input.dim()}D and {vec2.dim()}D")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


@_op("inner")
def inner(input, other):
    """Sum of products over the last dimensions (a product for scalars)."""
    if input.dim() == 0 or other.dim() == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ValueError(f"inner() the last dimension must match on both input tensors but got "
                         f"shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([input.dim() - 1], [other.dim() - 1]))


@_op("vdot")
def vdot(input, other):
    """Dot product of two 1-D tensors."""
    if input.dim() != 1 or other.dim() != 1:
        raise ValueError(f"1D tensors expected, but got {input.dim()}D and {other.dim()}D "
                         f"tensors")
    return input.dot(other)


@_op("kron")
def kron(input, other):
    """Kronecker product."""
    n = builtins.max(input.dim(), other.dim())
    a = input.reshape(*([1] * (n - input.dim()) + list(input.shape)))
    b = other.reshape(*([1] * (n - other.dim()) + list(other.shape)))
    ai = [s for d in a.shape for s in (d, 1)]
    bi = [s for d in b.shape for s in (1, d)]
    out = a.reshape(*ai) * b.reshape(*bi)
    return out.reshape(*[x * y for x, y in zip(a.shape, b.shape)])


@_op("cross")
def cross(input, other, dim=None):
    """Cross product of 3-vectors along ``dim`` (the first dimension of size 3 when None)."""
    a, b = broadcast_tensors(input, other)
    if dim is None:
        dims = [i for i, s in enumerate(a.shape) if s == 3]
        if not dims:
            raise ValueError("no dimension of size 3 in input")
        d = dims[0]
    else:
        d = _dim(dim, a.dim())
    if a.shape[d] != 3:
        raise ValueError(f"linalg.cross: inputs dimension {d} must have length 3. Got "
                         f"{a.shape[d]} and {b.shape[d]}")
    i1 = _C.tensor([1, 2, 0])
    i2 = _C.tensor([2, 0, 1])
    return a.index_select(d, i1) * b.index_select(d, i2) - \
        a.index_select(d, i2) * b.index_select(d, i1)


@_op("tensordot", method=False)
def tensordot(a, b, dims=2):
    """Contracts the last ``dims`` dimensions of ``a`` with the first of ``b`` (or the
    listed pairs ``([dims_a], [dims_b])``)."""
    if isinstance(dims, int):
        if dims < 0:
            raise ValueError(f"tensordot expects dims >= 0, but got dims={dims}")
        da = list(range(a.dim() - dims, a.dim()))
        db = list(range(dims))
    else:
        if isinstance(dims, _T):
            dims = dims.tolist()
        da, db = _ints(dims[0]), _ints(dims[1])
    da = [_dim(d, a.dim()) for d in da]
    db = [_dim(d, b.dim()) for d in db]
    if len(da) != len(db):
        raise ValueError("both dimension lists should have same length")
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise ValueError(f"contracted dimensions need to match, but first has size "
                             f"{a.shape[x]} in dim {x} and second has size {b.shape[y]} in "
                             f"dim {y}")
    fa = [i for i in range(a.dim()) if i not in da]
    fb = [i for i in range(b.dim()) if i not in db]
    k = math.prod(a.shape[i] for i in da)
    am = a.permute(*(fa + da)).reshape(math.prod(a.shape[i] for i in fa), k)
    bm = b.permute(*(db + fb)).reshape(k, math.prod(b.shape[i] for i in fb))
    return am.matmul(bm).reshape(*([a.shape[i] for i in fa] + [b.shape[i] for i in fb]))


@_op("matrix_power")
def matrix_power(input, n):
    """``input @ input @ ... (n times)`` for square matrices (identity for 0; for n < 0 the
    power of the inverse)."""
    if input.dim() < 2 or input.shape[-1] != input.shape[-2]:
        raise ValueError(f"matrix_power: A must be batches of square matrices, but they are "
                         f"{input.shape[-2] if input.dim() > 1 else '?'} by "
                         f"{input.shape[-1] if input.dim() else '?'} matrices")
    if n < 0:
        from ._linalg_ops import inverse

        input, n = inverse(input), -n
    m = input.shape[-1]
    result = _C.eye(m, dtype=input.dtype).expand(*input.shape) * 1
    base = input
    while n:
        if n & 1:
            result = result.matmul(base)
        n >>= 1
        if n:
            base = base.matmul(base)
    return result


@_op("chain_matmul", method=False)
def chain_matmul(*matrices):
    """``matrices[0] @ matrices[1] @ ...``."""
    if not matrices:
        raise ValueError("chain_matmul(): Expected one or more matrices")
    out = matrices[0]
    for m in matrices[1:]:
        out = out.matmul(m)
    return out


# --- in-place forms of the compositions above --------------------------------------------

INPLACE = ["addmm", "addmv", "addr", "baddbmm", "addbmm", "addcmul", "addcdiv", "lerp",
           "index_fill", "index_copy", "masked_scatter", "put", "renorm", "cumprod",
           "logit"]
