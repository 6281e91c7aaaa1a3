//! Index expressions of the kernel IR: which element of a buffer a load reads, as a function
//! of the kernel's loop variable (`gid`, the flat index of the output element).
//!
//! Views (permute, expand, slice, reshape) become affine maps with div/mod; a deferred
//! tensor read through a view composes the maps ([`Idx::subst`]). Expressions are simplified
//! as they are built, using an upper bound of each value, so a contiguous load is `gid` or
//! `gid + c` and a broadcast row is `gid % n`.

use crate::tensor::Layout;
use std::fmt;

/// An index expression over the kernel's loop variable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Idx {
    /// The flat index of the element being computed.
    Gid,
    Const(usize),
    Add(Box<Idx>, Box<Idx>),
    Mul(Box<Idx>, usize),
    Div(Box<Idx>, usize),
    Mod(Box<Idx>, usize),
}

impl Idx {
    /// An exclusive upper bound of the value when `gid < n`.
    pub fn bound(&self, n: usize) -> usize {
        match self {
            Idx::Gid => n,
            Idx::Const(c) => c + 1,
            Idx::Add(a, b) => (a.bound(n) + b.bound(n)).saturating_sub(1),
            Idx::Mul(a, k) => a.bound(n).saturating_sub(1).saturating_mul(*k) + 1,
            Idx::Div(a, k) => a.bound(n).saturating_sub(1) / k + 1,
            Idx::Mod(a, k) => a.bound(n).min(*k),
        }
    }

    pub fn sum(a: Idx, b: Idx) -> Idx {
        match (a, b) {
            (Idx::Const(0), x) | (x, Idx::Const(0)) => x,
            (Idx::Const(x), Idx::Const(y)) => Idx::Const(x + y),
            (x, y) => Idx::Add(Box::new(x), Box::new(y)),
        }
    }

    pub fn times(a: Idx, k: usize) -> Idx {
        match (a, k) {
            (_, 0) => Idx::Const(0),
            (x, 1) => x,
            (Idx::Const(c), k) => Idx::Const(c * k),
            (Idx::Mul(x, j), k) => Idx::Mul(x, j * k),
            (x, k) => Idx::Mul(Box::new(x), k),
        }
    }

    /// `a / k` given `a < bound`.
    pub fn div(a: Idx, k: usize, bound: usize) -> Idx {
        if k == 1 {
            return a;
        }
        if bound <= k {
            return Idx::Const(0);
        }
        match a {
            Idx::Const(c) => Idx::Const(c / k),
            Idx::Div(x, j) => Idx::Div(x, j * k),
            // (x * m) / k with m a multiple of k.
            Idx::Mul(x, m) if m % k == 0 => Idx::times(*x, m / k),
            x => Idx::Div(Box::new(x), k),
        }
    }

    /// `a % k` given `a < bound`.
    pub fn modulo(a: Idx, k: usize, bound: usize) -> Idx {
        if k == 1 {
            return Idx::Const(0);
        }
        if bound <= k {
            return a;
        }
        match a {
            Idx::Const(c) => Idx::Const(c % k),
            // (x % m) % k with k dividing m.
            Idx::Mod(x, m) if m % k == 0 => Idx::Mod(x, k),
            x => Idx::Mod(Box::new(x), k),
        }
    }

    /// This expression with `gid` replaced by `g` (whose values are below `gb` when the
    /// kernel's `gid < n`), simplified again.
    pub fn subst(&self, g: &Idx, n: usize) -> Idx {
        match self {
            Idx::Gid => g.clone(),
            Idx::Const(c) => Idx::Const(*c),
            Idx::Add(a, b) => Idx::sum(a.subst(g, n), b.subst(g, n)),
            Idx::Mul(a, k) => Idx::times(a.subst(g, n), *k),
            Idx::Div(a, k) => {
                let x = a.subst(g, n);
                let b = x.bound(n);
                Idx::div(x, *k, b)
            }
            Idx::Mod(a, k) => {
                let x = a.subst(g, n);
                let b = x.bound(n);
                Idx::modulo(x, *k, b)
            }
        }
    }

    /// `Some(c)` when the expression is `gid + c`: a contiguous run.
    pub fn contiguous_offset(&self) -> Option<usize> {
        match self {
            Idx::Gid => Some(0),
            Idx::Add(a, b) => match (&**a, &**b) {
                (Idx::Gid, Idx::Const(c)) | (Idx::Const(c), Idx::Gid) => Some(*c),
                _ => None,
            },
            _ => None,
        }
    }

