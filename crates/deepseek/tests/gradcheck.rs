//! Finite-difference gradient checks in f64 for every differentiable op.
//!
//! Each case draws random shapes and values from a seeded generator, computes analytic
//! gradients of `sum_k (out_k * cot_k).sum()` for a random cotangent, and compares them with
//! central differences over every element of every floating-point input. A test collects every
//! failing case of its op family and reports them all at the end.

#![allow(clippy::cloned_ref_to_slice_refs)] // test tables read better with `&[x.clone()]`

use deepseek::nn::functional as F;
use deepseek::ops::{Domain, UnaryOp};
use deepseek::tensor::Generator;
use deepseek::{DType, Result, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

const EPS: f64 = 1e-6;

// ------------------------------------------------------------------------------------------
// Random inputs.

struct Rng(Generator);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(Generator::new(seed))
    }
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.0.below((hi - lo + 1) as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.0.below(2) == 1
    }
    /// A shape of rank `min..=max`; dims 1..=5 (1..=3 above rank 3).
    fn shape(&mut self, min_rank: usize, max_rank: usize) -> Vec<usize> {
        let r = self.int(min_rank, max_rank);
        let hi = if r <= 3 { 5 } else { 3 };
        (0..r).map(|_| self.int(1, hi)).collect()
    }
    fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.0.normal()).collect()
    }
    fn randn(&mut self, shape: &[usize]) -> Tensor {
        let v = self.normals(shape.iter().product());
        t(v, shape)
    }
    fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|_| lo + (hi - lo) * self.0.uniform()).collect();
        t(v, shape)
    }
    /// Positive values in [0.5, 2).
    fn pos(&mut self, shape: &[usize]) -> Tensor {
        self.uniform(shape, 0.5, 2.0)
    }
    /// Normal values at least 0.1 away from each of `kinks`.
    fn away(&mut self, shape: &[usize], kinks: &[f64]) -> Tensor {
        let n: usize = shape.iter().product();
        let v = (0..n)
            .map(|_| loop {
                let x = self.0.normal();
                if kinks.iter().all(|k| (x - k).abs() >= 0.1) {
                    break x;
                }
            })
            .collect();
        t(v, shape)
    }
    /// i64 indices in `0..n`.
    fn idx(&mut self, shape: &[usize], n: usize) -> Tensor {
        let k: usize = shape.iter().product();
        let v: Vec<i64> = (0..k).map(|_| self.0.below(n as u64) as i64).collect();
        Tensor::from_vec(v, shape).unwrap()
    }
    fn mask(&mut self, shape: &[usize]) -> Tensor {
        let k: usize = shape.iter().product();
        let v: Vec<bool> = (0..k).map(|_| self.coin()).collect();
        Tensor::from_vec(v, shape).unwrap()
    }
    fn perm(&mut self, n: usize) -> Vec<isize> {
        let mut p: Vec<isize> = (0..n as isize).collect();
        for i in (1..n).rev() {
            let j = self.int(0, i);
            p.swap(i, j);
        }
        p
    }
    /// A random dim of a rank-`r` tensor, negative half the time.
    fn dim(&mut self, r: usize) -> isize {
        let d = self.int(0, r - 1) as isize;
        if self.coin() {
            d - r as isize
        } else {
            d
        }
    }
    /// A non-empty random subset of the dims of a rank-`r` tensor.
    fn dims(&mut self, r: usize) -> Vec<isize> {
        loop {
            let mut v: Vec<isize> = Vec::new();
            for d in 0..r as isize {
                if self.coin() {
                    v.push(if self.coin() { d - r as isize } else { d });
                }
            }
            if !v.is_empty() {
                return v;
            }
        }
    }
    /// Two shapes that broadcast against each other (either may be lower rank; 1s on both).
    fn bcast_pair(&mut self) -> (Vec<usize>, Vec<usize>) {
        let s = self.shape(0, 4);
        let cut = self.int(0, s.len());
        let mut a = s.clone();
        let mut b = s[cut..].to_vec();
        for d in a.iter_mut() {
            if self.int(0, 3) == 0 {
                *d = 1;
            }
        }
        for d in b.iter_mut() {
            if self.int(0, 3) == 0 {
                *d = 1;
            }
        }
        if self.coin() {
            (a, b)
        } else {
            (b, a)
        }
    }
}

fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).unwrap()
}

fn unravel(mut j: usize, shape: &[usize]) -> Vec<usize> {
    let mut ix = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        ix[d] = j % shape[d];
        j /= shape[d];
    }
    ix
}

fn panic_msg(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ------------------------------------------------------------------------------------------
// The checker.

type Res<T> = std::result::Result<T, String>;
type MultiFn<'a> = &'a dyn Fn(&[Tensor]) -> Result<Vec<Tensor>>;

/// Leaves for `inputs`: float ones detached and requiring grad, others as they are.
fn make_leaves(inputs: &[Tensor]) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|x| {
            let l = x.detach();
            if l.dtype().is_float() {
                l.requires_grad_(true).unwrap()
            } else {
                l
            }
        })
        .collect()
}

/// `inputs` with input `i` replaced by a fresh tensor of values `v`.
fn with_values(inputs: &[Tensor], i: usize, v: Vec<f64>) -> Vec<Tensor> {
    let mut xs: Vec<Tensor> = inputs.iter().map(|x| x.detach()).collect();
    xs[i] = t(v, inputs[i].shape());
    xs
}

fn gradcheck(gen: &mut Generator, inputs: &[Tensor], f: MultiFn) -> Res<()> {
    let leaves = make_leaves(inputs);
    let outs = f(&leaves).map_err(|e| format!("forward failed: {e}"))?;
    let mut cots: Vec<Option<Vec<f64>>> = Vec::new();
    let mut loss: Option<Tensor> = None;
    for o in &outs {
        if !o.dtype().is_float() {
            cots.push(None);
            continue;
        }
        if o.dtype() != DType::F64 {
            return Err(format!("output has dtype {} for f64 inputs", o.dtype()));
        }
        let vals = o.to_vec_f64().map_err(|e| e.to_string())?;
        if vals.iter().any(|v| !v.is_finite()) {
            return Err(format!("non-finite forward output {vals:?}"));
        }
        let c: Vec<f64> = (0..o.numel()).map(|_| gen.normal()).collect();
        if o.requires_grad() {
            let term = o
                .mul(&t(c.clone(), o.shape()))
                .and_then(|p| p.sum_all())
                .map_err(|e| format!("loss failed: {e}"))?;
            loss = Some(match loss {
                None => term,
                Some(l) => l.add(&term).map_err(|e| e.to_string())?,
            });
        }
        cots.push(Some(c));
    }
    let float_idx: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].dtype().is_float())
        .collect();
    let Some(loss) = loss else {
        return Err("no output requires grad".into());
    };
    loss.backward()
        .map_err(|e| format!("backward failed: {e}"))?;
    let mut analytic = Vec::new();
    for &i in &float_idx {
        analytic.push(match leaves[i].grad() {
            None => vec![0.0; inputs[i].numel()],
            Some(g) => {
                if g.shape() != inputs[i].shape() {
                    return Err(format!(
                        "gradient of input {i} has shape {:?}, expected {:?}",
                        g.shape(),
                        inputs[i].shape()
                    ));
                }
                g.to_vec_f64().map_err(|e| e.to_string())?
            }
        });
    }

    let _ng = deepseek::no_grad();
    let eval = |xs: &[Tensor]| -> Res<(f64, f64)> {
        let outs = f(xs).map_err(|e| format!("forward (perturbed) failed: {e}"))?;
        let (mut s, mut a) = (0.0, 0.0);
        for (o, c) in outs.iter().zip(&cots) {
            if let Some(c) = c {
                let v = o.to_vec_f64().map_err(|e| e.to_string())?;
                s += dot(&v, c);
                a += v.iter().zip(c).map(|(x, y)| (x * y).abs()).sum::<f64>();
            }
        }
        Ok((s, a))
    };
    let (_, scale) = eval(inputs)?;
    let mut bad = Vec::new();
    let mut total = 0;
    for (k, &i) in float_idx.iter().enumerate() {
        let base = inputs[i].to_vec_f64().unwrap();
        for j in 0..base.len() {
            total += 1;
            let mut v = base.clone();
            v[j] = base[j] + EPS;
            let fp = eval(&with_values(inputs, i, v.clone()))?.0;
            v[j] = base[j] - EPS;
            let fm = eval(&with_values(inputs, i, v))?.0;
            let num = (fp - fm) / (2.0 * EPS);
            let a = analytic[k][j];
            let tol = 1e-6 * (1.0 + num.abs()) + 1e-9 * scale;
            if (a - num).abs() > tol || !a.is_finite() {
                bad.push(format!(
                    "d/d(input {i}){:?}: analytic {a:.8} vs numeric {num:.8}",
                    unravel(j, inputs[i].shape())
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {total} gradient elements wrong: {}",
            bad.len(),
            bad[..bad.len().min(4)].join("; ")
        ))
    }
}

/// Second derivatives: the gradient g of `sum(f(x) * cot)` is built with `create_graph`, then
/// `s = sum_i <g_i, v_i>` is differentiated again (both through `autograd::grad` and through
/// `backward_with(.., create_graph=true)` + `.grad()`), and compared with central differences
/// of `s` computed from first gradients.
fn gradgradcheck(
    gen: &mut Generator,
    inputs: &[Tensor],
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) -> Res<()> {
    let e = |e: deepseek::Error| e.to_string();
    let fi: Vec<usize> = (0..inputs.len())
        .filter(|&i| inputs[i].dtype().is_float())
        .collect();
    let floats = |l: &[Tensor]| -> Vec<Tensor> { fi.iter().map(|&i| l[i].clone()).collect() };
    let out0 = f(&make_leaves(inputs)).map_err(e)?;
    let cot = t(
        (0..out0.numel()).map(|_| gen.normal()).collect(),
        out0.shape(),
    );
    let vs: Vec<Tensor> = fi
        .iter()
        .map(|&i| {
            t(
                (0..inputs[i].numel()).map(|_| gen.normal()).collect(),
                inputs[i].shape(),
            )
        })
        .collect();
    let s_of = |g: &[Option<Tensor>]| -> Result<Option<Tensor>> {
        let mut s: Option<Tensor> = None;
        for (gi, vi) in g.iter().zip(&vs) {
            if let Some(gi) = gi {
                let term = gi.mul(vi)?.sum_all()?;
                s = Some(match s {
                    None => term,
                    Some(a) => a.add(&term)?,
                });
            }
        }
        Ok(s)
    };
    // First gradients without a graph: s(x) as a number.
    let s_value = |xs: &[Tensor]| -> Res<f64> {
        let l = make_leaves(xs);
        let loss = f(&l).and_then(|o| o.mul(&cot)?.sum_all()).map_err(e)?;
        let g = deepseek::autograd::grad(&[loss], &floats(&l), &[None], false, false).map_err(e)?;
        let mut s = 0.0;
        for (gi, vi) in g.iter().zip(&vs) {
            if let Some(gi) = gi {
                s += dot(&gi.to_vec_f64().unwrap(), &vi.to_vec_f64().unwrap());
            }
        }
        Ok(s)
    };

    // Mode A: autograd::grad with create_graph, then autograd::grad again.
    let l = make_leaves(inputs);
    let loss = f(&l).and_then(|o| o.mul(&cot)?.sum_all()).map_err(e)?;
    let g = deepseek::autograd::grad(&[loss], &floats(&l), &[None], true, true)
        .map_err(|x| format!("first grad (create_graph) failed: {x}"))?;
    let s = s_of(&g).map_err(e)?.ok_or("no first gradient")?;
    if !s.requires_grad() {
        return Err("the create_graph gradient does not require grad".into());
    }
    let hv_a = deepseek::autograd::grad(&[s], &floats(&l), &[None], false, false)
        .map_err(|x| format!("second grad failed: {x}"))?;

    // Mode B: backward_with(create_graph) into .grad(), then backward through those grads.
    let l = floats(&make_leaves(inputs));
    let mut all = make_leaves(inputs);
    for (k, &i) in fi.iter().enumerate() {
        all[i] = l[k].clone();
    }
    let loss = f(&all).and_then(|o| o.mul(&cot)?.sum_all()).map_err(e)?;
    loss.backward_with(None, false, true)
        .map_err(|x| format!("backward_with(create_graph) failed: {x}"))?;
    let g: Vec<Option<Tensor>> = l.iter().map(|x| x.grad()).collect();
    for x in &l {
        x.zero_grad();
    }
    let s = s_of(&g).map_err(e)?.ok_or("no first gradient")?;
    s.backward()
        .map_err(|x| format!("backward through .grad() failed: {x}"))?;
    let hv_b: Vec<Option<Tensor>> = l.iter().map(|x| x.grad()).collect();

    let mut bad = Vec::new();
    for (k, &i) in fi.iter().enumerate() {
        let base = inputs[i].to_vec_f64().unwrap();
        let a: Vec<f64> = hv_a[k]
            .as_ref()
            .map_or(vec![0.0; base.len()], |g| g.to_vec_f64().unwrap());
        let b: Vec<f64> = hv_b[k]
            .as_ref()
            .map_or(vec![0.0; base.len()], |g| g.to_vec_f64().unwrap());
        for j in 0..base.len() {
            let mut v = base.clone();
            v[j] = base[j] + EPS;
            let sp = s_value(&with_values(inputs, i, v.clone()))?;
            v[j] = base[j] - EPS;
            let sm = s_value(&with_values(inputs, i, v))?;
            let num = (sp - sm) / (2.0 * EPS);
            let tol = 1e-5 * (1.0 + num.abs());
            for (mode, x) in [("grad", a[j]), ("backward_with", b[j])] {
                if (x - num).abs() > tol || !x.is_finite() {
                    bad.push(format!(
                        "[{mode}] d2/d(input {i}){:?}: analytic {x:.8} vs numeric {num:.8}",
                        unravel(j, inputs[i].shape())
                    ));
                }
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} second-derivative elements wrong: {}",
            bad.len(),
            bad[..bad.len().min(4)].join("; ")
        ))
    }
}

