//! The dispatcher: the one way from an op to a kernel. Each function reads its tensors'
//! storages, runs one [`Backend`] method through [`launch`] (kernel counters, the lazy-mode
//! hooks, out-of-memory → `Error::OutOfMemory`) and wraps the resulting storages in tensors.
//! It never records autograd nodes (the ops in `crate::ops` do).

use super::{for_device, Backend, LstmArgs, LstmBackwardArgs, UpdateJob};
use crate::lazy::expr as lazy;
use crate::lazy::source_view;
use crate::ops::conv::ConvGeom;
use crate::ops::rnn::LstmDims;
use crate::ops::{BinaryOp, Pool2dAttrs, ReduceOp, UnaryOp};
use crate::optim::fused::UpdateRule;
use crate::tensor::{Layout, Storage};
use crate::{DType, Device, Error, Result, Tensor};

/// Runs one kernel named `name` on the backend of `device`: counts it (`lazy::stats`,
/// `DEEPSEEK_DEBUG=2`), records it for the profiler while one runs (`shapes` are its input
/// shapes, evaluated only then; `profiler::flops_of` reads them), and turns an allocation
/// failure inside it into `Error::OutOfMemory`. Every kernel launch goes through here.
fn launch<R>(
    name: &'static str,
    device: Device,
    shapes: impl FnOnce() -> Vec<Vec<usize>>,
    f: impl FnOnce(&dyn Backend) -> Result<R>,
) -> Result<R> {
    let be = for_device(device)?;
    crate::lazy::count_kernel(name);
    let _prof = crate::profiler::kernel(name, shapes);
    crate::memory::catch_oom(name, || f(be))
}

/// A tensor over a new contiguous storage.
fn out(s: Storage, shape: &[usize], device: Device) -> Tensor {
    Tensor::from_storage(s, Layout::contiguous(shape), device)
}

/// The device all of `ts` live on, or an error naming `op`.
fn device_of(op: &str, ts: &[&Tensor]) -> Result<Device> {
    let d = ts[0].device();
    if let Some(t) = ts.iter().find(|t| t.device() != d) {
        return Err(Error::device(
            op,
            format!(
                "expected all tensors on the same device, got {d} and {}",
                t.device()
            ),
        ));
    }
    Ok(d)
}

pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    if matches!(x.dtype(), DType::F32 | DType::F64) && lazy::can_defer(&[x], x.dtype()) {
        return Ok(lazy::unary(op, x));
    }
    let d = x.device();
    launch(
        op.name(),
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let g = x.read();
            Ok(out(be.unary(op, (&g, x.layout()))?, x.shape(), d))
        },
    )
}

/// `x = op(x)` in place on a contiguous float tensor (no autograd; for optimizers, clipping
/// and in-place module updates).
pub(crate) fn unary_inplace(op: UnaryOp, x: &Tensor) -> Result<()> {
    launch(
        op.name(),
        x.device(),
        || vec![x.shape().to_vec()],
        |be| {
            let mut g = x.write();
            be.unary_inplace(op, &mut g, x.layout())
        },
    )
}

/// `x = x op (alpha * b)` in `x`'s own buffer (no autograd; in-place arithmetic of a
/// materialised view such as `p.data.add_(g, alpha=-lr)`): one pass, no temporary. Done when
/// `op` is add/sub/mul/div, `x` is a contiguous float32/float64 tensor and `b` has its dtype
/// and device and broadcasts to its shape; returns false (nothing done) otherwise, and the
/// caller computes out of place. `b` sharing `x`'s storage is read from a copy.
pub(crate) fn binary_inplace(op: BinaryOp, x: &Tensor, b: &Tensor, alpha: f64) -> Result<bool> {
    if !matches!(
        op,
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
    ) || !matches!(x.dtype(), DType::F32 | DType::F64)
        || b.dtype() != x.dtype()
        || b.device() != x.device()
        || !x.is_contiguous()
        || (alpha != 1.0 && !matches!(op, BinaryOp::Add | BinaryOp::Sub))
        || crate::tensor::broadcast_shapes(op.name(), x.shape(), b.shape())
            .ok()
            .as_deref()
            != Some(x.shape())
    {
        return Ok(false);
    }
    let b = crate::lazy::source_view(b);
    let b = if b.shares_storage(x) {
        b.detach().contiguous_copy()?
    } else {
        b.detach()
    };
    let b = if b.numel() == 1 || (b.shape() == x.shape() && b.is_contiguous()) {
        b
    } else {
        b.expand(x.shape())?.contiguous()?
    };
    launch(
        op.name(),
        x.device(),
        || vec![x.shape().to_vec(), b.shape().to_vec()],
        |be| {
            let gb = b.read();
            let mut gx = x.write();
            be.binary_inplace(op, &mut gx, x.layout(), (&gb, b.layout()), alpha)
        },
    )?;
    Ok(true)
}

