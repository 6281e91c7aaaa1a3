//! [`CpuBackend`]: the storage-level interface implemented by the CPU kernels of this folder.
//! The only place that unwraps `Storage::Cpu` to compute.

use super::{conv, copy, elementwise, fused, index, matmul, norm, optim, reduce, rnn};
use crate::backend::{Backend, LstmArgs, LstmBackwardArgs, Src, UpdateJob};
use crate::lazy::kernel::Kernel;
use crate::ops::conv::ConvGeom;
use crate::ops::rnn::LstmDims;
use crate::ops::{BinaryOp, Pool2dAttrs, ReduceOp, UnaryOp};
use crate::scalar::Float;
use crate::tensor::{CpuStorage, Element, Layout, Storage};
use crate::{DType, Error, Result};

/// The CPU backend (stateless; its thread pool and buffer cache are process-wide).
pub(crate) struct CpuBackend;

/// The CPU storage inside `s`.
fn host(s: &Storage) -> &CpuStorage {
    let Storage::Cpu(c) = s;
    c
}

fn host_mut(s: &mut Storage) -> &mut CpuStorage {
    let Storage::Cpu(c) = s;
    c
}

/// The elements of a contiguous view as a slice of `T` (an error naming `op` when the dtype
/// is not `T`).
fn slice<'a, T: Element>(op: &str, (s, l): Src<'a>) -> Result<&'a [T]> {
    let v = T::slice(host(s)).ok_or_else(|| {
        Error::dtype(
            op,
            format!("expected {} tensors, got {}", T::DTYPE, s.dtype()),
        )
    })?;
    let n = l.numel();
    Ok(&v[l.offset..l.offset + n])
}

/// The error of an in-place kernel handed a storage that is not float32 or float64.
fn not_float(op: &str, s: &CpuStorage) -> Error {
    Error::dtype(
        op,
        format!(
            "in-place kernel needs float32 or float64, got {}",
            s.dtype()
        ),
    )
}

fn opt_slice<'a, T: Element>(op: &str, s: Option<Src<'a>>) -> Result<Option<&'a [T]>> {
    s.map(|s| slice::<T>(op, s)).transpose()
}

fn wrap<T: Element>(v: Vec<T>) -> Storage {
    Storage::Cpu(T::into_storage(v))
}

/// Runs `$body` with `$T` bound to the float type of `$dt` (f32 or f64), else errors.
macro_rules! float_dispatch {
    ($op:expr, $dt:expr, |$T:ident| $body:expr) => {
        match $dt {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            dt => {
                return Err(Error::dtype(
                    $op,
                    format!("expected float32 or float64 tensors, got {dt}"),
                ))
            }
        }
    };
}

impl Backend for CpuBackend {
    fn full(&self, op: &str, dt: DType, n: usize, value: f64) -> Result<Storage> {
        Ok(Storage::Cpu(CpuStorage::try_full(op, dt, n, value)?))
    }

    fn copy(&self, dst: &mut Storage, dl: &Layout, (s, l): Src<'_>) -> Result<()> {
        copy::copy_storage(host_mut(dst), dl, host(s), l)
    }