struct Checker {
    test: &'static str,
    cot: Generator,
    fails: Vec<String>,
    n: usize,
}

impl Checker {
    fn new(test: &'static str, seed: u64) -> Self {
        Checker {
            test,
            cot: Generator::new(seed ^ 0x5eed),
            fails: Vec::new(),
            n: 0,
        }
    }
    fn record(&mut self, name: &str, inputs: &[Tensor], r: std::thread::Result<Res<()>>) {
        let msg = match r {
            Ok(Ok(())) => return,
            Ok(Err(m)) => m,
            Err(p) => format!("PANIC: {}", panic_msg(&*p)),
        };
        let shapes: Vec<String> = inputs.iter().map(|x| format!("{:?}", x.shape())).collect();
        self.fails
            .push(format!("{name} (inputs {}): {msg}", shapes.join(", ")));
    }
    /// Checks the gradients of a one-output function.
    fn check(&mut self, name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
        self.check_multi(name, inputs, move |x| Ok(vec![f(x)?]))
    }
    /// Checks the gradients of a function with several outputs (non-float outputs ignored).
    fn check_multi(
        &mut self,
        name: &str,
        inputs: &[Tensor],
        f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    ) {
        self.n += 1;
        let gen = &mut self.cot;
        let r = catch_unwind(AssertUnwindSafe(|| gradcheck(gen, inputs, &f)));
        self.record(name, inputs, r);
    }
    /// Checks second derivatives (Hessian-vector products).
    fn check2(&mut self, name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
        self.n += 1;
        let gen = &mut self.cot;
        let r = catch_unwind(AssertUnwindSafe(|| gradgradcheck(gen, inputs, &f)));
        self.record(name, inputs, r);
    }
    fn finish(self) {
        eprintln!(
            "{}: {} cases, {} failed",
            self.test,
            self.n,
            self.fails.len()
        );
        if !self.fails.is_empty() {
            panic!(
                "{}: {} of {} gradchecks failed:\n  {}",
                self.test,
                self.fails.len(),
                self.n,
                self.fails.join("\n  ")
            );
        }
    }
}

fn setup(test: &'static str, seed: u64) -> (Rng, Checker) {
    deepseek::manual_seed(seed);
    (Rng::new(seed), Checker::new(test, seed))
}

// ------------------------------------------------------------------------------------------
// The checker itself.