/// Adds the bias `b` [n] to every row of `y` [.., n] in `y`'s own buffer when `y` is the only
/// handle to a dense materialised float buffer and `b` fits (same dtype, device); returns
/// false (nothing done) otherwise, and the caller adds out of place.
pub(crate) fn bias_add_if_sole(y: &Tensor, b: &Tensor) -> Result<bool> {
    let n = *y.shape().last().unwrap_or(&0);
    if !y.is_sole_owner()
        || !matches!(y.dtype(), DType::F32 | DType::F64)
        || b.dtype() != y.dtype()
        || b.shape() != [n]
        || b.is_deferred()
        || b.device() != y.device()
    {
        return Ok(false);
    }
    let b = b.contiguous()?;
    launch(
        "add",
        y.device(),
        || vec![y.shape().to_vec(), b.shape().to_vec()],
        |be| {
            let gb = b.read();
            let mut gy = y.write();
            be.bias_add_inplace(&mut gy, y.layout(), (&gb, b.layout()))
        },
    )?;
    Ok(true)
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if matches!(a.dtype(), DType::F32 | DType::F64)
        && !matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
        && lazy::can_defer(&[a, b], a.dtype())
    {
        return Ok(lazy::binary(op, a, b, shape));
    }
    let d = device_of(op.name(), &[a, b])?;
    launch(
        op.name(),
        d,
        || vec![a.shape().to_vec(), b.shape().to_vec()],
        |be| {
            let (ga, gb) = (a.read(), b.read());
            Ok(out(
                be.binary(op, (&ga, a.layout()), (&gb, b.layout()), shape)?,
                shape,
                d,
            ))
        },
    )
}

pub(crate) fn where_(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if c.dtype() == DType::Bool
        && matches!(a.dtype(), DType::F32 | DType::F64)
        && lazy::can_defer(&[c, a, b], a.dtype())
    {
        return Ok(lazy::where_(c, a, b, shape));
    }
    let d = device_of("where", &[c, a, b])?;
    launch(
        "where",
        d,
        || vec![c.shape().to_vec(), a.shape().to_vec(), b.shape().to_vec()],
        |be| {
            let (gc, ga, gb) = (c.read(), a.read(), b.read());
            Ok(out(
                be.where_(
                    (&gc, c.layout()),
                    (&ga, a.layout()),
                    (&gb, b.layout()),
                    shape,
                )?,
                shape,
                d,
            ))
        },
    )
}

pub(crate) fn cast(x: &Tensor, dt: DType) -> Result<Tensor> {
    // Float and bool results are deferred from any source dtype (the load converts).
    if lazy::can_defer(&[x], dt)
        && (dt != DType::Bool || x.dtype().is_float() || x.dtype() == DType::Bool)
    {
        return Ok(lazy::cast(x, dt));
    }
    let d = x.device();
    launch(
        "to",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let g = x.read();
            Ok(out(be.cast((&g, x.layout()), dt)?, x.shape(), d))
        },
    )
}