    /// The buffer position of element `flat` (`flat < numel`) of a view with `layout`:
    /// `offset + Σ ((flat / inner_d) % size_d) * stride_d` over the layout's dims, with
    /// mergeable dims coalesced first.
    pub fn of_view(layout: &Layout, flat: Idx, n: usize) -> Idx {
        // (size, stride) from outermost to innermost, size-1 dims dropped, mergeable merged.
        let mut dims: Vec<(usize, usize)> = Vec::new();
        for (&s, &st) in layout.shape.iter().zip(&layout.strides) {
            if s == 1 {
                continue;
            }
            if let Some(last) = dims.last_mut() {
                if last.1 == st * s {
                    *last = (last.0 * s, st);
                    continue;
                }
            }
            dims.push((s, st));
        }
        let fb = flat.bound(n);
        let mut inner = 1usize;
        let mut terms = Vec::with_capacity(dims.len());
        for (j, &(size, stride)) in dims.iter().enumerate().rev() {
            if stride != 0 {
                let q = Idx::div(flat.clone(), inner, fb);
                let q = if j == 0 {
                    q
                } else {
                    let qb = q.bound(n);
                    Idx::modulo(q, size, qb)
                };
                terms.push(Idx::times(q, stride));
            }
            inner *= size;
        }
        let mut idx = Idx::Const(layout.offset);
        for t in terms.into_iter().rev() {
            idx = Idx::sum(idx, t);
        }
        // Keep `gid + c` in that order (the contiguous test looks for it).
        match idx {
            Idx::Add(a, b) if matches!(*a, Idx::Const(_)) => Idx::Add(b, a),
            i => i,
        }
    }

    /// Evaluates the expression for `gid` in `start..start + out.len()`.
    pub fn eval(&self, start: usize, out: &mut [usize], scratch: &mut Vec<Vec<usize>>) {
        match self {
            Idx::Gid => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = start + i;
                }
            }
            Idx::Const(c) => out.fill(*c),
            // gid / k and gid % k step through the chunk without dividing per element.
            Idx::Div(a, k) if **a == Idx::Gid => {
                let (mut q, mut r) = (start / k, start % k);
                for o in out.iter_mut() {
                    *o = q;
                    r += 1;
                    if r == *k {
                        r = 0;
                        q += 1;
                    }
                }
            }
            Idx::Mod(a, k) if **a == Idx::Gid => {
                let mut r = start % k;
                for o in out.iter_mut() {
                    *o = r;
                    r += 1;
                    if r == *k {
                        r = 0;
                    }
                }
            }
            Idx::Add(a, b) => {
                a.eval(start, out, scratch);
                let mut t = scratch.pop().unwrap_or_default();
                t.resize(out.len(), 0);
                b.eval(start, &mut t, scratch);
                for (o, x) in out.iter_mut().zip(&t) {
                    *o += x;
                }
                scratch.push(t);
            }
            Idx::Mul(a, k) => {
                a.eval(start, out, scratch);
                out.iter_mut().for_each(|o| *o *= k);
            }
            Idx::Div(a, k) => {
                a.eval(start, out, scratch);
                let (k, inv) = (*k, 1.0 / *k as f64);
                for o in out.iter_mut() {
                    *o = fast_div(*o, k, inv);
                }
            }
            Idx::Mod(a, k) => {
                a.eval(start, out, scratch);
                let (k, inv) = (*k, 1.0 / *k as f64);
                for o in out.iter_mut() {
                    *o -= fast_div(*o, k, inv) * k;
                }
            }
        }
    }
}

impl Idx {
    /// `(p, s)`: within each block of `p` consecutive values of `gid` starting at a multiple
    /// of `p`, the expression is `value(block start) + s * (gid - block start)`
    /// (`p == usize::MAX`: everywhere). Loads use it to copy whole runs instead of computing
    /// every index; views give runs as long as their innermost dim.
    pub fn runs(&self) -> (usize, usize) {
        fn gcd(a: usize, b: usize) -> usize {
            match (a, b) {
                (usize::MAX, x) | (x, usize::MAX) => x,
                (mut a, mut b) => {
                    while b != 0 {
                        (a, b) = (b, a % b);
                    }
                    a
                }
            }
        }
        match self {
            Idx::Gid => (usize::MAX, 1),
            Idx::Const(_) => (usize::MAX, 0),
            Idx::Add(a, b) => {
                let ((pa, sa), (pb, sb)) = (a.runs(), b.runs());
                (gcd(pa, pb), sa + sb)
            }
            Idx::Mul(a, k) => {
                let (p, s) = a.runs();
                (p, s * k)
            }
            Idx::Div(a, k) | Idx::Mod(a, k) if **a == Idx::Gid => {
                (*k, usize::from(matches!(self, Idx::Mod(..))))
            }
            Idx::Div(a, _) | Idx::Mod(a, _) => match a.runs() {
                (p, 0) => (p, 0),
                _ => (1, 0),
            },
        }
    }

    /// The value for one `gid`.
    pub fn at(&self, gid: usize) -> usize {
        match self {
            Idx::Gid => gid,
            Idx::Const(c) => *c,
            Idx::Add(a, b) => a.at(gid) + b.at(gid),
            Idx::Mul(a, k) => a.at(gid) * k,
            Idx::Div(a, k) => a.at(gid) / k,
            Idx::Mod(a, k) => a.at(gid) % k,
        }
    }
}