#[test]
fn checker_catches_a_wrong_gradient() {
    let (mut r, mut c) = setup("checker", 1);
    let x = r.randn(&[3]);
    c.check("x*2 with a hook doubling its gradient", &[x], |x| {
        let y = x[0].mul_scalar(2.0)?;
        if y.requires_grad() {
            y.register_hook(|g| Ok(Some(g.mul_scalar(2.0)?)))?;
        }
        Ok(y)
    });
    assert_eq!(c.fails.len(), 1, "the checker accepted a doubled gradient");
    let (mut r, mut c) = setup("checker", 2);
    let x = r.randn(&[2, 3]);
    c.check("x*2", &[x], |x| x[0].mul_scalar(2.0));
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Elementwise.

#[derive(Clone, Copy)]
enum Dom {
    Any,
    Pos,
    Away(&'static [f64]),
    Range(f64, f64),
}

type UnaryFn = fn(&Tensor) -> Result<Tensor>;

fn draw(r: &mut Rng, dom: Dom, s: &[usize]) -> Tensor {
    match dom {
        Dom::Any => r.randn(s),
        Dom::Pos => r.pos(s),
        Dom::Away(k) => r.away(s, k),
        Dom::Range(lo, hi) => r.uniform(s, lo, hi),
    }
}

#[test]
fn unary_ops() {
    let (mut r, mut c) = setup("unary_ops", 10);
    let ops: Vec<(&str, Dom, UnaryFn)> = vec![
        ("F.relu", Dom::Away(&[0.0]), F::relu),
        ("gelu(none)", Dom::Any, |x| x.gelu("none")),
        ("gelu(tanh)", Dom::Any, |x| x.gelu("tanh")),
        ("softplus(2,1)", Dom::Away(&[0.5]), |x| x.softplus(2.0, 1.0)),
        ("elu(0.5)", Dom::Away(&[0.0]), |x| x.elu(0.5)),
        ("leaky_relu(0.1)", Dom::Away(&[0.0]), |x| x.leaky_relu(0.1)),
        ("powf(2)", Dom::Any, |x| x.powf(2.0)),
        ("powf(3)", Dom::Any, |x| x.powf(3.0)),
        ("powf(0.5)", Dom::Pos, |x| x.powf(0.5)),
        ("powf(-1.5)", Dom::Pos, |x| x.powf(-1.5)),
        ("powf(1.7)", Dom::Pos, |x| x.powf(1.7)),
        ("powf(0)", Dom::Any, |x| x.powf(0.0)),
        ("rpow_scalar(2)", Dom::Any, |x| x.rpow_scalar(2.0)),
        ("clamp(-0.5,0.5)", Dom::Away(&[-0.5, 0.5]), |x| {
            x.clamp(Some(-0.5), Some(0.5))
        }),
        ("clamp(min 0.3)", Dom::Away(&[0.3]), |x| {
            x.clamp(Some(0.3), None)
        }),
        ("clamp(max -0.2)", Dom::Away(&[-0.2]), |x| {
            x.clamp(None, Some(-0.2))
        }),
        ("add_scalar", Dom::Any, |x| x.add_scalar(1.5)),
        ("sub_scalar", Dom::Any, |x| x.sub_scalar(0.7)),
        ("mul_scalar", Dom::Any, |x| x.mul_scalar(-2.5)),
        ("div_scalar", Dom::Any, |x| x.div_scalar(3.0)),
        ("F.gelu", Dom::Any, |x| F::gelu(x, "tanh")),
        ("F.silu", Dom::Any, F::silu),
        ("F.elu", Dom::Away(&[0.0]), |x| F::elu(x, 1.3)),
        ("F.leaky_relu", Dom::Away(&[0.0]), |x| F::leaky_relu(x, 0.2)),
        ("F.softplus", Dom::Any, |x| F::softplus(x, 1.0, 20.0)),
    ];
    // Every unary primitive whose attributes all have defaults, from the core's declaration
    // table (a new op is checked here without a line of its own); the list above adds
    // attribute values, method spellings and the functional forms.
    for d in deepseek::ops::UNARY_OPS {
        let Some(Ok(op)) = UnaryOp::from_key(d.key, &|_| Ok(None)) else {
            continue;
        };
        let dom = match d.domain {
            Domain::Any => Dom::Any,
            Domain::Pos => Dom::Pos,
            Domain::Away(k) => Dom::Away(k),
            Domain::Range(lo, hi) => Dom::Range(lo, hi),
        };
        for _ in 0..3 {
            let s = r.shape(0, 3);
            let x = draw(&mut r, dom, &s);
            c.check(d.key, &[x], |x| x[0].unary(op));
        }
        let x = draw(&mut r, dom, &[3, 4]);
        c.check(&format!("{} (transposed)", d.key), &[x], |x| {
            x[0].t()?.unary(op)
        });
    }
    for (name, dom, op) in ops {
        for _ in 0..3 {
            let s = r.shape(0, 3);
            let x = draw(&mut r, dom, &s);
            c.check(name, &[x], |x| op(&x[0]));
        }
        // Through a non-contiguous view.
        let x = draw(&mut r, dom, &[3, 4]);
        c.check(&format!("{name} (transposed)"), &[x], |x| op(&x[0].t()?));
    }
    c.finish();
}

type BinaryFn = fn(&Tensor, &Tensor) -> Result<Tensor>;

#[test]
fn binary_ops_with_broadcasting() {
    let (mut r, mut c) = setup("binary_ops", 11);
    let ops: Vec<(&str, BinaryFn)> = vec![
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
        ("pow", |a, b| a.pow(b)),
    ];
    for (name, op) in ops {
        for _ in 0..4 {
            let (sa, sb) = r.bcast_pair();
            let (a, b) = match name {
                "div" => (r.randn(&sa), r.away(&sb, &[-0.2, 0.0, 0.2])),
                "pow" => (r.pos(&sa), r.randn(&sb)),
                _ => (r.randn(&sa), r.randn(&sb)),
            };
            c.check(name, &[a, b], |x| op(&x[0], &x[1]));
        }
        // Same shapes, one operand a non-contiguous view.
        let (a, b) = match name {
            "div" => (r.randn(&[2, 3]), r.away(&[3, 2], &[-0.2, 0.0, 0.2])),
            "pow" => (r.pos(&[2, 3]), r.randn(&[3, 2])),
            _ => (r.randn(&[2, 3]), r.randn(&[3, 2])),
        };
        c.check(&format!("{name} (b transposed)"), &[a, b], |x| {
            op(&x[0], &x[1].t()?)
        });
    }
    // Ties: the gradient is split in half, matching the central difference.
    let a = r.randn(&[2, 3]);
    let b = a.detach().contiguous_copy().unwrap();
    c.check("maximum (ties)", &[a.clone(), b.clone()], |x| {
        x[0].maximum(&x[1])
    });
    c.check("minimum (ties)", &[a, b], |x| x[0].minimum(&x[1]));
    // A tensor used as both operands.
    let a = r.randn(&[3, 2]);
    c.check("mul(x, x)", &[a.clone()], |x| x[0].mul(&x[0]));
    c.check("div(x, x+3)", &[a.clone()], |x| {
        x[0].div(&x[0].square()?.add_scalar(3.0)?)
    });
    c.check("scalar comparisons", &[a], |x| {
        x[0].maximum_scalar(0.05)?.add(&x[0].minimum_scalar(-0.05)?)
    });
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Reductions.

#[test]
fn reductions() {
    let (mut r, mut c) = setup("reductions", 12);
    for _ in 0..4 {
        let s = r.shape(1, 4);
        let d = r.dims(s.len());
        let k = r.coin();
        let x = r.randn(&s);
        c.check(&format!("sum_dim {d:?} keepdim={k}"), &[x.clone()], |x| {
            x[0].sum_dim(&d, k)
        });
        c.check(&format!("mean_dim {d:?} keepdim={k}"), &[x.clone()], |x| {
            x[0].mean_dim(&d, k)
        });
        c.check(&format!("amax {d:?} keepdim={k}"), &[x.clone()], |x| {
            x[0].amax(&d, k)
        });
        c.check(&format!("amin {d:?} keepdim={k}"), &[x.clone()], |x| {
            x[0].amin(&d, k)
        });
        c.check(&format!("logsumexp {d:?} keepdim={k}"), &[x.clone()], |x| {
            x[0].logsumexp(&d, k)
        });
        let d1 = r.dim(s.len());
        let xp = r.away(&s, &[0.0]);
        c.check(&format!("prod_dim {d1} keepdim={k}"), &[xp.clone()], |x| {
            x[0].prod_dim(d1, k)
        });
        c.check(&format!("prod_dims {d:?} keepdim={k}"), &[xp], |x| {
            x[0].prod_dims(&d, k)
        });
        c.check(&format!("cumsum {d1}"), &[x.clone()], |x| x[0].cumsum(d1));
        c.check("sum_all", &[x.clone()], |x| x[0].sum_all());
        c.check("mean_all", &[x.clone()], |x| x[0].mean_all());
        c.check("max_all", &[x.clone()], |x| x[0].max_all());
        c.check("min_all", &[x.clone()], |x| x[0].min_all());
        c.check_multi(&format!("max_dim {d1} keepdim={k}"), &[x.clone()], |x| {
            let (v, i) = x[0].max_dim(d1, k)?;
            Ok(vec![v, i])
        });
        c.check_multi(&format!("min_dim {d1} keepdim={k}"), &[x.clone()], |x| {
            let (v, i) = x[0].min_dim(d1, k)?;
            Ok(vec![v, i])
        });
        // var/std need at least two reduced elements.
        let mut s2 = s.clone();
        for &dd in &d {
            let i = if dd < 0 { dd + s.len() as isize } else { dd } as usize;
            s2[i] = s2[i].max(2);
        }
        let x2 = r.randn(&s2);
        for corr in [0.0, 1.0] {
            c.check(
                &format!("var_dim {d:?} correction={corr} keepdim={k}"),
                &[x2.clone()],
                |x| x[0].var_dim(Some(&d), corr, k),
            );
            c.check(
                &format!("std_dim {d:?} correction={corr} keepdim={k}"),
                &[x2.clone()],
                |x| x[0].std_dim(Some(&d), corr, k),
            );
        }
        c.check("var_dim (all)", &[x2.clone()], |x| {
            x[0].var_dim(None, 1.0, false)
        });
        let xa = r.away(&s, &[0.0]);
        for ord in [2.0, 1.0, 3.0, 0.5, f64::INFINITY, f64::NEG_INFINITY] {
            c.check(
                &format!("vector_norm ord={ord} {d:?}"),
                &[xa.clone()],
                |x| x[0].vector_norm(ord, Some(&d), k),
            );
        }
        c.check("vector_norm (all)", &[xa], |x| {
            x[0].vector_norm(2.0, None, false)
        });
    }
    // Products with exact zeros (one zero, two zeros in a row).
    let x = t(vec![0.0, 1.5, -0.7, 2.0, 0.0, 0.0, -1.2, 0.8, 0.9], &[3, 3]);
    c.check("prod_dim with zeros (dim 1)", &[x.clone()], |x| {
        x[0].prod_dim(1, false)
    });
    c.check("prod_dim with zeros (dim 0)", &[x.clone()], |x| {
        x[0].prod_dim(0, true)
    });
    c.check("prod_dims with zeros (all)", &[x], |x| {
        x[0].prod_dims(&[0, 1], false)
    });
    // Ties of two in amax/amin: the gradient is split evenly (= the central difference).
    let x = t(vec![1.0, 0.3, 1.0, -0.5, -0.5, 0.2], &[2, 3]);
    c.check("amax (2-way tie)", &[x.clone()], |x| x[0].amax(&[1], false));
    c.check("amin (2-way tie)", &[x], |x| x[0].amin(&[1], false));
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Movement.

#[test]
fn views() {
    let (mut r, mut c) = setup("views", 13);
    for _ in 0..4 {
        let s = r.shape(1, 4);
        let rank = s.len();
        let x = r.randn(&s);
        let rev: Vec<usize> = s.iter().rev().copied().collect();
        c.check(&format!("reshape {s:?}->{rev:?}"), &[x.clone()], |x| {
            x[0].reshape(&rev)
        });
        let n = x.numel();
        c.check("reshape to 1-d", &[x.clone()], |x| x[0].reshape(&[n]));
        c.check("view(-1)", &[x.clone()], |x| x[0].view(&[-1]));
        let p = r.perm(rank);
        c.check(&format!("permute {p:?}"), &[x.clone()], |x| {
            x[0].permute(&p)
        });
        c.check(&format!("permute {p:?} + reshape"), &[x.clone()], |x| {
            x[0].permute(&p)?.reshape(&[n])
        });
        let (d0, d1) = (r.dim(rank), r.dim(rank));
        c.check(&format!("transpose {d0},{d1}"), &[x.clone()], |x| {
            x[0].transpose(d0, d1)
        });
        c.check("contiguous of permuted", &[x.clone()], |x| {
            x[0].permute(&p)?.contiguous()
        });
        // expand: some dims of size 1 grow, plus leading dims.
        let small: Vec<usize> = s.iter().map(|&v| if r.coin() { 1 } else { v }).collect();
        let mut big: Vec<usize> = (0..r.int(0, 2)).map(|_| r.int(1, 3)).collect();
        big.extend(small.iter().map(|&v| if v == 1 { r.int(1, 3) } else { v }));
        let xs = r.randn(&small);
        c.check(&format!("expand {small:?}->{big:?}"), &[xs.clone()], |x| {
            x[0].expand(&big)
        });
        c.check("expand + contiguous", &[xs.clone()], |x| {
            x[0].expand(&big)?.contiguous()
        });
        c.check("expand_as", &[xs, r.randn(&big)], |x| {
            x[0].expand_as(&x[1])?.mul(&x[1])
        });
        // slices with steps and negative bounds.
        let d = r.dim(rank);
        let sz = s[(d + rank as isize) as usize % rank] as isize;
        let start = r.int(0, sz as usize - 1) as isize - if r.coin() { sz } else { 0 };
        let end = r.int(0, sz as usize) as isize + 1;
        let step = r.int(1, 3);
        c.check(
            &format!("slice dim {d} {start}..{end} step {step}"),
            &[x.clone()],
            |x| x[0].slice(d, start, end, step),
        );
        c.check(
            &format!("slice of transposed dim {d} step {step}"),
            &[x.clone()],
            |x| {
                x[0].transpose(0, -1)?
                    .slice(d, start, end, step)?
                    .contiguous()
            },
        );
        let st = r.int(0, sz as usize - 1);
        let len = r.int(1, sz as usize - st);
        c.check(&format!("narrow dim {d} {st}+{len}"), &[x.clone()], |x| {
            x[0].narrow(d, st, len)
        });
        let i = r.int(0, sz as usize - 1) as isize - if r.coin() { sz } else { 0 };
        c.check(&format!("select dim {d} index {i}"), &[x.clone()], |x| {
            x[0].select(d, i)
        });
        let u = r.int(0, rank) as isize;
        c.check(&format!("unsqueeze {u}"), &[x.clone()], |x| {
            x[0].unsqueeze(u)
        });
        c.check("unsqueeze + squeeze_dim", &[x.clone()], |x| {
            x[0].unsqueeze(u)?.squeeze_dim(u)
        });
        c.check("squeeze", &[x.clone()], |x| x[0].squeeze());
        let (a, b) = {
            let a = r.int(0, rank - 1);
            (a as isize, r.int(a, rank - 1) as isize)
        };
        c.check(&format!("flatten {a}..{b}"), &[x.clone()], |x| {
            x[0].flatten(a, b)
        });
        c.check("t", &[r.randn(&s[..rank.min(2)])], |x| x[0].t());
        // A chain of views over one leaf.
        c.check("permute.slice.reshape chain", &[x], |x| {
            let y = x[0].permute(&p)?.slice(0, 0, -1, 2)?;
            let m = y.numel();
            y.reshape(&[m])?.mul_scalar(3.0)
        });
    }
    c.finish();
}

#[test]
fn copies_and_multi_output_movement() {
    let (mut r, mut c) = setup("movement", 14);
    for _ in 0..4 {
        let s = r.shape(1, 3);
        let rank = s.len();
        let d = r.dim(rank);
        let du = (d + rank as isize) as usize % rank;
        // cat of 1..3 tensors differing along d
        let k = r.int(1, 3);
        let xs: Vec<Tensor> = (0..k)
            .map(|_| {
                let mut si = s.clone();
                si[du] = r.int(1, 3);
                r.randn(&si)
            })
            .collect();
        c.check(&format!("cat dim {d} of {k}"), &xs, |x| Tensor::cat(x, d));
        let same: Vec<Tensor> = (0..k).map(|_| r.randn(&s)).collect();
        let sd = r.int(0, rank) as isize;
        c.check(&format!("stack dim {sd} of {k}"), &same, |x| {
            Tensor::stack(x, sd)
        });
        let x = r.randn(&s);
        // split_sizes into random pieces
        let mut sizes = Vec::new();
        let mut left = s[du];
        while left > 0 {
            let p = r.int(1, left);
            sizes.push(p);
            left -= p;
        }
        c.check_multi(
            &format!("split_sizes {sizes:?} dim {d}"),
            &[x.clone()],
            |x| x[0].split_sizes(&sizes, d),
        );
        let last = sizes.len() - 1;
        c.check(
            &format!("split_sizes {sizes:?}, only the last piece used"),
            &[x.clone()],
            |x| Ok(x[0].split_sizes(&sizes, d)?[last].clone()),
        );
        let sp = r.int(1, 3);
        c.check_multi(&format!("split {sp} dim {d}"), &[x.clone()], |x| {
            x[0].split(sp, d)
        });
        c.check(
            &format!("split {sp} dim {d}, first piece used"),
            &[x.clone()],
            |x| Ok(x[0].split(sp, d)?[0].clone()),
        );
        let ch = r.int(1, 3);
        c.check_multi(&format!("chunk {ch} dim {d}"), &[x.clone()], |x| {
            x[0].chunk(ch, d)
        });
        c.check_multi(&format!("unbind dim {d}"), &[x.clone()], |x| x[0].unbind(d));
        // pad: random (before, after) pairs for the trailing dims
        let np = r.int(1, rank);
        let pads: Vec<usize> = (0..2 * np).map(|_| r.int(0, 2)).collect();
        c.check(&format!("pad {pads:?}"), &[x.clone()], |x| {
            x[0].pad(&pads, 0.5)
        });
        c.check(&format!("F.pad {pads:?}"), &[x.clone()], |x| {
            F::pad(&x[0], &pads, 0.0)
        });
        let pd: Vec<(usize, usize)> = (0..rank).map(|_| (r.int(0, 2), r.int(0, 2))).collect();
        c.check(&format!("pad_dims {pd:?}"), &[x.clone()], |x| {
            x[0].pad_dims(&pd, -1.0)
        });
        c.check(&format!("flip {d}"), &[x.clone()], |x| x[0].flip(d));
        let reps: Vec<usize> = (0..rank + r.int(0, 1)).map(|_| r.int(1, 3)).collect();
        c.check(&format!("repeat {reps:?}"), &[x.clone()], |x| {
            x[0].repeat(&reps)
        });
        c.check("repeat of transposed", &[x.clone()], |x| {
            x[0].transpose(0, -1)?.repeat(&reps)
        });
    }
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Indexing.

#[test]
fn index_ops() {
    let (mut r, mut c) = setup("index_ops", 15);
    for _ in 0..4 {
        let s = r.shape(1, 3);
        let rank = s.len();
        let d = r.dim(rank);
        let du = (d + rank as isize) as usize % rank;
        let n = s[du];
        let x = r.randn(&s);
        // index_select with repeats (and negative indices, which wrap like PyTorch's indexing)
        let k = r.int(1, 5);
        let idx = r.idx(&[k], n);
        c.check(
            &format!("index_select dim {d}"),
            &[x.clone(), idx.clone()],
            |x| x[0].index_select(d, &x[1]),
        );
        let neg: Vec<i64> = idx
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|&i| i - n as i64)
            .collect();
        let neg = Tensor::from_vec(neg, &[k]).unwrap();
        c.check(
            &format!("index_select dim {d} negative indices"),
            &[x.clone(), neg],
            |x| x[0].index_select(d, &x[1]),
        );
        // gather: index dims <= input dims except along d
        let gs: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(i, &v)| if i == du { r.int(1, 5) } else { r.int(1, v) })
            .collect();
        let gi = r.idx(&gs, n);
        c.check(
            &format!("gather dim {d} index {gs:?}"),
            &[x.clone(), gi.clone()],
            |x| x[0].gather(d, &x[1]),
        );
        // take_along_dim with broadcasting between input and index
        let ts: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(i, _)| if i == du { r.int(1, 4) } else { 1 })
            .collect();
        let ti = r.idx(&ts, n);
        c.check(
            &format!("take_along_dim dim {d} index {ts:?}"),
            &[x.clone(), ti],
            |x| x[0].take_along_dim(&x[1], d),
        );
        // scatter_add: self s, src = index shape (<= s except along d)
        let ss: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(i, &v)| if i == du { r.int(1, 5) } else { r.int(1, v) })
            .collect();
        let si = r.idx(&ss, n);
        let src = r.randn(&ss);
        c.check(
            &format!("scatter_add dim {d} src {ss:?}"),
            &[x.clone(), si, src],
            |x| x[0].scatter_add(d, &x[1], &x[2]),
        );
        // index_add with repeated indices
        let k = r.int(1, 5);
        let ai = r.idx(&[k], n);
        let mut as_ = s.clone();
        as_[du] = k;
        let asrc = r.randn(&as_);
        c.check(
            &format!("index_add dim {d} k={k}"),
            &[x.clone(), ai, asrc],
            |x| x[0].index_add(d, &x[1], &x[2]),
        );
        // where with three-way broadcasting
        let (sa, sb) = r.bcast_pair();
        let sc: Vec<usize> = sa.iter().map(|&v| if r.coin() { 1 } else { v }).collect();
        let cond = r.mask(&sc);
        let (a, b) = (r.randn(&sa), r.randn(&sb));
        c.check(
            "where_cond (broadcast)",
            &[cond.clone(), a.clone(), b.clone()],
            |x| Tensor::where_cond(&x[0], &x[1], &x[2]),
        );
        // masked_fill with a broadcast mask
        let ms: Vec<usize> = s.iter().map(|&v| if r.coin() { 1 } else { v }).collect();
        let cut = r.int(0, rank);
        let mask = r.mask(&ms[cut..]);
        c.check("masked_fill", &[x.clone(), mask], |x| {
            x[0].masked_fill(&x[1], 2.5)
        });
    }
    for _ in 0..3 {
        let s = r.shape(2, 3);
        let x = r.randn(&s);
        for k in [-1i64, 0, 1] {
            c.check(&format!("tril {k}"), &[x.clone()], |x| x[0].tril(k));
            c.check(&format!("triu {k}"), &[x.clone()], |x| x[0].triu(k));
        }
    }
    c.finish();
}

#[test]
fn embedding() {
    let (mut r, mut c) = setup("embedding", 16);
    for _ in 0..4 {
        let (num, dim) = (r.int(1, 5), r.int(1, 4));
        let w = r.randn(&[num, dim]);
        let is = r.shape(0, 2);
        let idx = r.idx(&is, num);
        c.check(
            &format!("embedding [{num},{dim}] idx {is:?}"),
            &[w.clone(), idx.clone()],
            |x| Tensor::embedding(&x[0], &x[1], None),
        );
        c.check(
            "F.embedding",
            &[idx.to_dtype(DType::I32).unwrap(), w],
            |x| F::embedding(&x[0], &x[1], None),
        );
    }
    // padding_idx: that row gets no gradient; the others match finite differences.
    let w = r.randn(&[4, 3]).requires_grad_(true).unwrap();
    let idx = Tensor::from_vec(vec![1i64, 2, 1, 3, 2, 1], &[2, 3]).unwrap();
    let cot = r.randn(&[2, 3, 3]);
    let out = Tensor::embedding(&w, &idx, Some(1)).unwrap();
    out.mul(&cot)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = w.grad().unwrap().to_vec_f64().unwrap();
    let cv = cot.to_vec_f64().unwrap();
    let iv = [1usize, 2, 1, 3, 2, 1];
    let mut expect = vec![0.0; 12];
    for (p, &row) in iv.iter().enumerate() {
        if row != 1 {
            for j in 0..3 {
                expect[row * 3 + j] += cv[p * 3 + j];
            }
        }
    }
    for (a, e) in g.iter().zip(&expect) {
        assert!(
            (a - e).abs() < 1e-12,
            "embedding padding_idx grad {g:?} != {expect:?}"
        );
    }
    let w = r.randn(&[4, 3]).requires_grad_(true).unwrap();
    let out = Tensor::embedding(&w, &idx, Some(-3)).unwrap();
    out.mul(&cot)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = w.grad().unwrap().to_vec_f64().unwrap();
    assert_eq!(
        &g[3..6],
        &[0.0, 0.0, 0.0],
        "padding_idx -3 (= row 1) must get no gradient"
    );
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Matmul, linear, einsum.

#[test]
fn matmul_all_ranks() {
    let (mut r, mut c) = setup("matmul", 17);
    for (ra, rb) in [
        (1usize, 1usize),
        (1, 2),
        (2, 1),
        (2, 2),
        (1, 3),
        (3, 1),
        (3, 2),
        (2, 3),
        (3, 3),
        (4, 2),
        (2, 4),
        (4, 3),
        (3, 4),
        (4, 4),
        (1, 4),
        (4, 1),
    ] {
        for _ in 0..3 {
            let (n, k, m) = (r.int(1, 4), r.int(1, 4), r.int(1, 4));
            // broadcast batch dims
            let nb = ra.max(rb).saturating_sub(2);
            let batch: Vec<usize> = (0..nb).map(|_| r.int(1, 3)).collect();
            let bat = |r: &mut Rng, rk: usize| -> Vec<usize> {
                let mut b: Vec<usize> = batch[nb - rk.saturating_sub(2)..].to_vec();
                for v in b.iter_mut() {
                    if r.int(0, 2) == 0 {
                        *v = 1;
                    }
                }
                b
            };
            let mut sa = bat(&mut r, ra);
            if ra == 1 {
                sa = vec![k];
            } else {
                sa.extend([n, k]);
            }
            let mut sb = bat(&mut r, rb);
            if rb == 1 {
                sb = vec![k];
            } else {
                sb.extend([k, m]);
            }
            let (a, b) = (r.randn(&sa), r.randn(&sb));
            c.check(&format!("matmul {sa:?} @ {sb:?}"), &[a, b], |x| {
                x[0].matmul(&x[1])
            });
        }
    }
    // Non-contiguous operands and a tensor multiplied by itself.
    let a = r.randn(&[3, 4]);
    let b = r.randn(&[2, 3]);
    c.check("matmul a.T @ b.T", &[a.clone(), b], |x| {
        x[0].t()?.matmul(&x[1].t()?)
    });
    c.check("matmul a @ a.T", &[a], |x| x[0].matmul(&x[0].t()?));
    let a = r.randn(&[2, 3, 4]);
    c.check("matmul permuted batch", &[a, r.randn(&[3, 4, 2])], |x| {
        x[0].permute(&[1, 0, 2])?.matmul(&x[1])
    });
    c.finish();
}

#[test]
fn linear_and_einsum() {
    let (mut r, mut c) = setup("linear_einsum", 18);
    for _ in 0..4 {
        let mut s = r.shape(0, 2);
        let (i, o) = (r.int(1, 4), r.int(1, 4));
        s.push(i);
        let x = r.randn(&s);
        let w = r.randn(&[o, i]);
        let b = r.randn(&[o]);
        c.check(
            &format!("linear {s:?} x [{o},{i}] + bias"),
            &[x.clone(), w.clone(), b],
            |x| x[0].linear(&x[1], Some(&x[2])),
        );
        c.check(&format!("F.linear {s:?} x [{o},{i}]"), &[x, w], |x| {
            F::linear(&x[0], &x[1], None)
        });
    }
    for _ in 0..3 {
        let (b, i, j, k, h) = (
            r.int(1, 3),
            r.int(1, 4),
            r.int(1, 4),
            r.int(1, 4),
            r.int(1, 2),
        );
        let cases: Vec<(&str, Vec<Vec<usize>>)> = vec![
            ("ij,jk->ik", vec![vec![i, j], vec![j, k]]),
            ("bij,bjk->bik", vec![vec![b, i, j], vec![b, j, k]]),
            ("ij->ji", vec![vec![i, j]]),
            ("ij->", vec![vec![i, j]]),
            ("ij->j", vec![vec![i, j]]),
            ("i,i->", vec![vec![i], vec![i]]),
            ("i,j->ij", vec![vec![i], vec![j]]),
            ("ij,ij->i", vec![vec![i, j], vec![i, j]]),
            ("bhqd,bhkd->bhqk", vec![vec![b, h, i, j], vec![b, h, k, j]]),
            ("ik,jk", vec![vec![i, k], vec![j, k]]),
            ("bij,jk->bk", vec![vec![b, i, j], vec![j, k]]),
        ];
        for (eq, shapes) in cases {
            let xs: Vec<Tensor> = shapes.iter().map(|s| r.randn(s)).collect();
            c.check(&format!("einsum {eq}"), &xs, |x| Tensor::einsum(eq, x));
        }
    }
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Softmax and normalisation.

#[test]
fn softmax_family() {
    let (mut r, mut c) = setup("softmax", 19);
    for _ in 0..5 {
        let s = r.shape(1, 4);
        let d = r.dim(s.len());
        let x = r.randn(&s).mul_scalar(2.0).unwrap();
        c.check(&format!("softmax dim {d}"), &[x.clone()], |x| {
            x[0].softmax(d)
        });
        c.check(&format!("log_softmax dim {d}"), &[x.clone()], |x| {
            x[0].log_softmax(d)
        });
        c.check(&format!("F.softmax dim {d}"), &[x.clone()], |x| {
            F::softmax(&x[0], d)
        });
        c.check(&format!("F.log_softmax dim {d}"), &[x.clone()], |x| {
            F::log_softmax(&x[0], d)
        });
        c.check(&format!("softmax of transposed dim {d}"), &[x], |x| {
            x[0].transpose(0, -1)?.softmax(d)
        });
    }
    c.check("softmax 0-d", &[r.randn(&[])], |x| x[0].softmax(0));
    c.check("dropout p=0", &[r.randn(&[3, 2])], |x| {
        F::dropout(&x[0], 0.0, true)
    });
    c.check("dropout eval", &[r.randn(&[3, 2])], |x| {
        F::dropout(&x[0], 0.5, false)
    });
    c.finish();
}

#[test]
fn normalization() {
    let (mut r, mut c) = setup("norms", 20);
    for _ in 0..4 {
        let s = r.shape(1, 3);
        let k = r.int(1, s.len().min(2));
        let ns = s[s.len() - k..].to_vec();
        let x = r.randn(&s);
        let (w, b) = (r.randn(&ns), r.randn(&ns));
        c.check(
            &format!("layer_norm {ns:?} affine"),
            &[x.clone(), w.clone(), b.clone()],
            |x| F::layer_norm(&x[0], &ns, Some(&x[1]), Some(&x[2]), 1e-5),
        );
        c.check(&format!("layer_norm {ns:?} no affine"), &[x.clone()], |x| {
            F::layer_norm(&x[0], &ns, None, None, 1e-5)
        });
        c.check(
            &format!("layer_norm {ns:?} weight only"),
            &[x.clone(), w.clone()],
            |x| F::layer_norm(&x[0], &ns, Some(&x[1]), None, 1e-5),
        );
        c.check(
            &format!("layer_norm {ns:?} bias only"),
            &[x.clone(), b],
            |x| F::layer_norm(&x[0], &ns, None, Some(&x[1]), 1e-5),
        );
        c.check(
            &format!("layer_norm {ns:?} of transposed"),
            &[x.clone()],
            |x| {
                let y = x[0].transpose(0, -1)?;
                let ns2 = y.shape()[y.rank() - k..].to_vec();
                F::layer_norm(&y, &ns2, None, None, 1e-5)
            },
        );
        c.check(&format!("rms_norm {ns:?} weight"), &[x.clone(), w], |x| {
            F::rms_norm(&x[0], &ns, Some(&x[1]), Some(1e-6))
        });
        c.check(&format!("rms_norm {ns:?} default eps"), &[x], |x| {
            F::rms_norm(&x[0], &ns, None, None)
        });
    }
    for _ in 0..4 {
        let mut s = vec![r.int(2, 3), r.int(1, 3)];
        s.extend((0..r.int(0, 2)).map(|_| r.int(1, 3)));
        let ch = s[1];
        let x = r.randn(&s);
        let (w, b) = (r.randn(&[ch]), r.randn(&[ch]));
        c.check(
            &format!("batch_norm training {s:?} affine"),
            &[x.clone(), w.clone(), b.clone()],
            |x| F::batch_norm(&x[0], None, None, Some(&x[1]), Some(&x[2]), true, 0.1, 1e-5),
        );
        c.check(
            &format!("batch_norm training {s:?} no affine"),
            &[x.clone()],
            |x| F::batch_norm(&x[0], None, None, None, None, true, 0.1, 1e-5),
        );
        let (rm, rv) = (
            Tensor::zeros(&[ch], DType::F64).unwrap(),
            Tensor::ones(&[ch], DType::F64).unwrap(),
        );
        c.check(
            &format!("batch_norm training {s:?} with running stats"),
            &[x.clone(), w.clone(), b.clone()],
            |x| {
                F::batch_norm(
                    &x[0],
                    Some(&rm),
                    Some(&rv),
                    Some(&x[1]),
                    Some(&x[2]),
                    true,
                    0.1,
                    1e-5,
                )
            },
        );
        let (rm, rv) = (r.randn(&[ch]), r.pos(&[ch]));
        c.check(
            &format!("batch_norm eval {s:?}"),
            &[x.clone(), w.clone(), b.clone()],
            |x| {
                F::batch_norm(
                    &x[0],
                    Some(&rm),
                    Some(&rv),
                    Some(&x[1]),
                    Some(&x[2]),
                    false,
                    0.1,
                    1e-5,
                )
            },
        );
        // group norm: C = groups * per
        let g = r.int(1, 3);
        let mut sg = vec![r.int(1, 2), g * r.int(1, 2)];
        sg.extend((0..r.int(0, 2)).map(|_| r.int(1, 3)));
        let cg = sg[1];
        let x = r.randn(&sg);
        let (w, b) = (r.randn(&[cg]), r.randn(&[cg]));
        c.check(
            &format!("group_norm {sg:?} groups {g} affine"),
            &[x.clone(), w, b],
            |x| F::group_norm(&x[0], g, Some(&x[1]), Some(&x[2]), 1e-5),
        );
        c.check(&format!("group_norm {sg:?} groups {g}"), &[x], |x| {
            F::group_norm(&x[0], g, None, None, 1e-5)
        });
    }
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Convolution and pooling.

#[test]
fn convolutions() {
    let (mut r, mut c) = setup("conv", 21);
    for _ in 0..6 {
        let groups = r.int(1, 2);
        let (cin, cout) = (groups * r.int(1, 2), groups * r.int(1, 2));
        let (kh, kw) = (r.int(1, 3), r.int(1, 3));
        let stride = [r.int(1, 2), r.int(1, 2)];
        let padding = [r.int(0, 1), r.int(0, 1)];
        let dilation = [r.int(1, 2), r.int(1, 2)];
        let eh = dilation[0] * (kh - 1) + 1;
        let ew = dilation[1] * (kw - 1) + 1;
        let h = (eh + r.int(0, 2)).saturating_sub(2 * padding[0]).max(1);
        let w = (ew + r.int(0, 2)).saturating_sub(2 * padding[1]).max(1);
        let n = r.int(1, 2);
        let x = r.randn(&[n, cin, h, w]);
        let wt = r.randn(&[cout, cin / groups, kh, kw]);
        let b = r.randn(&[cout]);
        let name = format!(
            "conv2d x{:?} w{:?} s{stride:?} p{padding:?} d{dilation:?} g{groups}",
            x.shape(),
            wt.shape()
        );
        c.check(&format!("{name} +bias"), &[x.clone(), wt.clone(), b], |x| {
            F::conv2d(&x[0], &x[1], Some(&x[2]), stride, padding, dilation, groups)
        });
        c.check(&name, &[x.clone(), wt.clone()], |x| {
            F::conv2d(&x[0], &x[1], None, stride, padding, dilation, groups)
        });
        c.check(
            &format!("{name} (transposed input)"),
            &[x.clone(), wt],
            |x| {
                let xt = x[0].transpose(2, 3)?.contiguous()?.transpose(2, 3)?;
                F::conv2d(&xt, &x[1], None, stride, padding, dilation, groups)
            },
        );
        // conv1d
        let k = r.int(1, 3);
        let (s1, p1, d1) = (r.int(1, 2), r.int(0, 1), r.int(1, 2));
        let e1 = d1 * (k - 1) + 1;
        let l = (e1 + r.int(0, 3)).saturating_sub(2 * p1).max(1);
        let x = r.randn(&[n, cin, l]);
        let wt = r.randn(&[cout, cin / groups, k]);
        let b = r.randn(&[cout]);
        c.check(
            &format!(
                "conv1d x{:?} w{:?} s{s1} p{p1} d{d1} g{groups}",
                x.shape(),
                wt.shape()
            ),
            &[x, wt, b],
            |x| F::conv1d(&x[0], &x[1], Some(&x[2]), s1, p1, d1, groups),
        );
    }
    c.finish();
}

#[test]
fn pooling() {
    let (mut r, mut c) = setup("pooling", 22);
    for _ in 0..6 {
        let kernel = [r.int(1, 3), r.int(1, 3)];
        let stride = [r.int(1, 3), r.int(1, 3)];
        let padding = [r.int(0, kernel[0] / 2), r.int(0, kernel[1] / 2)];
        let dilation = [r.int(1, 2), r.int(1, 2)];
        let ceil = r.coin();
        let h = dilation[0] * (kernel[0] - 1) + 1 + r.int(0, 3);
        let w = dilation[1] * (kernel[1] - 1) + 1 + r.int(0, 3);
        let mut s = vec![r.int(1, 2), r.int(1, 2), h, w];
        if r.int(0, 3) == 0 {
            s.remove(0);
        }
        let x = r.randn(&s);
        c.check(
            &format!(
                "max_pool2d {s:?} k{kernel:?} s{stride:?} p{padding:?} d{dilation:?} ceil={ceil}"
            ),
            &[x.clone()],
            |x| F::max_pool2d(&x[0], kernel, stride, padding, dilation, ceil),
        );
        let hh = kernel[0] + r.int(0, 3);
        let ww = kernel[1] + r.int(0, 3);
        let mut sa = s.clone();
        let rk = sa.len();
        sa[rk - 2] = hh;
        sa[rk - 1] = ww;
        let xa = r.randn(&sa);
        for cip in [true, false] {
            c.check(
                &format!("avg_pool2d {sa:?} k{kernel:?} s{stride:?} p{padding:?} ceil={ceil} count_include_pad={cip}"),
                &[xa.clone()],
                |x| F::avg_pool2d(&x[0], kernel, stride, padding, ceil, cip, None),
            );
        }
        c.check(
            &format!("avg_pool2d {sa:?} k{kernel:?} divisor_override 2"),
            &[xa.clone()],
            |x| F::avg_pool2d(&x[0], kernel, stride, [0, 0], false, true, Some(2)),
        );
        let o = [r.int(1, 4), r.int(1, 4)];
        c.check(
            &format!("adaptive_avg_pool2d {s:?} -> {o:?}"),
            &[x.clone()],
            |x| F::adaptive_avg_pool2d(&x[0], o),
        );
        c.check(&format!("adaptive_max_pool2d {s:?} -> {o:?}"), &[x], |x| {
            F::adaptive_max_pool2d(&x[0], o)
        });
    }
    c.finish();
}

/// Average pooling of f64 must be exact to f64 precision (the finite differences above rely on it).
#[test]
fn avg_pool_f64_forward_precision() {
    let mut r = Rng::new(28);
    let x = r.randn(&[1, 1, 2, 3]);
    let v = x.to_vec_f64().unwrap();
    let mean: f64 = v.iter().sum::<f64>() / 6.0;
    let a = F::adaptive_avg_pool2d(&x, [1, 1])
        .unwrap()
        .to_vec_f64()
        .unwrap()[0];
    let b = F::avg_pool2d(&x, [2, 3], [1, 1], [0, 0], false, true, None)
        .unwrap()
        .to_vec_f64()
        .unwrap()[0];
    let id = F::avg_pool2d(&x, [1, 1], [1, 1], [0, 0], false, true, None)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert!(
        (a - mean).abs() < 1e-14 && (b - mean).abs() < 1e-14 && id == v,
        "f64 average pooling is not f64-exact: adaptive {a:e}, avg {b:e}, mean {mean:e}; 1x1 pool {id:?} vs input {v:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Losses.

#[test]
fn losses() {
    let (mut r, mut c) = setup("losses", 23);
    for _ in 0..3 {
        let (n, cl) = (r.int(1, 4), r.int(2, 5));
        // [N, C], [N, C, d], [N, C, d1, d2] and [C]
        let extra: Vec<usize> = (0..r.int(0, 2)).map(|_| r.int(1, 3)).collect();
        let mut xs = vec![n, cl];
        xs.extend(&extra);
        let mut ts = vec![n];
        ts.extend(&extra);
        let x = r.randn(&xs);
        let tgt = r.idx(&ts, cl);
        let w = r.pos(&[cl]);
        // ignore one class value, keeping at least one target
        let first = tgt.to_vec::<i64>().unwrap()[0];
        let ign = (first + 1) % cl as i64;
        for red in ["mean", "sum", "none"] {
            for ls in [0.0, 0.1] {
                c.check(
                    &format!("cross_entropy {xs:?} {red} ls={ls}"),
                    &[x.clone(), tgt.clone()],
                    |x| F::cross_entropy(&x[0], &x[1], None, -100, red, ls),
                );
                c.check(
                    &format!("cross_entropy {xs:?} {red} ls={ls} ignore_index={ign}"),
                    &[x.clone(), tgt.clone()],
                    |x| F::cross_entropy(&x[0], &x[1], None, ign, red, ls),
                );
                c.check(
                    &format!("cross_entropy {xs:?} {red} ls={ls} weight ignore_index={ign}"),
                    &[x.clone(), tgt.clone(), w.clone()],
                    |x| F::cross_entropy(&x[0], &x[1], Some(&x[2]), ign, red, ls),
                );
            }
            c.check(
                &format!("nll_loss {xs:?} {red}"),
                &[x.clone(), tgt.clone()],
                |x| F::nll_loss(&x[0], &x[1], None, -100, red),
            );
            c.check(
                &format!("nll_loss {xs:?} {red} weight ignore_index={ign}"),
                &[x.clone(), tgt.clone(), w.clone()],
                |x| F::nll_loss(&x[0], &x[1], Some(&x[2]), ign, red),
            );
            // over log_softmax: backward fused into one cross-entropy pass (2-d input)
            c.check(
                &format!("nll_loss(log_softmax) {xs:?} {red} ignore_index={ign}"),
                &[x.clone(), tgt.clone()],
                |x| F::nll_loss(&x[0].log_softmax(1)?, &x[1], None, ign, red),
            );
            // probability targets (gradient w.r.t. the target too)
            let p = r.randn(&xs).softmax(1).unwrap();
            c.check(
                &format!("cross_entropy prob targets {xs:?} {red}"),
                &[x.clone(), p.clone()],
                |x| F::cross_entropy(&x[0], &x[1], None, -100, red, 0.0),
            );
            c.check(
                &format!("cross_entropy prob targets {xs:?} {red} ls=0.2 weight"),
                &[x.clone(), p, w.clone()],
                |x| F::cross_entropy(&x[0], &x[1], Some(&x[2]), -100, red, 0.2),
            );
        }
        let x1 = r.randn(&[cl]);
        let t1 = r.idx(&[], cl);
        c.check("cross_entropy 1-d input", &[x1.clone(), t1.clone()], |x| {
            F::cross_entropy(&x[0], &x[1], None, -100, "mean", 0.1)
        });
        c.check("nll_loss 1-d input", &[x1, t1], |x| {
            F::nll_loss(&x[0], &x[1], None, -100, "sum")
        });

        let s = r.shape(1, 3);
        let (a, b) = (r.randn(&s), r.randn(&s));
        let diff = r.away(&s, &[-1.0, 0.0, 1.0]);
        let b_away = a.sub(&diff).unwrap();
        for red in ["mean", "sum", "none"] {
            c.check(
                &format!("mse_loss {s:?} {red}"),
                &[a.clone(), b.clone()],
                |x| F::mse_loss(&x[0], &x[1], red),
            );
            c.check(
                &format!("l1_loss {s:?} {red}"),
                &[a.clone(), b_away.clone()],
                |x| F::l1_loss(&x[0], &x[1], red),
            );
            c.check(
                &format!("smooth_l1_loss {s:?} {red} beta 1"),
                &[a.clone(), b_away.clone()],
                |x| F::smooth_l1_loss(&x[0], &x[1], red, 1.0),
            );
            c.check(
                &format!("smooth_l1_loss {s:?} {red} beta 0"),
                &[a.clone(), b_away.clone()],
                |x| F::smooth_l1_loss(&x[0], &x[1], red, 0.0),
            );
            c.check(
                &format!("huber_loss {s:?} {red} delta 1"),
                &[a.clone(), b_away.clone()],
                |x| F::huber_loss(&x[0], &x[1], red, 1.0),
            );
            let tgt = r.uniform(&s, 0.0, 1.0);
            let wt = r.pos(&s);
            let pw = r.pos(&s[s.len() - 1..]);
            c.check(
                &format!("bce_with_logits {s:?} {red}"),
                &[a.clone(), tgt.clone()],
                |x| F::binary_cross_entropy_with_logits(&x[0], &x[1], None, None, red),
            );
            c.check(
                &format!("bce_with_logits {s:?} {red} weight pos_weight"),
                &[a.clone(), tgt.clone(), wt.clone(), pw],
                |x| {
                    F::binary_cross_entropy_with_logits(&x[0], &x[1], Some(&x[2]), Some(&x[3]), red)
                },
            );
            let prob = r.uniform(&s, 0.05, 0.95);
            c.check(
                &format!("binary_cross_entropy {s:?} {red}"),
                &[prob.clone(), tgt.clone()],
                |x| F::binary_cross_entropy(&x[0], &x[1], None, red),
            );
            c.check(
                &format!("binary_cross_entropy {s:?} {red} weight"),
                &[prob, tgt, wt],
                |x| F::binary_cross_entropy(&x[0], &x[1], Some(&x[2]), red),
            );
        }
        for red in ["mean", "sum", "none", "batchmean"] {
            let inp = r.randn(&s).log_softmax(-1).unwrap();
            let tp = r.randn(&s).softmax(-1).unwrap();
            c.check(
                &format!("kl_div {s:?} {red}"),
                &[inp.clone(), tp.clone()],
                |x| F::kl_div(&x[0], &x[1], red, false),
            );
            let tl = tp.log().unwrap();
            c.check(&format!("kl_div {s:?} {red} log_target"), &[inp, tl], |x| {
                F::kl_div(&x[0], &x[1], red, true)
            });
        }
    }
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Recurrent layers.

fn rnn_weights(
    r: &mut Rng,
    gates: usize,
    input: usize,
    hidden: usize,
    layers: usize,
    dirs: usize,
    bias: bool,
) -> Vec<Tensor> {
    let mut w = Vec::new();
    for l in 0..layers {
        let inp = if l == 0 { input } else { hidden * dirs };
        for _ in 0..dirs {
            w.push(r.randn(&[gates * hidden, inp]).mul_scalar(0.5).unwrap());
            w.push(r.randn(&[gates * hidden, hidden]).mul_scalar(0.5).unwrap());
            if bias {
                w.push(r.randn(&[gates * hidden]).mul_scalar(0.5).unwrap());
                w.push(r.randn(&[gates * hidden]).mul_scalar(0.5).unwrap());
            }
        }
    }
    w
}

#[test]
fn recurrent() {
    let (mut r, mut c) = setup("rnn", 24);
    for draw in 0..3 {
        let (tt, b, i, h) = (r.int(1, 3), r.int(1, 2), r.int(1, 3), r.int(1, 3));
        for (layers, dirs, bias, batch_first) in [
            (2, 1, true, false),
            (2, 1, true, true),
            (1, 1, false, draw % 2 == 0),
            (2, 2, true, draw % 2 == 1),
        ] {
            let x = r.randn(&if batch_first { [b, tt, i] } else { [tt, b, i] });
            let h0 = r.randn(&[layers * dirs, b, h]).mul_scalar(0.5).unwrap();
            let c0 = r.randn(&[layers * dirs, b, h]).mul_scalar(0.5).unwrap();
            let ws = rnn_weights(&mut r, 4, i, h, layers, dirs, bias);
            let nw = ws.len();
            let mut inputs = vec![x.clone(), h0.clone(), c0];
            inputs.extend(ws);
            let opt = F::RnnOptions {
                bidirectional: dirs == 2,
                ..Default::default()
            };
            let name = format!("lstm T{tt} B{b} I{i} H{h} layers {layers} dirs {dirs} bias={bias} batch_first={batch_first}");
            c.check_multi(&name, &inputs, |x| {
                let (o, hn, cn) =
                    F::lstm_with(&x[0], &x[1], &x[2], &x[3..3 + nw], layers, batch_first, opt)?;
                Ok(vec![o, hn, cn])
            });
            let mut inputs = vec![x, h0];
            inputs.extend(rnn_weights(&mut r, 3, i, h, layers, dirs, bias));
            let name = format!("gru T{tt} B{b} I{i} H{h} layers {layers} dirs {dirs} bias={bias} batch_first={batch_first}");
            c.check_multi(&name, &inputs, |x| {
                let (o, hn) = F::gru_with(&x[0], &x[1], &x[2..], layers, batch_first, opt)?;
                Ok(vec![o, hn])
            });
        }
        // The plain entry points (2 layers), output only / h_n only.
        let x = r.randn(&[tt, b, i]);
        let h0 = r.randn(&[2, b, h]);
        let c0 = r.randn(&[2, b, h]);
        let mut inputs = vec![x.clone(), h0.clone(), c0];
        inputs.extend(rnn_weights(&mut r, 4, i, h, 2, 1, true));
        c.check("F.lstm 2 layers (output only)", &inputs, |x| {
            Ok(F::lstm(&x[0], &x[1], &x[2], &x[3..], 2, false)?.0)
        });
        c.check("F.lstm 2 layers (c_n only)", &inputs, |x| {
            Ok(F::lstm(&x[0], &x[1], &x[2], &x[3..], 2, false)?.2)
        });
        let mut inputs = vec![x.clone(), h0];
        inputs.extend(rnn_weights(&mut r, 3, i, h, 2, 1, true));
        c.check("F.gru 2 layers (h_n only)", &inputs, |x| {
            Ok(F::gru(&x[0], &x[1], &x[2..], 2, false)?.1)
        });
        // A single fused layer.
        let w = rnn_weights(&mut r, 4, i, h, 1, 1, true);
        let inputs = vec![
            x,
            r.randn(&[b, h]),
            r.randn(&[b, h]),
            w[0].clone(),
            w[1].clone(),
            w[2].clone(),
            w[3].clone(),
        ];
        c.check_multi("lstm_layer", &inputs, |x| {
            let (o, hn, cn) =
                F::lstm_layer(&x[0], &x[1], &x[2], &x[3], &x[4], Some(&x[5]), Some(&x[6]))?;
            Ok(vec![o, hn, cn])
        });
    }
    // Wide enough (H = 40) for the timestep loop to split the hidden units over a team of
    // threads, unevenly (24 + 16), with an output cotangent at every step.
    let (tt, b, i, h) = (3, 2, 3, 40);
    let w = rnn_weights(&mut r, 4, i, h, 1, 1, true);
    let inputs = vec![
        r.randn(&[tt, b, i]),
        r.randn(&[b, h]).mul_scalar(0.5).unwrap(),
        r.randn(&[b, h]).mul_scalar(0.5).unwrap(),
        w[0].mul_scalar(0.3).unwrap(),
        w[1].mul_scalar(0.3).unwrap(),
        w[2].clone(),
        w[3].clone(),
    ];
    c.check_multi("lstm_layer H40 (split over threads)", &inputs, |x| {
        let (o, hn, cn) =
            F::lstm_layer(&x[0], &x[1], &x[2], &x[3], &x[4], Some(&x[5]), Some(&x[6]))?;
        Ok(vec![o, hn, cn])
    });
    // The projected-input form: x is the input projection [T, B, 4H] itself.
    let (tt, b, h) = (4, 3, 5);
    let w = rnn_weights(&mut r, 4, 2, h, 1, 1, true);
    let inputs = vec![
        r.randn(&[tt, b, 4 * h]),
        r.randn(&[b, h]),
        r.randn(&[b, h]),
        w[1].clone(),
        w[2].clone(),
        w[3].clone(),
    ];
    c.check_multi("lstm_layer_projected", &inputs, |x| {
        let (o, hn, cn) =
            F::lstm_layer_projected(&x[0], &x[1], &x[2], &x[3], Some(&x[4]), Some(&x[5]))?;
        Ok(vec![o, hn, cn])
    });
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Attention.

#[test]
fn attention() {
    let (mut r, mut c) = setup("attention", 25);
    for _ in 0..3 {
        let batch: Vec<usize> = (0..r.int(0, 2)).map(|_| r.int(1, 2)).collect();
        let (lq, lk, e, ev) = (r.int(1, 4), r.int(1, 4), r.int(1, 3), r.int(1, 3));
        let sh = |a: usize, b: usize| {
            let mut s = batch.clone();
            s.extend([a, b]);
            s
        };
        let (q, k, v) = (
            r.randn(&sh(lq, e)),
            r.randn(&sh(lk, e)),
            r.randn(&sh(lk, ev)),
        );
        let name = format!("sdpa q{:?} k{:?} v{:?}", q.shape(), k.shape(), v.shape());
        c.check(&name, &[q.clone(), k.clone(), v.clone()], |x| {
            F::scaled_dot_product_attention(&x[0], &x[1], &x[2], None, 0.0, false, None)
        });
        c.check(
            &format!("{name} causal"),
            &[q.clone(), k.clone(), v.clone()],
            |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2], None, 0.0, true, None),
        );
        c.check(
            &format!("{name} scale 0.7"),
            &[q.clone(), k.clone(), v.clone()],
            |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2], None, 0.0, false, Some(0.7)),
        );
        // bool mask [lq, lk] with at least one key kept per query
        let mut m: Vec<bool> = (0..lq * lk).map(|_| r.coin()).collect();
        for qi in 0..lq {
            m[qi * lk + r.int(0, lk - 1)] = true;
        }
        let bm = Tensor::from_vec(m, &[lq, lk]).unwrap();
        c.check(
            &format!("{name} bool mask"),
            &[q.clone(), k.clone(), v.clone(), bm],
            |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2], Some(&x[3]), 0.0, false, None),
        );
        // float mask, differentiable
        let fm = r.randn(&[lq, lk]);
        c.check(
            &format!("{name} float mask"),
            &[q.clone(), k.clone(), v.clone(), fm],
            |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2], Some(&x[3]), 0.0, false, None),
        );
        // multi-head attention [L, N, E]
        let heads = r.int(1, 2);
        let emb = heads * r.int(1, 2);
        let (l, s, n) = (r.int(1, 3), r.int(1, 3), r.int(1, 2));
        let query = r.randn(&[l, n, emb]);
        let key = r.randn(&[s, n, emb]);
        let value = r.randn(&[s, n, emb]);
        let ipw = r.randn(&[3 * emb, emb]).mul_scalar(0.5).unwrap();
        let ipb = r.randn(&[3 * emb]);
        let opw = r.randn(&[emb, emb]).mul_scalar(0.5).unwrap();
        let opb = r.randn(&[emb]);
        let name = format!("multi_head_attention L{l} S{s} N{n} E{emb} heads {heads}");
        c.check(
            &name,
            &[
                query.clone(),
                key.clone(),
                value.clone(),
                ipw.clone(),
                ipb.clone(),
                opw.clone(),
                opb.clone(),
            ],
            |x| {
                F::multi_head_attention_forward(
                    &x[0],
                    &x[1],
                    &x[2],
                    emb,
                    heads,
                    &x[3],
                    Some(&x[4]),
                    &x[5],
                    Some(&x[6]),
                )
            },
        );
        c.check(
            &format!("{name} no bias"),
            &[
                query.clone(),
                key.clone(),
                value.clone(),
                ipw.clone(),
                opw.clone(),
            ],
            |x| {
                F::multi_head_attention_forward(
                    &x[0], &x[1], &x[2], emb, heads, &x[3], None, &x[4], None,
                )
            },
        );
        c.check(
            &format!("{name} self-attention causal"),
            &[query.clone(), ipw.clone(), ipb, opw.clone(), opb],
            |x| {
                F::mha(
                    &x[0],
                    &x[0],
                    &x[0],
                    emb,
                    heads,
                    &x[1],
                    Some(&x[2]),
                    &x[3],
                    Some(&x[4]),
                    None,
                    true,
                )
            },
        );
        let fm = r.randn(&[l, s]);
        c.check(
            &format!("{name} float mask"),
            &[query, key, value, ipw, opw, fm],
            |x| {
                F::mha(
                    &x[0],
                    &x[1],
                    &x[2],
                    emb,
                    heads,
                    &x[3],
                    None,
                    &x[4],
                    None,
                    Some(&x[5]),
                    false,
                )
            },
        );
    }
    c.finish();
}

