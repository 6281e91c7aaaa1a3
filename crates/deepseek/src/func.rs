//! Functional autodiff over closures of tensors (after `torch.func`): [`grad`],
//! [`grad_and_value`], [`vjp`], [`jvp`], [`jacrev`], [`jacfwd`], [`hessian`].
//!
//! The transforms run the closure on inputs that require grad and differentiate with
//! [`crate::autograd::grad`]; they compose: when an input already requires grad (as inside
//! another transform) the result keeps its graph (`create_graph`), so `grad` of a `grad` and
//! [`hessian`] (`jacrev` of `grad`) work. [`jvp`] is forward mode by the double-vjp trick:
//! `u ↦ J^T u` is linear in `u`, and its vjp with the tangent is `J v` (two backward passes,
//! no dual numbers).
//!
//! ```
//! use deepseek::prelude::*;
//! use deepseek::func;
//! // f(x) = Σ x³ : grad 3x², hessian diag(6x).
//! let f = |x: &[Tensor]| x[0].powf(3.0)?.sum_all();
//! let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
//! assert_eq!(func::grad(f, &[x.clone()])?[0].to_vec::<f64>()?, vec![3.0, 12.0]);
//! assert_eq!(func::hessian(f, &x)?.to_vec::<f64>()?, vec![6.0, 0.0, 0.0, 12.0]);
//! # Ok::<(), deepseek::Error>(())
//! ```

use crate::{Error, Result, Tensor};

/// The inputs as the closure sees them: tensors that already require grad are used as they
/// are (so an enclosing transform can differentiate through), the others become fresh
/// leaves. Returns them and whether the caller must keep the graph.
fn prepare(op: &str, inputs: &[Tensor]) -> Result<(Vec<Tensor>, bool)> {
    if inputs.is_empty() {
        return Err(Error::value(op, "expected at least one input tensor"));
    }
    let mut nested = false;
    let xs = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if !x.dtype().is_float() {
                return Err(Error::dtype(
                    op,
                    format!(
                        "input {i} has dtype {}; only floating-point inputs can be differentiated",
                        x.dtype()
                    ),
                ));
            }
            if x.requires_grad() {
                nested = true;
                Ok(x.clone())
            } else {
                x.detach().requires_grad_(true)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((xs, nested))
}

/// Gradients of `outs` (weighted by `cots`) with respect to `xs`; zeros where an input does
/// not reach the outputs.
fn vjp_of(
    outs: &[Tensor],
    xs: &[Tensor],
    cots: &[Option<Tensor>],
    keep: bool,
) -> Result<Vec<Tensor>> {
    let live: Vec<usize> = (0..outs.len())
        .filter(|&i| outs[i].requires_grad())
        .collect();
    if live.is_empty() {
        return xs.iter().map(|x| x.zeros_like()).collect();
    }
    let roots: Vec<Tensor> = live.iter().map(|&i| outs[i].clone()).collect();
    let gs: Vec<Option<Tensor>> = live.iter().map(|&i| cots[i].clone()).collect();
    let g = crate::autograd::grad(&roots, xs, &gs, true, keep)?;
    g.into_iter()
        .zip(xs)
        .map(|(g, x)| match g {
            Some(g) => Ok(g),
            None => x.zeros_like(),
        })
        .collect()
}

fn run<F>(f: &F, xs: &[Tensor]) -> Result<Tensor>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let _g = crate::enable_grad();
    f(xs)
}

/// `(∇f(inputs), f(inputs))` for a closure returning a scalar (one element): one gradient
/// per input (PyTorch's `torch.func.grad_and_value` over all arguments).
pub fn grad_and_value<F>(f: F, inputs: &[Tensor]) -> Result<(Vec<Tensor>, Tensor)>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let (xs, nested) = prepare("func::grad", inputs)?;
    let y = run(&f, &xs)?;
    if y.numel() != 1 {
        return Err(Error::shape(
            "func::grad",
            format!(
                "the function must return a scalar (one element) to take its gradient, got shape {:?}; use vjp or jacrev",
                y.shape()
            ),
        ));
    }
    let g = vjp_of(std::slice::from_ref(&y), &xs, &[None], nested)?;
    let y = if nested { y } else { y.detach() };
    Ok((g, y))
}

/// The gradient of a scalar-valued closure with respect to each input (`torch.func.grad`).
///
/// ```
/// use deepseek::prelude::*;
/// let x = Tensor::from_vec(vec![0.5f64, -1.0], &[2])?;
/// let w = Tensor::from_vec(vec![2.0f64, 3.0], &[2])?;
/// let g = deepseek::func::grad(|a| a[0].mul(&a[1])?.sum_all(), &[x.clone(), w.clone()])?;
/// assert_eq!(g[0].to_vec::<f64>()?, vec![2.0, 3.0]); // d/dx = w
/// assert_eq!(g[1].to_vec::<f64>()?, vec![0.5, -1.0]); // d/dw = x
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn grad<F>(f: F, inputs: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    Ok(grad_and_value(f, inputs)?.0)
}

