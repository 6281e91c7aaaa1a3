"""Shape, linear-algebra, indexing and creation functions of PyTorch's API composed from
the core's ops: ``movedim``, ``rot90``, ``tensor_split``/``hsplit``/..., ``tile``,
``broadcast_to``, ``Tensor.unfold``, ``diagonal``/``diag_embed``, ``addmm``/``addmv``/
``addr``/``baddbmm``/``addbmm``/``addcmul``/``addcdiv``/``lerp``, ``outer``/``inner``/
``kron``/``cross``/``tensordot``/``matrix_power``, ``index_fill``/``index_copy``/
``masked_scatter``/``put``/``take``/``*_scatter``, stacking helpers, ``meshgrid``,
``cdist``, ``cov``/``corrcoef``, ``trapezoid``, ``searchsorted``/``bucketize`` and the
random in-place fills (``bernoulli_``, ``exponential_``, ...)."""

import builtins
import math

import numpy as np

from . import _C
from ._math_ops import _op, _make_inplace, METHODS, FUNCTIONS  # noqa: F401

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
    """``input @ input @ ... (n times)`` for square matrices (n >= 0; identity for 0)."""
    if input.dim() < 2 or input.shape[-1] != input.shape[-2]:
        raise ValueError(f"matrix_power: A must be batches of square matrices, but they are "
                         f"{input.shape[-2] if input.dim() > 1 else '?'} by "
                         f"{input.shape[-1] if input.dim() else '?'} matrices")
    if n < 0:
        raise NotImplementedError("matrix_power: negative powers need a matrix inverse, which "
                                  "deepseek does not have yet")
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


# --- indexing -----------------------------------------------------------------------------

def _index_mask(input, dim, index):
    d = _dim(dim, input.dim())
    idx = index.reshape(-1).detach().numpy().astype(np.int64) if isinstance(index, _T) else \
        np.asarray(_ints(index))
    n = input.shape[d] if input.dim() else 1
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"index out of range in self (size {n} at dim {d})")
    sel = np.zeros(n, dtype=bool)
    sel[idx % n] = True
    shape = [1] * input.dim()
    if input.dim():
        shape[d] = n
    return _C.tensor(sel.reshape(shape)), d


@_op("index_fill")
def index_fill(input, dim, index, value):
    """A copy of ``input`` with ``value`` at ``index`` along ``dim``."""
    mask, _ = _index_mask(input, dim, index)
    if isinstance(value, _T):
        return _where(mask, value.to(input.dtype) + _C.zeros_like(input), input)
    return input.masked_fill(mask, value)


@_op("index_copy")
def index_copy(input, dim, index, source):
    """A copy of ``input`` with the slices of ``source`` written at ``index`` along
    ``dim``."""
    mask, d = _index_mask(input, dim, index)
    placed = _C.zeros_like(input).index_add(d, index, source)
    return _where(mask, placed, input)


@_op("masked_scatter")
def masked_scatter(input, mask, source):
    """A copy of ``input`` with the leading elements of ``source`` written, in order, where
    ``mask`` (broadcast) is True."""
    m = mask.expand(*input.shape) if tuple(mask.shape) != tuple(input.shape) else mask
    pos = np.nonzero(m.detach().numpy().reshape(-1))[0].astype(np.int64)
    if pos.size > source.numel():
        raise ValueError("masked_scatter: expected source to have at least as many elements "
                         "as ones in mask")
    src = source.reshape(-1).narrow(0, 0, int(pos.size))
    flat = input.reshape(-1)
    placed = _C.zeros_like(flat).index_add(0, _C.tensor(pos), src)
    return _where(m.reshape(-1), placed, flat).reshape(*input.shape)


@_op("take")
def take(input, index):
    """The elements of the flattened ``input`` at ``index`` (shaped like ``index``)."""
    flat = input.reshape(-1)
    n = flat.shape[0]
    idx = index.reshape(-1)
    a = idx.detach().numpy()
    if a.size and (a.max() >= n or a.min() < -n):
        raise IndexError(f"out of range: tried to access index {int(a.max())} on a tensor of "
                         f"{n} elements.")
    return flat.index_select(0, _C.tensor(a % n if n else a)).reshape(*index.shape)