// ------------------------------------------------------------------------------------------
// Second derivatives.

#[test]
fn second_derivatives() {
    let (mut r, mut c) = setup("second_derivatives", 26);
    for _ in 0..3 {
        let (n, k, m) = (r.int(1, 3), r.int(1, 3), r.int(2, 4));
        let x = r.randn(&[n, k]);
        let w = r.randn(&[k, m]);
        c.check2(
            "tanh/mul/exp/matmul/softmax chain",
            &[x.clone(), w.clone()],
            |x| {
                let h = x[0].matmul(&x[1])?;
                let a = h.tanh()?.mul(&h.mul_scalar(0.3)?.exp()?)?;
                a.softmax(-1)?.mul(&x[0].sum_dim(&[1], true)?)
            },
        );
        let s = r.shape(1, 3);
        let a = r.randn(&s);
        let p = r.pos(&s);
        c.check2("tanh", &[a.clone()], |x| x[0].tanh());
        c.check2("exp", &[a.clone()], |x| x[0].exp());
        c.check2("sigmoid", &[a.clone()], |x| x[0].sigmoid());
        c.check2("mul(x, y)", &[a.clone(), r.randn(&s)], |x| {
            x[0].mul(&x[1])?.mul(&x[0])
        });
        c.check2("div", &[a.clone(), p.clone()], |x| x[0].div(&x[1]));
        c.check2("log", &[p.clone()], |x| x[0].log());
        c.check2("sqrt", &[p.clone()], |x| x[0].sqrt());
        c.check2("rsqrt", &[p.clone()], |x| x[0].rsqrt());
        c.check2("reciprocal", &[p.clone()], |x| x[0].reciprocal());
        c.check2("powf(3)", &[a.clone()], |x| x[0].powf(3.0));
        c.check2("pow(a, b)", &[p.clone(), r.randn(&s)], |x| x[0].pow(&x[1]));
        c.check2("gelu", &[a.clone()], |x| x[0].gelu("none"));
        c.check2("gelu tanh", &[a.clone()], |x| x[0].gelu("tanh"));
        c.check2("silu", &[a.clone()], |x| x[0].silu());
        c.check2("softplus", &[a.clone()], |x| x[0].softplus(1.0, 20.0));
        c.check2("erf", &[a.clone()], |x| x[0].erf());
        c.check2("sin/cos", &[a.clone()], |x| x[0].sin()?.mul(&x[0].cos()?));
        c.check2("expm1/log1p", &[p.clone()], |x| {
            x[0].expm1()?.add(&x[0].log1p()?)
        });
        let d = r.dim(s.len());
        c.check2("softmax", &[a.clone()], |x| x[0].softmax(d));
        let (rows, cls) = (r.int(1, 4), r.int(2, 5));
        let (lg, tg) = (r.randn(&[rows, cls]), r.idx(&[rows], cls));
        c.check2("nll_loss(log_softmax) (fused backward)", &[lg, tg], |x| {
            F::nll_loss(&x[0].log_softmax(1)?, &x[1], None, -100, "sum")
        });
        c.check2("log_softmax", &[a.clone()], |x| x[0].log_softmax(d));
        c.check2("logsumexp", &[a.clone()], |x| x[0].logsumexp(&[d], false));
        c.check2("var", &[r.randn(&[3, 4])], |x| {
            x[0].var_dim(Some(&[1]), 1.0, false)
        });
        c.check2("prod", &[r.away(&[2, 3], &[0.0])], |x| {
            x[0].prod_dim(1, false)
        });
        c.check2("cumsum^2", &[a.clone()], |x| x[0].cumsum(d)?.square());
        c.check2("amax of square", &[a.clone()], |x| {
            x[0].square()?.amax(&[d], false)
        });
        c.check2("matmul(x, x.T)", &[x.clone()], |x| x[0].matmul(&x[0].t()?));
        c.check2(
            "views: permute/slice/expand/pad squared",
            &[r.randn(&[2, 3])],
            |x| {
                x[0].t()?
                    .slice(0, 0, 3, 2)?
                    .unsqueeze(0)?
                    .expand(&[2, 2, 2])?
                    .pad(&[1, 0], 0.0)?
                    .square()
            },
        );
        c.check2("cat/split", &[a.clone(), a.clone()], |x| {
            let y = Tensor::cat(&[x[0].square()?, x[1].exp()?], 0)?;
            let n0 = x[0].shape()[0];
            let p = y.split_sizes(&[n0, n0], 0)?;
            p[0].mul(&p[1])
        });
        c.check2("index_select/gather squared", &[r.randn(&[4, 3])], |x| {
            let i = Tensor::from_vec(vec![0i64, 2, 2], &[3])?;
            let g = Tensor::from_vec(vec![0i64, 1, 1, 2, 0, 0], &[2, 3])?;
            x[0].index_select(0, &i)?.square()?.gather(0, &g)?.tanh()
        });
        c.check2("where/maximum", &[a.clone(), r.randn(&s)], |x| {
            Tensor::where_cond(&x[0].gt_scalar(0.0)?, &x[0].square()?, &x[1].exp()?)?
                .maximum(&x[1].mul(&x[0])?)
        });
        let ns = [s[s.len() - 1]];
        c.check2(
            "layer_norm affine",
            &[a.clone(), r.randn(&ns), r.randn(&ns)],
            |x| F::layer_norm(&x[0], &ns, Some(&x[1]), Some(&x[2]), 1e-5),
        );
        c.check2("rms_norm", &[a.clone(), r.randn(&ns)], |x| {
            F::rms_norm(&x[0], &ns, Some(&x[1]), Some(1e-6))
        });
        c.check2(
            "linear + tanh",
            &[x.clone(), r.randn(&[m, k]), r.randn(&[m])],
            |x| x[0].linear(&x[1], Some(&x[2]))?.tanh(),
        );
        c.check2("mse_loss of tanh", &[a.clone(), r.randn(&s)], |x| {
            F::mse_loss(&x[0].tanh()?, &x[1], "mean")
        });
        let tgt = r.idx(&[n], m);
        c.check2("cross_entropy ls=0.1", &[r.randn(&[n, m]), tgt], |x| {
            F::cross_entropy(&x[0], &x[1], None, -100, "mean", 0.1)
        });
        c.check2(
            "sdpa",
            &[r.randn(&[2, 3]), r.randn(&[3, 3]), r.randn(&[3, 2])],
            |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2], None, 0.0, true, None),
        );
        c.check2("max_pool2d of square", &[r.randn(&[1, 1, 3, 3])], |x| {
            F::max_pool2d(&x[0].square()?, [2, 2], [1, 1], [0, 0], [1, 1], false)
        });
        c.check2(
            "conv2d stride 2, padding 1",
            &[r.randn(&[1, 2, 5, 4]), r.randn(&[3, 2, 2, 2])],
            |x| F::conv2d(&x[0], &x[1], None, [2, 2], [1, 1], [1, 1], 1)?.tanh(),
        );
        c.check2(
            "conv2d dilation 2, groups 2",
            &[r.randn(&[1, 4, 5, 5]), r.randn(&[2, 2, 2, 2])],
            |x| F::conv2d(&x[0], &x[1], None, [1, 1], [0, 0], [2, 2], 2)?.tanh(),
        );
        c.check2(
            "gru",
            &[
                r.randn(&[2, 1, 2]),
                r.randn(&[1, 1, 2]),
                r.randn(&[6, 2]),
                r.randn(&[6, 2]),
            ],
            |x| Ok(F::gru(&x[0], &x[1], &x[2..], 1, false)?.0),
        );
    }
    c.finish();
}

