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

/// One thread's working state for running a kernel chunk by chunk: a register per
/// instruction, and where each instruction's values of the current chunk live. An
/// instruction whose value is a kernel output writes straight into the output buffer, and a
/// load of a contiguous input of the register's dtype reads the input in place: neither is
/// copied through a register.
struct Frame {
    regs: Vec<Reg>,
    /// Per instruction: the kernel output it writes directly (the first one naming it).
    direct_out: Vec<Option<usize>>,
    /// Per instruction: a contiguous same-dtype load, as (input, element offset).
    borrowed: Vec<Option<(usize, usize)>>,
    /// Per instruction: the start of its values for the current chunk.
    locs: Vec<*mut u8>,
    idx: Vec<usize>,
    scratch: Vec<Vec<usize>>,
}

/// The physical element type of a register of dtype `dt`.
#[derive(Clone, Copy, PartialEq)]
enum Phys {
    F32,
    F64,
    Bool,
}

fn phys(dt: DType) -> Phys {
    match dt {
        DType::F64 => Phys::F64,
        DType::Bool => Phys::Bool,
        _ => Phys::F32,
    }
}

fn elem_size(p: Phys) -> usize {
    match p {
        Phys::F32 => 4,
        Phys::F64 => 8,
        Phys::Bool => 1,
    }
}

fn storage_phys(s: &CpuStorage) -> Option<(Phys, *mut u8)> {
    match s {
        CpuStorage::F32(v) => Some((Phys::F32, v.as_ptr() as *mut u8)),
        CpuStorage::F64(v) => Some((Phys::F64, v.as_ptr() as *mut u8)),
        CpuStorage::Bool(v) => Some((Phys::Bool, v.as_ptr() as *mut u8)),
        _ => None,
    }
}

impl Frame {
    fn new(k: &Kernel) -> Frame {
        let mut direct_out = vec![None; k.insts.len()];
        for (o, (r, _)) in k.outputs.iter().enumerate() {
            direct_out[*r].get_or_insert(o);
        }
        let borrowed = k
            .insts
            .iter()
            .enumerate()
            .map(|(r, inst)| match inst {
                Inst::Load {
                    input,
                    index,
                    src,
                    dt,
                } if direct_out[r].is_none()
                    && phys(*src) == phys(*dt)
                    && matches!(src, DType::F32 | DType::F64 | DType::Bool) =>
                {
                    index.contiguous_offset().map(|off| (*input, off))
                }
                _ => None,
            })
            .collect();
        Frame {
            regs: k.insts.iter().map(|i| Reg::new(i.dtype())).collect(),
            direct_out,
            borrowed,
            locs: vec![std::ptr::null_mut(); k.insts.len()],
            idx: vec![0usize; CHUNK],
            scratch: Vec::new(),
        }
    }

    /// The values of instruction `r` for the chunk just run.
    fn value<T: RegSlice>(&self, r: usize, len: usize) -> &[T] {
        // SAFETY: `run` pointed `locs[r]` at `len` initialised values of `r`'s dtype, and
        // nothing writes them until the next `run`.
        unsafe { std::slice::from_raw_parts(self.locs[r] as *const T, len) }
    }

    /// Runs elements `start..start + len` of `k`.
    fn run(
        &mut self,
        k: &Kernel,
        inputs: &[&CpuStorage],
        outs: &[OutBuf],
        start: usize,
        len: usize,
    ) {
        for (r, inst) in k.insts.iter().enumerate() {
            let size = elem_size(phys(inst.dtype()));
            self.locs[r] = if let Some(o) = self.direct_out[r] {
                // SAFETY: the output buffer holds `k.n` elements of this size.
                unsafe { outs[o].ptr.add(start * size) }
            } else if let Some((input, off)) = self.borrowed[r] {
                let (_, p) = storage_phys(inputs[input]).expect("borrowed load of a float input");
                // SAFETY: a contiguous index addresses `off + start .. off + start + len`.
                unsafe { p.add((off + start) * size) }
            } else {
                match &mut self.regs[r] {
                    Reg::F32(v) => v.as_mut_ptr() as *mut u8,
                    Reg::F64(v) => v.as_mut_ptr() as *mut u8,
                    Reg::Bool(v) => v.as_mut_ptr() as *mut u8,
                }
            };
        }
        run_chunk(self, k, inputs, start, len);
        // Outputs named twice: the later ones are copied from the first.
        for (o, (r, _)) in outs.iter().zip(&k.outputs) {
            let size = elem_size(phys(k.insts[*r].dtype()));
            // SAFETY: both ranges hold `len` elements; a later output's buffer is its own.
            unsafe {
                let dst = o.ptr.add(start * size);
                if dst != self.locs[*r] {
                    std::ptr::copy_nonoverlapping(self.locs[*r], dst, len * size);
                }
            }
        }
    }
}

/// Runs `work(first, end)` over `0..items` in parallel blocks when `elems` is large.
fn par_blocks(items: usize, elems: usize, work: impl Fn(usize, usize) + Sync) {
    let t = threads::get_num_threads();
    if elems >= threads::PAR_THRESHOLD
        && t > 1
        && items > 1
        && rayon::current_thread_index().is_none()
    {
        let per = items.div_ceil(t).max(1);
        let blocks = items.div_ceil(per);
        threads::par_for(blocks, |b| work(b * per, ((b + 1) * per).min(items)));
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
        let mut frame = Frame::new(k);
        for c in c0..c1 {
            let start = c * CHUNK;
            frame.run(k, inputs, &ptrs, start, CHUNK.min(n - start));
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
    let mut frame = Frame::new(k);
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
            frame.run(k, inputs, ptrs, i * c, rows * c);
            let v = frame.value::<T>(k.value, rows * c);
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
                frame.run(k, inputs, ptrs, i * c + c0, len);
                fold(&mut acc[c0..c0 + len], frame.value::<T>(k.value, len));
                c0 += len;
            }
        }
    }
    acc
}