/// The vector-Jacobian product function of [`vjp`]: call it with cotangents of the
/// output's shape, as many times as needed.
pub struct VjpFn {
    xs: Vec<Tensor>,
    out: Tensor,
    nested: bool,
}

impl VjpFn {
    /// `cotangent^T J` for each input.
    pub fn call(&self, cotangent: &Tensor) -> Result<Vec<Tensor>> {
        if cotangent.shape() != self.out.shape() {
            return Err(Error::shape(
                "func::vjp",
                format!(
                    "cotangent of shape {:?} given for an output of shape {:?}",
                    cotangent.shape(),
                    self.out.shape()
                ),
            ));
        }
        let _g = crate::enable_grad();
        vjp_of(
            std::slice::from_ref(&self.out),
            &self.xs,
            &[Some(cotangent.clone())],
            self.nested || cotangent.requires_grad(),
        )
    }
}

/// `(f(inputs), vjp_fn)` (`torch.func.vjp`): `vjp_fn.call(v)` gives `v^T ∂f/∂input` for
/// every input.
///
/// ```
/// use deepseek::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?;
/// let (y, vjp_fn) = deepseek::func::vjp(|a| a[0].square(), &[x])?;
/// let v = Tensor::from_vec(vec![1.0f64, 0.0, 1.0], &[3])?;
/// assert_eq!(vjp_fn.call(&v)?[0].to_vec::<f64>()?, vec![2.0, 0.0, 6.0]);
/// assert_eq!(y.to_vec::<f64>()?, vec![1.0, 4.0, 9.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn vjp<F>(f: F, inputs: &[Tensor]) -> Result<(Tensor, VjpFn)>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let (xs, nested) = prepare("func::vjp", inputs)?;
    let out = run(&f, &xs)?;
    let shown = if nested { out.clone() } else { out.detach() };
    Ok((shown, VjpFn { xs, out, nested }))
}

/// `(f(primals), J·tangents)` (`torch.func.jvp`), the Jacobian-vector product summed over
/// the inputs, by double vjp: with `u` a dummy cotangent, `g(u) = J^T u` is linear in `u`
/// and the vjp of `g` with the tangents is `J v`. Costs two backward passes over the
/// function's graph (measured in bench/RESULTS.md).
///
/// ```
/// use deepseek::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let v = Tensor::from_vec(vec![1.0f64, 1.0], &[2])?;
/// let (y, t) = deepseek::func::jvp(|a| a[0].square(), &[x], &[v])?;
/// assert_eq!(t.to_vec::<f64>()?, vec![2.0, 4.0]);
/// assert_eq!(y.to_vec::<f64>()?, vec![1.0, 4.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn jvp<F>(f: F, primals: &[Tensor], tangents: &[Tensor]) -> Result<(Tensor, Tensor)>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let op = "func::jvp";
    if primals.len() != tangents.len() {
        return Err(Error::value(
            op,
            format!("{} primals but {} tangents", primals.len(), tangents.len()),
        ));
    }
    for (i, (p, t)) in primals.iter().zip(tangents).enumerate() {
        if p.shape() != t.shape() {
            return Err(Error::shape(
                op,
                format!(
                    "tangent {i} has shape {:?} but its primal {:?}",
                    t.shape(),
                    p.shape()
                ),
            ));
        }
    }
    let (xs, nested) = prepare(op, primals)?;
    let _g = crate::enable_grad();
    let out = f(&xs)?;
    if !out.requires_grad() {
        let z = out.zeros_like()?;
        return Ok((out, z));
    }
    let u = out.zeros_like()?.requires_grad_(true)?;
    let g = crate::autograd::grad(
        std::slice::from_ref(&out),
        &xs,
        &[Some(u.clone())],
        true,
        true,
    )?;
    let (gs, ts): (Vec<Tensor>, Vec<Option<Tensor>>) = g
        .into_iter()
        .zip(tangents)
        .filter_map(|(g, t)| {
            g.filter(|g| g.requires_grad())
                .map(|g| (g, Some(t.clone())))
        })
        .unzip();
    if gs.is_empty() {
        let z = out.zeros_like()?;
        return Ok((if nested { out } else { out.detach() }, z));
    }
    let jv = crate::autograd::grad(&gs, std::slice::from_ref(&u), &ts, true, nested)?;
    let jv = match jv.into_iter().next().flatten() {
        Some(t) => t,
        None => out.zeros_like()?,
    };
    Ok((if nested { out } else { out.detach() }, jv))
}