pub(crate) fn reduce(op: ReduceOp, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let d = x.device();
    if crate::lazy::fuses_into_reduce(op, x, dims) {
        let be = for_device(d)?;
        return crate::memory::catch_oom(op.name(), || {
            let r = crate::lazy::reduce(be, op, x, dims)?;
            Ok(out(r, &[kept_numel(x, dims)], d))
        });
    }
    launch(
        "reduce",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let x = &source_view(x);
            let g = x.read();
            let r = be.reduce(op, (&g, x.layout()), dims)?;
            Ok(out(r, &[kept_numel(x, dims)], d))
        },
    )
}

/// The number of elements a reduction of `x` over `dims` leaves.
fn kept_numel(x: &Tensor, dims: &[usize]) -> usize {
    (0..x.rank())
        .filter(|i| !dims.contains(i))
        .map(|i| x.shape()[i])
        .product()
}

pub(crate) fn cumsum(x: &Tensor, dim: usize) -> Result<Tensor> {
    let d = x.device();
    launch(
        "cumsum",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let g = x.read();
            Ok(out(be.cumsum((&g, x.layout()), dim)?, x.shape(), d))
        },
    )
}

/// The `ord`-norm of all elements of `x` (PyTorch's `vector_norm`), as f64.
pub(crate) fn vector_norm(x: &Tensor, ord: f64) -> Result<f64> {
    let x = x.realize()?;
    launch(
        "vector_norm",
        x.device(),
        || vec![x.shape().to_vec()],
        |be| {
            let g = x.read();
            be.vector_norm((&g, x.layout()), ord)
        },
    )
}

pub(crate) fn cat(ts: &[Tensor], dim: usize, shape: &[usize]) -> Result<Tensor> {
    let refs: Vec<&Tensor> = ts.iter().collect();
    let d = device_of("cat", &refs)?;
    launch(
        "cat",
        d,
        || ts.iter().map(|t| t.shape().to_vec()).collect(),
        |be| {
            let dt = ts[0].dtype();
            let n = crate::memory::checked_numel("cat", shape)?;
            let mut dst = be.full("cat", dt, n, 0.0)?;
            let dl = Layout::contiguous(shape);
            let mut start = 0;
            for t in ts {
                let t = &source_view(t);
                let n = t.shape()[dim];
                let view = dl.slice(dim, start, n, 1);
                let g = t.read();
                be.copy(&mut dst, &view, (&g, t.layout()))?;
                start += n;
            }
            Ok(out(dst, shape, d))
        },
    )
}

pub(crate) fn pad(
    x: &Tensor,
    pads: &[(usize, usize)],
    shape: &[usize],
    value: f64,
) -> Result<Tensor> {
    let d = x.device();
    launch(
        "pad",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let n = crate::memory::checked_numel("pad", shape)?;
            let mut dst = be.full("pad", x.dtype(), n, value)?;
            let mut view = Layout::contiguous(shape);
            for (i, &(a, _)) in pads.iter().enumerate() {
                view = view.slice(i, a, x.shape()[i], 1);
            }
            let g = x.read();
            be.copy(&mut dst, &view, (&g, x.layout()))?;
            Ok(out(dst, shape, d))
        },
    )
}

/// Copies `src` into `dst`'s view in place (shapes equal, dtypes equal, distinct storages).
pub(crate) fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let d = device_of("copy_", &[dst, src])?;
    launch(
        "copy_into",
        d,
        || vec![src.shape().to_vec()],
        |be| {
            let src = source_view(src);
            let src = if src.shares_storage(dst) {
                src.contiguous_copy()?
            } else {
                src
            };
            let gs = src.read();
            let mut gd = dst.write();
            be.copy(&mut gd, dst.layout(), (&gs, src.layout()))
        },
    )
}

/// The elements of `t` as little-endian bytes, row-major (for files).
pub(crate) fn to_le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let c = t.contiguous()?;
    launch(
        "to_bytes",
        c.device(),
        || vec![c.shape().to_vec()],
        |be| {
            let g = c.read();
            be.to_le_bytes((&g, c.layout()))
        },
    )
}