@_op("put")
def put(input, index, source, accumulate=False):
    """A copy of ``input`` (flattened view) with ``source`` written (or added, with
    ``accumulate``) at ``index``."""
    flat = input.reshape(-1)
    n = flat.shape[0]
    a = index.reshape(-1).detach().numpy() % builtins.max(n, 1)
    it = _C.tensor(a.astype(np.int64))
    src = source.reshape(-1)
    if accumulate:
        return flat.index_add(0, it, src).reshape(*input.shape)
    return index_copy(flat, 0, it, src).reshape(*input.shape)


@_op("select_scatter")
def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``src`` embedded at ``index`` of dimension ``dim``."""
    d = _dim(dim, input.dim())
    return index_copy(input, d, _C.tensor([index % input.shape[d]]), src.unsqueeze(d))


@_op("slice_scatter")
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``src`` embedded at ``start:end:step`` of dimension
    ``dim``."""
    d = _dim(dim, input.dim())
    idx = np.arange(input.shape[d])[slice(start, end, step)]
    return index_copy(input, d, _C.tensor(idx.astype(np.int64)), src)


@_op("diagonal_scatter")
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of ``input`` with ``src`` embedded on the diagonal ``offset`` of the planes
    ``(dim1, dim2)``."""
    n = input.dim()
    d1, d2 = _dim(dim1, n), _dim(dim2, n)
    x = movedim(input, [d1, d2], [-2, -1])
    r, c = x.shape[-2], x.shape[-1]
    i, j = _diag_index(r, c, offset)
    flat = x.reshape(*x.shape[:-2], r * c)
    out = index_copy(flat, flat.dim() - 1, _C.tensor((i * c + j).astype(np.int64)), src)
    return movedim(out.reshape(*x.shape), [n - 2, n - 1], [d1, d2])


# --- stacking and grids ---------------------------------------------------------------------

def _atleast(n, tensors):
    single = len(tensors) == 1 and isinstance(tensors[0], _T)
    ts = tensors[0] if len(tensors) == 1 and not single else tensors
    out = []
    for t in ts:
        if n >= 1 and t.dim() == 0:
            t = t.reshape(1)
        if n >= 2 and t.dim() == 1:
            t = t.unsqueeze(0)
        if n >= 3 and t.dim() == 2:
            t = t.unsqueeze(-1)
        out.append(t)
    return out[0] if single else tuple(out)


@_op("atleast_1d", method=False)
def atleast_1d(*tensors):
    """Views with at least one dimension."""
    return _atleast(1, tensors)


@_op("atleast_2d", method=False)
def atleast_2d(*tensors):
    """Views with at least two dimensions (1-D becomes [1, n])."""
    return _atleast(2, tensors)


@_op("atleast_3d", method=False)
def atleast_3d(*tensors):
    """Views with at least three dimensions (2-D becomes [m, n, 1])."""
    return _atleast(3, tensors)


@_op("hstack", method=False)
def hstack(tensors):
    """Concatenates along dimension 1 (0 for 1-D tensors)."""
    ts = atleast_1d(*tensors)
    ts = (ts,) if isinstance(ts, _T) else ts
    return _C.cat(list(ts), 0 if ts[0].dim() == 1 else 1)


@_op("vstack", "row_stack", method=False)
def vstack(tensors):
    """Concatenates along dimension 0 after making each at least 2-D."""
    ts = atleast_2d(*tensors)
    return _C.cat(list((ts,) if isinstance(ts, _T) else ts), 0)


@_op("dstack", method=False)
def dstack(tensors):
    """Concatenates along dimension 2 after making each at least 3-D."""
    ts = atleast_3d(*tensors)
    return _C.cat(list((ts,) if isinstance(ts, _T) else ts), 2)


@_op("column_stack", method=False)
def column_stack(tensors):
    """Stacks 0-/1-D tensors as columns, concatenating 2-D ones along dimension 1."""
    ts = [t.reshape(-1, 1) if t.dim() <= 1 else t for t in tensors]
    return _C.cat(ts, 1)


@_op("block_diag", method=False)
def block_diag(*tensors):
    """The block-diagonal matrix of the given (0-, 1- or 2-D) tensors."""
    ms = []
    for t in tensors:
        if t.dim() > 2:
            raise ValueError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. "
                             f"Input has {t.dim()} dimensions")
        ms.append(t.reshape(1, -1) if t.dim() < 2 else t)
    if not ms:
        return _C.zeros(1, 0)
    cols = builtins.sum(m.shape[1] for m in ms)
    rows, start = [], 0
    for m in ms:
        left, right = start, cols - start - m.shape[1]
        rows.append(_C.functional.pad(m, [left, right]))
        start += m.shape[1]
    return _C.cat(rows, 0)


@_op("meshgrid", method=False)
def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids of 1-D tensors: ``indexing='ij'`` (matrix) or ``'xy'``
    (Cartesian)."""
    ts = list(tensors[0]) if len(tensors) == 1 and not isinstance(tensors[0], _T) else \
        list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                         f"received: {indexing}")
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    out = []
    for i, t in enumerate(ts):
        s = [1] * len(ts)
        s[i] = shape[i]
        out.append(t.reshape(*s).expand(*shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


@_op("cartesian_prod", method=False)
def cartesian_prod(*tensors):
    """The Cartesian product of 1-D tensors, as rows."""
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return _C.stack([g.reshape(-1) for g in grids], 1)


@_op("combinations", method=False)
def combinations(input, r=2, with_replacement=False):
    """The length-``r`` combinations of the elements of a 1-D tensor, as rows."""
    import itertools

    if input.dim() != 1:
        raise ValueError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    n = input.shape[0]
    it = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    idx = np.array(list(it(range(n), r)), dtype=np.int64).reshape(-1, r)
    if idx.size == 0:
        return _C.zeros(0, r, dtype=input.dtype) if r else _C.zeros(0, dtype=input.dtype)
    return input.index_select(0, _C.tensor(idx.reshape(-1))).reshape(-1, r)


@_op("tril_indices", method=False)
def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The [2, N] coordinates of the lower triangle (diagonal ``offset``)."""
    r, c = np.tril_indices(row, offset, col)
    return _C.tensor(np.stack([r, c]).astype(np.int64))


@_op("triu_indices", method=False)
def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The [2, N] coordinates of the upper triangle (diagonal ``offset``)."""
    r, c = np.triu_indices(row, offset, col)
    return _C.tensor(np.stack([r, c]).astype(np.int64))


@_op("vander", method=False)
def vander(x, N=None, increasing=False):
    """The Vandermonde matrix: columns ``x^(N-1), ..., x^0`` (increasing powers with
    ``increasing``)."""
    if x.dim() != 1:
        raise ValueError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise ValueError("N must be non-negative.")
    cols = [x ** 0 if k == 0 else x ** k for k in range(n)]
    if not increasing:
        cols = cols[::-1]
    return _C.stack(cols, 1) if cols else _C.zeros(x.shape[0], 0, dtype=x.dtype)


# --- statistics and distances --------------------------------------------------------------

@_op("cdist", method=False)
def cdist(x1, x2, p=2.0, compute_mode=None):
    """``p``-norm distances between each row of ``x1`` [.., P, M] and of ``x2``
    [.., R, M]: [.., P, R]."""
    if x1.dim() < 2 or x2.dim() < 2:
        raise ValueError(f"cdist only supports at least 2D tensors, X1 got: {x1.dim()}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"X1 and X2 must have the same number of columns. X1: "
                         f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise ValueError("cdist only supports non-negative p values")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 0:
        return (diff != 0).to(x1.dtype).sum(-1)
    return diff.norm(p, -1)


@_op("cov")
def cov(input, *, correction=1, fweights=None, aweights=None):
    """Covariance matrix of the variables in the rows of ``input`` (observations in the
    columns), with frequency and analytic weights."""
    if input.dim() > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an "
                         f"input with {input.dim()} dimensions")
    x = input.reshape(1, -1) if input.dim() < 2 else input
    x = x if x.is_floating_point() else x.to(_C.float32)
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights.to(x.dtype)
    if aweights is not None:
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        avg = x.mean(1, keepdim=True)
        wsum = float(n)
        norm = wsum - correction
        xc = x - avg
        c = xc.matmul(xc.t()) / builtins.max(norm, 0)
    else:
        wsum_t = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum_t
        if correction == 0:
            norm = wsum_t
        elif aweights is None:
            norm = wsum_t - correction
        else:
            norm = wsum_t - correction * (w * aweights.to(x.dtype)).sum() / wsum_t
        xc = x - avg
        c = (xc * w).matmul(xc.t()) / norm.clamp(min=0)
    return c.squeeze() if input.dim() < 2 else c


@_op("corrcoef")
def corrcoef(input):
    """Pearson correlation coefficients of the variables in the rows of ``input``,
    clipped to [-1, 1]."""
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = diagonal(c).sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1, 1)


@_op("trapezoid", "trapz", method=False)
def trapezoid(y, x=None, *, dx=None, dim=-1):
    """Integral of ``y`` along ``dim`` by the trapezoidal rule, with sample points ``x``
    or spacing ``dx`` (1 by default)."""
    d = _dim(dim, y.dim())
    n = y.shape[d]
    if n == 0:
        return y.sum(d)
    a, b = y.narrow(d, 0, n - 1), y.narrow(d, 1, n - 1)
    if x is not None and isinstance(x, _T):
        xd = x.narrow(x.dim() - 1 if x.dim() == 1 else d, 1, n - 1) - \
            x.narrow(x.dim() - 1 if x.dim() == 1 else d, 0, n - 1)
        if x.dim() == 1 and y.dim() > 1:
            shape = [1] * y.dim()
            shape[d] = n - 1
            xd = xd.reshape(*shape)
        return ((a + b) * xd).sum(d) / 2
    h = dx if dx is not None else (x if x is not None else 1.0)
    return (a + b).sum(d) * (h / 2)


@_op("cumulative_trapezoid", method=False)
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """Running trapezoidal integral of ``y`` along ``dim`` (one element shorter)."""
    d = _dim(dim, y.dim())
    n = y.shape[d]
    a, b = y.narrow(d, 0, builtins.max(n - 1, 0)), y.narrow(d, builtins.min(1, n),
                                                            builtins.max(n - 1, 0))
    if x is not None and isinstance(x, _T):
        xd = x.narrow(x.dim() - 1 if x.dim() == 1 else d, 1, n - 1) - \
            x.narrow(x.dim() - 1 if x.dim() == 1 else d, 0, n - 1)
        if x.dim() == 1 and y.dim() > 1:
            shape = [1] * y.dim()
            shape[d] = n - 1
            xd = xd.reshape(*shape)
        return ((a + b) * xd / 2).cumsum(d)
    h = dx if dx is not None else (x if x is not None else 1.0)
    return ((a + b) * (h / 2)).cumsum(d)


# --- searching ----------------------------------------------------------------------------

@_op("searchsorted", method=False)
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Insertion indices of ``input`` into the innermost dimension of ``sorted_sequence``
    (``right`` / ``side='right'`` for the last suitable position)."""
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise ValueError("side and right can't be set to opposites, got side of left while "
                             "right was True")
        right = side == "right"
    seq = sorted_sequence.detach().numpy()
    if sorter is not None:
        seq = np.take_along_axis(seq, sorter.detach().numpy().astype(np.int64), -1)
    scalar = not isinstance(input, _T)
    vals = np.asarray(input if scalar else input.detach().numpy())
    s = "right" if right else "left"
    if seq.ndim == 1:
        out = np.searchsorted(seq, vals, side=s)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ValueError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or "
                             f"the first N-1 dimensions of boundaries tensor and input value "
                             f"tensor must match, but we got boundaries tensor "
                             f"{list(seq.shape)} and input value tensor {list(vals.shape)}")
        out = np.stack([np.searchsorted(r, v, side=s) for r, v in
                        zip(seq.reshape(-1, seq.shape[-1]),
                            vals.reshape(-1, vals.shape[-1]))]).reshape(vals.shape)
    return _C.tensor(np.asarray(out).astype(np.int32 if out_int32 else np.int64))


@_op("bucketize", method=False)
def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of each element of ``input`` among the sorted 1-D
    ``boundaries`` (``right=True``: ``boundaries[i-1] <= x < boundaries[i]``)."""
    if boundaries.dim() != 1:
        raise ValueError(f"boundaries tensor must be 1 dimension, but got dim("
                         f"{boundaries.dim()})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# --- random in-place fills (deepseek's generator, so manual_seed reproduces them) ---------

def _u(self):
    return _C.rand(*self.shape, dtype=self.dtype if self.is_floating_point() else _C.float64)


def _fill(self, values, name):
    return _C._assign_inplace(self, values.to(self.dtype), name)


def _bernoulli(input, p=None, *, generator=None):
    """Samples 0/1 with probability ``input`` (or ``p``) for each element."""
    prob = input if p is None else p
    u = _C.rand(*input.shape, dtype=input.dtype if input.is_floating_point() else _C.float32)
    return (u < prob).to(input.dtype)


def _bernoulli_(self, p=0.5, *, generator=None):
    return _fill(self, (_u(self) < p), "bernoulli_")


def _exponential_(self, lambd=1.0, *, generator=None):
    return _fill(self, -(1 - _u(self)).log() / lambd, "exponential_")


def _geometric_(self, p, *, generator=None):
    if not 0 < p < 1:
        raise ValueError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _fill(self, ((1 - _u(self)).log() / math.log1p(-p)).ceil().clamp(min=1),
                 "geometric_")


def _log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    return _fill(self, (_C.randn(*self.shape, dtype=self.dtype) * std + mean).exp(),
                 "log_normal_")


def _cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    from ._math_ops import tan

    return _fill(self, tan((_u(self) - 0.5) * math.pi) * sigma + median, "cauchy_")


def _random_(self, from_=0, to=None, *, generator=None):
    if to is None:
        lo, hi = 0, from_ if from_ else (2 ** 24 if self.is_floating_point() else 2 ** 31)
        if from_ == 0 and self.dtype == _C.bool:
            hi = 2
    else:
        lo, hi = from_, to
    if hi <= lo:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={lo} >= "
                         f"to={hi}")
    return _fill(self, (_u(self) * (hi - lo)).floor() + lo, "random_")


METHODS.update({"bernoulli": _bernoulli, "bernoulli_": _bernoulli_,
                "exponential_": _exponential_, "geometric_": _geometric_,
                "log_normal_": _log_normal_, "cauchy_": _cauchy_, "random_": _random_})
FUNCTIONS["bernoulli"] = _bernoulli


# --- in-place forms of the compositions above --------------------------------------------

INPLACE = ["addmm", "addmv", "addr", "baddbmm", "addbmm", "addcmul", "addcdiv", "lerp",
           "index_fill", "index_copy", "masked_scatter", "put", "renorm", "cumprod",
           "logit"]


# --- reductions into positions (scatter_reduce, index_reduce) and index_put -------------

_REDUCE_FILL = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -math.inf, "amin": math.inf}


