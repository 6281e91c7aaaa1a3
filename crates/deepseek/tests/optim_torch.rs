//! Adagrad, RAdam and NAdam against PyTorch 2.15: 8 steps over a fixed parameter and fixed
//! gradients, expected values printed by PyTorch (the script is in each test's comment).
//!
//! ```python
//! import torch
//! def p0(n): return torch.tensor([(((i*5)%7)-3)*0.25 for i in range(n)], dtype=torch.float32)
//! def grad(n, t): return torch.tensor([(((i*7+t*3)%11)*0.1-0.5) for i in range(n)], dtype=torch.float64).float()
//! a = p0(6).clone().requires_grad_(True)
//! opt = torch.optim.<Optimizer>([a], **kwargs)
//! for t in range(8):
//!     a.grad = grad(6, t); opt.step()
//! print(a.tolist())
//! ```

#![allow(clippy::excessive_precision)] // values printed by PyTorch, kept as printed

use deepseek::optim::{
    Adagrad, AdagradConfig, AdamVariantConfig, NAdam, OptimState, Optimizer, RAdam,
};
use deepseek::{Result, Tensor};

fn p0(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 5) % 7) as f64 - 3.0) as f32 * 0.25)
        .collect()
}

fn grad(n: usize, t: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((((i * 7 + t * 3) % 11) as f64) * 0.1 - 0.5) as f32)
        .collect()
}

fn run(make: &dyn Fn(Tensor) -> Result<Box<dyn Optimizer>>, steps: usize) -> Result<Vec<f32>> {
    let p = Tensor::from_vec(p0(6), &[6])?.requires_grad_(true)?;
    let mut opt = make(p.clone())?;
    for t in 0..steps {
        p.set_grad(Some(Tensor::from_vec(grad(6, t), &[6])?))?;
        opt.step()?;
    }
    p.to_vec::<f32>()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 + 1e-5 * y.abs(),
            "{what}: element {i}: got {x}, expected {y}\n got {a:?}\n expected {b:?}"
        );
    }
}

#[test]
fn adagrad_matches_torch() -> Result<()> {
    // Adagrad(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)
    let got = run(
        &|p| {
            let cfg = AdagradConfig {
                lr: 0.1,
                lr_decay: 0.01,
                weight_decay: 0.1,
                initial_accumulator_value: 0.1,
                ..Default::default()
            };
            Ok(Box::new(Adagrad::new(vec![p], cfg)?))
        },
        8,
    )?;
    let want = [
        -0.6597198843955994,
        0.3981958031654358,
        -0.022931205108761787,
        -0.5074812769889832,
        0.6010628342628479,
        0.3069898784160614,
    ];
    assert_close(&got, &want, "Adagrad");
    // Adagrad(lr=0.1, maximize=True)
    let got = run(
        &|p| {
            let cfg = AdagradConfig {
                lr: 0.1,
                maximize: true,
                ..Default::default()
            };
            Ok(Box::new(Adagrad::new(vec![p], cfg)?))
        },
        8,
    )?;
    let want = [
        -0.7967411875724792,
        0.6174697279930115,
        0.007559802383184433,
        -0.43580010533332825,
        0.9203163981437683,
        0.1350007951259613,
    ];
    assert_close(&got, &want, "Adagrad maximize");
    Ok(())
}

#[test]
fn radam_matches_torch() -> Result<()> {
    // RAdam(lr=0.01, weight_decay=0.1): steps 1-5 are momentum SGD, 6-8 rectified Adam
    for (decoupled, want) in [
        (
            false,
            [
                -0.7346280813217163,
                0.48853039741516113,
                0.001835170784033835,
                -0.5045268535614014,
                0.741953432559967,
                0.25582316517829895,
            ],
        ),
        (
            true,
            [
                -0.7326400279998779,
                0.4872228801250458,
                0.0018282481469213963,
                -0.5031519532203674,
                0.7399349808692932,
                0.2551308572292328,
            ],
        ),
    ] {
        let got = run(
            &|p| {
                let cfg = AdamVariantConfig {
                    lr: 0.01,
                    weight_decay: 0.1,
                    decoupled_weight_decay: decoupled,
                    ..AdamVariantConfig::radam_default()
                };
                Ok(Box::new(RAdam::new(vec![p], cfg)?))
            },
            8,
        )?;
        assert_close(&got, &want, &format!("RAdam decoupled={decoupled}"));
    }
    Ok(())
}

