//! Gradient clipping (PyTorch's `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`).

use crate::ops::UnaryOp;
use crate::{Error, Result, Tensor};

/// The `ord`-norm of one gradient tensor (PyTorch's `vector_norm`), computed by the backend.
fn tensor_norm(g: &Tensor, ord: f64) -> Result<f64> {
    crate::backend::vector_norm(g, ord)
}

/// Applies the unary primitive `op` to every element of `g` in place (no autograd): by the
/// backend's in-place kernel on contiguous f32/f64 gradients, through a copy otherwise.
fn map_in_place(g: &Tensor, op: UnaryOp) -> Result<()> {
    let _ng = crate::no_grad();
    if g.is_contiguous() && matches!(g.dtype(), crate::DType::F32 | crate::DType::F64) {
        return crate::backend::unary_inplace(op, g);
    }
    g.copy_(&g.unary(op)?)
}

fn joint_norm(grads: &[Tensor], norm_type: f64) -> Result<f64> {
    let norms = grads
        .iter()
        .map(|g| tensor_norm(g, norm_type))
        .collect::<Result<Vec<f64>>>()?;
    Ok(crate::scalar::vector_norm(norms.into_iter(), norm_type))
}

/// The joint `norm_type`-norm of the gradients of `params` (the norm of the per-parameter
/// norms), as [`clip_grad_norm_`] returns it, without changing them; 0 when no parameter has
/// a gradient. The Trainer records it per step in `metrics.jsonl` (`grad_norm`).
///
/// ```
/// use deepseek::prelude::*;
/// let p = Tensor::zeros(&[2], DType::F32)?.requires_grad_(true)?;
/// p.set_grad(Some(Tensor::from_vec(vec![3.0f32, 4.0], &[2])?))?;
/// assert_eq!(deepseek::optim::total_grad_norm(&[p.clone()], 2.0)?, 5.0);
/// assert_eq!(p.grad().unwrap().to_vec::<f32>()?, vec![3.0, 4.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn total_grad_norm(params: &[Tensor], norm_type: f64) -> Result<f64> {
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    joint_norm(&grads, norm_type)
}

/// Clips the gradients of `params` in place so that their joint `norm_type`-norm is at most
/// `max_norm`, and returns the joint norm before clipping (PyTorch's `clip_grad_norm_`).
///
/// The joint norm is the norm of the per-parameter norms (`norm_type = f64::INFINITY` takes
/// the largest |g|). When it exceeds `max_norm`, every gradient is multiplied by
/// `max_norm / (total_norm + 1e-6)`. Parameters without a gradient are ignored; with none at
/// all the result is 0.
///
/// ```
/// use deepseek::prelude::*;
/// let p = Tensor::zeros(&[2], DType::F32)?.requires_grad_(true)?;
/// p.set_grad(Some(Tensor::from_vec(vec![3.0f32, 4.0], &[2])?))?;
/// let total = deepseek::optim::clip_grad_norm_(&[p.clone()], 1.0, 2.0)?;
/// assert_eq!(total, 5.0);
/// let g = p.grad().unwrap().to_vec::<f32>()?;
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn clip_grad_norm_(params: &[Tensor], max_norm: f64, norm_type: f64) -> Result<f64> {
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let total = joint_norm(&grads, norm_type)?;
    let coef = max_norm / (total + 1e-6);
    // PyTorch multiplies by min(coef, 1), so a NaN norm spreads into the gradients.
    if coef < 1.0 || coef.is_nan() {
        for g in &grads {
            map_in_place(g, UnaryOp::MulScalar { c: coef })?;
        }
    }
    Ok(total)
}

