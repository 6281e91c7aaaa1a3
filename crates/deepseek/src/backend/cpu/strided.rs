//! Iteration over strided layouts: dims are coalesced, the innermost run is handed to a
//! closure as (offset, stride, length) so contiguous and broadcast runs vectorise.
#![allow(clippy::needless_range_loop)]

use std::mem::MaybeUninit;

/// Rows of a K-operand strided iteration over a common shape.
pub struct Rows<const K: usize> {
    outer: Vec<usize>,
    ostr: Vec<[usize; K]>,
    /// Length of the innermost run.
    pub inner: usize,
    /// Strides of each operand along the innermost run.
    pub istr: [usize; K],
    base: [usize; K],
}

impl<const K: usize> Rows<K> {
    pub fn new(shape: &[usize], strides: [&[usize]; K], offsets: [usize; K]) -> Self {
        let mut merged: Vec<(usize, [usize; K])> = Vec::new();
        for (i, &s) in shape.iter().enumerate() {
            if s == 1 {
                continue;
            }
            let st: [usize; K] = std::array::from_fn(|k| strides[k][i]);
            if let Some(last) = merged.last_mut() {
                if (0..K).all(|k| last.1[k] == st[k] * s) {
                    last.0 *= s;
                    last.1 = st;
                    continue;
                }
            }
            merged.push((s, st));
        }
        let (inner, istr) = merged.pop().unwrap_or((1, [0; K]));
        Rows {
            outer: merged.iter().map(|d| d.0).collect(),
            ostr: merged.iter().map(|d| d.1).collect(),
            inner,
            istr,
            base: offsets,
        }
    }
    /// Number of rows (product of the outer dims).
    pub fn rows(&self) -> usize {
        self.outer.iter().product()
    }
    /// Calls `f(row, offsets)` for each row in `range`.
    pub fn for_range(&self, range: std::ops::Range<usize>, mut f: impl FnMut(usize, [usize; K])) {
        // Nothing to visit (this also covers shapes with a zero-size outer dim).
        if range.is_empty() {
            return;
        }
        let n = self.outer.len();
        let mut idx = vec![0usize; n];
        let mut r = range.start;
        for d in (0..n).rev() {
            idx[d] = r % self.outer[d];
            r /= self.outer[d];
        }
        let mut off = self.base;
        for d in 0..n {
            for k in 0..K {
                off[k] += idx[d] * self.ostr[d][k];
            }
        }
        for row in range {
            f(row, off);
            for d in (0..n).rev() {
                idx[d] += 1;
                for k in 0..K {
                    off[k] += self.ostr[d][k];
                }
                if idx[d] < self.outer[d] {
                    break;
                }
                for k in 0..K {
                    off[k] -= self.ostr[d][k] * self.outer[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// Allocates `n` elements and lets `fill` write every one of them. The allocation is
/// fallible ([`crate::memory::try_alloc`]): a refused one unwinds to the backend entry
/// point's `catch_oom`, which returns `Error::OutOfMemory`.
pub fn alloc_with<U>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<U>])) -> Vec<U> {
    let mut v: Vec<U> = crate::memory::alloc_or_unwind("alloc", n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` initialised all `n` elements (every caller writes each slot once).
    unsafe { v.set_len(n) };
    v
}

/// Bytes above which a fresh buffer asks for transparent huge pages.
const HUGE_BYTES: usize = 4 << 20;

/// Asks the kernel to back a large, not yet touched buffer with 2 MiB pages, so filling it
/// takes one page fault per 2 MiB instead of per 4 KiB (the faults otherwise dominate
/// bandwidth-bound kernels on fresh outputs). Advisory: errors are ignored.
pub fn advise_huge<U>(v: &mut Vec<U>) {
    let bytes = v.capacity() * std::mem::size_of::<U>();
    if bytes < HUGE_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let lo = start.next_multiple_of(PAGE);
        let hi = (start + bytes) / PAGE * PAGE;
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the allocation owned by `v`; MADV_HUGEPAGE only
            // changes how the kernel backs the pages, never their contents.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
}

/// `n` copies of `z` (zero in practice), allocated like [`alloc_with`] (fallible, cached
/// buffers reused, huge-page backed when large).
pub fn zeroed<T: Clone>(n: usize, z: T) -> Vec<T> {
    let mut v = crate::memory::alloc_or_unwind("alloc", n);
    v.resize(n, z);
    v
}

/// Copies the elements of a strided view into a new contiguous vector.
pub fn to_contiguous<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    offset: usize,
) -> Vec<T> {
    let n: usize = shape.iter().product();
    let rows = Rows::<1>::new(shape, [strides], [offset]);
    let inner = rows.inner;
    let s = rows.istr[0];
    alloc_with(n, |out| {
        if n == 0 {
            return;
        }
        let nrows = rows.rows();
        let body = |chunk: &mut [MaybeUninit<T>], r0: usize| {
            let nr = chunk.len() / inner;
            rows.for_range(r0..r0 + nr, |r, [o]| {
                let dst = &mut chunk[(r - r0) * inner..(r - r0 + 1) * inner];
                if s == 1 {
                    for (d, x) in dst.iter_mut().zip(&src[o..o + inner]) {
                        d.write(*x);
                    }
                } else {
                    for (j, d) in dst.iter_mut().enumerate() {
                        d.write(src[o + j * s]);
                    }
                }
            });
        };
        par_rows(out, inner, nrows, body);
    })
}

/// Splits `out` (rows of `inner` elements) into chunks of whole rows and runs `body` on each,
/// in parallel when large.
pub fn par_rows<U: Send>(
    out: &mut [U],
    inner: usize,
    nrows: usize,
    body: impl Fn(&mut [U], usize) + Sync,
) {
    let n = inner * nrows;
    let threads = super::threads::get_num_threads();
    if n < super::threads::PAR_THRESHOLD || threads <= 1 || nrows < 2 {
        body(out, 0);
        return;
    }
    let per = nrows.div_ceil(threads).max(1);
    super::threads::par_chunks(out, per * inner, |i, c| body(c, i * per));
}
