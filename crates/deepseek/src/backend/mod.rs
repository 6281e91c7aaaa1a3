//! Backends. Each primitive matches on [`Storage`] here, in one place, and calls the kernel of
//! the tensor's device. The CPU backend lives in `cpu/`; CUDA is its own issue.

pub mod cpu;

use crate::lazy::expr as lazy;
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::{CpuStorage, Layout, Storage};
use crate::{DType, Device, Error, Result, Tensor};

/// Fails unless `device` can be used by this build and machine.
pub fn check_device(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        Device::Cuda(n) => Err(Error::device(
            "device",
            format!("cuda:{n} requested, but this build of deepseek has no CUDA backend (CUDA is not available)"),
        )),
    }
}

fn cpu(t: &Tensor) -> std::sync::RwLockReadGuard<'_, Storage> {
    t.read()
}

fn out(s: CpuStorage, shape: &[usize]) -> Tensor {
    Tensor::from_cpu(s, shape)
}

pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    if matches!(x.dtype(), DType::F32 | DType::F64) && lazy::can_defer(&[x], x.dtype()) {
        return Ok(lazy::unary(op, x));
    }
    crate::lazy::count_kernel(op.name());
    let _prof = crate::profiler::kernel(op.name(), || vec![x.shape().to_vec()]);
    crate::memory::catch_oom(op.name(), || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        Ok(out(cpu::elementwise::unary(op, s, x.layout())?, x.shape()))
    })
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if matches!(a.dtype(), DType::F32 | DType::F64)
        && !matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
        && lazy::can_defer(&[a, b], a.dtype())
    {
        return Ok(lazy::binary(op, a, b, shape));
    }
    crate::lazy::count_kernel(op.name());
    let _prof = crate::profiler::kernel(op.name(), || vec![a.shape().to_vec(), b.shape().to_vec()]);
    crate::memory::catch_oom(op.name(), || {
        let ga = cpu(a);
        let gb = cpu(b);
        let (Storage::Cpu(sa), Storage::Cpu(sb)) = (&*ga, &*gb);
        Ok(out(
            cpu::elementwise::binary(op, sa, a.layout(), sb, b.layout(), shape)?,
            shape,
        ))
    })
}

pub(crate) fn where_(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if c.dtype() == DType::Bool
        && matches!(a.dtype(), DType::F32 | DType::F64)
        && lazy::can_defer(&[c, a, b], a.dtype())
    {
        return Ok(lazy::where_(c, a, b, shape));
    }
    crate::lazy::count_kernel("where");
    let _prof = crate::profiler::kernel("where", || {
        vec![c.shape().to_vec(), a.shape().to_vec(), b.shape().to_vec()]
    });
    crate::memory::catch_oom("where", || {
        let (gc, ga, gb) = (cpu(c), cpu(a), cpu(b));
        let (Storage::Cpu(sc), Storage::Cpu(sa), Storage::Cpu(sb)) = (&*gc, &*ga, &*gb);
        let CpuStorage::Bool(cv) = sc else {
            return Err(Error::dtype("where", "condition must be a bool tensor"));
        };
        Ok(out(
            cpu::elementwise::where_(cv, c.layout(), sa, a.layout(), sb, b.layout(), shape)?,
            shape,
        ))
    })
}

pub(crate) fn cast(x: &Tensor, dt: DType) -> Result<Tensor> {
    // Float and bool results are deferred from any source dtype (the load converts).
    if lazy::can_defer(&[x], dt)
        && (dt != DType::Bool || x.dtype().is_float() || x.dtype() == DType::Bool)
    {
        return Ok(lazy::cast(x, dt));
    }
    crate::lazy::count_kernel("to");
    let _prof = crate::profiler::kernel("to", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("cast", || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        Ok(out(cpu::elementwise::cast(s, x.layout(), dt), x.shape()))
    })
}