/// Clamps every gradient of `params` in place into `[-clip_value, clip_value]` (PyTorch's
/// `clip_grad_value_`).
///
/// ```
/// use deepseek::prelude::*;
/// let p = Tensor::zeros(&[3], DType::F32)?.requires_grad_(true)?;
/// p.set_grad(Some(Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], &[3])?))?;
/// deepseek::optim::clip_grad_value_(&[p.clone()], 1.0)?;
/// assert_eq!(p.grad().unwrap().to_vec::<f32>()?, vec![-1.0, 0.5, 1.0]);
/// # Ok::<(), deepseek::Error>(())
/// ```
pub fn clip_grad_value_(params: &[Tensor], clip_value: f64) -> Result<()> {
    if clip_value.is_nan() {
        return Err(Error::value("clip_grad_value_", "clip_value is NaN"));
    }
    for g in params.iter().filter_map(|p| p.grad()) {
        // min(max(x, lo), hi) as torch.clamp: NaN stays NaN, and lo > hi gives hi.
        map_in_place(
            &g,
            UnaryOp::Clamp {
                min: -clip_value,
                max: clip_value,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::test_util::{assert_close, grad};

    // Expected values from PyTorch 2.15 (grad as in sgd.rs's tests):
    //
    // for norm, mx in [(2.0, 1.0), (float('inf'), 0.3), (1.0, 100.0), (3.0, 0.5)]:
    //     a = torch.zeros(6, requires_grad=True); b = torch.zeros(4, requires_grad=True)
    //     a.grad = grad(6, 1); b.grad = grad(4, 2, 3) * 3
    //     tot = torch.nn.utils.clip_grad_norm_([a, b], mx, norm)
    //     print(norm, mx, tot.item(), a.grad.tolist(), b.grad.tolist())
    #[test]
    fn clip_grad_norm_matches_torch() {
        #[rustfmt::skip]
        type Case = (f64, f64, f64, [f32; 6], [f32; 4]); // norm_type, max_norm, total, grads
        let cases: [Case; 4] = [
            (
                2.0,
                1.0,
                1.7000000476837158,
                [
                    -0.11764699,
                    0.29411748,
                    0.058823496,
                    -0.17647049,
                    0.23529398,
                    0.0,
                ],
                [0.0, -0.70588195, 0.5294115, -0.17647049],
            ),
            (
                f64::INFINITY,
                0.3,
                1.2000000476837158,
                [
                    -0.049999963,
                    0.1249999,
                    0.024999982,
                    -0.07499994,
                    0.09999993,
                    0.0,
                ],
                [0.0, -0.29999977, 0.22499983, -0.07499994],
            ),
            (
                1.0,
                100.0,
                3.9000000953674316,
                [-0.2, 0.5, 0.1, -0.3, 0.4, 0.0],
                [0.0, -1.2, 0.90000004, -0.3],
            ),
            (
                3.0,
                0.5,
                1.3940222263336182,
                [
                    -0.071734816,
                    0.17933704,
                    0.035867408,
                    -0.10760223,
                    0.14346963,
                    0.0,
                ],
                [0.0, -0.43040892, 0.3228067, -0.10760223],
            ),
        ];
        for (norm, max, total, wa, wb) in cases {
            let a = Tensor::zeros(&[6], crate::DType::F32)
                .unwrap()
                .requires_grad_(true)
                .unwrap();
            let b = Tensor::zeros(&[4], crate::DType::F32)
                .unwrap()
                .requires_grad_(true)
                .unwrap();
            let c = Tensor::zeros(&[2], crate::DType::F32)
                .unwrap()
                .requires_grad_(true)
                .unwrap(); // no grad
            a.set_grad(Some(Tensor::from_vec(grad(6, 1), &[6]).unwrap()))
                .unwrap();
            let gb: Vec<f32> = grad(7, 2)[3..].iter().map(|x| x * 3.0).collect();
            b.set_grad(Some(Tensor::from_vec(gb, &[4]).unwrap()))
                .unwrap();
            let got = clip_grad_norm_(&[a.clone(), b.clone(), c], max, norm).unwrap();
            assert!(
                (got - total).abs() < 1e-6 * total,
                "norm {norm}: total {got}, expected {total}"
            );
            assert_close(&a.grad().unwrap().to_vec::<f32>().unwrap(), &wa, "a");
            assert_close(&b.grad().unwrap().to_vec::<f32>().unwrap(), &wb, "b");
        }
    }

    #[test]
    fn clip_grad_norm_strided_f64_and_empty() {
        assert_eq!(clip_grad_norm_(&[], 1.0, 2.0).unwrap(), 0.0);
        let p = Tensor::zeros(&[2, 2], crate::DType::F64)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let g = Tensor::from_vec(vec![3.0f64, 0.0, 4.0, 0.0], &[2, 2])
            .unwrap()
            .t()
            .unwrap();
        p.set_grad(Some(g)).unwrap();
        assert_eq!(
            clip_grad_norm_(std::slice::from_ref(&p), 0.5, 2.0).unwrap(),
            5.0
        );
        let v = p.grad().unwrap().to_vec::<f64>().unwrap();
        assert!(
            (v[0] - 0.3).abs() < 1e-6 && (v[1] - 0.4).abs() < 1e-6 && v[2] == 0.0,
            "{v:?}"
        );
    }

    #[test]
    fn clip_grad_value_clamps() {
        let p = Tensor::zeros(&[4], crate::DType::F32)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        p.set_grad(Some(
            Tensor::from_vec(vec![-3.0f32, -0.5, 0.25, 7.0], &[4]).unwrap(),
        ))
        .unwrap();
        clip_grad_value_(std::slice::from_ref(&p), 0.5).unwrap();
        assert_eq!(
            p.grad().unwrap().to_vec::<f32>().unwrap(),
            vec![-0.5, -0.5, 0.25, 0.5]
        );
    }
}
