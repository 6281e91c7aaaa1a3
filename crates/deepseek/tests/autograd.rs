//! Autograd engine semantics: accumulation, grad mode, detach, hooks, retain_grad,
//! `autograd::grad`, views, reuse, multi-output ops.

use deepseek::{DType, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn leaf(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

#[track_caller]
fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn leaf_grads_accumulate_across_backward_calls() {
    let x = leaf(&[1.0, 2.0, 3.0], &[3]);
    let y = x.square().unwrap().sum_all().unwrap();
    y.backward_with(None, true, false).unwrap();
    close(&vals(&x.grad().unwrap()), &[2.0, 4.0, 6.0]);
    y.backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[4.0, 8.0, 12.0]);
    // a fresh graph also accumulates
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    close(&vals(&x.grad().unwrap()), &[7.0, 11.0, 15.0]);
    // zero_grad clears; the graph is freed now
    x.zero_grad();
    assert!(x.grad().is_none());
    assert!(
        y.backward().is_err(),
        "the graph was freed by the last backward"
    );
    // set_grad replaces
    x.set_grad(Some(Tensor::ones(&[3], DType::F64).unwrap()))
        .unwrap();
    x.sum_all().unwrap().backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[2.0, 2.0, 2.0]);
}

#[test]
fn accumulated_grad_does_not_alias_the_graph() {
    // The first .grad() must own its buffer: a later accumulation must not write into a tensor
    // the user still holds.
    let x = leaf(&[1.0, 2.0], &[2]);
    let y = x.sum_all().unwrap();
    y.backward_with(None, true, false).unwrap();
    let g1 = x.grad().unwrap();
    y.backward().unwrap();
    close(&vals(&g1), &[1.0, 1.0]);
    close(&vals(&x.grad().unwrap()), &[2.0, 2.0]);
}

#[test]
fn no_grad_disables_recording() {
    let x = leaf(&[1.0, -2.0], &[2]);
    {
        let _g = deepseek::no_grad();
        assert!(!deepseek::is_grad_enabled());
        let y = x.exp().unwrap().mul(&x).unwrap();
        assert!(!y.requires_grad());
        assert!(y.is_leaf());
        assert!(y.grad_fn_name().is_none());
        assert!(y.sum_all().unwrap().backward().is_err());
        // nested enable_grad turns it back on
        let _e = deepseek::enable_grad();
        assert!(x.exp().unwrap().requires_grad());
    }
    assert!(deepseek::is_grad_enabled());
    let z = deepseek::with_no_grad(|| x.square().unwrap());
    assert!(!z.requires_grad());
    let prev = deepseek::set_grad_enabled(false);
    assert!(prev);
    assert!(!x.neg().unwrap().requires_grad());
    deepseek::set_grad_enabled(true);
    let w = x.square().unwrap();
    assert!(w.requires_grad());
    assert_eq!(w.grad_fn_name().as_deref(), Some("square"));
}

#[test]
fn detach_cuts_the_graph() {
    let x = leaf(&[1.0, 2.0, 3.0], &[3]);
    let d = x.square().unwrap().detach();
    assert!(!d.requires_grad());
    assert!(d.is_leaf());
    // y = x * detach(x^2): dy/dx = x^2 (no contribution through the detached branch)
    let y = x.mul(&d).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[1.0, 4.0, 9.0]);
    // detach shares storage
    let e = x.detach();
    assert!(e.shares_storage(&x));
}

#[test]
fn requires_grad_flags() {
    let x = leaf(&[1.0], &[1]);
    let y = x.mul_scalar(2.0).unwrap();
    assert!(!y.is_leaf());
    let err = y.requires_grad_(false).unwrap_err().to_string();
    assert!(err.contains("leaf"), "{err}");
    // requires_grad_(true) on a non-leaf is allowed and a no-op
    assert!(y.requires_grad_(true).unwrap().requires_grad());
    // turning it off on a leaf stops recording
    let z = Tensor::from_vec(vec![1.0f64], &[1]).unwrap();
    z.requires_grad_(true).unwrap();
    z.requires_grad_(false).unwrap();
    assert!(!z.exp().unwrap().requires_grad());
    let i = Tensor::from_vec(vec![1i64], &[1]).unwrap();
    assert!(i.requires_grad_(true).is_err());
    assert!(i.requires_grad_(false).is_ok());
}