pub(crate) fn reduce(op: ReduceOp, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    if crate::lazy::fuses_into_reduce(op, x, dims) {
        return crate::memory::catch_oom(op.name(), || {
            let r = crate::lazy::reduce(op, x, dims);
            let n = r.len();
            Ok(out(r, &[n]))
        });
    }
    crate::lazy::count_kernel("reduce");
    let _prof = crate::profiler::kernel("reduce", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom(op.name(), || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        let r = cpu::reduce::reduce(op, s, x.layout(), dims)?;
        let n = r.len();
        Ok(out(r, &[n]))
    })
}

pub(crate) fn cumsum(x: &Tensor, dim: usize) -> Result<Tensor> {
    crate::lazy::count_kernel("cumsum");
    let _prof = crate::profiler::kernel("cumsum", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("cumsum", || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        Ok(out(cpu::reduce::cumsum(s, x.layout(), dim), x.shape()))
    })
}

pub(crate) fn cat(ts: &[Tensor], dim: usize, shape: &[usize]) -> Result<Tensor> {
    crate::lazy::count_kernel("cat");
    let _prof = crate::profiler::kernel("cat", || ts.iter().map(|t| t.shape().to_vec()).collect());
    crate::memory::catch_oom("cat", || {
        let dt = ts[0].dtype();
        let n = crate::memory::checked_numel("cat", shape)?;
        let mut dst = CpuStorage::try_zeros("cat", dt, n)?;
        let dl = Layout::contiguous(shape);
        let mut start = 0;
        for t in ts {
            let n = t.shape()[dim];
            let view = dl.slice(dim, start, n, 1);
            let g = cpu(t);
            let Storage::Cpu(s) = &*g;
            cpu::copy::copy_storage(&mut dst, &view, s, t.layout())?;
            start += n;
        }
        Ok(out(dst, shape))
    })
}

pub(crate) fn pad(
    x: &Tensor,
    pads: &[(usize, usize)],
    shape: &[usize],
    value: f64,
) -> Result<Tensor> {
    crate::lazy::count_kernel("pad");
    let _prof = crate::profiler::kernel("pad", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("pad", || {
        let n = crate::memory::checked_numel("pad", shape)?;
        let mut dst = CpuStorage::try_full("pad", x.dtype(), n, value)?;
        let mut view = Layout::contiguous(shape);
        for (d, &(a, _)) in pads.iter().enumerate() {
            view = view.slice(d, a, x.shape()[d], 1);
        }
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        cpu::copy::copy_storage(&mut dst, &view, s, x.layout())?;
        Ok(out(dst, shape))
    })
}

/// Copies `src` into `dst`'s view in place (shapes equal, dtypes equal, distinct storages).
pub(crate) fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    crate::lazy::count_kernel("copy_into");
    let _prof = crate::profiler::kernel("copy_into", || {
        vec![dst.shape().to_vec(), src.shape().to_vec()]
    });
    crate::memory::catch_oom("copy_into", || {
        let src = if src.shares_storage(dst) {
            src.contiguous_copy()?
        } else {
            src.clone()
        };
        let gs = cpu(&src);
        let mut gd = dst.write();
        let (Storage::Cpu(d), Storage::Cpu(s)) = (&mut *gd, &*gs);
        cpu::copy::copy_storage(d, dst.layout(), s, src.layout())
    })
}

pub(crate) fn indices(idx: &Tensor, op: &str) -> Result<Vec<i64>> {
    crate::memory::catch_oom("indices", || {
        let g = cpu(idx);
        let Storage::Cpu(s) = &*g;
        cpu::index::indices(s, idx.layout(), op)
    })
}

pub(crate) fn index_select(x: &Tensor, dim: usize, idx: &[i64]) -> Result<Tensor> {
    crate::lazy::count_kernel("index_select");
    let _prof =
        crate::profiler::kernel("index_select", || vec![x.shape().to_vec(), vec![idx.len()]]);
    crate::memory::catch_oom("index_select", || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        let mut shape = x.shape().to_vec();
        shape[dim] = idx.len();
        Ok(out(
            cpu::index::index_select(s, x.layout(), dim, idx)?,
            &shape,
        ))
    })
}