pub(crate) fn indices(idx: &Tensor, op: &str) -> Result<Vec<i64>> {
    let idx = idx.realize()?;
    let be = for_device(idx.device())?;
    crate::memory::catch_oom("indices", || {
        let g = idx.read();
        be.indices((&g, idx.layout()), op)
    })
}

pub(crate) fn index_select(x: &Tensor, dim: usize, idx: &[i64]) -> Result<Tensor> {
    let d = x.device();
    launch(
        "index_select",
        d,
        || vec![x.shape().to_vec(), vec![idx.len()]],
        |be| {
            let g = x.read();
            let mut shape = x.shape().to_vec();
            shape[dim] = idx.len();
            Ok(out(be.index_select((&g, x.layout()), dim, idx)?, &shape, d))
        },
    )
}

pub(crate) fn gather(x: &Tensor, dim: usize, idx: &[i64], ishape: &[usize]) -> Result<Tensor> {
    let d = x.device();
    launch(
        "gather",
        d,
        || vec![x.shape().to_vec(), ishape.to_vec()],
        |be| {
            let g = x.read();
            Ok(out(
                be.gather((&g, x.layout()), dim, idx, ishape)?,
                ishape,
                d,
            ))
        },
    )
}

/// `base` with `src` scattered into it along `dim` (added when `accumulate`). `base` is
/// taken by value: a buffer nothing else holds (a fresh zeros in a backward) is written in
/// place; otherwise it is copied first.
pub(crate) fn scatter(
    base: Tensor,
    dim: usize,
    idx: &[i64],
    ishape: &[usize],
    src: &Tensor,
    accumulate: bool,
) -> Result<Tensor> {
    let name = if accumulate { "scatter_add" } else { "scatter" };
    let d = device_of(name, &[&base, src])?;
    let bshape = base.shape().to_vec();
    launch(
        name,
        d,
        || vec![bshape.clone(), ishape.to_vec(), src.shape().to_vec()],
        |be| {
            let b = owned_or_copy(base)?;
            {
                let gs = src.read();
                let mut gb = b.write();
                be.scatter(
                    &mut gb,
                    b.layout(),
                    dim,
                    idx,
                    ishape,
                    (&gs, src.layout()),
                    accumulate,
                )?;
            }
            Ok(b)
        },
    )
}

/// `base` with the slices of `src` added at `idx` along `dim`; `base` is taken by value as in
/// [`scatter`].
pub(crate) fn index_add(base: Tensor, dim: usize, idx: &[i64], src: &Tensor) -> Result<Tensor> {
    let d = device_of("index_add", &[&base, src])?;
    let bshape = base.shape().to_vec();
    launch(
        "index_add",
        d,
        || vec![bshape.clone(), vec![idx.len()], src.shape().to_vec()],
        |be| {
            let b = owned_or_copy(base)?;
            let src = src.contiguous()?;
            {
                let gs = src.read();
                let mut gb = b.write();
                be.index_add(&mut gb, b.shape(), dim, idx, (&gs, src.layout()))?;
            }
            Ok(b)
        },
    )
}

/// `t` itself when this is the only handle to its dense buffer (so writing it in place is
/// invisible to anyone), else a dense copy; detached either way.
fn owned_or_copy(t: Tensor) -> Result<Tensor> {
    let t = t.detach_owned();
    if t.is_sole_owner() {
        Ok(t)
    } else {
        Ok(t.contiguous_copy()?.detach())
    }
}

pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = device_of("matmul", &[a, b])?;
    let (a, b) = (&source_view(a), &source_view(b));
    launch(
        "matmul",
        d,
        || vec![a.shape().to_vec(), b.shape().to_vec()],
        |be| {
            let r = a.rank();
            let mut shape = a.shape()[..r - 1].to_vec();
            shape.push(b.shape()[r - 1]);
            let (ga, gb) = (a.read(), b.read());
            Ok(out(
                be.matmul((&ga, a.layout()), (&gb, b.layout()))?,
                &shape,
                d,
            ))
        },
    )
}