#[test]
fn hooks_modify_gradients() {
    // hook on a leaf
    let x = leaf(&[1.0, 2.0], &[2]);
    x.register_hook(|g| Ok(Some(g.mul_scalar(2.0)?))).unwrap();
    x.square().unwrap().sum_all().unwrap().backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[4.0, 8.0]);

    // hook on an intermediate changes what flows further back
    let a = leaf(&[1.0, 2.0], &[2]);
    let b = a.mul_scalar(3.0).unwrap();
    b.register_hook(|g| Ok(Some(g.mul_scalar(2.0)?))).unwrap();
    b.sum_all().unwrap().backward().unwrap();
    close(&vals(&a.grad().unwrap()), &[6.0, 6.0]);

    // a hook returning None observes only; hooks run in registration order
    let seen = Arc::new(AtomicUsize::new(0));
    let c = leaf(&[1.0, 2.0, 3.0], &[3]);
    let s2 = seen.clone();
    c.register_hook(move |g| {
        s2.fetch_add(g.numel(), Ordering::SeqCst);
        Ok(None)
    })
    .unwrap();
    c.register_hook(|g| Ok(Some(g.add_scalar(1.0)?))).unwrap();
    c.register_hook(|g| Ok(Some(g.mul_scalar(10.0)?))).unwrap();
    c.sum_all().unwrap().backward().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    close(&vals(&c.grad().unwrap()), &[20.0, 20.0, 20.0]);

    // a hook on a tensor used twice sees the summed gradient once
    let calls = Arc::new(AtomicUsize::new(0));
    let d = leaf(&[1.0], &[1]);
    let e = d.mul_scalar(2.0).unwrap();
    let c2 = calls.clone();
    e.register_hook(move |g| {
        c2.fetch_add(1, Ordering::SeqCst);
        Ok(Some(g.mul_scalar(0.5)?))
    })
    .unwrap();
    e.add(&e).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the hook should run once, on the summed gradient"
    );
    close(&vals(&d.grad().unwrap()), &[2.0]);
}

#[test]
fn hooks_apply_to_autograd_grad() {
    let x = leaf(&[1.0, 2.0], &[2]);
    x.register_hook(|g| Ok(Some(g.mul_scalar(2.0)?))).unwrap();
    let y = x.square().unwrap().sum_all().unwrap();
    let g =
        deepseek::autograd::grad(&[y], std::slice::from_ref(&x), &[None], false, false).unwrap();
    close(&vals(g[0].as_ref().unwrap()), &[4.0, 8.0]);
    assert!(x.grad().is_none());
}

#[test]
fn retain_grad_on_non_leaf() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let y = x.square().unwrap();
    let z = x.mul_scalar(5.0).unwrap();
    y.retain_grad().unwrap();
    let l = y
        .mul_scalar(3.0)
        .unwrap()
        .add(&z)
        .unwrap()
        .sum_all()
        .unwrap();
    l.backward().unwrap();
    close(&vals(&y.grad().unwrap()), &[3.0, 3.0]);
    assert!(
        z.grad().is_none(),
        "a non-leaf without retain_grad keeps no gradient"
    );
    close(&vals(&x.grad().unwrap()), &[11.0, 17.0]);
    assert!(!y.grad().unwrap().requires_grad());

    // retained grads accumulate too
    let a = leaf(&[1.0], &[1]);
    let b = a.exp().unwrap();
    b.retain_grad().unwrap();
    let l = b.mul_scalar(2.0).unwrap().sum_all().unwrap();
    l.backward_with(None, true, false).unwrap();
    l.backward().unwrap();
    close(&vals(&b.grad().unwrap()), &[4.0]);

    // retain_grad sees the gradient after the tensor's hooks
    let p = leaf(&[1.0], &[1]);
    let q = p.mul_scalar(2.0).unwrap();
    q.retain_grad().unwrap();
    q.register_hook(|g| Ok(Some(g.mul_scalar(3.0)?))).unwrap();
    q.sum_all().unwrap().backward().unwrap();
    close(&vals(&q.grad().unwrap()), &[3.0]);
    close(&vals(&p.grad().unwrap()), &[6.0]);
}