def _reduce_into(input, targets, src, reduce, include_self, who):
    """``input`` with, at each flat position ``targets[j]``, the ``reduce`` of ``src[j]``s
    sent there (and the old value when ``include_self``); a padded gather table per target
    keeps everything differentiable."""
    if reduce not in _REDUCE_FILL:
        raise ValueError(f"{who}: reduce argument must be either sum, prod, mean, amax or amin, "
                         f"got {reduce}")
    flat = input.reshape(-1)
    n = flat.shape[0]
    src_flat = src.reshape(-1).to(input.dtype)
    order = np.argsort(targets, kind="stable")
    t_sorted = targets[order]
    uniq, starts, counts = np.unique(t_sorted, return_index=True, return_counts=True)
    k = int(counts.max()) + 1 if len(uniq) else 1
    sentinel = n + len(targets)
    table = np.full((len(uniq), k), sentinel, dtype=np.int64)
    for r, (s, c) in enumerate(zip(starts, counts)):
        if include_self:
            table[r, 0] = uniq[r]
        table[r, 1:1 + c] = n + order[s:s + c]
    fill = _REDUCE_FILL[reduce]
    ext = _C.cat([flat, src_flat, _C.full((1,), fill, dtype=input.dtype)], 0)
    g = ext.index_select(0, _C.tensor(table.reshape(-1))).reshape(len(uniq), k)
    if reduce in ("sum", "mean"):
        v = g.sum(1)
        if reduce == "mean":
            cnt = counts + (1 if include_self else 0)
            v = v / _C.tensor(cnt.astype(np.float64)).to(input.dtype)
            if not input.is_floating_point():
                v = v.floor()
    elif reduce == "prod":
        v = g.prod(1)
    elif reduce == "amax":
        v = g.amax(1)
    else:
        v = g.amin(1)
    v = v.to(input.dtype)
    out = index_copy(flat, 0, _C.tensor(uniq.astype(np.int64)), v)
    return out.reshape(*input.shape)