/// `x / k` through a floating-point reciprocal, corrected to the exact quotient (indices are
/// far below 2^52, where the estimate is off by at most one); vectorises, unlike integer
/// division by a run-time divisor.
#[inline(always)]
fn fast_div(x: usize, k: usize, inv: f64) -> usize {
    let q = (x as f64 * inv) as usize;
    let q = q - usize::from(q * k > x);
    q + usize::from((q + 1) * k <= x)
}

impl fmt::Display for Idx {
    /// C syntax (what a GPU renderer emits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Idx::Gid => write!(f, "gid"),
            Idx::Const(c) => write!(f, "{c}"),
            Idx::Add(a, b) => write!(f, "({a} + {b})"),
            Idx::Mul(a, k) => write!(f, "{a} * {k}"),
            Idx::Div(a, k) => write!(f, "({a} / {k})"),
            Idx::Mod(a, k) => write!(f, "({a} % {k})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(layout: &Layout) {
        let n = layout.numel();
        let idx = Idx::of_view(layout, Idx::Gid, n);
        let mut out = vec![0; n];
        idx.eval(0, &mut out, &mut Vec::new());
        // Reference: walk the multi-index.
        let mut expect = Vec::new();
        let mut ix = vec![0usize; layout.rank()];
        for _ in 0..n {
            expect.push(
                layout.offset
                    + ix.iter()
                        .zip(&layout.strides)
                        .map(|(i, s)| i * s)
                        .sum::<usize>(),
            );
            for d in (0..ix.len()).rev() {
                ix[d] += 1;
                if ix[d] < layout.shape[d] {
                    break;
                }
                ix[d] = 0;
            }
        }
        assert_eq!(out, expect, "{layout:?} -> {idx}");
    }

    #[test]
    fn views_map_like_strides() {
        let c = Layout::contiguous(&[3, 4, 5]);
        assert_eq!(Idx::of_view(&c, Idx::Gid, 60), Idx::Gid);
        check(&c);
        check(&c.permute(&[2, 0, 1]));
        check(&c.slice(1, 1, 2, 2));
        check(&Layout::contiguous(&[4]).expand("t", &[3, 4]).unwrap());
        check(&Layout::contiguous(&[3, 1]).expand("t", &[3, 4]).unwrap());
        let row = Layout::contiguous(&[5]).expand("t", &[2, 3, 5]).unwrap();
        assert_eq!(Idx::of_view(&row, Idx::Gid, 30).to_string(), "(gid % 5)");
    }

    #[test]
    fn runs_describe_views() {
        for l in [
            Layout::contiguous(&[3, 4, 5]).permute(&[2, 0, 1]),
            Layout::contiguous(&[6, 8]).slice(1, 2, 4, 1),
            Layout::contiguous(&[5]).expand("t", &[3, 5]).unwrap(),
            Layout::contiguous(&[3, 1]).expand("t", &[3, 7]).unwrap(),
        ] {
            let n = l.numel();
            let idx = Idx::of_view(&l, Idx::Gid, n);
            let (p, s) = idx.runs();
            for g in 0..n {
                let b = g - g % p.min(n);
                assert_eq!(idx.at(g), idx.at(b) + s * (g - b), "{idx} at {g}");
            }
        }
    }

    #[test]
    fn division_matches_integer_division() {
        let mut out = vec![0; 4096];
        for k in [1usize, 3, 7, 64, 1000, 4097] {
            for e in [
                Idx::Div(Box::new(Idx::Gid), k),
                Idx::Mod(Box::new(Idx::Gid), k),
            ] {
                for wrapped in [
                    e.clone(),
                    Idx::Mod(Box::new(Idx::Div(Box::new(Idx::Gid), 2)), k),
                ] {
                    for start in [0usize, 5, 1 << 20, (1 << 40) + 3] {
                        wrapped.eval(start, &mut out, &mut Vec::new());
                        for (i, &o) in out.iter().enumerate() {
                            let g = start + i;
                            let want = match &wrapped {
                                Idx::Div(_, k) => g / k,
                                Idx::Mod(a, k) if **a == Idx::Gid => g % k,
                                _ => (g / 2) % k,
                            };
                            assert_eq!(o, want, "{wrapped} at {g}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn composition_of_views() {
        // A permuted view of a broadcast: compose both maps and compare with direct strides.
        let inner = Layout::contiguous(&[4]).expand("t", &[3, 4]).unwrap();
        let outer = Layout::contiguous(&[3, 4]).permute(&[1, 0]);
        let n = 12;
        let composed =
            Idx::of_view(&inner, Idx::Gid, n).subst(&Idx::of_view(&outer, Idx::Gid, n), n);
        let mut out = vec![0; n];
        composed.eval(0, &mut out, &mut Vec::new());
        // outer element (i, j) of the [4, 3] permuted view is inner flat j*4 + i -> i.
        let expect: Vec<usize> = (0..4).flat_map(|i| (0..3).map(move |_| i)).collect();
        assert_eq!(out, expect);
    }
}
