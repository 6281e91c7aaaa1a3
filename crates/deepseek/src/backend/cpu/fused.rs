//! The CPU backend's executor of the kernel IR (`crate::lazy::kernel`): a chunked interpreter.
//!
//! The loop over `gid` is cut into chunks of [`CHUNK`] elements that stay in L1/L2; each
//! instruction runs as one tight, vectorised loop over the chunk (the same scalar functions
//! as the eager kernels, `backend::cpu::elementwise::*_slice`), and chunks run in parallel
//! on the kernel thread pool. No code is generated and no compiler is needed at run time.

use crate::backend::cpu::elementwise::{
    binary_slice, compare_slice, convert, convert_slice, unary_slice,
};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::threads::simd;
use crate::backend::cpu::{strided, threads};
use crate::lazy::idx::Idx;
use crate::lazy::kernel::{Inst, Kernel};
use crate::ops::ReduceOp;
use crate::tensor::CpuStorage;
use crate::{with_storage, DType};
use rayon::prelude::*;

/// Elements per interpreter chunk.
pub const CHUNK: usize = 1024;

/// One register: a chunk of values.
enum Reg {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

impl Reg {
    fn new(dt: DType) -> Reg {
        match dt {
            DType::F64 => Reg::F64(vec![0.0; CHUNK]),
            DType::Bool => Reg::Bool(vec![false; CHUNK]),
            _ => Reg::F32(vec![0.0; CHUNK]),
        }
    }
}

/// Output buffer being filled by several threads at disjoint ranges.
struct OutBuf {
    ptr: *mut u8,
    dt: DType,
}
// SAFETY: each chunk writes a disjoint range of the buffer; the buffer outlives the run.
unsafe impl Send for OutBuf {}
unsafe impl Sync for OutBuf {}

/// A buffer for `n` outputs (the buffer cache first); running out of memory unwinds to the
/// executor entry that catches it (`memory::catch_oom`), like the eager kernels' buffers.
fn alloc<T>(n: usize) -> Vec<T> {
    let mut v = crate::memory::alloc_or_unwind("fused kernel", n);
    strided::advise_huge(&mut v);
    v
}

/// Allocates the kernel's output buffers: the storages and where threads write them.
fn outputs(k: &Kernel) -> (Vec<CpuStorage>, Vec<OutBuf>) {
    let n = k.n;
    let mut bufs: Vec<CpuStorage> = Vec::with_capacity(k.outputs.len());
    let mut ptrs = Vec::with_capacity(k.outputs.len());
    for (r, _) in &k.outputs {
        let dt = k.insts[*r].dtype();
        macro_rules! buf {
            ($t:ty) => {{
                let mut v: Vec<$t> = alloc(n);
                ptrs.push(OutBuf {
                    ptr: v.as_mut_ptr() as *mut u8,
                    dt,
                });
                v.into_storage_len(n)
            }};
        }
        bufs.push(match dt {
            DType::F64 => buf!(f64),
            DType::Bool => buf!(bool),
            _ => buf!(f32),
        });
    }
    (bufs, ptrs)
}

fn make_regs(k: &Kernel) -> Vec<Reg> {
    k.insts.iter().map(|i| Reg::new(i.dtype())).collect()
}

/// Runs `work(first, end)` over `0..items` in parallel blocks when `elems` is large.
fn par_blocks(items: usize, elems: usize, work: impl Fn(usize, usize) + Sync) {
    let t = threads::get_num_threads();
    if elems >= threads::PAR_THRESHOLD
        && t > 1
        && items > 1
        && rayon::current_thread_index().is_none()
    {
        let per = items.div_ceil(t * 4).max(1);
        let blocks = items.div_ceil(per);
        threads::pool().install(|| {
            (0..blocks)
                .into_par_iter()
                .for_each(|b| work(b * per, ((b + 1) * per).min(items)))
        });
    } else {
        work(0, items);
    }
}

/// Runs `k` and returns one storage per output.
pub(crate) fn run(k: &Kernel, inputs: &[&CpuStorage]) -> Vec<CpuStorage> {
    let n = k.n;
    let (bufs, ptrs) = outputs(k);
    let chunks = n.div_ceil(CHUNK);
    par_blocks(chunks, n, |c0, c1| {
        let mut regs = make_regs(k);
        let mut idx = vec![0usize; CHUNK];
        let mut scratch = Vec::new();
        for c in c0..c1 {
            let start = c * CHUNK;
            let len = CHUNK.min(n - start);
            run_chunk(
                k,
                inputs,
                &mut regs,
                &ptrs,
                start,
                len,
                &mut idx,
                &mut scratch,
            );
        }
    });
    bufs
}

/// Runs `k` (over a view whose reduced dims are innermost: `n / r` rows of `r` elements) and
/// reduces each row with `op`, accumulating like the eager kernel (16 lanes per row, then the
/// tail, then the lanes). Returns the `n / r` results and the kernel's stored outputs.
pub(crate) fn run_reduce(
    k: &Kernel,
    inputs: &[&CpuStorage],
    r: usize,
    op: ReduceOp,
) -> (CpuStorage, Vec<CpuStorage>) {
    let n = k.n;
    let rows = n / r;
    let (bufs, ptrs) = outputs(k);
    let res = match k.insts[k.value].dtype() {
        DType::F64 => CpuStorage::F64(reduce_rows::<f64>(k, inputs, &ptrs, rows, r, op).into()),
        _ => CpuStorage::F32(reduce_rows::<f32>(k, inputs, &ptrs, rows, r, op).into()),
    };
    (res, bufs)
}

/// Runs `k` over a view whose reduced dims are leading (`r` rows of `n / r` kept elements)
/// and reduces each column with `op` in row order, as the eager kernel does for leading
/// dims (one thread, rows in order: the same result bit for bit). Returns the `n / r`
/// results and the kernel's stored outputs.
pub(crate) fn run_reduce_cols(
    k: &Kernel,
    inputs: &[&CpuStorage],
    r: usize,
    op: ReduceOp,
) -> (CpuStorage, Vec<CpuStorage>) {
    let c = k.n / r;
    let (bufs, ptrs) = outputs(k);
    let res = match k.insts[k.value].dtype() {
        DType::F64 => CpuStorage::F64(reduce_cols::<f64>(k, inputs, &ptrs, r, c, op).into()),
        _ => CpuStorage::F32(reduce_cols::<f32>(k, inputs, &ptrs, r, c, op).into()),
    };
    (res, bufs)
}

fn reduce_cols<T: RegSlice>(
    k: &Kernel,
    inputs: &[&CpuStorage],
    ptrs: &[OutBuf],
    r: usize,
    c: usize,
    op: ReduceOp,
) -> Vec<T> {
    use crate::backend::cpu::reduce::{nan_max, nan_min};
    use ReduceOp::*;
    let add = |a: T, x: T| a + x;
    let mul = |a: T, x: T| a * x;
    let out = match op {
        Sum | Mean => fold_cols(k, inputs, ptrs, r, c, T::zero(), add),
        Prod => fold_cols(k, inputs, ptrs, r, c, T::one(), mul),
        Max => fold_cols(k, inputs, ptrs, r, c, T::neg_infinity(), nan_max),
        Min => fold_cols(k, inputs, ptrs, r, c, T::infinity(), nan_min),
        ArgMax | ArgMin => unreachable!("arg reductions are not fused"),
    };
    if op == Mean {
        let s = T::c(1.0 / r as f64);
        out.into_iter().map(|x| x * s).collect()
    } else {
        out
    }
}

/// Column `j` of the result folds elements `j, c + j, 2c + j, ...` in order.
fn fold_cols<T: RegSlice>(
    k: &Kernel,
    inputs: &[&CpuStorage],
    ptrs: &[OutBuf],
    r: usize,
    c: usize,
    init: T,
    step: impl Fn(T, T) -> T + Copy + Sync,
) -> Vec<T> {
    let mut acc = vec![init; c];
    let mut regs = make_regs(k);
    let mut idx = vec![0usize; CHUNK];
    let mut scratch = Vec::new();
    let fold = |acc: &mut [T], v: &[T]| {
        simd(
            #[inline(always)]
            || {
                for (a, &x) in acc.iter_mut().zip(v) {
                    *a = step(*a, x);
                }
            },
        )
    };
    if c == 0 {
        return acc;
    }
    if c <= CHUNK {
        // Whole rows per chunk.
        let q = CHUNK / c;
        let mut i = 0;
        while i < r {
            let rows = q.min(r - i);
            run_chunk(
                k,
                inputs,
                &mut regs,
                ptrs,
                i * c,
                rows * c,
                &mut idx,
                &mut scratch,
            );
            let v = T::of(&regs[k.value]);
            for row in 0..rows {
                fold(&mut acc, &v[row * c..(row + 1) * c]);
            }
            i += rows;
        }
    } else {
        for i in 0..r {
            let mut c0 = 0;
            while c0 < c {
                let len = CHUNK.min(c - c0);
                run_chunk(
                    k,
                    inputs,
                    &mut regs,
                    ptrs,
                    i * c + c0,
                    len,
                    &mut idx,
                    &mut scratch,
                );
                fold(&mut acc[c0..c0 + len], &T::of(&regs[k.value])[..len]);
                c0 += len;
            }
        }
    }
    acc
}

/// Register values as a slice of `T`.
trait RegSlice: Float {
    fn of(r: &Reg) -> &[Self];
}
impl RegSlice for f32 {
    fn of(r: &Reg) -> &[f32] {
        match r {
            Reg::F32(v) => v,
            _ => unreachable!("f32 register"),
        }
    }
}
impl RegSlice for f64 {
    fn of(r: &Reg) -> &[f64] {
        match r {
            Reg::F64(v) => v,
            _ => unreachable!("f64 register"),
        }
    }
}

fn reduce_rows<T: RegSlice>(
    k: &Kernel,
    inputs: &[&CpuStorage],
    ptrs: &[OutBuf],
    rows: usize,
    r: usize,
    op: ReduceOp,
) -> Vec<T> {
    use crate::backend::cpu::reduce::{nan_max, nan_min};
    use ReduceOp::*;
    let add = |a: T, x: T| a + x;
    let mul = |a: T, x: T| a * x;
    let out = match op {
        Sum | Mean => fold_rows(k, inputs, ptrs, rows, r, T::zero(), add),
        Prod => fold_rows(k, inputs, ptrs, rows, r, T::one(), mul),
        Max => fold_rows(k, inputs, ptrs, rows, r, T::neg_infinity(), nan_max),
        Min => fold_rows(k, inputs, ptrs, rows, r, T::infinity(), nan_min),
        ArgMax | ArgMin => unreachable!("arg reductions are not fused"),
    };
    if op == Mean {
        let s = T::c(1.0 / r as f64);
        out.into_iter().map(|x| x * s).collect()
    } else {
        out
    }
}

/// Per row: `lanes[j]` folds elements `j, j + 16, ...` of the row's whole-16 part, `tail`
/// the rest; the result is `tail` combined with each lane (the eager kernel's order).
fn fold_rows<T: RegSlice>(
    k: &Kernel,
    inputs: &[&CpuStorage],
    ptrs: &[OutBuf],
    rows: usize,
    r: usize,
    init: T,
    step: impl Fn(T, T) -> T + Copy + Sync,
) -> Vec<T> {
    let mut out = vec![init; rows];
    let optr = OutBuf {
        ptr: out.as_mut_ptr() as *mut u8,
        dt: DType::F32,
    };
    let fold = |xs: &[T], lanes: &mut [T; 16]| -> T {
        simd(
            #[inline(always)]
            || {
                let mut it = xs.chunks_exact(16);
                for c in &mut it {
                    for j in 0..16 {
                        lanes[j] = step(lanes[j], c[j]);
                    }
                }
                let mut tail = init;
                for &x in it.remainder() {
                    tail = step(tail, x);
                }
                tail
            },
        )
    };
    let optr = &optr;
    par_blocks(rows, rows * r, |o0, o1| {
        let mut regs = make_regs(k);
        let mut idx = vec![0usize; CHUNK];
        let mut scratch = Vec::new();
        let put = |o: usize, v: T| {
            // SAFETY: row `o` belongs to this block only; `out` outlives the loop.
            unsafe { *(optr.ptr as *mut T).add(o) = v }
        };
        if r <= CHUNK {
            let q = CHUNK / r;
            let mut o = o0;
            while o < o1 {
                let nrows = q.min(o1 - o);
                let len = nrows * r;
                run_chunk(
                    k,
                    inputs,
                    &mut regs,
                    ptrs,
                    o * r,
                    len,
                    &mut idx,
                    &mut scratch,
                );
                let v = T::of(&regs[k.value]);
                for i in 0..nrows {
                    let mut lanes = [init; 16];
                    let mut acc = fold(&v[i * r..(i + 1) * r], &mut lanes);
                    for l in lanes {
                        acc = step(acc, l);
                    }
                    put(o + i, acc);
                }
                o += nrows;
            }
        } else {
            for o in o0..o1 {
                let mut lanes = [init; 16];
                let mut tail = init;
                let mut c = 0;
                while c < r {
                    let len = CHUNK.min(r - c);
                    run_chunk(
                        k,
                        inputs,
                        &mut regs,
                        ptrs,
                        o * r + c,
                        len,
                        &mut idx,
                        &mut scratch,
                    );
                    // Chunks are whole multiples of 16 but the row's last: the lanes carry on.
                    tail = fold(&T::of(&regs[k.value])[..len], &mut lanes);
                    c += len;
                }
                let mut acc = tail;
                for l in lanes {
                    acc = step(acc, l);
                }
                put(o, acc);
            }
        }
    });
    out
}

/// A buffer whose first `n` elements are written by the kernel, as a storage.
trait IntoStorageLen {
    fn into_storage_len(self, n: usize) -> CpuStorage;
}
macro_rules! into_storage_len {
    ($t:ty, $v:ident) => {
        impl IntoStorageLen for Vec<$t> {
            fn into_storage_len(mut self, n: usize) -> CpuStorage {
                // SAFETY: capacity >= n; the kernel writes every element before anyone
                // reads the storage (it is published only after `run` returns), and every
                // bit pattern written is a valid value.
                unsafe { self.set_len(n) };
                CpuStorage::$v(self.into())
            }
        }
    };
}
into_storage_len!(f32, F32);
into_storage_len!(f64, F64);
into_storage_len!(bool, Bool);

#[allow(clippy::too_many_arguments)]
fn run_chunk(
    k: &Kernel,
    inputs: &[&CpuStorage],
    regs: &mut [Reg],
    outs: &[OutBuf],
    start: usize,
    len: usize,
    idx: &mut [usize],
    scratch: &mut Vec<Vec<usize>>,
) {
    for (r, inst) in k.insts.iter().enumerate() {
        let (before, rest) = regs.split_at_mut(r);
        let dst = &mut rest[0];
        match inst {
            Inst::Load { input, index, .. } => {
                load(inputs[*input], index, start, len, dst, idx, scratch)
            }
            Inst::Unary { op, a, .. } => match (&before[*a], dst) {
                (Reg::F32(x), Reg::F32(y)) => unary_slice(*op, &x[..len], &mut y[..len]),
                (Reg::F64(x), Reg::F64(y)) => unary_slice(*op, &x[..len], &mut y[..len]),
                _ => unreachable!("unary on a non-float register"),
            },
            Inst::Binary { op, a, b, .. } => {
                let (x, y) = (&before[*a], &before[*b]);
                match (x, y, dst) {
                    (Reg::F32(x), Reg::F32(y), Reg::F32(d)) => {
                        binary_slice(*op, &x[..len], &y[..len], &mut d[..len])
                    }
                    (Reg::F64(x), Reg::F64(y), Reg::F64(d)) => {
                        binary_slice(*op, &x[..len], &y[..len], &mut d[..len])
                    }
                    (Reg::F32(x), Reg::F32(y), Reg::Bool(d)) => {
                        compare_slice(*op, &x[..len], &y[..len], &mut d[..len])
                    }
                    (Reg::F64(x), Reg::F64(y), Reg::Bool(d)) => {
                        compare_slice(*op, &x[..len], &y[..len], &mut d[..len])
                    }
                    _ => unreachable!("binary register types"),
                }
            }
            Inst::Where { c, a, b, .. } => {
                let Reg::Bool(c) = &before[*c] else {
                    unreachable!("where condition register")
                };
                match (&before[*a], &before[*b], dst) {
                    (Reg::F32(x), Reg::F32(y), Reg::F32(d)) => select(&c[..len], x, y, d),
                    (Reg::F64(x), Reg::F64(y), Reg::F64(d)) => select(&c[..len], x, y, d),
                    _ => unreachable!("where register types"),
                }
            }
            Inst::Cast { a, .. } => match (&before[*a], dst) {
                (Reg::F32(x), Reg::F64(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::F64(x), Reg::F32(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::F32(x), Reg::Bool(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::F64(x), Reg::Bool(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::Bool(x), Reg::F32(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::Bool(x), Reg::F64(y)) => convert_slice(&x[..len], &mut y[..len]),
                (Reg::F32(x), Reg::F32(y)) => y[..len].copy_from_slice(&x[..len]),
                (Reg::F64(x), Reg::F64(y)) => y[..len].copy_from_slice(&x[..len]),
                (Reg::Bool(x), Reg::Bool(y)) => y[..len].copy_from_slice(&x[..len]),
            },
        }
    }
    for (o, (r, _)) in outs.iter().zip(&k.outputs) {
        // SAFETY: `start..start + len` lies inside the buffer and no other chunk writes it.
        unsafe {
            match (&regs[*r], o.dt) {
                (Reg::F32(v), DType::F32) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), (o.ptr as *mut f32).add(start), len)
                }
                (Reg::F64(v), DType::F64) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), (o.ptr as *mut f64).add(start), len)
                }
                (Reg::Bool(v), DType::Bool) => {
                    std::ptr::copy_nonoverlapping(v.as_ptr(), (o.ptr as *mut bool).add(start), len)
                }
                _ => unreachable!("output register type"),
            }
        }
    }
}

