//! `deepseek::func` against torch.func (fixture `data/func_torch.json`, written by
//! `data/make_func_fixture.py`, float64) and against central finite differences.

use deepseek::func;
use deepseek::{DType, Result, Tensor};
use std::collections::HashMap;

fn fixture() -> HashMap<String, Tensor> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/func_torch.json");
    let v: HashMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v.into_iter()
        .map(|(k, t)| {
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap() as usize)
                .collect();
            let d: Vec<f64> = t["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (k, Tensor::from_vec(d, &shape).unwrap())
        })
        .collect()
}

fn close(name: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{name}");
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    let worst = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max);
    assert!(
        worst < tol,
        "{name}: worst error {worst:e}\n got {g:?}\nwant {w:?}"
    );
}

fn f1(x: &[Tensor]) -> Result<Tensor> {
    x[0].tanh()?.mul(&x[0].square()?)?.sum_all()
}
fn f2(x: &[Tensor]) -> Result<Tensor> {
    x[0].matmul(&x[1])?.sin()
}
fn f3(x: &[Tensor]) -> Result<Tensor> {
    x[0].log_softmax(-1)?.mul(&x[0].exp()?)
}

#[test]
fn matches_torch_func() {
    let f = fixture();
    let t = |k: &str| f[k].clone();
    let tol = 1e-12;
    close(
        "grad",
        &func::grad(f1, &[t("x")]).unwrap()[0],
        &t("f1_grad"),
        tol,
    );
    let (g, v) = func::grad_and_value(f1, &[t("x")]).unwrap();
    close("grad_and_value", &g[0], &t("f1_grad"), tol);
    assert!((v.item().unwrap() - f1(&[t("x")]).unwrap().item().unwrap()).abs() < 1e-15);
    close(
        "hessian",
        &func::hessian(f1, &t("x")).unwrap(),
        &t("f1_hessian"),
        tol,
    );
    let (out, vjp_fn) = func::vjp(f2, &[t("a"), t("w")]).unwrap();
    close("f2", &out, &t("f2_out"), tol);
    let g = vjp_fn.call(&t("v")).unwrap();
    close("vjp a", &g[0], &t("f2_vjp_a"), tol);
    close("vjp w", &g[1], &t("f2_vjp_w"), tol);
    // The vjp function can be called again.
    close(
        "vjp again",
        &vjp_fn.call(&t("v")).unwrap()[1],
        &t("f2_vjp_w"),
        tol,
    );
    let (o, jv) = func::jvp(f2, &[t("a"), t("w")], &[t("ta"), t("tw")]).unwrap();
    close("jvp out", &o, &t("f2_out"), tol);
    close("jvp", &jv, &t("f2_jvp"), tol);
    let j = func::jacrev(f2, &[t("a"), t("w")]).unwrap();
    close("jacrev a", &j[0], &t("f2_jac_a"), tol);
    close("jacrev w", &j[1], &t("f2_jac_w"), tol);
    close(
        "jacrev f3",
        &func::jacrev(f3, &[t("s")]).unwrap()[0],
        &t("f3_jac"),
        tol,
    );
    // Forward mode gives the same Jacobians (torch.func.jacfwd == jacrev).
    let j = func::jacfwd(f2, &[t("a"), t("w")]).unwrap();
    close("jacfwd a", &j[0], &t("f2_jac_a"), tol);
    close("jacfwd w", &j[1], &t("f2_jac_w"), tol);
    close(
        "jacfwd f3",
        &func::jacfwd(f3, &[t("s")]).unwrap()[0],
        &t("f3_jac"),
        tol,
    );
    // torch.func.hessian is jacfwd(jacrev(f)): forward over reverse, nested.
    let hf = func::jacfwd(|x| Ok(func::grad(f1, x)?.remove(0)), &[t("x")]).unwrap();
    close("jacfwd(grad)", &hf[0], &t("f1_hessian"), tol);
    assert!(!hf[0].requires_grad() && !j[0].requires_grad());
    // An input the output does not depend on: a zero block of the right shape.
    let jz = func::jacfwd(|x| x[0].sin(), &[t("s"), t("x")]).unwrap();
    assert_eq!(jz[1].shape(), [t("s").shape(), t("x").shape()].concat());
    assert!(jz[1].to_vec_f64().unwrap().iter().all(|&z| z == 0.0));
    let h = func::hessian(|x| f3(x)?.sum_all(), &t("s")).unwrap();
    close("hessian f3", &h, &t("f3_hessian_sum"), tol);
    // Results of the outermost transform carry no graph.
    assert!(!h.requires_grad() && !jv.requires_grad() && !g[0].requires_grad());
}