def _target_positions(shape, index, dim):
    """Flat positions in ``shape`` for each element of ``index`` (scatter along ``dim``)."""
    idx = index.detach().numpy().astype(np.int64)
    n = shape[dim]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index {int(idx.max())} is out of bounds for dimension {dim} with "
                         f"size {n}")
    coords = list(np.indices(idx.shape))
    coords[dim] = idx % n if n else idx
    return np.ravel_multi_index(tuple(coords), shape).reshape(-1)


@_op("scatter_reduce")
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """``input`` with ``src`` reduced (sum, prod, mean, amax, amin) into the positions
    ``index`` names along ``dim``; ``include_self=False`` leaves the old values out of the
    reduction."""
    d = _dim(dim, input.dim())
    if index.dim() != src.dim() or index.dim() != input.dim():
        raise ValueError("Index tensor must have the same number of dimensions as self and src "
                         "tensors")
    pos = _target_positions(tuple(input.shape), index, d)
    s = src
    if tuple(src.shape) != tuple(index.shape):
        for i, (a, b) in enumerate(zip(index.shape, src.shape)):
            if a > b:
                raise ValueError(f"Expected index {list(index.shape)} to be smaller than src "
                                 f"{list(src.shape)} apart from dimension {d}")
        for i, a in enumerate(index.shape):
            s = s.narrow(i, 0, a)
    return _reduce_into(input, pos, s, reduce, include_self, "scatter_reduce")