/// `t` as a contiguous tensor of float dtype `dt` (a no-op when it already is one).
fn float_contiguous(t: &Tensor, dt: DType) -> Result<Tensor> {
    t.to_dtype(dt)?.contiguous()
}

/// The dtype a float kernel computes `dt` in: itself for f32/f64, f32 otherwise.
fn compute_dtype(dt: DType) -> DType {
    if matches!(dt, DType::F32 | DType::F64) {
        dt
    } else {
        DType::F32
    }
}

/// Softmax / log-softmax over the last dim (any layout in, contiguous out).
pub(crate) fn softmax_last(x: &Tensor, log: bool) -> Result<Tensor> {
    let d = x.device();
    launch(
        "softmax_last",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let n = *x.shape().last().unwrap_or(&1);
            let c = float_contiguous(x, compute_dtype(x.dtype()))?;
            let g = c.read();
            let y = out(be.softmax_rows((&g, c.layout()), n, log)?, x.shape(), d);
            y.to_dtype(x.dtype())
        },
    )
}

/// The input gradient of [`softmax_last`] from its output `y` and the output gradient `g`
/// (same shape; reduced over the last dim), in `y`'s dtype.
pub(crate) fn softmax_backward_last(g: &Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    let d = device_of("softmax_backward", &[g, y])?;
    launch(
        "softmax_backward",
        d,
        || vec![g.shape().to_vec(), y.shape().to_vec()],
        |be| {
            let n = *y.shape().last().unwrap_or(&1);
            let dt = compute_dtype(y.dtype());
            let (gc, yc) = (float_contiguous(g, dt)?, float_contiguous(y, dt)?);
            let (gg, gy) = (gc.read(), yc.read());
            let r = be.softmax_backward_rows((&gg, gc.layout()), (&gy, yc.layout()), n, log)?;
            out(r, y.shape(), d).to_dtype(y.dtype())
        },
    )
}

/// Fused cross-entropy rows of x [N, C] (f32/f64) against in-range i64 targets [N]:
/// (loss [N], logsumexp [N]).
pub(crate) fn cross_entropy(
    x: &Tensor,
    t: &[i64],
    ignore: i64,
    ls: f64,
) -> Result<(Tensor, Tensor)> {
    let d = x.device();
    launch(
        "cross_entropy",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let (rows, n) = (x.shape()[0], x.shape()[1]);
            let c = x.contiguous()?;
            let g = c.read();
            let (l, s) = be.cross_entropy((&g, c.layout()), n, t, ignore, ls)?;
            Ok((out(l, &[rows], d), out(s, &[rows], d)))
        },
    )
}

/// Gradient of [`cross_entropy`] w.r.t. x, from the per-row output gradient `g` [N].
pub(crate) fn cross_entropy_backward(
    x: &Tensor,
    t: &[i64],
    lse: &Tensor,
    g: &Tensor,
    ignore: i64,
    ls: f64,
) -> Result<Tensor> {
    let d = device_of("cross_entropy", &[x, lse, g])?;
    launch(
        "cross_entropy_backward",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let n = x.shape()[1];
            let (x, lse) = (x.contiguous()?, lse.contiguous()?);
            let g = float_contiguous(g, x.dtype())?;
            let (gx, gl, gg) = (x.read(), lse.read(), g.read());
            let dx = be.cross_entropy_backward(
                (&gx, x.layout()),
                n,
                t,
                (&gl, lse.layout()),
                (&gg, g.layout()),
                ignore,
                ls,
            )?;
            Ok(out(dx, x.shape(), d))
        },
    )
}