pub(crate) fn gather(x: &Tensor, dim: usize, idx: &[i64], ishape: &[usize]) -> Result<Tensor> {
    crate::lazy::count_kernel("gather");
    let _prof = crate::profiler::kernel("gather", || vec![x.shape().to_vec(), ishape.to_vec()]);
    crate::memory::catch_oom("gather", || {
        let g = cpu(x);
        let Storage::Cpu(s) = &*g;
        Ok(out(
            cpu::index::gather(s, x.layout(), dim, idx, ishape)?,
            ishape,
        ))
    })
}

pub(crate) fn scatter_add(
    base: &Tensor,
    dim: usize,
    idx: &[i64],
    ishape: &[usize],
    src: &Tensor,
) -> Result<Tensor> {
    crate::lazy::count_kernel("scatter_add");
    let _prof = crate::profiler::kernel("scatter_add", || {
        vec![base.shape().to_vec(), ishape.to_vec(), src.shape().to_vec()]
    });
    crate::memory::catch_oom("scatter_add", || {
        let b = base.contiguous_copy()?.detach();
        {
            let gs = cpu(src);
            let mut gb = b.write();
            let (Storage::Cpu(bs), Storage::Cpu(ss)) = (&mut *gb, &*gs);
            cpu::index::scatter_add(bs, b.layout(), dim, idx, ishape, ss, src.layout())?;
        }
        Ok(b)
    })
}

pub(crate) fn index_add(base: &Tensor, dim: usize, idx: &[i64], src: &Tensor) -> Result<Tensor> {
    crate::lazy::count_kernel("index_add");
    let _prof = crate::profiler::kernel("index_add", || {
        vec![base.shape().to_vec(), vec![idx.len()], src.shape().to_vec()]
    });
    crate::memory::catch_oom("index_add", || {
        let b = base.contiguous_copy()?.detach();
        let src = src.contiguous()?;
        {
            let gs = cpu(&src);
            let mut gb = b.write();
            let (Storage::Cpu(bs), Storage::Cpu(ss)) = (&mut *gb, &*gs);
            let ss = &slice_from(ss, src.layout().offset, src.numel());
            cpu::index::index_add(bs, b.shape(), dim, idx, ss)?;
        }
        Ok(b)
    })
}

/// A contiguous sub-range of a storage as an owned storage (cheap when `off == 0` and whole).
fn slice_from(s: &CpuStorage, off: usize, n: usize) -> CpuStorage {
    crate::with_storage!(s, |v: T| {
        let mut w = crate::memory::alloc_or_unwind("copy", n);
        w.extend_from_slice(&v[off..off + n]);
        <T as crate::tensor::Element>::into_storage(w)
    })
}

pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    crate::lazy::count_kernel("matmul");
    let _prof = crate::profiler::kernel("matmul", || vec![a.shape().to_vec(), b.shape().to_vec()]);
    crate::memory::catch_oom("matmul", || {
        let r = a.rank();
        let mut shape = a.shape()[..r - 1].to_vec();
        shape.push(b.shape()[r - 1]);
        let (ga, gb) = (cpu(a), cpu(b));
        let (Storage::Cpu(sa), Storage::Cpu(sb)) = (&*ga, &*gb);
        Ok(out(
            cpu::matmul::matmul(sa, a.layout(), sb, b.layout())?,
            &shape,
        ))
    })
}