fn select<T: Copy>(c: &[bool], a: &[T], b: &[T], d: &mut [T]) {
    for (i, d) in d[..c.len()].iter_mut().enumerate() {
        *d = if c[i] { a[i] } else { b[i] };
    }
}

/// Fills `dst[..len]` with `src[index(gid)]` for `gid` in `start..start + len`, converted.
fn load(
    src: &CpuStorage,
    index: &Idx,
    start: usize,
    len: usize,
    dst: &mut Reg,
    idx: &mut [usize],
    scratch: &mut Vec<Vec<usize>>,
) {
    let contiguous = index.contiguous_offset();
    let constant = match index {
        Idx::Const(c) => Some(*c),
        _ => None,
    };
    let (period, slope) = index.runs();
    let by_runs = contiguous.is_none() && constant.is_none() && period >= 8;
    if contiguous.is_none() && constant.is_none() && !by_runs {
        index.eval(start, &mut idx[..len], scratch);
    }
    with_storage!(src, |v: T| {
        let v: &[T] = v;
        macro_rules! fill {
            ($d:expr) => {{
                let d = &mut $d[..len];
                if let Some(off) = contiguous {
                    convert_slice(&v[off + start..off + start + len], d);
                } else if let Some(c) = constant {
                    d.fill(convert(v[c]));
                } else if by_runs {
                    // Runs where the index moves by `slope`: one index computation per run.
                    let end = start + len;
                    let mut g = start;
                    while g < end {
                        let run = (period - g % period).min(end - g);
                        let base = index.at(g);
                        let dst = &mut d[g - start..g - start + run];
                        match slope {
                            0 => dst.fill(convert(v[base])),
                            1 => convert_slice(&v[base..base + run], dst),
                            s => {
                                for (j, x) in dst.iter_mut().enumerate() {
                                    *x = convert(v[base + j * s]);
                                }
                            }
                        }
                        g += run;
                    }
                } else {
                    let ix = &idx[..len];
                    simd(
                        #[inline(always)]
                        || {
                            for (d, &i) in d.iter_mut().zip(ix) {
                                *d = convert(v[i]);
                            }
                        },
                    );
                }
            }};
        }
        match dst {
            Reg::F32(d) => fill!(d),
            Reg::F64(d) => fill!(d),
            Reg::Bool(d) => fill!(d),
        }
    })
}