/// Layer norm over the trailing `n` elements: (y, mean, rstd); mean/rstd have one entry per row.
pub(crate) fn layer_norm(
    x: &Tensor,
    n: usize,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let d = x.device();
    launch(
        "layer_norm",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let dt = x.dtype();
            let cdt = compute_dtype(dt);
            let xc = float_contiguous(x, cdt)?;
            let wc = w.map(|t| float_contiguous(t, cdt)).transpose()?;
            let bc = b.map(|t| float_contiguous(t, cdt)).transpose()?;
            let rows = x.numel().checked_div(n).unwrap_or(0);
            let gx = xc.read();
            let gw = wc.as_ref().map(|t| t.read());
            let gb = bc.as_ref().map(|t| t.read());
            let [y, m, r] = be.layer_norm(
                (&gx, xc.layout()),
                n,
                gw.as_deref().zip(wc.as_ref()).map(|(g, t)| (g, t.layout())),
                gb.as_deref().zip(bc.as_ref()).map(|(g, t)| (g, t.layout())),
                eps,
            )?;
            let y = out(y, x.shape(), d).to_dtype(dt)?;
            Ok((y, out(m, &[rows], d), out(r, &[rows], d)))
        },
    )
}

/// conv2d forward (f16/bf16 compute in f32).
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, gm: &ConvGeom) -> Result<Tensor> {
    let d = device_of("conv2d", &[x, w])?;
    launch(
        "conv2d",
        d,
        || {
            vec![
                x.shape().to_vec(),
                w.shape().to_vec(),
                vec![gm.n, gm.o, gm.ho, gm.wo],
            ]
        },
        |be| {
            let cdt = compute_dtype(x.dtype());
            let (xc, wc) = (float_contiguous(x, cdt)?, float_contiguous(w, cdt)?);
            let (gx, gw) = (xc.read(), wc.read());
            let y = be.conv2d((&gx, xc.layout()), (&gw, wc.layout()), gm)?;
            out(y, &[gm.n, gm.o, gm.ho, gm.wo], d).to_dtype(x.dtype())
        },
    )
}

/// conv2d backward: (dx, dw); a gradient not asked for is zeros.
pub(crate) fn conv2d_backward(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    gm: &ConvGeom,
    need_dx: bool,
    need_dw: bool,
) -> Result<(Tensor, Tensor)> {
    let d = device_of("conv2d", &[x, w, dy])?;
    launch(
        "conv2d_backward",
        d,
        || vec![x.shape().to_vec(), w.shape().to_vec(), dy.shape().to_vec()],
        |be| {
            let cdt = compute_dtype(x.dtype());
            let xc = float_contiguous(x, cdt)?;
            let wc = float_contiguous(w, cdt)?;
            let dc = float_contiguous(dy, cdt)?;
            let (gx, gw, gd) = (xc.read(), wc.read(), dc.read());
            let (dx, dw) = be.conv2d_backward(
                (&gx, xc.layout()),
                (&gw, wc.layout()),
                (&gd, dc.layout()),
                gm,
                need_dx,
                need_dw,
            )?;
            let dx = match dx {
                Some(s) => out(s, x.shape(), d).to_dtype(x.dtype())?,
                None => x.zeros_like()?,
            };
            let dw = match dw {
                Some(s) => out(s, w.shape(), d).to_dtype(w.dtype())?,
                None => w.zeros_like()?,
            };
            Ok((dx, dw))
        },
    )
}

/// 2-D pooling of x [N, C, H, W] -> (y, argmax-within-plane for max pooling).
pub(crate) fn pool2d(
    x: &Tensor,
    ho: usize,
    wo: usize,
    a: &Pool2dAttrs,
) -> Result<(Tensor, Tensor)> {
    if !x.dtype().is_float() {
        return Err(Error::dtype(
            "pool2d",
            format!("expected a floating-point input, got {}", x.dtype()),
        ));
    }
    let d = x.device();
    launch(
        "pool2d",
        d,
        || vec![x.shape().to_vec()],
        |be| {
            let s = x.shape();
            let xc = float_contiguous(x, compute_dtype(x.dtype()))?;
            let g = xc.read();
            let (y, idx) = be.pool2d((&g, xc.layout()), ho, wo, a)?;
            let n = idx.len();
            Ok((
                out(y, &[s[0], s[1], ho, wo], d).to_dtype(x.dtype())?,
                out(idx, &[n], d),
            ))
        },
    )
}