#[test]
fn autograd_grad_does_not_touch_dot_grad() {
    let x = leaf(&[1.0, 2.0, 3.0], &[3]);
    let w = leaf(&[0.5, -1.0, 2.0], &[3]);
    let unused = leaf(&[7.0], &[1]);
    let y = x.mul(&w).unwrap().sum_all().unwrap();
    let g = deepseek::autograd::grad(
        std::slice::from_ref(&y),
        &[x.clone(), w.clone(), unused.clone()],
        &[None],
        true,
        false,
    )
    .unwrap();
    close(&vals(g[0].as_ref().unwrap()), &[0.5, -1.0, 2.0]);
    close(&vals(g[1].as_ref().unwrap()), &[1.0, 2.0, 3.0]);
    assert!(g[2].is_none(), "an unused input gets None");
    assert!(x.grad().is_none() && w.grad().is_none() && unused.grad().is_none());
    assert!(!g[0].as_ref().unwrap().requires_grad());
    // the graph was retained: a normal backward still works and fills .grad()
    y.backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[0.5, -1.0, 2.0]);

    // gradient w.r.t. a non-leaf intermediate
    let a = leaf(&[1.0, 2.0], &[2]);
    let h = a.mul_scalar(3.0).unwrap();
    let out = h.square().unwrap().sum_all().unwrap();
    let g =
        deepseek::autograd::grad(&[out], &[h.clone(), a.clone()], &[None], false, false).unwrap();
    close(&vals(g[0].as_ref().unwrap()), &[6.0, 12.0]);
    close(&vals(g[1].as_ref().unwrap()), &[18.0, 36.0]);
    assert!(a.grad().is_none());

    // explicit output gradient for a non-scalar output, several roots
    let b = leaf(&[1.0, 2.0], &[2]);
    let r1 = b.mul_scalar(2.0).unwrap();
    let r2 = b.square().unwrap().sum_all().unwrap();
    let go = Tensor::from_vec(vec![1.0f64, -1.0], &[2]).unwrap();
    let g = deepseek::autograd::grad(
        &[r1, r2],
        std::slice::from_ref(&b),
        &[Some(go), None],
        false,
        false,
    )
    .unwrap();
    close(&vals(g[0].as_ref().unwrap()), &[2.0 + 2.0, -2.0 + 4.0]);
}

#[test]
fn create_graph_gradient_is_differentiable() {
    // y = x^3; dy/dx = 3x^2 (with graph); d/dx sum(3x^2) = 6x
    let x = leaf(&[1.0, -2.0], &[2]);
    let y = x.powf(3.0).unwrap().sum_all().unwrap();
    let g = deepseek::autograd::grad(&[y], std::slice::from_ref(&x), &[None], true, true).unwrap();
    let g = g[0].clone().unwrap();
    assert!(g.requires_grad());
    close(&vals(&g), &[3.0, 12.0]);
    g.sum_all().unwrap().backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[6.0, -12.0]);
}

#[test]
fn gradient_through_views_of_a_leaf() {
    // transpose
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let w = Tensor::from_vec(vec![1.0f64, 10.0, 100.0, 1000.0, 1e4, 1e5], &[3, 2]).unwrap();
    x.t()
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // x.t()[j][i] = x[i][j] gets w[j][i]
    close(
        &vals(&x.grad().unwrap()),
        &[1.0, 100.0, 1e4, 10.0, 1000.0, 1e5],
    );

    // strided slice (step 2) and a narrow of the same leaf
    let y = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5]);
    let a = y.slice(0, 0, 5, 2).unwrap(); // 0, 2, 4
    let b = y.narrow(0, 1, 2).unwrap(); // 1, 2
    assert!(a.shares_storage(&y) && b.shares_storage(&y));
    a.square()
        .unwrap()
        .sum_all()
        .unwrap()
        .add(&b.mul_scalar(10.0).unwrap().sum_all().unwrap())
        .unwrap()
        .backward()
        .unwrap();
    close(&vals(&y.grad().unwrap()), &[2.0, 10.0, 16.0, 0.0, 10.0]);

    // view chain: reshape -> permute -> select -> expand
    let z = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[6]);
    let v = z
        .reshape(&[2, 3])
        .unwrap()
        .permute(&[1, 0])
        .unwrap()
        .select(1, 1)
        .unwrap() // z[3], z[4], z[5]
        .unsqueeze(0)
        .unwrap()
        .expand(&[4, 3])
        .unwrap();
    v.sum_all().unwrap().backward().unwrap();
    close(&vals(&z.grad().unwrap()), &[0.0, 0.0, 0.0, 4.0, 4.0, 4.0]);
}