/// Softmax / log-softmax over the last dim (any layout in, contiguous out).
pub(crate) fn softmax_last(x: &Tensor, log: bool) -> Result<Tensor> {
    crate::lazy::count_kernel("softmax_last");
    let _prof = crate::profiler::kernel("softmax_last", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("softmax_last", || {
        let n = *x.shape().last().unwrap_or(&1);
        let c = x.contiguous()?;
        let g = cpu(&c);
        let Storage::Cpu(s) = &*g;
        let off = c.layout().offset;
        let len = c.numel();
        let r = match s {
            CpuStorage::F32(v) => {
                CpuStorage::F32(cpu::norm::softmax_rows(&v[off..off + len], n, log).into())
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(cpu::norm::softmax_rows(&v[off..off + len], n, log).into())
            }
            _ => {
                let f = cpu::elementwise::cast(s, c.layout(), DType::F32);
                let CpuStorage::F32(v) = f else {
                    unreachable!()
                };
                let r = CpuStorage::F32(cpu::norm::softmax_rows(&v, n, log).into());
                cpu::elementwise::cast(&r, &Layout::contiguous(x.shape()), x.dtype())
            }
        };
        Ok(out(r, x.shape()))
    })
}

/// Fused cross-entropy rows of x [N, C] (f32/f64) against in-range i64 targets [N]:
/// (loss [N], logsumexp [N]).
pub(crate) fn cross_entropy(
    x: &Tensor,
    t: &[i64],
    ignore: i64,
    ls: f64,
) -> Result<(Tensor, Tensor)> {
    crate::lazy::count_kernel("cross_entropy");
    let _prof =
        crate::profiler::kernel("cross_entropy", || vec![x.shape().to_vec(), vec![t.len()]]);
    crate::memory::catch_oom("cross_entropy", || {
        let n = x.shape()[1];
        let rows = x.shape()[0];
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let (l, s) = with_slices::<$T, _>("cross_entropy", &[x], |v| {
                    cpu::norm::cross_entropy_rows(v[0], n, t, ignore, ls)
                })?;
                (
                    out(CpuStorage::$V(l.into()), &[rows]),
                    out(CpuStorage::$V(s.into()), &[rows]),
                )
            }};
        }
        Ok(match x.dtype() {
            DType::F32 => go!(f32, F32),
            DType::F64 => go!(f64, F64),
            dt => {
                return Err(Error::dtype(
                    "cross_entropy",
                    format!("fused kernel got {dt}"),
                ))
            }
        })
    })
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
    crate::lazy::count_kernel("cross_entropy_backward");
    let _prof = crate::profiler::kernel("cross_entropy_backward", || {
        vec![x.shape().to_vec(), vec![t.len()], g.shape().to_vec()]
    });
    crate::memory::catch_oom("cross_entropy_backward", || {
        let n = x.shape()[1];
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let g = g.to_dtype(x.dtype())?;
                let d = with_slices::<$T, _>("cross_entropy", &[x, lse, &g], |v| {
                    cpu::norm::cross_entropy_rows_backward(v[0], n, t, v[1], v[2], ignore, ls)
                })?;
                out(CpuStorage::$V(d.into()), x.shape())
            }};
        }
        Ok(match x.dtype() {
            DType::F32 => go!(f32, F32),
            DType::F64 => go!(f64, F64),
            dt => {
                return Err(Error::dtype(
                    "cross_entropy",
                    format!("fused kernel got {dt}"),
                ))
            }
        })
    })
}