@_op("index_reduce")
def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """``input`` with the slices of ``source`` reduced (prod, mean, amax, amin) into the
    slices ``index`` (1-D) names along ``dim``."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or "
                         f"amin but got {reduce}.")
    d = _dim(dim, input.dim())
    idx = index.reshape(-1)
    if idx.shape[0] != source.shape[d]:
        raise ValueError(f"index_reduce_(): Number of indices ({idx.shape[0]}) should be equal "
                         f"to source.size(dim) ({source.shape[d]})")
    shape = [1] * source.dim()
    shape[d] = idx.shape[0]
    full_index = idx.reshape(*shape).expand(*source.shape)
    pos = _target_positions(tuple(input.shape), full_index, d)
    return _reduce_into(input, pos, source, reduce, include_self, "index_reduce")


@_op("index_put")
def index_put(input, indices, values, accumulate=False):
    """``input`` with ``values`` (broadcast) written (or added, with ``accumulate``) at the
    advanced index ``indices`` (a tuple of integer or bool tensors, one per leading
    dimension)."""
    idx = []
    for t in indices:
        if t is None:
            raise NotImplementedError("index_put: None entries in indices are not supported")
        a = t.detach().numpy()
        if a.dtype == np.bool_:
            idx.extend(np.nonzero(a))
        else:
            idx.append(a.astype(np.int64))
    if len(idx) > input.dim():
        raise IndexError(f"too many indices for tensor of dimension {input.dim()} (got "
                         f"{len(idx)})")
    idx = np.broadcast_arrays(*idx)
    lead = tuple(input.shape[:len(idx)])
    rest = list(input.shape[len(idx):])
    for a, n in zip(idx, lead):
        if a.size and (a.min() < -n or a.max() >= n):
            raise IndexError(f"index {int(a.max())} is out of bounds for dimension with size {n}")
    rows = np.ravel_multi_index(tuple(a % n for a, n in zip(idx, lead)), lead).reshape(-1)
    m = int(np.prod(rest)) if rest else 1
    base = input.reshape(-1, m)
    vals = values.to(input.dtype) if isinstance(values, _T) else \
        _C.full((), float(values), dtype=input.dtype)
    vals = vals.expand(*(list(idx[0].shape) + rest)).reshape(-1, m)
    rt = _C.tensor(rows.astype(np.int64))
    out = base.index_add(0, rt, vals) if accumulate else index_copy(base, 0, rt, vals)
    return out.reshape(*input.shape)


INPLACE += ["scatter_reduce", "index_reduce", "index_put"]


# --- strided views over the flat elements, and small Tensor utilities --------------------

def _strided_index(input, size, stride, storage_offset, who):
    size, stride = _ints(size), _ints(stride)
    if len(size) != len(stride):
        raise ValueError(f"mismatch in length of strides and shape: {len(size)} vs "
                         f"{len(stride)}")
    off = input.storage_offset() if storage_offset is None else int(storage_offset)
    if not input.is_contiguous() or input.storage_offset() != 0:
        raise NotImplementedError(f"{who}: only contiguous tensors with storage_offset 0 are "
                                  f"supported (deepseek cannot address the rest of a view's "
                                  f"storage); call .contiguous() first")
    if any(s < 0 for s in stride) or any(n < 0 for n in size):
        raise ValueError(f"{who}: negative strides or sizes are not supported")
    idx = np.full(tuple(size), off, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        idx = idx + (np.arange(n) * s).reshape(shape)
    need = int(idx.max()) + 1 if idx.size else 0
    if need > input.numel():
        raise ValueError(f"setStorage: sizes {size}, strides {stride}, storage offset {off} "
                         f"require a storage of size {need}, but the tensor has "
                         f"{input.numel()} elements")
    return idx


@_op("as_strided")
def as_strided(input, size, stride, storage_offset=None):
    """The elements at ``storage_offset + sum_k i_k stride_k`` of ``input``'s (contiguous)
    element sequence, as a tensor of ``size`` (a gather: it copies, unlike PyTorch's
    view)."""
    idx = _strided_index(input, size, stride, storage_offset, "as_strided")
    flat = input.reshape(-1)
    return flat.index_select(0, _C.tensor(idx.reshape(-1))).reshape(*_ints(size))


@_op("as_strided_scatter")
def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """A copy of ``input`` with ``src`` written at the positions ``as_strided`` would
    read."""
    idx = _strided_index(input, size, stride, storage_offset, "as_strided_scatter")
    flat = input.reshape(-1)
    return index_copy(flat, 0, _C.tensor(idx.reshape(-1)), src.reshape(-1)) \
        .reshape(*input.shape)


FUNCTIONS["as_strided_copy"] = as_strided


def _apply_(self, callable):
    """Applies a Python function to every element, in place (CPU tensors that do not
    require grad; slow, as in PyTorch)."""
    if self.requires_grad:
        raise RuntimeError("apply_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    out = np.vectorize(callable, otypes=[a.dtype])(a) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype),
                              "apply_")


def _map_(self, tensor, callable):
    """``self[i] = callable(self[i], tensor[i])`` elementwise in place (``tensor``
    broadcast)."""
    if self.requires_grad:
        raise RuntimeError("map_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    b = np.broadcast_to(tensor.detach().numpy(), a.shape)
    out = np.vectorize(callable, otypes=[a.dtype])(a, b) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype), "map_")


def _map2_(self, x, y, callable):
    """``self[i] = callable(self[i], x[i], y[i])`` elementwise in place."""
    if self.requires_grad:
        raise RuntimeError("map2_ is only implemented on CPU tensors that don't require grad")
    a = self.detach().numpy()
    b = np.broadcast_to(x.detach().numpy(), a.shape)
    c = np.broadcast_to(y.detach().numpy(), a.shape)
    out = np.vectorize(callable, otypes=[a.dtype])(a, b, c) if a.size else a
    return _C._assign_inplace(self, _C.tensor(np.ascontiguousarray(out)).to(self.dtype),
                              "map2_")


def _new(self, *args, **kwargs):
    """Legacy constructor: ``x.new(2, 3)`` (zeros) or ``x.new(data)``, with ``x``'s
    dtype."""
    if kwargs.get("device") not in (None, "cpu"):
        raise RuntimeError("deepseek has CPU tensors only")
    if not args:
        return _C.zeros(0, dtype=self.dtype)
    if len(args) == 1 and not isinstance(args[0], int):
        a = args[0]
        if isinstance(a, tuple) and all(isinstance(v, int) for v in a):
            return _C.zeros(*a, dtype=self.dtype)
        if isinstance(a, _T):
            return a.detach().to(self.dtype)
        return _C.tensor(a, dtype=self.dtype)
    return _C.zeros(*[int(v) for v in args], dtype=self.dtype)


def _dim_order(self, *, ambiguity_check=False):
    """The dimensions from outermost to innermost in memory (by decreasing stride)."""
    st = self.stride()
    return tuple(sorted(range(self.dim()), key=lambda d: (-st[d], d)))


def _false(self):
    return False


METHODS.update({"apply_": _apply_, "map_": _map_, "map2_": _map2_, "new": _new,
                "dim_order": _dim_order, "is_pinned": _false})
PROPERTIES = {n: property(_false) for n in ("is_xla", "is_mps", "is_xpu", "is_ipu",
                                            "is_vulkan", "is_maia", "is_mtia")}


# --- count sampling ------------------------------------------------------------------------

@_op("poisson", method=False)
def poisson(input, generator=None):
    """Samples Poisson(rate) for each element of ``input`` (the rates), by inversion of
    the CDF with deepseek's generator."""
    if bool((input < 0).any()):
        raise ValueError("poisson: expected all rates to be non-negative")
    lam = input.detach().to(_C.float64)
    u = _C.rand(*input.shape, dtype=_C.float64)
    p = (-lam).exp()
    cdf = p
    k = _C.zeros_like(lam)
    top = float(lam.max().item()) if lam.numel() else 0.0
    for i in range(1, int(top + 12 * math.sqrt(top + 1) + 20)):
        more = u > cdf
        if not bool(more.any()):
            break
        k = k + more.to(_C.float64)
        p = p * lam / i
        cdf = cdf + p
    return k.to(input.dtype)


@_op("binomial", method=False)
def binomial(count, prob, generator=None):
    """Samples Binomial(count, prob) elementwise (the sum of ``count`` Bernoulli draws)."""
    if bool((prob < 0).any()) or bool((prob > 1).any()):
        raise ValueError("binomial: expected prob in [0, 1]")
    c = count.detach().to(_C.float64)
    pr = prob.detach().to(_C.float64) + _C.zeros_like(c)
    c = c + _C.zeros_like(pr)
    n = int(c.max().item()) if c.numel() else 0
    total = _C.zeros_like(c)
    for i in range(n):
        draw = (_C.rand(*c.shape, dtype=_C.float64) < pr).logical_and(c > i)
        total = total + draw.to(_C.float64)
    return total.to(count.dtype)