#[test]
fn nadam_matches_torch() -> Result<()> {
    // NAdam(lr=0.01, weight_decay=0.1) and NAdam(lr=0.01, betas=(0.8, 0.99),
    // weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=0.01)
    let cases = [
        (
            AdamVariantConfig {
                lr: 0.01,
                weight_decay: 0.1,
                ..AdamVariantConfig::nadam_default()
            },
            [
                -0.7351181507110596,
                0.4811401665210724,
                -0.0020895693451166153,
                -0.5013673305511475,
                0.7196844220161438,
                0.2620196044445038,
            ],
            0.0016914170701056719,
        ),
        (
            AdamVariantConfig {
                lr: 0.01,
                betas: (0.8, 0.99),
                weight_decay: 0.1,
                decoupled_weight_decay: true,
                momentum_decay: 0.01,
                ..AdamVariantConfig::nadam_default()
            },
            [
                -0.7397416234016418,
                0.4834865629673004,
                -0.0031161902006715536,
                -0.504855751991272,
                0.7215642929077148,
                0.26612430810928345,
            ],
            0.0006650396971963346,
        ),
    ];
    for (cfg, want, mu_product) in cases {
        let p = Tensor::from_vec(p0(6), &[6])?.requires_grad_(true)?;
        let mut opt = NAdam::new(vec![p.clone()], cfg)?;
        for t in 0..8 {
            p.set_grad(Some(Tensor::from_vec(grad(6, t), &[6])?))?;
            opt.step()?;
        }
        assert_close(&p.to_vec::<f32>()?, &want, "NAdam");
        let st = opt.state_dict()?;
        let mp = st.param_groups[0].params[0].state.as_ref().unwrap().scalars["mu_product"];
        assert!(
            (mp - mu_product).abs() < 1e-9,
            "mu_product {mp} vs {mu_product}"
        );
    }
    Ok(())
}

#[test]
fn state_round_trip_continues_identically() -> Result<()> {
    // 4 steps, snapshot through JSON into a fresh optimizer, 4 more: as 8 straight steps.
    let cfg = AdamVariantConfig {
        lr: 0.01,
        weight_decay: 0.1,
        ..AdamVariantConfig::nadam_default()
    };
    let straight = run(&|p| Ok(Box::new(NAdam::new(vec![p], cfg)?)), 8)?;
    let p = Tensor::from_vec(p0(6), &[6])?.requires_grad_(true)?;
    let mut a = NAdam::new(vec![p.clone()], cfg)?;
    for t in 0..4 {
        p.set_grad(Some(Tensor::from_vec(grad(6, t), &[6])?))?;
        a.step()?;
    }
    let json = a.state_dict()?.to_json()?;
    let mut b = NAdam::new(vec![p.clone()], cfg)?;
    b.load_state_dict(&OptimState::from_json(&json)?)?;
    for t in 4..8 {
        p.set_grad(Some(Tensor::from_vec(grad(6, t), &[6])?))?;
        b.step()?;
    }
    assert_close(&p.to_vec::<f32>()?, &straight, "NAdam resumed");
    // a state of another kind is refused
    let mut r = RAdam::new(vec![p.clone()], AdamVariantConfig::radam_default())?;
    assert!(r.load_state_dict(&OptimState::from_json(&json)?).is_err());
    // invalid hyper-parameters are errors, not panics
    assert!(Adagrad::new(
        vec![p.clone()],
        AdagradConfig {
            lr: -1.0,
            ..Default::default()
        }
    )
    .is_err());
    assert!(NAdam::new(
        vec![p],
        AdamVariantConfig {
            betas: (1.5, 0.9),
            ..AdamVariantConfig::nadam_default()
        }
    )
    .is_err());
    Ok(())
}