/// Layer norm over the trailing `n` elements: (y, mean, rstd); mean/rstd have one entry per row.
pub(crate) fn layer_norm(
    x: &Tensor,
    n: usize,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    crate::lazy::count_kernel("layer_norm");
    let _prof = crate::profiler::kernel("layer_norm", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("layer_norm", || {
        let dt = x.dtype();
        let (x32, w32, b32) = if matches!(dt, DType::F32 | DType::F64) {
            (
                x.contiguous()?,
                w.map(|t| t.contiguous()).transpose()?,
                b.map(|t| t.contiguous()).transpose()?,
            )
        } else {
            (
                x.to_dtype(DType::F32)?.contiguous()?,
                w.map(|t| t.to_dtype(DType::F32)?.contiguous())
                    .transpose()?,
                b.map(|t| t.to_dtype(DType::F32)?.contiguous())
                    .transpose()?,
            )
        };
        let rows = x.numel().checked_div(n).unwrap_or(0);
        let gx = cpu(&x32);
        let Storage::Cpu(sx) = &*gx;
        let gw = w32.as_ref().map(cpu);
        let gb = b32.as_ref().map(cpu);
        macro_rules! go {
            ($V:ident) => {{
                let xs = match sx {
                    CpuStorage::$V(v) => &v[x32.layout().offset..x32.layout().offset + x32.numel()],
                    _ => unreachable!(),
                };
                let ws = match (&gw, &w32) {
                    (Some(g), Some(t)) => {
                        let Storage::Cpu(CpuStorage::$V(v)) = &**g else {
                            return Err(Error::dtype(
                                "layer_norm",
                                "weight dtype differs from input",
                            ));
                        };
                        Some(&v[t.layout().offset..t.layout().offset + n])
                    }
                    _ => None,
                };
                let bs = match (&gb, &b32) {
                    (Some(g), Some(t)) => {
                        let Storage::Cpu(CpuStorage::$V(v)) = &**g else {
                            return Err(Error::dtype(
                                "layer_norm",
                                "bias dtype differs from input",
                            ));
                        };
                        Some(&v[t.layout().offset..t.layout().offset + n])
                    }
                    _ => None,
                };
                let (y, m, r) = cpu::norm::layer_norm_rows(xs, n, ws, bs, eps);
                (
                    CpuStorage::$V(y.into()),
                    CpuStorage::$V(m.into()),
                    CpuStorage::$V(r.into()),
                )
            }};
        }
        let (y, m, r) = match x32.dtype() {
            DType::F32 => go!(F32),
            DType::F64 => go!(F64),
            _ => unreachable!(),
        };
        let y = out(y, x.shape()).to_dtype(dt)?;
        Ok((y, out(m, &[rows]), out(r, &[rows])))
    })
}

/// conv2d forward on float inputs of one dtype (borrowed in place when contiguous).
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, gm: &cpu::conv::ConvGeom) -> Result<Tensor> {
    crate::lazy::count_kernel("conv2d");
    let _prof = crate::profiler::kernel("conv2d", || {
        vec![
            x.shape().to_vec(),
            w.shape().to_vec(),
            vec![gm.n, gm.o, gm.ho, gm.wo],
        ]
    });
    crate::memory::catch_oom("conv2d", || {
        let shape = [gm.n, gm.o, gm.ho, gm.wo];
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let y = with_slices::<$T, _>("conv2d", &[x, w], |v| {
                    cpu::conv::conv2d_fwd(v[0], v[1], gm, 0.0, 1.0)
                })?;
                out(CpuStorage::$V(y.into()), &shape)
            }};
        }
        Ok(match x.dtype() {
            DType::F64 => go!(f64, F64),
            DType::F32 => go!(f32, F32),
            _ => conv2d(&x.to_dtype(DType::F32)?, &w.to_dtype(DType::F32)?, gm)?
                .to_dtype(x.dtype())?,
        })
    })
}

/// conv2d backward: (dx, dw).
pub(crate) fn conv2d_backward(
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    gm: &cpu::conv::ConvGeom,
    need_dx: bool,
    need_dw: bool,
) -> Result<(Tensor, Tensor)> {
    crate::lazy::count_kernel("conv2d_backward");
    let _prof = crate::profiler::kernel("conv2d_backward", || {
        vec![x.shape().to_vec(), w.shape().to_vec(), dy.shape().to_vec()]
    });
    crate::memory::catch_oom("conv2d_backward", || {
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let (dx, dw) = with_slices::<$T, _>("conv2d", &[x, w, dy], |v| {
                    cpu::conv::conv2d_bwd(v[0], v[1], v[2], gm, need_dx, need_dw, 0.0, 1.0)
                })?;
                let dx = if need_dx {
                    out(CpuStorage::$V(dx.into()), x.shape())
                } else {
                    x.zeros_like()?
                };
                let dw = if need_dw {
                    out(CpuStorage::$V(dw.into()), w.shape())
                } else {
                    w.zeros_like()?
                };
                (dx, dw)
            }};
        }
        Ok(match x.dtype() {
            DType::F64 => go!(f64, F64),
            DType::F32 => go!(f32, F32),
            dt => {
                let (a, b) = conv2d_backward(
                    &x.to_dtype(DType::F32)?,
                    &w.to_dtype(DType::F32)?,
                    &dy.to_dtype(DType::F32)?,
                    gm,
                    need_dx,
                    need_dw,
                )?;
                (a.to_dtype(dt)?, b.to_dtype(dt)?)
            }
        })
    })
}