    fn to_le_bytes(&self, (s, l): Src<'_>) -> Result<Vec<u8>> {
        let (o, n) = (l.offset, l.numel());
        use CpuStorage as C;
        Ok(match host(s) {
            C::Bool(v) => v[o..o + n].iter().map(|&b| b as u8).collect(),
            C::U8(v) => v[o..o + n].to_vec(),
            C::I32(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            C::I64(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            C::F16(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            C::BF16(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            C::F32(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
            C::F64(v) => v[o..o + n].iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    }

    fn unary(&self, op: UnaryOp, (s, l): Src<'_>) -> Result<Storage> {
        Ok(Storage::Cpu(elementwise::unary(op, host(s), l)?))
    }

    fn unary_inplace(&self, op: UnaryOp, x: &mut Storage, l: &Layout) -> Result<()> {
        let n = l.numel();
        let range = l.offset..l.offset + n;
        match host_mut(x) {
            CpuStorage::F32(v) => elementwise::unary_inplace_slice(op, &mut v[range]),
            CpuStorage::F64(v) => elementwise::unary_inplace_slice(op, &mut v[range]),
            s => return Err(not_float(op.name(), s)),
        }
        Ok(())
    }

    fn binary_inplace(
        &self,
        op: BinaryOp,
        x: &mut Storage,
        xl: &Layout,
        b: Src<'_>,
        alpha: f64,
    ) -> Result<()> {
        let range = xl.offset..xl.offset + xl.numel();
        match host_mut(x) {
            CpuStorage::F32(v) => elementwise::binary_inplace_slice(
                op,
                &mut v[range],
                slice::<f32>(op.name(), b)?,
                alpha as f32,
            ),
            CpuStorage::F64(v) => elementwise::binary_inplace_slice(
                op,
                &mut v[range],
                slice::<f64>(op.name(), b)?,
                alpha,
            ),
            s => return Err(not_float(op.name(), s)),
        }
        Ok(())
    }

    fn bias_add_inplace(&self, y: &mut Storage, yl: &Layout, b: Src<'_>) -> Result<()> {
        let range = yl.offset..yl.offset + yl.numel();
        match host_mut(y) {
            CpuStorage::F32(v) => {
                elementwise::add_rows_inplace(&mut v[range], slice::<f32>("linear", b)?)
            }
            CpuStorage::F64(v) => {
                elementwise::add_rows_inplace(&mut v[range], slice::<f64>("linear", b)?)
            }
            s => return Err(not_float("linear", s)),
        }
        Ok(())
    }

    fn binary(
        &self,
        op: BinaryOp,
        (a, la): Src<'_>,
        (b, lb): Src<'_>,
        shape: &[usize],
    ) -> Result<Storage> {
        Ok(Storage::Cpu(elementwise::binary(
            op,
            host(a),
            la,
            host(b),
            lb,
            shape,
        )?))
    }

    fn where_(
        &self,
        (c, lc): Src<'_>,
        (a, la): Src<'_>,
        (b, lb): Src<'_>,
        shape: &[usize],
    ) -> Result<Storage> {
        let CpuStorage::Bool(cv) = host(c) else {
            return Err(Error::dtype("where", "condition must be a bool tensor"));
        };
        Ok(Storage::Cpu(elementwise::where_(
            cv,
            lc,
            host(a),
            la,
            host(b),
            lb,
            shape,
        )?))
    }

    fn cast(&self, (s, l): Src<'_>, dt: DType) -> Result<Storage> {
        Ok(Storage::Cpu(elementwise::cast(host(s), l, dt)))
    }

    fn reduce(&self, op: ReduceOp, (s, l): Src<'_>, dims: &[usize]) -> Result<Storage> {
        Ok(Storage::Cpu(reduce::reduce(op, host(s), l, dims)?))
    }

    fn cumsum(&self, (s, l): Src<'_>, dim: usize) -> Result<Storage> {
        Ok(Storage::Cpu(reduce::cumsum(host(s), l, dim)))
    }

    fn vector_norm(&self, (s, l): Src<'_>, ord: f64) -> Result<f64> {
        let n = l.numel();
        Ok(match host(s) {
            CpuStorage::F32(v) if l.is_contiguous() => {
                let v = &v[l.offset..l.offset + n];
                match reduce::sum_abs_pow_f32(v, ord) {
                    Some(s) if ord == 2.0 => s.sqrt(),
                    Some(s) => s,
                    None => crate::scalar::vector_norm(v.iter().map(|&x| x as f64), ord),
                }
            }
            c => {
                let f = elementwise::cast(c, l, DType::F64);
                let CpuStorage::F64(v) = f else {
                    unreachable!("cast to f64")
                };
                crate::scalar::vector_norm(v.iter().copied(), ord)
            }
        })
    }

    fn indices(&self, (s, l): Src<'_>, op: &str) -> Result<Vec<i64>> {
        index::indices(host(s), l, op)
    }

    fn index_select(&self, (s, l): Src<'_>, dim: usize, idx: &[i64]) -> Result<Storage> {
        Ok(Storage::Cpu(index::index_select(host(s), l, dim, idx)?))
    }

    fn gather(
        &self,
        (s, l): Src<'_>,
        dim: usize,
        idx: &[i64],
        ishape: &[usize],
    ) -> Result<Storage> {
        Ok(Storage::Cpu(index::gather(host(s), l, dim, idx, ishape)?))
    }

    fn scatter(
        &self,
        dst: &mut Storage,
        dl: &Layout,
        dim: usize,
        idx: &[i64],
        ishape: &[usize],
        (s, l): Src<'_>,
        accumulate: bool,
    ) -> Result<()> {
        index::scatter(
            host_mut(dst),
            dl,
            dim,
            idx,
            ishape,
            (host(s), l),
            accumulate,
        )
    }

    fn index_add(
        &self,
        dst: &mut Storage,
        shape: &[usize],
        dim: usize,
        idx: &[i64],
        (s, l): Src<'_>,
    ) -> Result<()> {
        let n = l.numel();
        let src = crate::with_storage!(host(s), |v: T| {
            let mut w = crate::memory::alloc_or_unwind("index_add", n);
            w.extend_from_slice(&v[l.offset..l.offset + n]);
            <T as Element>::into_storage(w)
        });
        index::index_add(host_mut(dst), shape, dim, idx, &src)
    }

    fn matmul(&self, (a, la): Src<'_>, (b, lb): Src<'_>) -> Result<Storage> {
        Ok(Storage::Cpu(matmul::matmul(host(a), la, host(b), lb)?))
    }

    fn softmax_rows(&self, x: Src<'_>, n: usize, log: bool) -> Result<Storage> {
        float_dispatch!("softmax", x.0.dtype(), |T| Ok(wrap(
            norm::softmax_rows::<T>(slice("softmax", x)?, n, log)
        )))
    }

    fn softmax_backward_rows(
        &self,
        g: Src<'_>,
        y: Src<'_>,
        n: usize,
        log: bool,
    ) -> Result<Storage> {
        float_dispatch!("softmax_backward", y.0.dtype(), |T| Ok(wrap(
            norm::softmax_backward_rows::<T>(
                slice("softmax_backward", g)?,
                slice("softmax_backward", y)?,
                n,
                log
            )
        )))
    }

    fn cross_entropy(
        &self,
        x: Src<'_>,
        n: usize,
        t: &[i64],
        ignore: i64,
        smoothing: f64,
    ) -> Result<(Storage, Storage)> {
        float_dispatch!("cross_entropy", x.0.dtype(), |T| {
            let (l, s) =
                norm::cross_entropy_rows::<T>(slice("cross_entropy", x)?, n, t, ignore, smoothing);
            Ok((wrap(l), wrap(s)))
        })
    }

    fn cross_entropy_backward(
        &self,
        x: Src<'_>,
        n: usize,
        t: &[i64],
        lse: Src<'_>,
        g: Src<'_>,
        ignore: i64,
        smoothing: f64,
    ) -> Result<Storage> {
        let op = "cross_entropy";
        float_dispatch!(op, x.0.dtype(), |T| Ok(wrap(
            norm::cross_entropy_rows_backward::<T>(
                slice(op, x)?,
                n,
                t,
                slice(op, lse)?,
                slice(op, g)?,
                ignore,
                smoothing
            )
        )))
    }

    fn layer_norm(
        &self,
        x: Src<'_>,
        n: usize,
        w: Option<Src<'_>>,
        b: Option<Src<'_>>,
        eps: f64,
    ) -> Result<[Storage; 3]> {
        let op = "layer_norm";
        fn go<T: Float>(
            x: Src<'_>,
            n: usize,
            w: Option<Src<'_>>,
            b: Option<Src<'_>>,
            eps: f64,
        ) -> Result<[Storage; 3]> {
            let op = "layer_norm";
            let xs = slice::<T>(op, x)?;
            let ws = w.map(|w| slice::<T>(op, w)).transpose()?;
            let bs = b.map(|b| slice::<T>(op, b)).transpose()?;
            let (y, m, r) = norm::layer_norm_rows(xs, n, ws, bs, eps);
            Ok([wrap(y), wrap(m), wrap(r)])
        }
        float_dispatch!(op, x.0.dtype(), |T| go::<T>(x, n, w, b, eps))
    }

    fn conv2d(&self, x: Src<'_>, w: Src<'_>, gm: &ConvGeom) -> Result<Storage> {
        let op = "conv2d";
        float_dispatch!(op, x.0.dtype(), |T| Ok(wrap(conv::conv2d_fwd::<T>(
            slice(op, x)?,
            slice(op, w)?,
            gm,
            0.0,
            1.0
        ))))
    }

    fn conv2d_backward(
        &self,
        x: Src<'_>,
        w: Src<'_>,
        dy: Src<'_>,
        gm: &ConvGeom,
        need_dx: bool,
        need_dw: bool,
    ) -> Result<(Option<Storage>, Option<Storage>)> {
        let op = "conv2d";
        float_dispatch!(op, x.0.dtype(), |T| {
            let (dx, dw) = conv::conv2d_bwd::<T>(
                slice(op, x)?,
                slice(op, w)?,
                slice(op, dy)?,
                gm,
                need_dx,
                need_dw,
                0.0,
                1.0,
            );
            Ok((need_dx.then(|| wrap(dx)), need_dw.then(|| wrap(dw))))
        })
    }

    fn pool2d(
        &self,
        x: Src<'_>,
        ho: usize,
        wo: usize,
        a: &Pool2dAttrs,
    ) -> Result<(Storage, Storage)> {
        let op = "pool2d";
        let s = &x.1.shape;
        let (nc, h, w) = (s[0] * s[1], s[2], s[3]);
        float_dispatch!(op, x.0.dtype(), |T| {
            let (y, i) = conv::pool2d::<T>(slice(op, x)?, nc, h, w, ho, wo, a);
            Ok((wrap(y), wrap(i)))
        })
    }

    fn avg_pool2d_backward(
        &self,
        dy: Src<'_>,
        in_shape: &[usize],
        a: &Pool2dAttrs,
    ) -> Result<Storage> {
        let s = &dy.1.shape;
        let d = slice::<f64>("avg_pool2d_backward", dy)?;
        Ok(wrap(conv::avg_pool2d_bwd(
            d,
            s[0] * s[1],
            in_shape[2],
            in_shape[3],
            s[2],
            s[3],
            a,
        )))
    }

    fn lstm_layer(&self, a: LstmArgs<'_>, d: LstmDims) -> Result<[Storage; 5]> {
        fn go<T: Float + 'static>(a: LstmArgs<'_>, d: LstmDims) -> Result<[Storage; 5]> {
            let op = "lstm";
            let (o, h, c, g, cs) = rnn::lstm_forward::<T>(
                d,
                slice(op, a.x)?,
                slice(op, a.h0)?,
                slice(op, a.c0)?,
                a.w_ih.map(|w| slice(op, w)).transpose()?,
                slice(op, a.w_hh)?,
                slice(op, a.bias)?,
            );
            Ok([wrap(o), wrap(h), wrap(c), wrap(g), wrap(cs)])
        }
        float_dispatch!("lstm", a.x.0.dtype(), |T| go::<T>(a, d))
    }

    fn lstm_layer_backward(
        &self,
        a: LstmBackwardArgs<'_>,
        d: LstmDims,
    ) -> Result<[Option<Storage>; 6]> {
        fn go<T: Float + 'static>(
            a: LstmBackwardArgs<'_>,
            d: LstmDims,
        ) -> Result<[Option<Storage>; 6]> {
            let op = "lstm";
            let g = rnn::lstm_backward::<T>(
                d,
                slice(op, a.x)?,
                slice(op, a.h0)?,
                slice(op, a.c0)?,
                a.w_ih.map(|w| slice(op, w)).transpose()?,
                slice(op, a.w_hh)?,
                slice(op, a.gates)?,
                slice(op, a.cells)?,
                slice(op, a.out)?,
                opt_slice::<T>(op, a.dout)?,
                opt_slice::<T>(op, a.dh)?,
                opt_slice::<T>(op, a.dc)?,
            );
            Ok([
                Some(wrap(g.dx)),
                Some(wrap(g.dh0)),
                Some(wrap(g.dc0)),
                g.dw_ih.map(wrap),
                Some(wrap(g.dw_hh)),
                Some(wrap(g.db)),
            ])
        }
        float_dispatch!("lstm", a.x.0.dtype(), |T| go::<T>(a, d))
    }

    fn run_fused(&self, k: &Kernel, inputs: &[&Storage]) -> Result<Vec<Storage>> {
        let ins: Vec<&CpuStorage> = inputs.iter().map(|s| host(s)).collect();
        Ok(fused::run(k, &ins).into_iter().map(Storage::Cpu).collect())
    }

    fn run_fused_reduce(
        &self,
        k: &Kernel,
        inputs: &[&Storage],
        r: usize,
        op: ReduceOp,
        leading: bool,
    ) -> Result<(Storage, Vec<Storage>)> {
        let ins: Vec<&CpuStorage> = inputs.iter().map(|s| host(s)).collect();
        let (res, outs) = if leading {
            fused::run_reduce_cols(k, &ins, r, op)
        } else {
            fused::run_reduce(k, &ins, r, op)
        };
        Ok((
            Storage::Cpu(res),
            outs.into_iter().map(Storage::Cpu).collect(),
        ))
    }

    fn optimizer_update(&self, jobs: &mut [UpdateJob<'_, '_>]) -> Result<()> {
        optim::update_all(jobs)
    }
}