#[test]
fn double_backward_through_fused_ops_is_a_clear_error() {
    let (mut r, _c) = setup("double_backward_errors", 27);
    let check_err = |what: &str,
                     res: std::thread::Result<Result<Vec<Option<Tensor>>>>,
                     needle: &str| match res {
        Err(p) => panic!("{what}: double backward panicked: {}", panic_msg(&*p)),
        Ok(Ok(g)) => panic!(
            "{what}: double backward returned Ok (grads present: {:?}) instead of an error",
            g.iter().map(|g| g.is_some()).collect::<Vec<_>>()
        ),
        Ok(Err(e)) => {
            let m = e.to_string();
            assert!(
                m.contains(needle) && m.contains("double backward"),
                "{what}: unclear error: {m}"
            );
        }
    };
    // (conv2d has a double backward: checked in double_backward_gradcheck.)
    // lstm
    let xs = r.randn(&[2, 1, 2]).requires_grad_(true).unwrap();
    let h0 = r.randn(&[1, 1, 2]);
    let c0 = r.randn(&[1, 1, 2]);
    let ws: Vec<Tensor> = rnn_weights(&mut r, 4, 2, 2, 1, 1, true)
        .into_iter()
        .map(|t| t.requires_grad_(true).unwrap())
        .collect();
    let res = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Option<Tensor>>> {
        let (o, _, _) = F::lstm(&xs, &h0, &c0, &ws, 1, false)?;
        let y = o.square()?.sum_all()?;
        let g = deepseek::autograd::grad(&[y], &[xs.clone()], &[None], true, true)?;
        let s = g[0].as_ref().unwrap().square()?.sum_all()?;
        deepseek::autograd::grad(&[s], &[xs.clone()], &[None], false, false)
    }));
    check_err("lstm", res, "lstm");
    // avg_pool2d
    let xp = r.randn(&[1, 1, 4, 4]).requires_grad_(true).unwrap();
    let res = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Option<Tensor>>> {
        let y =
            F::avg_pool2d(&xp.square()?, [2, 2], [2, 2], [0, 0], false, true, None)?.sum_all()?;
        let g = deepseek::autograd::grad(&[y], &[xp.clone()], &[None], true, true)?;
        let s = g[0].as_ref().unwrap().square()?.sum_all()?;
        deepseek::autograd::grad(&[s], &[xp.clone()], &[None], false, false)
    }));
    check_err("avg_pool2d", res, "avg_pool2d");
}