/// 2-D pooling of x [N, C, H, W] -> (y, argmax-within-plane for max pooling).
pub(crate) fn pool2d(
    x: &Tensor,
    ho: usize,
    wo: usize,
    a: &crate::ops::Pool2dAttrs,
) -> Result<(Tensor, Tensor)> {
    crate::lazy::count_kernel("pool2d");
    let _prof = crate::profiler::kernel("pool2d", || vec![x.shape().to_vec()]);
    crate::memory::catch_oom("pool2d", || {
        let s = x.shape();
        let (nc, h, w) = (s[0] * s[1], s[2], s[3]);
        let shape = [s[0], s[1], ho, wo];
        let (y, idx) = match x.dtype() {
            DType::F64 => {
                let (y, i) = with_slices::<f64, _>("pool2d", &[x], |v| {
                    cpu::conv::pool2d(v[0], nc, h, w, ho, wo, a)
                })?;
                (out(CpuStorage::F64(y.into()), &shape), i)
            }
            DType::F32 => {
                let (y, i) = with_slices::<f32, _>("pool2d", &[x], |v| {
                    cpu::conv::pool2d(v[0], nc, h, w, ho, wo, a)
                })?;
                (out(CpuStorage::F32(y.into()), &shape), i)
            }
            dt if dt.is_float() => {
                let (y, i) = pool2d(&x.to_dtype(DType::F32)?, ho, wo, a)?;
                return Ok((y.to_dtype(dt)?, i));
            }
            dt => {
                return Err(Error::dtype(
                    "pool2d",
                    format!("expected a floating-point input, got {dt}"),
                ))
            }
        };
        let n = idx.len();
        Ok((y, out(CpuStorage::I64(idx.into()), &[n])))
    })
}

/// Average-pooling backward.
pub(crate) fn avg_pool2d_backward(
    dy: &Tensor,
    in_shape: &[usize],
    a: &crate::ops::Pool2dAttrs,
) -> Result<Tensor> {
    crate::lazy::count_kernel("avg_pool2d_backward");
    let _prof = crate::profiler::kernel("avg_pool2d_backward", || {
        vec![dy.shape().to_vec(), in_shape.to_vec()]
    });
    crate::memory::catch_oom("avg_pool2d_backward", || {
        let s = dy.shape();
        let d = dy.to_dtype(DType::F64)?.to_vec::<f64>()?;
        let dx =
            cpu::conv::avg_pool2d_bwd(&d, s[0] * s[1], in_shape[2], in_shape[3], s[2], s[3], a);
        out(CpuStorage::F64(dx.into()), in_shape).to_dtype(dy.dtype())
    })
}

/// Runs `f` on the elements of each tensor as one contiguous slice of `T` (borrowed; strided
/// tensors are made contiguous first). Fails when a tensor's dtype is not `T`.
fn with_slices<T: crate::tensor::Element, R>(
    op: &str,
    ts: &[&Tensor],
    f: impl FnOnce(&[&[T]]) -> R,
) -> Result<R> {
    let cs = ts
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = cs.iter().map(cpu).collect();
    let mut slices = Vec::with_capacity(cs.len());
    for (c, g) in cs.iter().zip(&guards) {
        let Storage::Cpu(s) = &**g;
        let v = T::slice(s).ok_or_else(|| {
            Error::dtype(
                op,
                format!("expected {} tensors, got {}", T::DTYPE, c.dtype()),
            )
        })?;
        let off = c.layout().offset;
        slices.push(&v[off..off + c.numel()]);
    }
    Ok(f(&slices))
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
    d: cpu::rnn::LstmDims,
) -> Result<[Tensor; 5]> {
    crate::lazy::count_kernel("lstm_layer");
    let _prof = crate::profiler::kernel("lstm_layer", || {
        crate::profiler::lstm_shapes(d.t, d.b, d.i, d.h, w_ih.is_some())
    });
    crate::memory::catch_oom("lstm_layer", || {
        // With no w_ih, x is the input projection itself.
        let mut ts = vec![x, h0, c0, w_hh, bias];
        ts.extend(w_ih);
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let (o, h, c, g, cs) = with_slices::<$T, _>("lstm", &ts, |v| {
                    cpu::rnn::lstm_forward::<$T>(d, v[0], v[1], v[2], v.get(5).copied(), v[3], v[4])
                })?;
                [
                    out(CpuStorage::$V(o.into()), &[d.t, d.b, d.h]),
                    out(CpuStorage::$V(h.into()), &[d.b, d.h]),
                    out(CpuStorage::$V(c.into()), &[d.b, d.h]),
                    out(CpuStorage::$V(g.into()), &[d.t, d.b, 4 * d.h]),
                    out(CpuStorage::$V(cs.into()), &[d.t, d.b, d.h]),
                ]
            }};
        }
        Ok(match x.dtype() {
            DType::F32 => go!(f32, F32),
            DType::F64 => go!(f64, F64),
            dt => {
                return Err(Error::dtype(
                    "lstm",
                    format!("expected float32 or float64 input, got {dt}"),
                ))
            }
        })
    })
}

