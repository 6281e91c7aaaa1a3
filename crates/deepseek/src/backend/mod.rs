//! Backends. Each primitive matches on [`Storage`] here, in one place, and calls the kernel of
//! the tensor's device. The CPU backend lives in `cpu/`; CUDA is its own issue.

pub mod cpu;

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
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    Ok(out(cpu::elementwise::unary(op, s, x.layout())?, x.shape()))
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let ga = cpu(a);
    let gb = cpu(b);
    let (Storage::Cpu(sa), Storage::Cpu(sb)) = (&*ga, &*gb);
    Ok(out(cpu::elementwise::binary(op, sa, a.layout(), sb, b.layout(), shape)?, shape))
}

pub(crate) fn where_(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let (gc, ga, gb) = (cpu(c), cpu(a), cpu(b));
    let (Storage::Cpu(sc), Storage::Cpu(sa), Storage::Cpu(sb)) = (&*gc, &*ga, &*gb);
    let CpuStorage::Bool(cv) = sc else { return Err(Error::dtype("where", "condition must be a bool tensor")) };
    Ok(out(cpu::elementwise::where_(cv, c.layout(), sa, a.layout(), sb, b.layout(), shape)?, shape))
}

pub(crate) fn cast(x: &Tensor, dt: DType) -> Result<Tensor> {
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    Ok(out(cpu::elementwise::cast(s, x.layout(), dt), x.shape()))
}

pub(crate) fn reduce(op: ReduceOp, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    let r = cpu::reduce::reduce(op, s, x.layout(), dims)?;
    let n = r.len();
    Ok(out(r, &[n]))
}

pub(crate) fn cumsum(x: &Tensor, dim: usize) -> Result<Tensor> {
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    Ok(out(cpu::reduce::cumsum(s, x.layout(), dim), x.shape()))
}

pub(crate) fn cat(ts: &[Tensor], dim: usize, shape: &[usize]) -> Result<Tensor> {
    let dt = ts[0].dtype();
    let mut dst = CpuStorage::zeros(dt, shape.iter().product());
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
}

pub(crate) fn pad(x: &Tensor, pads: &[(usize, usize)], shape: &[usize], value: f64) -> Result<Tensor> {
    let mut dst = CpuStorage::full(x.dtype(), shape.iter().product(), value);
    let mut view = Layout::contiguous(shape);
    for (d, &(a, _)) in pads.iter().enumerate() {
        view = view.slice(d, a, x.shape()[d], 1);
    }
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    cpu::copy::copy_storage(&mut dst, &view, s, x.layout())?;
    Ok(out(dst, shape))
}

/// Copies `src` into `dst`'s view in place (shapes equal, dtypes equal, distinct storages).
pub(crate) fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let src = if src.shares_storage(dst) { src.contiguous_copy()? } else { src.clone() };
    let gs = cpu(&src);
    let mut gd = dst.write();
    let (Storage::Cpu(d), Storage::Cpu(s)) = (&mut *gd, &*gs);
    cpu::copy::copy_storage(d, dst.layout(), s, src.layout())
}

pub(crate) fn indices(idx: &Tensor, op: &str) -> Result<Vec<i64>> {
    let g = cpu(idx);
    let Storage::Cpu(s) = &*g;
    cpu::index::indices(s, idx.layout(), op)
}

pub(crate) fn index_select(x: &Tensor, dim: usize, idx: &[i64]) -> Result<Tensor> {
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    let mut shape = x.shape().to_vec();
    shape[dim] = idx.len();
    Ok(out(cpu::index::index_select(s, x.layout(), dim, idx)?, &shape))
}

pub(crate) fn gather(x: &Tensor, dim: usize, idx: &[i64], ishape: &[usize]) -> Result<Tensor> {
    let g = cpu(x);
    let Storage::Cpu(s) = &*g;
    Ok(out(cpu::index::gather(s, x.layout(), dim, idx, ishape)?, ishape))
}

pub(crate) fn scatter_add(base: &Tensor, dim: usize, idx: &[i64], ishape: &[usize], src: &Tensor) -> Result<Tensor> {
    let b = base.contiguous_copy()?.detach();
    {
        let gs = cpu(src);
        let mut gb = b.write();
        let (Storage::Cpu(bs), Storage::Cpu(ss)) = (&mut *gb, &*gs);
        cpu::index::scatter_add(bs, b.layout(), dim, idx, ishape, ss, src.layout())?;
    }
    Ok(b)
}

pub(crate) fn index_add(base: &Tensor, dim: usize, idx: &[i64], src: &Tensor) -> Result<Tensor> {
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
}

/// A contiguous sub-range of a storage as an owned storage (cheap when `off == 0` and whole).
fn slice_from(s: &CpuStorage, off: usize, n: usize) -> CpuStorage {
    crate::with_storage!(s, |v: T| <T as crate::tensor::Element>::into_storage(v[off..off + n].to_vec()))
}

pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    let mut shape = a.shape()[..r - 1].to_vec();
    shape.push(b.shape()[r - 1]);
    let (ga, gb) = (cpu(a), cpu(b));
    let (Storage::Cpu(sa), Storage::Cpu(sb)) = (&*ga, &*gb);
    Ok(out(cpu::matmul::matmul(sa, a.layout(), sb, b.layout())?, &shape))
}