#[test]
fn tensor_used_twice() {
    let x = leaf(&[2.0, 3.0], &[2]);
    // y = x * x + x  => dy/dx = 2x + 1
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[5.0, 7.0]);
    // an intermediate used on two branches (diamond)
    let a = leaf(&[1.0, 2.0], &[2]);
    let h = a.exp().unwrap();
    let l = h
        .sin()
        .unwrap()
        .add(&h.square().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    l.backward().unwrap();
    let expect: Vec<f64> = [1.0f64, 2.0]
        .iter()
        .map(|&v| {
            let e = v.exp();
            (e.cos() + 2.0 * e) * e
        })
        .collect();
    close(&vals(&a.grad().unwrap()), &expect);
    // the same leaf on both sides of a matmul
    let m = leaf(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    m.matmul(&m).unwrap().sum_all().unwrap().backward().unwrap();
    // d/dM sum(M M) = ones @ M^T + M^T @ ones: [i][j] = rowsum_j(M) + colsum_i(M)
    // rows sums 3, 7; column sums 4, 6
    let expect = [3.0 + 4.0, 7.0 + 4.0, 3.0 + 6.0, 7.0 + 6.0];
    close(&vals(&m.grad().unwrap()), &expect);
}

#[test]
fn multi_output_split_with_one_output_used() {
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5]);
    let parts = x.split_sizes(&[2, 3], 0).unwrap();
    parts[1]
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    close(&vals(&x.grad().unwrap()), &[0.0, 0.0, 6.0, 8.0, 10.0]);
    drop(parts);

    // the unused outputs dropped before backward
    let y = leaf(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let used = {
        let ps = y.chunk(2, 1).unwrap();
        ps[0].clone()
    };
    used.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    close(&vals(&y.grad().unwrap()), &[3.0, 0.0, 3.0, 0.0]);

    // unbind: two of three used, one twice
    let z = leaf(&[1.0, 2.0, 3.0], &[3]);
    let u = z.unbind(0).unwrap();
    u[0].mul(&u[2])
        .unwrap()
        .add(&u[2])
        .unwrap()
        .backward()
        .unwrap();
    close(&vals(&z.grad().unwrap()), &[3.0, 0.0, 2.0]);

    // lstm: only h_n used (the other two outputs get no gradient)
    let xs = Tensor::randn(&[2, 1, 2], DType::F64)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let h0 = Tensor::zeros(&[1, 1, 2], DType::F64).unwrap();
    let c0 = Tensor::zeros(&[1, 1, 2], DType::F64).unwrap();
    let ws: Vec<Tensor> = (0..2)
        .map(|k| {
            Tensor::randn(&[8, 2], DType::F64)
                .unwrap()
                .mul_scalar(0.5 + k as f64)
                .unwrap()
        })
        .collect();
    let (_, hn, _) = deepseek::nn::functional::lstm(&xs, &h0, &c0, &ws, 1, false).unwrap();
    hn.sum_all().unwrap().backward().unwrap();
    let g = xs.grad().unwrap();
    assert_eq!(g.shape(), &[2, 1, 2]);
    assert!(vals(&g).iter().all(|v| v.is_finite()));
}

#[test]
fn int_outputs_do_not_join_the_graph() {
    let x = leaf(&[3.0, 1.0, 2.0], &[3]);
    let i = x.argmax(None, false).unwrap();
    assert!(!i.requires_grad());
    let (v, idx) = x.max_dim(0, false).unwrap();
    assert!(v.requires_grad() && !idx.requires_grad());
    v.backward().unwrap();
    close(&vals(&x.grad().unwrap()), &[1.0, 0.0, 0.0]);
    let c = x.gt_scalar(1.5).unwrap();
    assert_eq!(c.dtype(), DType::Bool);
    assert!(!c.requires_grad());
}

#[test]
fn backward_with_explicit_gradient_and_retained_graph() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let y = x.square().unwrap();
    let g = Tensor::from_vec(vec![1.0f64, 10.0], &[2]).unwrap();
    y.backward_with(Some(&g), true, false).unwrap();
    close(&vals(&x.grad().unwrap()), &[2.0, 40.0]);
    y.backward_with(Some(&g), false, false).unwrap();
    close(&vals(&x.grad().unwrap()), &[4.0, 80.0]);
    let err = y
        .backward_with(Some(&g), false, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("second time"), "{err}");
    // backward on a leaf itself
    let l = leaf(&[5.0], &[]);
    l.backward().unwrap();
    close(&vals(&l.grad().unwrap()), &[1.0]);
}

#[test]
fn grads_flow_across_dtype_casts() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2])
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let y = x
        .to_dtype(DType::F64)
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    y.backward().unwrap();
    let g = x.grad().unwrap();
    assert_eq!(g.dtype(), DType::F32);
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
}