/// Backward of [`lstm_layer`]: (dx, dh0, dc0, dw_ih, dw_hh, db); `saved` is (x, h0, c0,
/// [w_ih,] w_hh, gates, cells, out), without w_ih (and no dw_ih) for a projected input.
pub(crate) fn lstm_layer_backward(
    saved: &[Tensor],
    d: cpu::rnn::LstmDims,
    dout: Option<&Tensor>,
    dh: Option<&Tensor>,
    dc: Option<&Tensor>,
) -> Result<[Option<Tensor>; 6]> {
    crate::lazy::count_kernel("lstm_layer_backward");
    let _prof = crate::profiler::kernel("lstm_layer_backward", || {
        crate::profiler::lstm_shapes(d.t, d.b, d.i, d.h, saved.len() == 8)
    });
    crate::memory::catch_oom("lstm_layer_backward", || {
        let (x, h0, c0, w_ih, rest) = match saved {
            [x, h0, c0, w_ih, rest @ ..] if rest.len() == 4 => (x, h0, c0, Some(w_ih), rest),
            [x, h0, c0, rest @ ..] if rest.len() == 4 => (x, h0, c0, None, rest),
            _ => return Err(Error::Autograd("lstm: bad saved state".into())),
        };
        let [w_hh, gates, cells, outp] = rest else {
            return Err(Error::Autograd("lstm: bad saved state".into()));
        };
        let mut ts = vec![x, h0, c0, w_hh, gates, cells, outp];
        ts.extend(w_ih);
        macro_rules! go {
            ($T:ty, $V:ident) => {{
                let o = |t: Option<&Tensor>| t.map(|t| t.to_vec::<$T>()).transpose();
                let (dov, dhv, dcv) = (o(dout)?, o(dh)?, o(dc)?);
                let g = with_slices::<$T, _>("lstm", &ts, |v| {
                    cpu::rnn::lstm_backward::<$T>(
                        d,
                        v[0],
                        v[1],
                        v[2],
                        v.get(7).copied(),
                        v[3],
                        v[4],
                        v[5],
                        v[6],
                        dov.as_deref(),
                        dhv.as_deref(),
                        dcv.as_deref(),
                    )
                })?;
                [
                    Some(out(CpuStorage::$V(g.dx.into()), x.shape())),
                    Some(out(CpuStorage::$V(g.dh0.into()), h0.shape())),
                    Some(out(CpuStorage::$V(g.dc0.into()), c0.shape())),
                    w_ih.zip(g.dw_ih)
                        .map(|(w, v)| out(CpuStorage::$V(v.into()), w.shape())),
                    Some(out(CpuStorage::$V(g.dw_hh.into()), w_hh.shape())),
                    Some(out(CpuStorage::$V(g.db.into()), &[4 * d.h])),
                ]
            }};
        }
        Ok(match x.dtype() {
            DType::F32 => go!(f32, F32),
            DType::F64 => go!(f64, F64),
            dt => return Err(Error::dtype("lstm", format!("unsupported dtype {dt}"))),
        })
    })
}