/// The Jacobian of `f` with respect to each input by reverse mode (`torch.func.jacrev`
/// over all arguments): `[*out_shape, *input_shape]` per input, one vjp per output element.
///
/// ```
/// use deepseek::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let j = deepseek::func::jacrev(|a| a[0].square(), &[x])?;
/// assert_eq!(j[0].to_vec::<f64>()?, vec![2.0, 0.0, 0.0, 4.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn jacrev<F>(f: F, inputs: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let (xs, nested) = prepare("func::jacrev", inputs)?;
    let out = run(&f, &xs)?;
    let n = out.numel();
    let mut rows: Vec<Vec<Tensor>> = vec![Vec::with_capacity(n); xs.len()];
    let basis = Tensor::zeros(&[n], out.opts())?;
    for i in 0..n {
        let mut e = basis.to_vec_f64()?;
        e[i] = 1.0;
        let e = Tensor::from_vec(e, &[n])?
            .to_dtype(out.dtype())?
            .reshape(out.shape())?;
        let g = vjp_of(std::slice::from_ref(&out), &xs, &[Some(e)], nested)?;
        for (r, g) in rows.iter_mut().zip(g) {
            r.push(g);
        }
    }
    rows.into_iter()
        .zip(&xs)
        .map(|(r, x)| {
            let mut shape = out.shape().to_vec();
            shape.extend_from_slice(x.shape());
            if r.is_empty() {
                return Tensor::zeros(&shape, x.opts());
            }
            Tensor::stack(&r, 0)?.reshape(&shape)
        })
        .collect()
}

/// The Jacobian of `f` with respect to each input by forward mode (`torch.func.jacfwd` over
/// all arguments): `[*out_shape, *input_shape]` per input, one Jacobian-vector product per
/// input element. The products share one recorded backward (`u ↦ J^T u`, as in [`jvp`]):
/// each column `J e_i` is one more backward pass over that graph. Equal to [`jacrev`]; it
/// is the cheaper of the two when the inputs have fewer elements than the output.
///
/// ```
/// use deepseek::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
/// let j = deepseek::func::jacfwd(|a| a[0].square(), &[x])?;
/// assert_eq!(j[0].to_vec::<f64>()?, vec![2.0, 0.0, 0.0, 4.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn jacfwd<F>(f: F, inputs: &[Tensor]) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let (xs, nested) = prepare("func::jacfwd", inputs)?;
    let out = run(&f, &xs)?;
    let shape_of = |x: &Tensor| {
        let mut s = out.shape().to_vec();
        s.extend_from_slice(x.shape());
        s
    };
    if !out.requires_grad() {
        return xs
            .iter()
            .map(|x| Tensor::zeros(&shape_of(x), x.opts()))
            .collect();
    }
    // g(u) = J^T u, recorded: its vjp with e_i is the column J e_i.
    let u = out.zeros_like()?.requires_grad_(true)?;
    let g = crate::autograd::grad(
        std::slice::from_ref(&out),
        &xs,
        &[Some(u.clone())],
        true,
        true,
    )?;
    let _grad = crate::enable_grad();
    g.into_iter()
        .zip(&xs)
        .map(|(g, x)| {
            let shape = shape_of(x);
            let g = match g.filter(|g| g.requires_grad()) {
                Some(g) => g,
                // J^T u does not depend on u: this input's Jacobian is zero.
                None => return Tensor::zeros(&shape, x.opts()),
            };
            let n = x.numel();
            let mut cols = Vec::with_capacity(n);
            for i in 0..n {
                let mut e = vec![0.0f64; n];
                e[i] = 1.0;
                let e = Tensor::from_vec(e, x.shape())?.to_dtype(x.dtype())?;
                let c = crate::autograd::grad(
                    std::slice::from_ref(&g),
                    std::slice::from_ref(&u),
                    &[Some(e)],
                    true,
                    nested,
                )?;
                cols.push(match c.into_iter().next().flatten() {
                    Some(c) => c,
                    None => out.zeros_like()?,
                });
            }
            if cols.is_empty() {
                return Tensor::zeros(&shape, x.opts());
            }
            // cols[i] is ∂out/∂x_i: stacked last, then the input's dims restored.
            Tensor::stack(&cols, out.rank() as isize)?.reshape(&shape)
        })
        .collect()
}

/// The Hessian of a scalar-valued `f` at `x` (`torch.func.hessian`): `jacrev` of `grad`,
/// shape `[*x.shape, *x.shape]`.
pub fn hessian<F>(f: F, x: &Tensor) -> Result<Tensor>
where
    F: Fn(&[Tensor]) -> Result<Tensor>,
{
    let g = |a: &[Tensor]| -> Result<Tensor> {
        let mut gs = grad(&f, a)?;
        Ok(gs.remove(0))
    };
    let mut h = jacrev(g, std::slice::from_ref(x))?;
    Ok(h.remove(0))
}