/// Average-pooling backward.
pub(crate) fn avg_pool2d_backward(
    dy: &Tensor,
    in_shape: &[usize],
    a: &Pool2dAttrs,
) -> Result<Tensor> {
    let d = dy.device();
    launch(
        "avg_pool2d_backward",
        d,
        || vec![dy.shape().to_vec()],
        |be| {
            let dc = float_contiguous(dy, DType::F64)?;
            let g = dc.read();
            let dx = be.avg_pool2d_backward((&g, dc.layout()), in_shape, a)?;
            out(dx, in_shape, d).to_dtype(dy.dtype())
        },
    )
}

/// One LSTM layer over time-major x [T, B, I]: (out, h_T, c_T, gates, cells).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_layer(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: Option<&Tensor>,
    w_hh: &Tensor,
    bias: &Tensor,
    dims: LstmDims,
) -> Result<[Tensor; 5]> {
    let d = device_of("lstm", &[x, h0, c0, w_hh, bias])?;
    launch(
        "lstm_layer",
        d,
        || crate::profiler::lstm_shapes(dims.t, dims.b, dims.i, dims.h, w_ih.is_some()),
        |be| {
            let c = |t: &Tensor| t.contiguous();
            let (x, h0, c0, w_hh, bias) = (c(x)?, c(h0)?, c(c0)?, c(w_hh)?, c(bias)?);
            let w_ih = w_ih.map(c).transpose()?;
            let gs = [x.read(), h0.read(), c0.read(), w_hh.read(), bias.read()];
            let gi = w_ih.as_ref().map(|t| t.read());
            let args = LstmArgs {
                x: (&gs[0], x.layout()),
                h0: (&gs[1], h0.layout()),
                c0: (&gs[2], c0.layout()),
                w_ih: gi
                    .as_deref()
                    .zip(w_ih.as_ref())
                    .map(|(g, t)| (g, t.layout())),
                w_hh: (&gs[3], w_hh.layout()),
                bias: (&gs[4], bias.layout()),
            };
            let [o, h, cc, g, cs] = be.lstm_layer(args, dims)?;
            let (t, b, hh) = (dims.t, dims.b, dims.h);
            Ok([
                out(o, &[t, b, hh], d),
                out(h, &[b, hh], d),
                out(cc, &[b, hh], d),
                out(g, &[t, b, 4 * hh], d),
                out(cs, &[t, b, hh], d),
            ])
        },
    )
}