#[test]
fn backward_refuses_saved_tensors_modified_in_place() {
    // An input saved by mul, modified (under no_grad) before backward.
    let w = leaf(&[1.0, 2.0], &[2]);
    let a = Tensor::from_vec(vec![3.0f64, 4.0], &[2]).unwrap();
    let v0 = a.version();
    let y = w.mul(&a).unwrap().sum_all().unwrap();
    {
        let _g = deepseek::no_grad();
        a.copy_(&Tensor::zeros(&[2], DType::F64).unwrap()).unwrap();
    }
    assert!(a.version() > v0);
    let err = y.backward().unwrap_err().to_string();
    assert!(
        err.contains("modified by an in-place operation") && err.contains("mul"),
        "{err}"
    );

    // A saved output (sigmoid's), through a view of it.
    let s = w.sigmoid().unwrap();
    let loss = s.sum_all().unwrap();
    {
        let _g = deepseek::no_grad();
        let view = s.detach().slice(0, 0, 1, 1).unwrap();
        view.copy_(&Tensor::zeros(&[1], DType::F64).unwrap())
            .unwrap();
    }
    let err = loss.backward().unwrap_err().to_string();
    assert!(err.contains("sigmoid") && err.contains("output 0"), "{err}");

    // Unmodified: backward works, and a version bump after backward is harmless.
    let b = Tensor::from_vec(vec![5.0f64, 6.0], &[2]).unwrap();
    let z = w.mul(&b).unwrap().sum_all().unwrap();
    z.backward().unwrap();
    {
        let _g = deepseek::no_grad();
        b.copy_(&Tensor::zeros(&[2], DType::F64).unwrap()).unwrap();
    }
}

/// `nll_loss(log_softmax(x))` records one cross-entropy node over `x` (the log_softmax node is
/// skipped in backward): the gradients must equal the unfused graph's (class weights of one
/// keep the unfused path), also when `logp` feeds a second loss, and asking for `logp`'s own
/// gradient after the loss is an error rather than a silently incomplete gradient.
#[test]
fn nll_over_log_softmax_fuses_without_changing_gradients() {
    use deepseek::nn::functional as F;
    let xv: Vec<f64> = (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.37).collect();
    let t = Tensor::from_vec(vec![2i64, 0, 3], &[3]).unwrap();
    let ones = Tensor::ones(&[4], DType::F64).unwrap();
    for (ign, red) in [(-100, "mean"), (0, "mean"), (-100, "sum"), (3, "none")] {
        let run = |weight: Option<&Tensor>, second: bool| {
            let x = leaf(&xv, &[3, 4]);
            let lp = x.log_softmax(1).unwrap();
            let mut l = F::nll_loss(&lp, &t, weight, ign, red)
                .unwrap()
                .sum_all()
                .unwrap();
            if second {
                l = l
                    .add(&lp.exp().unwrap().square().unwrap().sum_all().unwrap())
                    .unwrap();
            }
            l.backward().unwrap();
            (vals(&l), vals(&x.grad().unwrap()))
        };
        for second in [false, true] {
            let (lf, gf) = run(None, second);
            let (lu, gu) = run(Some(&ones), second);
            close(&lf, &lu);
            close(&gf, &gu);
        }
    }
    // retain_grad before the loss: no fusion, logp.grad is -onehot / N.
    let x = leaf(&xv, &[3, 4]);
    let lp = x.log_softmax(1).unwrap();
    lp.retain_grad().unwrap();
    F::nll_loss(&lp, &t, None, -100, "mean")
        .unwrap()
        .backward()
        .unwrap();
    let g = vals(&lp.grad().unwrap());
    assert!((g[2] + 1.0 / 3.0).abs() < 1e-15 && g[0] == 0.0, "{g:?}");
    // after it: refused, naming the reason.
    let x = leaf(&xv, &[3, 4]);
    let lp = x.log_softmax(1).unwrap();
    let l = F::nll_loss(&lp, &t, None, -100, "mean").unwrap();
    let e = lp.retain_grad().unwrap_err().to_string();
    assert!(e.contains("fused") && e.contains("log_softmax"), "{e}");
    assert!(lp.register_hook(|g| Ok(Some(g.clone()))).is_err());
    let e = deepseek::autograd::grad(&[l], &[lp], &[None], false, false).unwrap_err();
    assert!(e.to_string().contains("nll_loss"), "{e}");
}
