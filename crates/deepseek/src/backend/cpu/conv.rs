//! Convolution as im2col + gemm, and 2-D pooling windows.

use super::strided::zeroed;
use super::threads;
pub use crate::ops::conv::{out_size, ConvGeom};
use crate::ops::{Pool2dAttrs, PoolKind};
use gemm::Parallelism;
use rayon::prelude::*;

/// The outputs `o` in `[lo, hi)` (of `n_out`) whose input index `o * s + off` lies in
/// `[0, n_in)`: a contiguous range, so the loops below need no per-element bounds tests.
fn valid_range(n_out: usize, s: usize, off: isize, n_in: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let end = n_in as isize - off;
    let hi = if end <= 0 { 0 } else { (end + s - 1) / s };
    let hi = (hi.max(0) as usize).min(n_out);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Unfolds group `g` of one image [C, H, W] into cols [Cg*kh*kw, Ho*Wo].
fn im2col<T: Copy + Default>(x: &[T], gm: &ConvGeom, g: usize, cols: &mut [T]) {
    let (l, a) = (gm.l(), gm.a);
    let sw = a.stride[1];
    let mut row = 0;
    for ci in g * gm.cg()..(g + 1) * gm.cg() {
        let plane = &x[ci * gm.h * gm.w..(ci + 1) * gm.h * gm.w];
        for ki in 0..gm.kh {
            for kj in 0..gm.kw {
                let dst = &mut cols[row * l..(row + 1) * l];
                let off = (kj * a.dilation[1]) as isize - a.padding[1] as isize;
                let (lo, hi) = valid_range(gm.wo, sw, off, gm.w);
                for oh in 0..gm.ho {
                    let ih =
                        (oh * a.stride[0] + ki * a.dilation[0]) as isize - a.padding[0] as isize;
                    let d = &mut dst[oh * gm.wo..(oh + 1) * gm.wo];
                    if ih < 0 || ih >= gm.h as isize {
                        d.fill(T::default());
                        continue;
                    }
                    let src = &plane[ih as usize * gm.w..(ih as usize + 1) * gm.w];
                    d[..lo].fill(T::default());
                    d[hi..].fill(T::default());
                    if hi > lo {
                        let s0 = (lo as isize * sw as isize + off) as usize;
                        if sw == 1 {
                            d[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]);
                        } else {
                            for (j, v) in d[lo..hi].iter_mut().enumerate() {
                                *v = src[s0 + j * sw];
                            }
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Folds cols back, adding into one image's group-`g` planes of dx.
fn col2im<T: Copy + std::ops::AddAssign>(cols: &[T], gm: &ConvGeom, g: usize, dx: &mut [T]) {
    let (l, a) = (gm.l(), gm.a);
    let sw = a.stride[1];
    let mut row = 0;
    for ci in g * gm.cg()..(g + 1) * gm.cg() {
        let plane = &mut dx[ci * gm.h * gm.w..(ci + 1) * gm.h * gm.w];
        for ki in 0..gm.kh {
            for kj in 0..gm.kw {
                let src = &cols[row * l..(row + 1) * l];
                let off = (kj * a.dilation[1]) as isize - a.padding[1] as isize;
                let (lo, hi) = valid_range(gm.wo, sw, off, gm.w);
                for oh in 0..gm.ho {
                    let ih =
                        (oh * a.stride[0] + ki * a.dilation[0]) as isize - a.padding[0] as isize;
                    if ih < 0 || ih >= gm.h as isize || hi <= lo {
                        continue;
                    }
                    let dst = &mut plane[ih as usize * gm.w..(ih as usize + 1) * gm.w];
                    let s = &src[oh * gm.wo + lo..oh * gm.wo + hi];
                    let d0 = (lo as isize * sw as isize + off) as usize;
                    if sw == 1 {
                        for (d, &v) in dst[d0..d0 + (hi - lo)].iter_mut().zip(s) {
                            *d += v;
                        }
                    } else {
                        for (j, &v) in s.iter().enumerate() {
                            dst[d0 + j * sw] += v;
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Row-major gemm: C[m,n] (+)= A[m,k] (strides ars, acs) @ B[k,n] (strides brs, bcs).
#[allow(clippy::too_many_arguments)]
unsafe fn mm<T: 'static + Copy + Send + Sync>(
    m: usize,
    n: usize,
    k: usize,
    c: *mut T,
    a: *const T,
    ars: isize,
    acs: isize,
    b: *const T,
    brs: isize,
    bcs: isize,
    accumulate: bool,
    zero: T,
    one: T,
    par: Parallelism,
) {
    super::matmul::gemm_strided(
        (m, n, k),
        (c, n),
        (a, ars, acs),
        (b, brs, bcs),
        accumulate,
        (zero, one),
        par,
    )
}

fn par_for(nt: usize) -> Parallelism {
    if nt > 1 {
        Parallelism::Rayon(nt)
    } else {
        Parallelism::None
    }
}

/// Forward: x [N,C,H,W], w [O,Cg,kh,kw] (both contiguous) -> y [N,O,Ho,Wo].
pub fn conv2d_fwd<T: Copy + Default + Send + Sync + 'static>(
    x: &[T],
    w: &[T],
    gm: &ConvGeom,
    zero: T,
    one: T,
) -> Vec<T> {
    let (k, l, og) = (gm.k(), gm.l(), gm.og());
    let mut y = zeroed(gm.n * gm.o * l, T::default());
    let nt = threads::get_num_threads();
    // `cols` is one buffer per thread, reused for each of its images (im2col writes all of it).
    let per_image = |xi: &[T], yi: &mut [T], cols: &mut [T], par: Parallelism| {
        for g in 0..gm.a.groups {
            im2col(xi, gm, g, cols);
            // SAFETY: all buffers are dense and sized by the geometry.
            unsafe {
                mm(
                    og,
                    l,
                    k,
                    yi[g * og * l..].as_mut_ptr(),
                    w[g * og * k..].as_ptr(),
                    k as isize,
                    1,
                    cols.as_ptr(),
                    l as isize,
                    1,
                    false,
                    zero,
                    one,
                    par,
                )
            };
        }
    };
    let xs = gm.c * gm.h * gm.w;
    threads::pool().install(|| {
        if gm.n >= nt && nt > 1 {
            y.par_chunks_mut(gm.o * l).enumerate().for_each_init(
                || zeroed(k * l, T::default()),
                |cols, (i, yi)| per_image(&x[i * xs..(i + 1) * xs], yi, cols, Parallelism::None),
            );
        } else {
            let mut cols = zeroed(k * l, T::default());
            for (i, yi) in y.chunks_mut(gm.o * l).enumerate() {
                per_image(&x[i * xs..(i + 1) * xs], yi, &mut cols, par_for(nt));
            }
        }
    });
    y
}

/// Backward: given dy, returns (dx, dw).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd<T>(
    x: &[T],
    w: &[T],
    dy: &[T],
    gm: &ConvGeom,
    need_dx: bool,
    need_dw: bool,
    zero: T,
    one: T,
) -> (Vec<T>, Vec<T>)
where
    T: Copy + Default + Send + Sync + 'static + std::ops::AddAssign,
{
    let (k, l, og) = (gm.k(), gm.l(), gm.og());
    let xs = gm.c * gm.h * gm.w;
    let wn = gm.o * k;
    let mut dx = zeroed(if need_dx { gm.n * xs } else { 0 }, T::default());
    // Per thread: (dW accumulator, cols buffer reused for each of its images).
    let per_image = |i: usize, dxi: Option<&mut [T]>, dw: &mut [T], cols: &mut [T]| {
        let xi = &x[i * xs..(i + 1) * xs];
        let dyi = &dy[i * gm.o * l..(i + 1) * gm.o * l];
        let mut dxi = dxi;
        for g in 0..gm.a.groups {
            let dyg = &dyi[g * og * l..(g + 1) * og * l];
            if need_dw {
                im2col(xi, gm, g, cols);
                // dW_g [og, k] += dy_g [og, l] @ cols^T [l, k]
                // SAFETY: dense buffers sized by the geometry.
                unsafe {
                    mm(
                        og,
                        k,
                        l,
                        dw[g * og * k..].as_mut_ptr(),
                        dyg.as_ptr(),
                        l as isize,
                        1,
                        cols.as_ptr(),
                        1,
                        l as isize,
                        true,
                        zero,
                        one,
                        Parallelism::None,
                    )
                };
            }
            if let Some(d) = dxi.as_deref_mut() {
                // cols [k, l] = W_g^T [k, og] @ dy_g [og, l]
                // SAFETY: as above.
                unsafe {
                    mm(
                        k,
                        l,
                        og,
                        cols.as_mut_ptr(),
                        w[g * og * k..].as_ptr(),
                        1,
                        k as isize,
                        dyg.as_ptr(),
                        l as isize,
                        1,
                        false,
                        zero,
                        one,
                        Parallelism::None,
                    )
                };
                col2im(cols, gm, g, d);
            }
        }
    };
    let wlen = if need_dw { wn } else { 0 };
    let state = || (vec![T::default(); wlen], zeroed(k * l, T::default()));
    let dw = threads::pool().install(|| {
        if need_dx {
            dx.par_chunks_mut(xs)
                .enumerate()
                .fold(state, |(mut acc, mut cols), (i, dxi)| {
                    per_image(i, Some(dxi), &mut acc, &mut cols);
                    (acc, cols)
                })
                .map(|(acc, _)| acc)
                .reduce(|| vec![T::default(); wlen], add_vec)
        } else {
            (0..gm.n)
                .into_par_iter()
                .fold(state, |(mut acc, mut cols), i| {
                    per_image(i, None, &mut acc, &mut cols);
                    (acc, cols)
                })
                .map(|(acc, _)| acc)
                .reduce(|| vec![T::default(); wlen], add_vec)
        }
    });
    (dx, dw)
}

fn add_vec<T: Copy + std::ops::AddAssign>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

/// Window [start, end) of output index `o` in one dim, and the divisor span for avg pooling.
fn window(o: usize, n: usize, out: usize, a: &Pool2dAttrs, dim: usize) -> (isize, isize, isize) {
    if let Some(_os) = a.adaptive {
        let s = (o * n) / out;
        let e = ((o + 1) * n).div_ceil(out);
        return (s as isize, e as isize, (e - s) as isize);
    }
    let s = (o * a.stride[dim]) as isize - a.padding[dim] as isize;
    let e = s + ((a.kernel[dim] - 1) * a.dilation[dim] + 1) as isize;
    let pad_end = (n + a.padding[dim]) as isize;
    let span = e.min(pad_end) - s;
    (s, e, span)
}

/// Pooling over x [NC, H, W] -> (y [NC, Ho, Wo], argmax indices for max pooling).
pub fn pool2d<T: crate::tensor::Element>(
    x: &[T],
    nc: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    a: &Pool2dAttrs,
) -> (Vec<T>, Vec<i64>) {
    let is_max = a.kind == PoolKind::Max;
    let mut y = zeroed(nc * ho * wo, T::default());
    let mut idx = vec![0i64; if is_max { nc * ho * wo } else { 0 }];
    let body = |p: usize, yp: &mut [T], ip: &mut [i64]| {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for oh in 0..ho {
            let (hs, he, hspan) = window(oh, h, ho, a, 0);
            for ow in 0..wo {
                let (ws, we, wspan) = window(ow, w, wo, a, 1);
                let o = oh * wo + ow;
                if is_max {
                    let (dh, dw) = if a.adaptive.is_some() {
                        (1, 1)
                    } else {
                        (a.dilation[0] as isize, a.dilation[1] as isize)
                    };
                    let mut best: Option<(T, usize)> = None;
                    let mut ih = hs;
                    while ih < he {
                        if ih >= 0 && ih < h as isize {
                            let mut iw = ws;
                            while iw < we {
                                if iw >= 0 && iw < w as isize {
                                    let j = ih as usize * w + iw as usize;
                                    let v = plane[j];
                                    #[allow(clippy::eq_op)]
                                    let better = match best {
                                        None => true,
                                        Some((b, _)) => v > b || (v != v && b == b),
                                    };
                                    if better {
                                        best = Some((v, j));
                                    }
                                }
                                iw += dw;
                            }
                        }
                        ih += dh;
                    }
                    let (v, j) = best.unwrap_or((T::from_f64(f64::NEG_INFINITY), 0));
                    yp[o] = v;
                    ip[o] = j as i64;
                } else {
                    let (h0, h1) = (hs.max(0), he.min(h as isize));
                    let (w0, w1) = (ws.max(0), we.min(w as isize));
                    let mut s = 0.0f64;
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            s += plane[ih as usize * w + iw as usize].to_f64();
                        }
                    }
                    let div = match a.kind {
                        PoolKind::Avg {
                            count_include_pad: true,
                        } if a.adaptive.is_none() => hspan * wspan,
                        _ => (h1 - h0) * (w1 - w0),
                    };
                    yp[o] = T::from_f64(s / div.max(1) as f64);
                }
            }
        }
    };
    let hw = ho * wo;
    if hw == 0 {
        return (y, idx);
    }
    threads::pool().install(|| {
        if is_max {
            y.par_chunks_mut(hw)
                .zip(idx.par_chunks_mut(hw))
                .enumerate()
                .for_each(|(p, (yp, ip))| body(p, yp, ip));
        } else {
            y.par_chunks_mut(hw)
                .enumerate()
                .for_each(|(p, yp)| body(p, yp, &mut []));
        }
    });
    (y, idx)
}

/// Average-pooling backward: spreads dy over each window.
pub fn avg_pool2d_bwd(
    dy: &[f64],
    nc: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    a: &Pool2dAttrs,
) -> Vec<f64> {
    let mut dx = vec![0.0f64; nc * h * w];
    for p in 0..nc {
        let plane = &mut dx[p * h * w..(p + 1) * h * w];
        for oh in 0..ho {
            let (hs, he, hspan) = window(oh, h, ho, a, 0);
            for ow in 0..wo {
                let (ws, we, wspan) = window(ow, w, wo, a, 1);
                let (h0, h1) = (hs.max(0), he.min(h as isize));
                let (w0, w1) = (ws.max(0), we.min(w as isize));
                let div = match a.kind {
                    PoolKind::Avg {
                        count_include_pad: true,
                    } if a.adaptive.is_none() => hspan * wspan,
                    _ => (h1 - h0) * (w1 - w0),
                };
                let g = dy[p * ho * wo + oh * wo + ow] / div.max(1) as f64;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        plane[ih as usize * w + iw as usize] += g;
                    }
                }
            }
        }
    }
    dx
}