/// Backward of [`lstm_layer`]: (dx, dh0, dc0, dw_ih, dw_hh, db); `saved` is (x, h0, c0,
/// [w_ih,] w_hh, gates, cells, out), without w_ih (and no dw_ih) for a projected input.
pub(crate) fn lstm_layer_backward(
    saved: &[Tensor],
    dims: LstmDims,
    dout: Option<&Tensor>,
    dh: Option<&Tensor>,
    dc: Option<&Tensor>,
) -> Result<[Option<Tensor>; 6]> {
    let (x, h0, c0, w_ih, rest) = match saved {
        [x, h0, c0, w_ih, rest @ ..] if rest.len() == 4 => (x, h0, c0, Some(w_ih), rest),
        [x, h0, c0, rest @ ..] if rest.len() == 4 => (x, h0, c0, None, rest),
        _ => return Err(Error::Autograd("lstm: bad saved state".into())),
    };
    let [w_hh, gates, cells, outp] = rest else {
        return Err(Error::Autograd("lstm: bad saved state".into()));
    };
    let d = x.device();
    launch(
        "lstm_layer_backward",
        d,
        || crate::profiler::lstm_shapes(dims.t, dims.b, dims.i, dims.h, w_ih.is_some()),
        |be| {
            let dt = x.dtype();
            let c = |t: &Tensor| t.contiguous();
            let cf = |t: &Tensor| float_contiguous(t, dt);
            let (xc, h0c, c0c, whh) = (c(x)?, c(h0)?, c(c0)?, c(w_hh)?);
            let (gc, cc, oc) = (c(gates)?, c(cells)?, c(outp)?);
            let wih = w_ih.map(c).transpose()?;
            let (dov, dhv, dcv) = (
                dout.map(cf).transpose()?,
                dh.map(cf).transpose()?,
                dc.map(cf).transpose()?,
            );
            let gs = [
                xc.read(),
                h0c.read(),
                c0c.read(),
                whh.read(),
                gc.read(),
                cc.read(),
                oc.read(),
            ];
            let gi = wih.as_ref().map(|t| t.read());
            let gdo = dov.as_ref().map(|t| t.read());
            let gdh = dhv.as_ref().map(|t| t.read());
            let gdc = dcv.as_ref().map(|t| t.read());
            let args = LstmBackwardArgs {
                x: (&gs[0], xc.layout()),
                h0: (&gs[1], h0c.layout()),
                c0: (&gs[2], c0c.layout()),
                w_ih: opt_src(&gi, &wih),
                w_hh: (&gs[3], whh.layout()),
                gates: (&gs[4], gc.layout()),
                cells: (&gs[5], cc.layout()),
                out: (&gs[6], oc.layout()),
                dout: opt_src(&gdo, &dov),
                dh: opt_src(&gdh, &dhv),
                dc: opt_src(&gdc, &dcv),
            };
            let [dx, dh0, dc0, dwih, dwhh, db] = be.lstm_layer_backward(args, dims)?;
            let wrap = |s: Option<Storage>, shape: &[usize]| s.map(|s| out(s, shape, d));
            Ok([
                wrap(dx, x.shape()),
                wrap(dh0, h0.shape()),
                wrap(dc0, c0.shape()),
                w_ih.and_then(|w| wrap(dwih, w.shape())),
                wrap(dwhh, w_hh.shape()),
                wrap(db, &[4 * dims.h]),
            ])
        },
    )
}

/// The storage and layout of an optional tensor read-locked in `g`.
fn opt_src<'a>(
    g: &'a Option<std::sync::RwLockReadGuard<'_, Storage>>,
    t: &'a Option<Tensor>,
) -> Option<super::Src<'a>> {
    g.as_deref().zip(t.as_ref()).map(|(g, t)| (g, t.layout()))
}

/// One optimizer step over all `jobs` (parameter, gradient, rule, state buffers) in one
/// kernel launch: parameters contiguous f32/f64, each gradient contiguous in the parameter's
/// dtype, no two of them in one storage.
#[allow(clippy::type_complexity)]
pub(crate) fn optimizer_update_all(
    jobs: &mut [(Tensor, Tensor, UpdateRule, Vec<&mut Vec<f32>>)],
) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let (heads, mut states): (Vec<_>, Vec<_>) = jobs
        .iter_mut()
        .map(|(p, g, r, s)| ((p.clone(), g.clone(), *r), s))
        .unzip();
    let refs: Vec<&Tensor> = heads.iter().flat_map(|(p, g, _)| [p, g]).collect();
    let d = device_of("optimizer", &refs)?;
    launch(
        "optimizer_update",
        d,
        || heads.iter().map(|(p, _, _)| p.shape().to_vec()).collect(),
        |be| {
            let gg: Vec<_> = heads.iter().map(|(_, g, _)| g.read()).collect();
            let mut pg: Vec<_> = heads.iter().map(|(p, _, _)| p.write()).collect();
            let mut uj: Vec<UpdateJob<'_, '_>> = heads
                .iter()
                .zip(pg.iter_mut())
                .zip(gg.iter())
                .zip(states.iter_mut())
                .map(|((((p, g, rule), pw), gr), st)| UpdateJob {
                    rule: *rule,
                    p: pw,
                    pl: p.layout(),
                    g: (&**gr, g.layout()),
                    state: &mut st[..],
                })
                .collect();
            be.optimizer_update(&mut uj)
        },
    )
}