/// Central differences of `f` (summed against `v`) with respect to `xs[k]`.
fn numeric_vjp(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    xs: &[Tensor],
    k: usize,
    v: &Tensor,
) -> Tensor {
    let h = 1e-6;
    let base = xs[k].to_vec_f64().unwrap();
    let mut out = vec![0.0; base.len()];
    for (i, o) in out.iter_mut().enumerate() {
        let at = |d: f64| {
            let mut b = base.clone();
            b[i] += d;
            let mut ys = xs.to_vec();
            ys[k] = Tensor::from_vec(b, xs[k].shape()).unwrap();
            f(&ys)
                .unwrap()
                .mul(v)
                .unwrap()
                .sum_all()
                .unwrap()
                .item()
                .unwrap()
        };
        *o = (at(h) - at(-h)) / (2.0 * h);
    }
    Tensor::from_vec(out, xs[k].shape()).unwrap()
}

#[test]
fn matches_finite_differences() {
    deepseek::manual_seed(11);
    let a = Tensor::randn(&[3, 4], DType::F64).unwrap();
    let w = Tensor::randn(&[4, 2], DType::F64).unwrap();
    let v = Tensor::randn(&[3, 2], DType::F64).unwrap();
    let f = |x: &[Tensor]| {
        x[0].matmul(&x[1])?
            .tanh()?
            .mul(&x[0].narrow(1, 0, 2)?.exp()?)
    };
    let (_, vjp_fn) = func::vjp(f, &[a.clone(), w.clone()]).unwrap();
    let g = vjp_fn.call(&v).unwrap();
    for (k, gk) in g.iter().enumerate() {
        close(
            "vjp vs fd",
            gk,
            &numeric_vjp(f, &[a.clone(), w.clone()], k, &v),
            1e-7,
        );
    }
    // jvp: (J t) · v = t · (J^T v).
    let (ta, tw) = (
        Tensor::randn(&[3, 4], DType::F64).unwrap(),
        Tensor::randn(&[4, 2], DType::F64).unwrap(),
    );
    let (_, jv) = func::jvp(f, &[a.clone(), w.clone()], &[ta.clone(), tw.clone()]).unwrap();
    let lhs = jv.mul(&v).unwrap().sum_all().unwrap().item().unwrap();
    let rhs = g[0].mul(&ta).unwrap().sum_all().unwrap().item().unwrap()
        + g[1].mul(&tw).unwrap().sum_all().unwrap().item().unwrap();
    assert!(
        (lhs - rhs).abs() < 1e-12 * (1.0 + rhs.abs()),
        "{lhs} vs {rhs}"
    );
    // The Hessian against finite differences of the gradient, and symmetric.
    let s = |x: &[Tensor]| x[0].sin()?.mul(&x[0].square()?.sum_all()?)?.sum_all();
    let x = Tensor::randn(&[5], DType::F64).unwrap();
    let h = func::hessian(s, &x).unwrap();
    let hv = h.to_vec_f64().unwrap();
    let gf = |x: &[Tensor]| -> Result<Tensor> { Ok(func::grad(s, x)?.remove(0)) };
    for r in 0..5 {
        let mut e = vec![0.0; 5];
        e[r] = 1.0;
        let row = numeric_vjp(
            gf,
            std::slice::from_ref(&x),
            0,
            &Tensor::from_vec(e, &[5]).unwrap(),
        );
        let row = row.to_vec_f64().unwrap();
        for c in 0..5 {
            assert!((hv[r * 5 + c] - row[c]).abs() < 1e-6, "H[{r},{c}]");
            assert!((hv[r * 5 + c] - hv[c * 5 + r]).abs() < 1e-12);
        }
    }
    // grad of grad (third derivative of x^4 / 4 = 6x).
    let x = Tensor::from_vec(vec![1.5f64], &[1]).unwrap();
    let g2 = func::grad(
        |a| {
            func::grad(|b| b[0].powf(4.0)?.mul_scalar(0.25)?.sum_all(), a)?
                .remove(0)
                .sum_all()
        },
        &[x],
    )
    .unwrap();
    assert!((g2[0].item().unwrap() - 3.0 * 1.5 * 1.5).abs() < 1e-12);
}