/// The float types a reduced register holds.
trait RegSlice: Float {}
impl RegSlice for f32 {}
impl RegSlice for f64 {}

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
        let mut frame = Frame::new(k);
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
                frame.run(k, inputs, ptrs, o * r, len);
                let v = frame.value::<T>(k.value, len);
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
                    frame.run(k, inputs, ptrs, o * r + c, len);
                    // Chunks are whole multiples of 16 but the row's last: the lanes carry on.
                    tail = fold(frame.value::<T>(k.value, len), &mut lanes);
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

/// A register's values of the current chunk, typed.
enum Vals<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    Bool(&'a [bool]),
}

/// A register's destination for the current chunk, typed.
enum Dst<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    Bool(&'a mut [bool]),
}

/// # Safety
/// `p` must point at `len` initialised values of `dt`'s physical type that nothing writes
/// while the slice lives.
unsafe fn vals<'a>(p: *mut u8, dt: DType, len: usize) -> Vals<'a> {
    use std::slice::from_raw_parts as sl;
    match phys(dt) {
        Phys::F32 => Vals::F32(sl(p as *const f32, len)),
        Phys::F64 => Vals::F64(sl(p as *const f64, len)),
        Phys::Bool => Vals::Bool(sl(p as *const bool, len)),
    }
}

/// # Safety
/// `p` must point at room for `len` values of `dt`'s physical type that nothing else reads
/// or writes while the slice lives.
unsafe fn dst<'a>(p: *mut u8, dt: DType, len: usize) -> Dst<'a> {
    use std::slice::from_raw_parts_mut as sl;
    match phys(dt) {
        Phys::F32 => Dst::F32(sl(p as *mut f32, len)),
        Phys::F64 => Dst::F64(sl(p as *mut f64, len)),
        Phys::Bool => Dst::Bool(sl(p as *mut bool, len)),
    }
}

fn run_chunk(f: &mut Frame, k: &Kernel, inputs: &[&CpuStorage], start: usize, len: usize) {
    let dt = |r: usize| k.insts[r].dtype();
    for (r, inst) in k.insts.iter().enumerate() {
        if f.borrowed[r].is_some() {
            continue;
        }
        // SAFETY: every instruction has its own location (a register, an output buffer of
        // its own, or an input it does not write), so the destination never aliases an
        // operand; operands were computed earlier in this chunk.
        let (d, v) = unsafe {
            let v = |a: usize| vals(f.locs[a], dt(a), len);
            (dst(f.locs[r], inst.dtype(), len), v)
        };
        match inst {
            Inst::Load { input, index, .. } => load(
                inputs[*input],
                index,
                start,
                len,
                d,
                &mut f.idx,
                &mut f.scratch,
            ),
            Inst::Unary { op, a, .. } => match (v(*a), d) {
                (Vals::F32(x), Dst::F32(y)) => unary_slice(*op, x, y),
                (Vals::F64(x), Dst::F64(y)) => unary_slice(*op, x, y),
                _ => unreachable!("unary on a non-float register"),
            },
            Inst::Binary { op, a, b, .. } => match (v(*a), v(*b), d) {
                (Vals::F32(x), Vals::F32(y), Dst::F32(d)) => binary_slice(*op, x, y, d),
                (Vals::F64(x), Vals::F64(y), Dst::F64(d)) => binary_slice(*op, x, y, d),
                (Vals::F32(x), Vals::F32(y), Dst::Bool(d)) => compare_slice(*op, x, y, d),
                (Vals::F64(x), Vals::F64(y), Dst::Bool(d)) => compare_slice(*op, x, y, d),
                _ => unreachable!("binary register types"),
            },
            Inst::Where { c, a, b, .. } => {
                let Vals::Bool(c) = v(*c) else {
                    unreachable!("where condition register")
                };
                match (v(*a), v(*b), d) {
                    (Vals::F32(x), Vals::F32(y), Dst::F32(d)) => select(c, x, y, d),
                    (Vals::F64(x), Vals::F64(y), Dst::F64(d)) => select(c, x, y, d),
                    _ => unreachable!("where register types"),
                }
            }
            Inst::Cast { a, .. } => match (v(*a), d) {
                (Vals::F32(x), Dst::F64(y)) => convert_slice(x, y),
                (Vals::F64(x), Dst::F32(y)) => convert_slice(x, y),
                (Vals::F32(x), Dst::Bool(y)) => convert_slice(x, y),
                (Vals::F64(x), Dst::Bool(y)) => convert_slice(x, y),
                (Vals::Bool(x), Dst::F32(y)) => convert_slice(x, y),
                (Vals::Bool(x), Dst::F64(y)) => convert_slice(x, y),
                (Vals::F32(x), Dst::F32(y)) => y.copy_from_slice(x),
                (Vals::F64(x), Dst::F64(y)) => y.copy_from_slice(x),
                (Vals::Bool(x), Dst::Bool(y)) => y.copy_from_slice(x),
            },
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
    dst: Dst<'_>,
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
            Dst::F32(d) => fill!(d),
            Dst::F64(d) => fill!(d),
            Dst::Bool(d) => fill!(d),
        }
    })
}