#[test]
fn bad_input() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let e = func::grad(|a| a[0].square(), std::slice::from_ref(&x))
        .unwrap_err()
        .to_string();
    assert!(e.contains("scalar"), "{e}");
    let e = func::grad(|a| a[0].sum_all(), &[]).unwrap_err().to_string();
    assert!(e.contains("at least one input"), "{e}");
    let i = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
    let e = func::grad(|a| a[0].sum_all(), &[i])
        .unwrap_err()
        .to_string();
    assert!(e.contains("floating-point"), "{e}");
    let (_, vjp_fn) = func::vjp(|a| a[0].square(), std::slice::from_ref(&x)).unwrap();
    let e = vjp_fn
        .call(&Tensor::ones(&[3], DType::F64).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cotangent"), "{e}");
    let e = func::jvp(|a| a[0].square(), std::slice::from_ref(&x), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tangents"), "{e}");
    let e = func::jvp(
        |a| a[0].square(),
        std::slice::from_ref(&x),
        &[Tensor::ones(&[3], DType::F64).unwrap()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("shape"), "{e}");
    // An input the function ignores gets a zero gradient.
    let g = func::grad(|a| a[0].sum_all(), &[x.clone(), x.clone()]).unwrap();
    assert_eq!(g[1].to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
}

/// The README's example, as written there.
#[test]
fn readme_example() -> Result<()> {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2])?;
    let f = |a: &[Tensor]| a[0].powf(3.0)?.sum_all();
    let g = func::grad(f, std::slice::from_ref(&x))?;
    let h = func::hessian(f, &x)?;
    let (y, vjp_fn) = func::vjp(|a| a[0].sin(), std::slice::from_ref(&x))?;
    let ct = vjp_fn.call(&Tensor::ones(&[2], DType::F64)?)?;
    let (_, jv) = func::jvp(
        |a| a[0].square(),
        std::slice::from_ref(&x),
        &[Tensor::ones(&[2], DType::F64)?],
    )?;
    let j = func::jacrev(
        |a| a[0].matmul(&a[1]),
        &[x.reshape(&[1, 2])?, Tensor::eye(2, 2, DType::F64)?],
    )?;
    assert_eq!(g[0].to_vec::<f64>()?, vec![3.0, 12.0]);
    assert_eq!(h.to_vec::<f64>()?, vec![6.0, 0.0, 0.0, 12.0]);
    assert_eq!(y.to_vec::<f64>()?, vec![1f64.sin(), 2f64.sin()]);
    assert_eq!(ct[0].to_vec::<f64>()?, vec![1f64.cos(), 2f64.cos()]);
    assert_eq!(jv.to_vec::<f64>()?, vec![2.0, 4.0]);
    assert_eq!(j[0].shape(), &[1, 2, 1, 2]);
    assert_eq!(j[1].shape(), &[1, 2, 2, 2]);
    Ok(())
}

/// Second derivatives through conv2d (its double backward) against torch.func: the Hessian
/// in the weight, in the input, and the mixed block, for a strided/padded and a
/// dilated/grouped convolution.
#[test]
fn conv2d_double_backward_matches_torch() {
    let f = fixture();
    for (name, stride, pad, dil, groups) in [
        ("c1", [2, 2], [1, 1], [1, 1], 1),
        ("c2", [1, 1], [0, 0], [2, 2], 2),
    ] {
        let fc = move |a: &[Tensor]| -> Result<Tensor> {
            deepseek::ops::conv::conv2d(&a[0], &a[1], None, stride, pad, dil, groups)?
                .tanh()?
                .square()?
                .sum_all()
        };
        let (x, w) = (
            f[&format!("{name}_x")].clone(),
            f[&format!("{name}_w")].clone(),
        );
        let hw = func::hessian(|a| fc(&[x.clone(), a[0].clone()]), &w).unwrap();
        close(
            &format!("{name} hessian w"),
            &hw,
            &f[&format!("{name}_hess_w")],
            1e-10,
        );
        let hx = func::hessian(|a| fc(&[a[0].clone(), w.clone()]), &x).unwrap();
        close(
            &format!("{name} hessian x"),
            &hx,
            &f[&format!("{name}_hess_x")],
            1e-10,
        );
        let gx = |a: &[Tensor]| -> Result<Tensor> {
            Ok(func::grad(fc, &[a[0].clone(), a[1].clone()])?.remove(0))
        };
        let hxw = func::jacrev(gx, &[x.clone(), w.clone()]).unwrap();
        close(
            &format!("{name} d2/dxdw"),
            &hxw[1],
            &f[&format!("{name}_hess_xw")],
            1e-10,
        );
    }
}
